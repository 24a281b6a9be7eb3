//! The trash (issue 16): `POST /trash`, `GET /trash`, `POST /trash/restore`, `DELETE /trash`,
//! and the janitor's purge after `TRASH_RETENTION_DAYS`.

use chrono::{DateTime, Utc};

use super::files::{dir_need, split_page};
use super::pagination::{decode_time_cursor, encode_time_cursor};
use super::{Limit, Need, StorageService};
use crate::error::StorageError;
use crate::model::PendingDeletion;
use crate::model::{
    AuditAction, AuditDraft, AuditId, DirPath, FilePath, FileRecord, OnConflict, RequestContext,
    TrashEntry, TrashId, UserId,
};
use crate::ports::{PurgeTrash, RepoError, RestoreTrash, TrashCursor, TrashFile};
use crate::rules::Operation;
use crate::rules::trash::purge_at;

const TRASH_CURSOR: &str = "trash";
/// Entries the janitor purges per batch, and batches per pass.
const PURGE_BATCH: u32 = 100;
const PURGE_BATCHES: usize = 100;
/// The actor of the janitor's audit events (trash purges, version prunes; user ids come from
/// tokens, and an event by this actor is documented as the janitor's), and the request id of
/// its purges.
pub const JANITOR_ACTOR: &str = "janitor";

/// A page of the trash (`GET /trash`).
#[derive(Debug, Clone, PartialEq)]
pub struct TrashPage {
    pub dir: DirPath,
    pub entries: Vec<TrashItem>,
    pub next_cursor: Option<String>,
}

/// A trash entry and when the janitor purges it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrashItem {
    pub entry: TrashEntry,
    pub purge_at: DateTime<Utc>,
}

/// `POST /trash/restore`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrashRestoreRequest {
    pub trash_id: TrashId,
    /// A path in the entry's bucket; `None`: the path the file had.
    pub target_path: Option<String>,
    pub on_conflict: OnConflict,
}

impl StorageService {
    fn trash_item(&self, entry: TrashEntry) -> TrashItem {
        let purge_at = purge_at(entry.trashed_at, self.settings.trash_retention);
        TrashItem { entry, purge_at }
    }

    /// `POST /trash`: moves the file with every version, its tags and its audit trail out of
    /// the namespace; its path is free at once.
    ///
    /// # Errors
    /// Access errors, `file_not_found`, `file_locked` (someone else's lock), faults.
    pub async fn trash(
        &self,
        ctx: &RequestContext,
        path: FilePath,
    ) -> Result<TrashItem, StorageError> {
        self.authorize(ctx, &[Need::on(Operation::Trash, &path)])
            .await?;
        let file = self.existing_file(&path).await?;
        crate::rules::trash::check_can_trash(&file, ctx.user())?;
        let trash_id = TrashId::from_uuid(self.ports.ids.new_id());
        let entry = self
            .ports
            .metadata
            .trash_file(TrashFile {
                file_id: file.id,
                trash_id,
                actor: ctx.user().clone(),
                audit: self.audit_draft(
                    ctx,
                    AuditAction::Trash,
                    &path,
                    Some(format!("trash_id {trash_id}")),
                ),
            })
            .await?;
        Ok(self.trash_item(entry))
    }

    /// `GET /trash`: the entries whose path lies under `dir`, newest first.
    ///
    /// # Errors
    /// `invalid_request` (cursor), access errors, faults.
    pub async fn list_trash(
        &self,
        ctx: &RequestContext,
        dir: DirPath,
        cursor: Option<&str>,
        limit: Limit,
    ) -> Result<TrashPage, StorageError> {
        let after = cursor.map(decode_trash_cursor).transpose()?;
        self.authorize(ctx, &[dir_need(Operation::ListTrash, &dir)])
            .await?;
        let fetched = self
            .ports
            .metadata
            .list_trash(&dir, after, limit.get() + 1)
            .await?;
        let (entries, more) = split_page(fetched, limit);
        let next_cursor = more
            .then(|| {
                entries
                    .last()
                    .map(|e| encode_time_cursor(TRASH_CURSOR, e.trashed_at, e.trash_id))
            })
            .flatten();
        Ok(TrashPage {
            dir,
            entries: entries.into_iter().map(|e| self.trash_item(e)).collect(),
            next_cursor,
        })
    }

    /// The entry, once the caller may do `op` on its path; `file_not_found` when there is no
    /// such entry, or the caller may not even read its path (nothing is learnt of it).
    async fn trash_entry_for(
        &self,
        ctx: &RequestContext,
        trash_id: TrashId,
        op: Operation,
    ) -> Result<TrashEntry, StorageError> {
        let entry = self
            .ports
            .metadata
            .find_trash(trash_id)
            .await?
            .ok_or(StorageError::FileNotFound)?;
        if let Err(refused) = self.authorize(ctx, &[Need::on(op, &entry.file.path)]).await {
            if !matches!(refused, StorageError::AccessDenied(_)) {
                return Err(refused);
            }
            let parent = entry.file.path.parent();
            let read = dir_need(Operation::ListTrash, &parent);
            return Err(match self.check_access(ctx, &[read]).await {
                Ok(()) => refused,
                Err(_) => StorageError::FileNotFound,
            });
        }
        Ok(entry)
    }

    /// `POST /trash/restore`: brings the entry's file back with every version, at its path or
    /// `target_path` (same bucket and owner), as `on_conflict` says when that path is taken.
    ///
    /// # Errors
    /// `invalid_request`/`invalid_path` (target), `file_not_found` (no such entry), access
    /// errors (on the entry's path and the target), `version_conflict` (`fail`), `file_locked`
    /// (`replace` of a file someone else locked), faults.
    pub async fn restore_from_trash(
        &self,
        ctx: &RequestContext,
        req: TrashRestoreRequest,
    ) -> Result<FileRecord, StorageError> {
        let entry = self
            .trash_entry_for(ctx, req.trash_id, Operation::TrashRestore)
            .await?;
        let original = entry.file.path.clone();
        let target = match req.target_path.as_deref() {
            None => original.clone(),
            Some(raw) => {
                let target = FilePath::parse(original.bucket(), raw)?;
                if target.owner() != original.owner() {
                    return Err(StorageError::invalid(
                        "target_path must lie in the same bucket and owner as the trashed file",
                    ));
                }
                target
            }
        };
        let mut needs = vec![Need::on(Operation::TrashRestore, &target)];
        if req.on_conflict == OnConflict::Replace {
            needs.push(Need::on(Operation::Trash, &target));
        }
        self.authorize(ctx, &needs).await?;
        let replaced_trash_id = TrashId::from_uuid(self.ports.ids.new_id());
        // The occupant's trashing (`replace`) happens first: its event gets the lower id, so
        // that the trail, newest first, shows the restore above it.
        let replace_audit = self.audit_draft(
            ctx,
            AuditAction::Trash,
            &target,
            Some(format!(
                "trash_id {replaced_trash_id} (replaced by a restore of trash_id {})",
                req.trash_id
            )),
        );
        let audit = self.audit_draft(
            ctx,
            AuditAction::TrashRestore,
            &target,
            Some(format!(
                "trash_id {} from {} (on_conflict {})",
                req.trash_id,
                original,
                req.on_conflict.as_str()
            )),
        );
        let file = self
            .ports
            .metadata
            .restore_trash(RestoreTrash {
                trash_id: req.trash_id,
                target: Some(target.clone()),
                on_conflict: req.on_conflict,
                actor: ctx.user().clone(),
                replaced_trash_id,
                audit,
                replace_audit,
            })
            .await?;
        Ok(file)
    }

    /// `DELETE /trash`: purges the entry now; its objects go through the deletion queue.
    ///
    /// # Errors
    /// `file_not_found` (no such entry), access errors, faults.
    pub async fn purge_trash(
        &self,
        ctx: &RequestContext,
        trash_id: TrashId,
    ) -> Result<TrashItem, StorageError> {
        let entry = self
            .trash_entry_for(ctx, trash_id, Operation::Purge)
            .await?;
        let queued = self
            .ports
            .metadata
            .purge_trash(PurgeTrash {
                trash_id,
                due_after: None,
                audit: self.audit_draft(
                    ctx,
                    AuditAction::Purge,
                    &entry.file.path,
                    Some(format!("trash_id {trash_id}")),
                ),
            })
            .await?;
        self.delete_queued(queued).await;
        Ok(self.trash_item(entry))
    }

    /// The janitor's step: purges the entries older than `TRASH_RETENTION_DAYS`, each in a
    /// unit of work that checks it is still due (several janitors purge each entry once).
    /// Their objects are queued; the janitor's deletion step removes them. Returns how many
    /// entries were purged.
    ///
    /// # Errors
    /// Database faults.
    pub(crate) async fn purge_expired_trash(&self) -> Result<u64, StorageError> {
        let retention = self.settings.trash_retention;
        let mut purged = 0;
        for _ in 0..PURGE_BATCHES {
            let due = self
                .ports
                .metadata
                .due_trash(retention, PURGE_BATCH)
                .await?;
            let full = due.len() == PURGE_BATCH as usize;
            let mut progressed = false;
            for entry in due {
                let audit = AuditDraft {
                    id: AuditId::from_uuid(self.ports.ids.new_id()),
                    actor: janitor_actor()?,
                    action: AuditAction::Purge,
                    path: entry.file.path.clone(),
                    request_id: JANITOR_ACTOR.to_owned(),
                    detail: Some(format!(
                        "trash_id {} (trashed at {}, retention passed)",
                        entry.trash_id,
                        entry.trashed_at.to_rfc3339()
                    )),
                };
                match self
                    .ports
                    .metadata
                    .purge_trash(PurgeTrash {
                        trash_id: entry.trash_id,
                        due_after: Some(retention),
                        audit,
                    })
                    .await
                {
                    Ok(_) => {
                        purged += 1;
                        progressed = true;
                    }
                    // Another janitor purged it, or a restore took it back, meanwhile.
                    Err(RepoError::FileNotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !full || !progressed {
                break;
            }
        }
        Ok(purged)
    }

    /// Deletes queued objects now, best effort: what fails stays queued for the janitor.
    async fn delete_queued(&self, queued: Vec<PendingDeletion>) {
        for pending in queued {
            if self
                .ports
                .blobs
                .delete(pending.bucket, &pending.object_key)
                .await
                .is_ok()
            {
                let _ = self.ports.metadata.forget_deletion(pending.id).await;
            }
        }
    }
}

fn janitor_actor() -> Result<UserId, StorageError> {
    UserId::new(JANITOR_ACTOR)
}

fn decode_trash_cursor(cursor: &str) -> Result<TrashCursor, StorageError> {
    let (trashed_at, trash_id) = decode_time_cursor(TRASH_CURSOR, cursor, TrashId::parse)?;
    Ok(TrashCursor {
        trashed_at,
        trash_id,
    })
}
