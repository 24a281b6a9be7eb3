//! The status machine of files and versions, the lock rules and the four-eyes review (spec
//! §4–§5).
//!
//! Stores apply these same rules atomically (the PostgreSQL adapter in SQL); the functions here
//! are their reference statement, used by the use cases for the checks that need no store and by
//! in-memory implementations.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::StorageError;
use crate::model::{FileStatus, Lock, UserId, VersionNumber, VersionStatus};

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
    if current == decision.from_status() {
        Ok(decision.to_status())
    } else {
        Err(StorageError::InvalidTransition(format!(
            "a {} version cannot be {}",
            current.as_str(),
            match decision {
                ReviewDecision::Submit => "submitted",
                ReviewDecision::Approve => "approved",
                ReviewDecision::Reject => "rejected",
            }
        )))
    }
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
            "the file is archived (read-only); unarchive it first".into(),
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

/// What taking a lock does, given the file's current lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDecision {
    /// Free (no lock, or an expired one): a new lock starts.
    Acquire,
    /// The caller holds it: its expiry moves; `acquired_at` and `base_version` stay.
    Refresh,
    /// Someone else holds a live lock.
    HeldByOther(Lock),
}

/// Lock rules: an expired lock is free; the holder refreshes; anyone else is refused.
pub fn decide_lock(current: Option<&Lock>, caller: &UserId, now: DateTime<Utc>) -> LockDecision {
    match current {
        None => LockDecision::Acquire,
        Some(lock) if lock.expires_at <= now => LockDecision::Acquire,
        Some(lock) if &lock.holder == caller => LockDecision::Refresh,
        Some(lock) => LockDecision::HeldByOther(lock.clone()),
    }
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

/// What an unlock request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnlockDecision {
    /// No live lock: nothing to do.
    NotLocked,
    /// The holder releases.
    Release,
    /// Someone else's lock is forced open (audited with the reason).
    Force,
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

/// Unlock rules: the holder releases; anyone else needs `force` (whose right the caller has
/// checked); an expired or absent lock is nothing to release.
///
/// # Errors
/// [`StorageError::FileLocked`] when another user holds the lock and `force` is false.
pub fn decide_unlock(
    current: Option<&Lock>,
    caller: &UserId,
    force: bool,
    now: DateTime<Utc>,
) -> Result<UnlockDecision, StorageError> {
    match current {
        None => Ok(UnlockDecision::NotLocked),
        Some(lock) if lock.expires_at <= now => Ok(UnlockDecision::NotLocked),
        Some(lock) if &lock.holder == caller => Ok(UnlockDecision::Release),
        Some(_) if force => Ok(UnlockDecision::Force),
        Some(lock) => Err(StorageError::FileLocked(Box::new(lock.clone()))),
    }
}

/// The commit rule (`/versions/commit`): the committer holds the live lock on the target, and
/// the target has not moved since the lock was taken (the checkout ticket).
///
/// # Errors
/// [`StorageError::InvalidTransition`] when nobody holds the lock,
/// [`StorageError::FileLocked`] when someone else does, [`StorageError::VersionConflict`] when
/// the latest version is no longer the lock's `base_version`.
pub fn check_commit(
    lock: Option<&Lock>,
    committer: &UserId,
    latest: VersionNumber,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    match lock.filter(|l| l.expires_at > now) {
        None => Err(StorageError::InvalidTransition(
            "commit needs the lock on the target: lock it or copy it to your workspace first"
                .into(),
        )),
        Some(l) if &l.holder != committer => Err(StorageError::FileLocked(Box::new(l.clone()))),
        Some(l) if l.base_version != latest => Err(StorageError::VersionConflict {
            detail: format!(
                "the target is at version {latest}, but your lock was taken on version {}",
                l.base_version
            ),
            current: Some(latest),
            precondition: false,
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn user(id: &str) -> UserId {
        UserId::new(id).unwrap()
    }

    fn n(v: u32) -> VersionNumber {
        VersionNumber::new(v).unwrap()
    }

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn lock(holder: &str, expires: i64, base: u32) -> Lock {
        Lock {
            holder: user(holder),
            acquired_at: t(0),
            expires_at: t(expires),
            base_version: n(base),
        }
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
    fn lock_decisions() {
        let me = user("me");
        // free
        assert_eq!(decide_lock(None, &me, t(10)), LockDecision::Acquire);
        // held by another, live
        let other = lock("other", 100, 1);
        assert_eq!(
            decide_lock(Some(&other), &me, t(10)),
            LockDecision::HeldByOther(other.clone())
        );
        // expired: free again (expiry instant itself counts as expired)
        assert_eq!(
            decide_lock(Some(&other), &me, t(100)),
            LockDecision::Acquire
        );
        assert_eq!(
            decide_lock(Some(&other), &me, t(101)),
            LockDecision::Acquire
        );
        // refresh by the holder
        let mine = lock("me", 100, 1);
        assert_eq!(decide_lock(Some(&mine), &me, t(10)), LockDecision::Refresh);
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

    #[test]
    fn unlock_decisions() {
        let me = user("me");
        assert_eq!(
            decide_unlock(None, &me, false, t(0)).unwrap(),
            UnlockDecision::NotLocked
        );
        let mine = lock("me", 100, 1);
        assert_eq!(
            decide_unlock(Some(&mine), &me, false, t(0)).unwrap(),
            UnlockDecision::Release
        );
        let other = lock("other", 100, 1);
        assert!(matches!(
            decide_unlock(Some(&other), &me, false, t(0)),
            Err(StorageError::FileLocked(l)) if l.holder == user("other")
        ));
        assert_eq!(
            decide_unlock(Some(&other), &me, true, t(0)).unwrap(),
            UnlockDecision::Force
        );
        assert_eq!(
            decide_unlock(Some(&other), &me, false, t(200)).unwrap(),
            UnlockDecision::NotLocked
        );
    }

    #[test]
    fn commit_rules() {
        let me = user("me");
        assert!(matches!(
            check_commit(None, &me, n(1), t(0)),
            Err(StorageError::InvalidTransition(_))
        ));
        assert!(matches!(
            check_commit(Some(&lock("me", 10, 1)), &me, n(1), t(20)),
            Err(StorageError::InvalidTransition(_))
        ));
        assert!(matches!(
            check_commit(Some(&lock("other", 100, 1)), &me, n(1), t(0)),
            Err(StorageError::FileLocked(_))
        ));
        assert!(matches!(
            check_commit(Some(&lock("me", 100, 1)), &me, n(2), t(0)),
            Err(StorageError::VersionConflict { current: Some(c), precondition: false, .. }) if c == n(2)
        ));
        assert!(check_commit(Some(&lock("me", 100, 2)), &me, n(2), t(0)).is_ok());
    }
}
