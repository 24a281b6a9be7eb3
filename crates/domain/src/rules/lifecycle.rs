//! The status machine of files and versions, the lock rules and the four-eyes review (spec
//! §4–§5).
//!
//! The decisions the metadata store takes atomically (who gets a lock, whether a commit is
//! stale, …) are in [`super::store`], which the stores and the use cases' early checks share.

use std::time::Duration;

use crate::error::StorageError;
use crate::model::{FileStatus, UserId, VersionStatus};

/// A review decision on a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewDecision {
    /// `draft` → `pending_validation`.
    Submit,
    /// `pending_validation` → `validated`.
    Approve,
    /// `pending_validation` → `rejected`.
    Reject,
}

impl ReviewDecision {
    /// The status a version must be in for the decision to apply.
    pub const fn from_status(self) -> VersionStatus {
        match self {
            ReviewDecision::Submit => VersionStatus::Draft,
            ReviewDecision::Approve | ReviewDecision::Reject => VersionStatus::PendingValidation,
        }
    }

    /// The status the decision leads to.
    pub const fn to_status(self) -> VersionStatus {
        match self {
            ReviewDecision::Submit => VersionStatus::PendingValidation,
            ReviewDecision::Approve => VersionStatus::Validated,
            ReviewDecision::Reject => VersionStatus::Rejected,
        }
    }
}

/// The version status machine: which decision applies to which status.
///
/// # Errors
/// [`StorageError::InvalidTransition`] when `decision` does not apply to `current`.
pub fn review_transition(
    current: VersionStatus,
    decision: ReviewDecision,
) -> Result<VersionStatus, StorageError> {
    super::store::decide_review(current, decision.from_status(), decision.to_status())?;
    Ok(decision.to_status())
}

/// The status a file takes when `latest` is its latest version's status (spec §4). A rejected
/// latest version puts the file back to `draft`: it needs a new version.
pub const fn file_status_following(latest: VersionStatus) -> FileStatus {
    match latest {
        VersionStatus::Draft | VersionStatus::Rejected => FileStatus::Draft,
        VersionStatus::PendingValidation => FileStatus::PendingValidation,
        VersionStatus::Validated => FileStatus::Validated,
    }
}

/// Whether a file in `status` accepts a change of content, tags or lock.
///
/// # Errors
/// [`StorageError::InvalidTransition`] for an archived file.
pub fn ensure_writable(status: FileStatus) -> Result<(), StorageError> {
    if status == FileStatus::Archived {
        return Err(StorageError::InvalidTransition(
            super::store::ARCHIVED.into(),
        ));
    }
    Ok(())
}

/// The four-eyes rule: the author of a version cannot approve it, unless self-approval is
/// allowed (`ALLOW_SELF_APPROVAL`). Rejecting one's own version (withdrawing it) is allowed.
///
/// # Errors
/// [`StorageError::AccessDenied`].
pub fn check_four_eyes(
    decision: ReviewDecision,
    author: &UserId,
    reviewer: &UserId,
    allow_self_approval: bool,
) -> Result<(), StorageError> {
    if decision == ReviewDecision::Approve && author == reviewer && !allow_self_approval {
        return Err(StorageError::denied(
            "the author of a version cannot approve it (four-eyes rule)",
        ));
    }
    Ok(())
}

/// Lock lifetimes: the default, and the most a caller may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTtl {
    pub default: Duration,
    pub max: Duration,
}

impl LockTtl {
    /// The lifetime of a lock asked for with `requested` seconds (default when `None`).
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] for 0 or more than the maximum.
    pub fn resolve(self, requested: Option<u64>) -> Result<Duration, StorageError> {
        match requested {
            None => Ok(self.default),
            Some(0) => Err(StorageError::invalid("ttl_seconds must be at least 1")),
            Some(secs) if Duration::from_secs(secs) > self.max => Err(StorageError::invalid(
                format!("ttl_seconds must be at most {}", self.max.as_secs()),
            )),
            Some(secs) => Ok(Duration::from_secs(secs)),
        }
    }
}

/// Validates the shape of a force-unlock request before anything is read.
///
/// # Errors
/// [`StorageError::InvalidRequest`] when `force` comes without a non-blank reason.
pub fn check_force_reason(force: bool, reason: Option<&str>) -> Result<(), StorageError> {
    if force && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(StorageError::invalid("force: true needs a reason"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::new(id).unwrap()
    }

    #[test]
    fn every_version_transition() {
        use ReviewDecision::*;
        use VersionStatus::*;
        let all_status = [Draft, PendingValidation, Validated, Rejected];
        let allowed = [
            (Draft, Submit, PendingValidation),
            (PendingValidation, Approve, Validated),
            (PendingValidation, Reject, Rejected),
        ];
        for status in all_status {
            for decision in [Submit, Approve, Reject] {
                let result = review_transition(status, decision);
                match allowed
                    .iter()
                    .find(|(s, d, _)| *s == status && *d == decision)
                {
                    Some((_, _, to)) => assert_eq!(result.unwrap(), *to),
                    None => assert!(
                        matches!(result, Err(StorageError::InvalidTransition(_))),
                        "{status:?} {decision:?} should be refused"
                    ),
                }
            }
        }
    }

    #[test]
    fn file_status_follows_the_latest_version() {
        assert_eq!(
            file_status_following(VersionStatus::Draft),
            FileStatus::Draft
        );
        assert_eq!(
            file_status_following(VersionStatus::PendingValidation),
            FileStatus::PendingValidation
        );
        assert_eq!(
            file_status_following(VersionStatus::Validated),
            FileStatus::Validated
        );
        assert_eq!(
            file_status_following(VersionStatus::Rejected),
            FileStatus::Draft
        );
    }

    #[test]
    fn archived_files_are_read_only() {
        assert!(matches!(
            ensure_writable(FileStatus::Archived),
            Err(StorageError::InvalidTransition(_))
        ));
        for s in [
            FileStatus::Draft,
            FileStatus::PendingValidation,
            FileStatus::Validated,
        ] {
            assert!(ensure_writable(s).is_ok());
        }
    }

    #[test]
    fn four_eyes() {
        let a = user("a");
        let b = user("b");
        assert!(matches!(
            check_four_eyes(ReviewDecision::Approve, &a, &a, false),
            Err(StorageError::AccessDenied(_))
        ));
        assert!(check_four_eyes(ReviewDecision::Approve, &a, &a, true).is_ok());
        assert!(check_four_eyes(ReviewDecision::Approve, &a, &b, false).is_ok());
        assert!(check_four_eyes(ReviewDecision::Reject, &a, &a, false).is_ok());
    }

    #[test]
    fn lock_ttl_bounds() {
        let ttl = LockTtl {
            default: Duration::from_secs(86_400),
            max: Duration::from_secs(604_800),
        };
        assert_eq!(ttl.resolve(None).unwrap(), Duration::from_secs(86_400));
        assert_eq!(ttl.resolve(Some(60)).unwrap(), Duration::from_secs(60));
        assert_eq!(
            ttl.resolve(Some(604_800)).unwrap(),
            Duration::from_secs(604_800)
        );
        assert!(matches!(
            ttl.resolve(Some(0)),
            Err(StorageError::InvalidRequest(_))
        ));
        assert!(matches!(
            ttl.resolve(Some(604_801)),
            Err(StorageError::InvalidRequest(_))
        ));
    }

    #[test]
    fn force_needs_a_reason() {
        assert!(matches!(
            check_force_reason(true, None),
            Err(StorageError::InvalidRequest(_))
        ));
        assert!(matches!(
            check_force_reason(true, Some("  ")),
            Err(StorageError::InvalidRequest(_))
        ));
        assert!(check_force_reason(true, Some("holder on leave")).is_ok());
        assert!(check_force_reason(false, None).is_ok());
    }
}
