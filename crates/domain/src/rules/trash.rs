//! The trash's rules (issue 16): who may trash a file, where a restore puts it back, and when
//! the janitor purges it. Both metadata stores apply them inside their units of work.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{FilePath, FileRecord, OnConflict, UserId};
use crate::ports::RepoError;

use super::store::check_not_locked_by_other;

/// The most renamed candidates a restore with `on_conflict: rename` tries before it gives up
/// (`name (restored).ext` then `name (restored 2).ext` … `name (restored 100).ext`).
pub const MAX_RESTORE_RENAMES: u32 = 100;

/// A file may be trashed unless another user holds a live lock on it. An archived file may
/// be trashed (trashing is not a change of its content).
///
/// # Errors
/// [`RepoError::FileLocked`] with that lock.
pub fn check_can_trash(file: &FileRecord, actor: &UserId) -> Result<(), RepoError> {
    check_not_locked_by_other(file, actor)
}

/// What a restore does with the target path, as the store found it under its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTarget {
    /// The path is free: restore there.
    Free,
    /// Try the next renamed candidate ([`restored_name`] of this attempt).
    Rename(u32),
    /// Trash the occupant first, then restore there.
    Replace,
}

/// The decision on a target path: `occupied` is whether it holds a file, `attempt` the
/// number of renamed candidates tried so far (0 for the asked path).
///
/// # Errors
/// [`RepoError::VersionConflict`] when the path is occupied and `on_conflict` is `fail`, or
/// when [`MAX_RESTORE_RENAMES`] candidates are all taken.
pub fn decide_restore_target(
    occupied: bool,
    on_conflict: OnConflict,
    attempt: u32,
) -> Result<RestoreTarget, RepoError> {
    if !occupied {
        return Ok(RestoreTarget::Free);
    }
    match on_conflict {
        OnConflict::Fail => Err(RepoError::VersionConflict {
            current: None,
            detail: "the target path holds a file; restore with on_conflict rename or replace, \
                     or to another target_path"
                .into(),
            precondition: false,
        }),
        OnConflict::Replace if attempt == 0 => Ok(RestoreTarget::Replace),
        OnConflict::Replace | OnConflict::Rename if attempt < MAX_RESTORE_RENAMES => {
            Ok(RestoreTarget::Rename(attempt + 1))
        }
        OnConflict::Replace | OnConflict::Rename => Err(RepoError::VersionConflict {
            current: None,
            detail: format!("no free name among the first {MAX_RESTORE_RENAMES} restored names"),
            precondition: false,
        }),
    }
}

/// The `attempt`-th free-name candidate for restoring to `path` (`attempt` ≥ 1): `name
/// (restored).ext`, then `name (restored 2).ext`, … The extension is what follows the last
/// dot of the name, unless the name starts with its only dot (`.env (restored)`).
///
/// # Errors
/// [`RepoError::VersionConflict`] when the candidate is not a valid path (the name would grow
/// too long).
pub fn restored_name(path: &FilePath, attempt: u32) -> Result<FilePath, RepoError> {
    let name = path.name();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    let suffix = if attempt <= 1 {
        " (restored)".to_owned()
    } else {
        format!(" (restored {attempt})")
    };
    let parent = path.parent();
    let candidate = format!("{}{stem}{suffix}{ext}", parent.as_str());
    FilePath::parse(path.bucket(), &candidate).map_err(|_| RepoError::VersionConflict {
        current: None,
        detail: "the restored name would not be a valid path; restore to another target_path"
            .into(),
        precondition: false,
    })
}

/// Entries trashed at or before this time are due for purging at `now`.
pub fn trash_cutoff(now: DateTime<Utc>, retention: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// When an entry trashed at `trashed_at` is purged by the janitor.
pub fn purge_at(trashed_at: DateTime<Utc>, retention: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| trashed_at.checked_add_signed(r))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether an entry trashed at `trashed_at` is due for purging at `now`.
pub fn purge_due(trashed_at: DateTime<Utc>, retention: Duration, now: DateTime<Utc>) -> bool {
    trashed_at <= trash_cutoff(now, retention)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BucketKind;

    fn path(raw: &str) -> FilePath {
        FilePath::parse(BucketKind::Projects, raw).unwrap()
    }

    #[test]
    fn restored_names_keep_the_extension() {
        let p = path("/projects/p1/dir/report.final.pdf");
        assert_eq!(
            restored_name(&p, 1).unwrap().as_str(),
            "/projects/p1/dir/report.final (restored).pdf"
        );
        assert_eq!(
            restored_name(&p, 2).unwrap().as_str(),
            "/projects/p1/dir/report.final (restored 2).pdf"
        );
        assert_eq!(
            restored_name(&path("/projects/p1/README"), 3)
                .unwrap()
                .as_str(),
            "/projects/p1/README (restored 3)"
        );
        assert_eq!(
            restored_name(&path("/projects/p1/.env"), 1)
                .unwrap()
                .as_str(),
            "/projects/p1/.env (restored)"
        );
    }

    #[test]
    fn a_restore_target_is_decided_by_on_conflict() {
        assert_eq!(
            decide_restore_target(false, OnConflict::Fail, 0),
            Ok(RestoreTarget::Free)
        );
        assert!(matches!(
            decide_restore_target(true, OnConflict::Fail, 0),
            Err(RepoError::VersionConflict { .. })
        ));
        assert_eq!(
            decide_restore_target(true, OnConflict::Replace, 0),
            Ok(RestoreTarget::Replace)
        );
        assert_eq!(
            decide_restore_target(true, OnConflict::Rename, 0),
            Ok(RestoreTarget::Rename(1))
        );
        assert_eq!(
            decide_restore_target(true, OnConflict::Rename, 4),
            Ok(RestoreTarget::Rename(5))
        );
        assert!(decide_restore_target(true, OnConflict::Rename, MAX_RESTORE_RENAMES).is_err());
    }

    #[test]
    fn purge_is_due_after_the_retention() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Duration::from_secs(86_400);
        assert_eq!(
            purge_at(t, day * 30).to_rfc3339(),
            "2026-12-31T00:00:00+00:00"
        );
        assert!(!purge_due(t, day * 30, t + chrono::Duration::days(29)));
        assert!(purge_due(t, day * 30, t + chrono::Duration::days(30)));
        assert!(purge_due(t, Duration::ZERO, t));
    }
}
