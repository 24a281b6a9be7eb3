//! Locks: take, refresh, release, force, list.

use super::{Limit, Need, StorageService, decode_cursor, encode_cursor, files::split_page};
use crate::error::StorageError;
use crate::model::{AuditAction, DirPath, FilePath, Lock, RequestContext};
use crate::ports::{AcquireLock, LockedFile, ReleaseLock};
use crate::rules::{Operation, check_force_reason, ensure_writable};

const LOCKS_CURSOR: &str = "locks";

/// One page of live locks.
#[derive(Debug, Clone)]
pub struct LockPage {
    pub locks: Vec<LockedFile>,
    pub next_cursor: Option<String>,
}

impl StorageService {
    /// `POST /lock`: takes the lock, or refreshes it when the caller holds it.
    ///
    /// # Errors
    /// `invalid_request` (ttl), access errors, `file_not_found`, `file_locked` (with the
    /// holder's lock), `invalid_transition` (archived), faults.
    pub async fn lock(
        &self,
        ctx: &RequestContext,
        path: FilePath,
        ttl_seconds: Option<u64>,
    ) -> Result<LockedFile, StorageError> {
        let ttl = self.settings.lock_ttl.resolve(ttl_seconds)?;
        self.authorize(ctx, &[Need::on(Operation::Lock, &path)])
            .await?;
        let file = self.existing_file(&path).await?;
        ensure_writable(file.status)?;
        let audit = self.audit_draft(ctx, AuditAction::Lock, &path, None);
        let lock = self
            .ports
            .metadata
            .acquire_lock(AcquireLock {
                file_id: file.id,
                holder: ctx.user().clone(),
                ttl,
                audit,
            })
            .await?;
        Ok(LockedFile {
            file_id: file.id,
            path,
            lock,
        })
    }

    /// `POST /unlock`: the holder releases; `force` releases anyone's lock and needs the right
    /// to (`validate` in projects, ownership elsewhere) and a reason, which is audited.
    /// Returns the released lock, or `None` when the file was not locked.
    ///
    /// # Errors
    /// `invalid_request` (force without reason), access errors, `file_not_found`,
    /// `file_locked` (someone else's lock without force), faults.
    pub async fn unlock(
        &self,
        ctx: &RequestContext,
        path: FilePath,
        force: bool,
        reason: Option<String>,
    ) -> Result<Option<Lock>, StorageError> {
        check_force_reason(force, reason.as_deref())?;
        let reason = super::check_text("reason", reason.as_deref())?;
        let op = if force {
            Operation::ForceUnlock
        } else {
            Operation::Unlock
        };
        self.authorize(ctx, &[Need::on(op, &path)]).await?;
        let file = self.existing_file(&path).await?;
        // The store records `force_unlock` when it releases another user's lock.
        let action = if force {
            AuditAction::ForceUnlock
        } else {
            AuditAction::Unlock
        };
        let audit = self.audit_draft(ctx, action, &path, reason);
        Ok(self
            .ports
            .metadata
            .release_lock(ReleaseLock {
                file_id: file.id,
                actor: ctx.user().clone(),
                force,
                audit,
            })
            .await?)
    }

    /// `GET /locks`: live locks under a directory, by path.
    ///
    /// # Errors
    /// Access errors, `invalid_request` (limit, cursor), faults.
    pub async fn list_locks(
        &self,
        ctx: &RequestContext,
        dir: DirPath,
        cursor: Option<&str>,
        limit: Limit,
    ) -> Result<LockPage, StorageError> {
        let after = cursor.map(|c| decode_locks_cursor(&dir, c)).transpose()?;
        self.authorize(
            ctx,
            &[Need {
                op: Operation::ListLocks,
                bucket: dir.bucket(),
                owner: dir.owner(),
                file_id: None,
                path: None,
            }],
        )
        .await?;
        let fetched = self
            .ports
            .metadata
            .list_locks(&dir, after, limit.get() + 1)
            .await?;
        let (locks, more) = split_page(fetched, limit);
        let next_cursor = more
            .then(|| {
                locks
                    .last()
                    .map(|l| encode_cursor(LOCKS_CURSOR, l.path.as_str()))
            })
            .flatten();
        Ok(LockPage { locks, next_cursor })
    }
}

/// A lock listing's cursor holds the path of the last lock sent: a file under the directory.
fn decode_locks_cursor(dir: &DirPath, cursor: &str) -> Result<String, StorageError> {
    let raw = decode_cursor(LOCKS_CURSOR, cursor)?;
    match FilePath::parse(dir.bucket(), &raw) {
        Ok(path) if dir.contains(&path) && path.as_str() == raw => Ok(raw),
        _ => Err(super::pagination::malformed_cursor()),
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::*;
    use crate::model::BucketKind;

    #[test]
    fn locks_cursors_hold_a_path_under_the_directory() {
        let dir = DirPath::parse(BucketKind::Users, "/users/alice/docs/").unwrap();
        let ok = encode_cursor(LOCKS_CURSOR, "/users/alice/docs/a/b.txt");
        assert_eq!(
            decode_locks_cursor(&dir, &ok).unwrap(),
            "/users/alice/docs/a/b.txt"
        );
        for bad in [
            "/users/bob/docs/a.txt",
            "/users/alice/other.txt",
            "/users/alice/docs/",
            "users/alice/docs/a",
            "/users/alice/docs/a\u{0}",
        ] {
            let c = encode_cursor(LOCKS_CURSOR, bad);
            assert!(decode_locks_cursor(&dir, &c).is_err(), "{bad:?}");
        }
    }
}
