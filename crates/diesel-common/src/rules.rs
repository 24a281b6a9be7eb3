//! The decisions of the units of work, over plain values: each adapter reads the rows its
//! decision rests on (row-locked, or under the database's write lock), asks these functions, and
//! writes. The order of the checks here is the order documented in the adapters' crate docs;
//! keeping it in one place keeps the two adapters' refusals identical.

use chrono::{DateTime, Utc};
use storage_domain::model::{
    AuditAction, AuditDraft, FileRecord, FileStatus, Lock, UserId, VersionId, VersionNumber,
    VersionStatus,
};
use storage_domain::ports::{NewVersion, ReleaseLock, RepoError, SetArchived, WriteMode};
use uuid::Uuid;

pub fn file_not_found() -> RepoError {
    RepoError::FileNotFound
}

pub fn archived() -> RepoError {
    RepoError::InvalidTransition("the file is archived".into())
}

/// A version conflict; `precondition` marks one that came from `If-Match`.
pub fn conflict(current: Option<VersionNumber>, precondition: bool, detail: &str) -> RepoError {
    let detail = if precondition {
        format!("precondition failed: {detail}")
    } else {
        detail.to_owned()
    };
    RepoError::VersionConflict { current, detail }
}

/// A reservation as `commit_version` finds it: `None` when there is no row, else whether it was
/// completed (as which version) and whether it is still open (unexpired by the store's clock).
pub fn check_reservation(found: Option<(Option<Uuid>, bool)>) -> Result<(), RepoError> {
    match found {
        None => Err(RepoError::UploadNotFound),
        Some((Some(v), _)) => Err(RepoError::UploadAlreadyCompleted {
            version_id: VersionId::from_uuid(v),
        }),
        Some((None, false)) => Err(RepoError::UploadNotFound),
        Some((None, true)) => Ok(()),
    }
}

/// The [`WriteMode`] rules when the path holds no file: a commit needs one, and so does an
/// expectation of a version.
pub fn check_missing(cmd: &NewVersion) -> Result<(), RepoError> {
    match cmd.mode {
        WriteMode::Commit { .. } => Err(file_not_found()),
        WriteMode::Upsert {
            expected: Some(e), ..
        } if e.latest.is_some() => Err(conflict(None, e.precondition, "the path holds no file")),
        WriteMode::Upsert { .. } => Ok(()),
    }
}

/// The [`WriteMode`] rules for an existing file (read with its live lock). `Upsert`: archived,
/// another user's live lock, `expected`, `overwrite`. `Commit`: archived, no lock, another
/// holder, stale `base_version`.
pub fn check_existing(file: &FileRecord, cmd: &NewVersion) -> Result<(), RepoError> {
    if file.status == FileStatus::Archived {
        return Err(archived());
    }
    match cmd.mode {
        WriteMode::Upsert {
            expected,
            overwrite,
        } => {
            if let Some(lock) = file.lock_held_by_other(&cmd.author) {
                return Err(RepoError::FileLocked(lock.clone()));
            }
            if let Some(expected) = expected {
                match expected.latest {
                    None => {
                        return Err(conflict(
                            Some(file.version),
                            expected.precondition,
                            "the path already holds a file",
                        ));
                    }
                    Some(n) if n != file.version => {
                        return Err(conflict(
                            Some(file.version),
                            expected.precondition,
                            &format!("expected version {n}, the latest is {}", file.version),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if !overwrite {
                return Err(conflict(
                    Some(file.version),
                    false,
                    "the path already holds a file and overwrite is false",
                ));
            }
        }
        WriteMode::Commit { .. } => match &file.lock {
            None => {
                return Err(RepoError::InvalidTransition(
                    "a commit needs the file's lock".into(),
                ));
            }
            Some(lock) if lock.holder != cmd.author => {
                return Err(RepoError::FileLocked(lock.clone()));
            }
            Some(lock) if lock.base_version != file.version => {
                return Err(conflict(
                    Some(file.version),
                    false,
                    &format!(
                        "the lock was taken on version {}, the latest is {}",
                        lock.base_version, file.version
                    ),
                ));
            }
            Some(_) => {}
        },
    }
    Ok(())
}

/// The number after the file's latest version.
pub fn next_number(latest: VersionNumber) -> Result<VersionNumber, RepoError> {
    latest
        .next()
        .map_err(|_| RepoError::Internal("version number overflow".into()))
}

/// Whether the author's live lock is released by this write (a commit without `keep_lock`), or
/// moves to the new version (any other write by its holder).
pub fn releases_lock(mode: WriteMode) -> bool {
    matches!(mode, WriteMode::Commit { keep_lock: false })
}

/// Takes or refreshes a lock for `holder` on `file` (read with its live lock), at the store's
/// time `now`: refused for a missing file, then an archived one, then another holder's live
/// lock. The same holder keeps `acquired_at` and, unless `base` is given, `base_version`; a new
/// lock's `base_version` is `base` or the file's latest version.
///
/// PostgreSQL takes the same decision in one `INSERT … ON CONFLICT … DO UPDATE … WHERE`
/// statement (`storage-pg-diesel`); SQLite, under its write lock, through this function.
pub fn decide_lock(
    file: Option<&FileRecord>,
    holder: &UserId,
    ttl: std::time::Duration,
    base: Option<VersionNumber>,
    now: DateTime<Utc>,
) -> Result<Lock, RepoError> {
    let file = file.ok_or_else(file_not_found)?;
    if file.status == FileStatus::Archived {
        return Err(archived());
    }
    if let Some(other) = file.lock_held_by_other(holder) {
        return Err(RepoError::FileLocked(other.clone()));
    }
    let expires_at = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .ok_or_else(|| RepoError::Internal("lock ttl out of range".into()))?;
    Ok(match &file.lock {
        Some(mine) => Lock {
            holder: holder.clone(),
            acquired_at: mine.acquired_at,
            expires_at,
            base_version: base.unwrap_or(mine.base_version),
        },
        None => Lock {
            holder: holder.clone(),
            acquired_at: now,
            expires_at,
            base_version: base.unwrap_or(file.version),
        },
    })
}

/// Whether `cmd` may release `lock` (the live lock): another user's lock needs `force`.
pub fn check_release(lock: &Lock, cmd: &ReleaseLock) -> Result<(), RepoError> {
    if lock.holder != cmd.actor && !cmd.force {
        return Err(RepoError::FileLocked(lock.clone()));
    }
    Ok(())
}

/// The audit event of a release, as the port asks: `force_unlock` when the actor released
/// another user's lock, `unlock` when their own, whatever the draft said.
pub fn release_audit(lock: &Lock, cmd: &ReleaseLock) -> AuditDraft {
    let mut draft = cmd.audit.clone();
    draft.action = if lock.holder == cmd.actor {
        AuditAction::Unlock
    } else {
        AuditAction::ForceUnlock
    };
    draft
}

/// A change of tags, or a delete, by `actor`: refused when another user holds a live lock.
pub fn check_not_locked_by_other(file: &FileRecord, actor: &UserId) -> Result<(), RepoError> {
    match file.lock_held_by_other(actor) {
        Some(lock) => Err(RepoError::FileLocked(lock.clone())),
        None => Ok(()),
    }
}

/// `set_tags`: another user's live lock, then archived.
pub fn check_set_tags(file: &FileRecord, actor: &UserId) -> Result<(), RepoError> {
    check_not_locked_by_other(file, actor)?;
    if file.status == FileStatus::Archived {
        return Err(archived());
    }
    Ok(())
}

/// `set_archived`: already in the asked state, then another user's live lock.
pub fn check_set_archived(file: &FileRecord, cmd: &SetArchived) -> Result<(), RepoError> {
    let is_archived = file.status == FileStatus::Archived;
    if is_archived == cmd.archived {
        return Err(RepoError::InvalidTransition(
            if is_archived {
                "the file is already archived"
            } else {
                "the file is not archived"
            }
            .into(),
        ));
    }
    check_not_locked_by_other(file, &cmd.actor)
}

/// The refusal of a review whose version is not in `from` at the time of the write.
pub fn not_in_status(from: VersionStatus) -> RepoError {
    RepoError::InvalidTransition(format!("the version is not {}", from.as_str()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use storage_domain::model::{AuditId, BucketKind, FileId, FilePath, Tags};

    use super::*;

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    fn file(lock: Option<Lock>, status: FileStatus) -> FileRecord {
        let now = Utc::now();
        FileRecord {
            id: FileId::from_uuid(Uuid::new_v4()),
            path: FilePath::parse(BucketKind::Projects, "/projects/p1/a.txt").unwrap(),
            created_by: user("alice"),
            version: VersionNumber::new(3).unwrap(),
            validated_version: None,
            status,
            lock,
            tags: Tags::new(),
            size: 1,
            content_type: "text/plain".into(),
            sha256: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn lock_of(holder: &str, base: u32) -> Lock {
        let now = Utc::now();
        Lock {
            holder: user(holder),
            acquired_at: now - chrono::Duration::seconds(10),
            expires_at: now + chrono::Duration::seconds(10),
            base_version: VersionNumber::new(base).unwrap(),
        }
    }

    #[test]
    fn lock_refusals_in_order() {
        let now = Utc::now();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            decide_lock(None, &user("bob"), ttl, None, now),
            Err(RepoError::FileNotFound)
        );
        let archived_and_locked = file(Some(lock_of("alice", 1)), FileStatus::Archived);
        assert!(matches!(
            decide_lock(Some(&archived_and_locked), &user("bob"), ttl, None, now),
            Err(RepoError::InvalidTransition(_))
        ));
        let locked = file(Some(lock_of("alice", 1)), FileStatus::Draft);
        assert!(matches!(
            decide_lock(Some(&locked), &user("bob"), ttl, None, now),
            Err(RepoError::FileLocked(l)) if l.holder == user("alice")
        ));
    }

    #[test]
    fn refresh_keeps_acquired_at_and_base_unless_given() {
        let now = Utc::now();
        let held = lock_of("alice", 1);
        let f = file(Some(held.clone()), FileStatus::Draft);
        let ttl = Duration::from_secs(60);
        let refreshed = decide_lock(Some(&f), &user("alice"), ttl, None, now).unwrap();
        assert_eq!(refreshed.acquired_at, held.acquired_at);
        assert_eq!(refreshed.base_version, held.base_version);
        assert_eq!(refreshed.expires_at, now + chrono::Duration::seconds(60));
        let two = VersionNumber::new(2).unwrap();
        let moved = decide_lock(Some(&f), &user("alice"), ttl, Some(two), now).unwrap();
        assert_eq!(moved.base_version, two);
        let fresh = decide_lock(
            Some(&file(None, FileStatus::Draft)),
            &user("bob"),
            ttl,
            None,
            now,
        )
        .unwrap();
        assert_eq!(
            (fresh.acquired_at, fresh.base_version),
            (now, VersionNumber::new(3).unwrap())
        );
    }

    #[test]
    fn release_audit_names_what_happened() {
        let f = file(None, FileStatus::Draft);
        let cmd = |actor: &str, action| ReleaseLock {
            file_id: f.id,
            actor: user(actor),
            force: true,
            audit: AuditDraft {
                id: AuditId::from_uuid(Uuid::new_v4()),
                actor: user(actor),
                action,
                path: f.path.clone(),
                request_id: "r".into(),
                detail: None,
            },
        };
        let held = lock_of("alice", 1);
        assert_eq!(
            release_audit(&held, &cmd("bob", AuditAction::Unlock)).action,
            AuditAction::ForceUnlock
        );
        assert_eq!(
            release_audit(&held, &cmd("alice", AuditAction::ForceUnlock)).action,
            AuditAction::Unlock
        );
    }

    #[test]
    fn reservation_states() {
        assert_eq!(check_reservation(None), Err(RepoError::UploadNotFound));
        assert_eq!(
            check_reservation(Some((None, false))),
            Err(RepoError::UploadNotFound)
        );
        assert_eq!(check_reservation(Some((None, true))), Ok(()));
        let v = Uuid::new_v4();
        assert_eq!(
            check_reservation(Some((Some(v), true))),
            Err(RepoError::UploadAlreadyCompleted {
                version_id: VersionId::from_uuid(v)
            })
        );
    }
}
