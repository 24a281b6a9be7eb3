//! Reading and managing files: list, metadata, tags, versions, audit, archive, delete.

use super::{
    Limit, Need, StorageService, check_tags, decode_cursor, encode_cursor,
    pagination::{decode_time_cursor, encode_time_cursor, malformed_cursor},
};
use crate::error::StorageError;
use crate::model::{
    AuditAction, AuditEvent, AuditId, DirPath, FilePath, FileRecord, MAX_SEGMENT_BYTES,
    RequestContext, Tags, Version, VersionNumber,
};
use crate::ports::{AuditCursor, AuditScope, DeleteFile, ListEntry, SetArchived, SetTags};
use crate::rules::Operation;

/// One page of a directory listing.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub dir: DirPath,
    pub entries: Vec<ListEntry>,
    pub next_cursor: Option<String>,
}

/// One page of a file's history, newest first.
#[derive(Debug, Clone)]
pub struct VersionsPage {
    pub file: FileRecord,
    pub versions: Vec<Version>,
    pub next_cursor: Option<String>,
}

/// One page of the audit trail.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

const LIST_CURSOR: &str = "list";
const AUDIT_CURSOR: &str = "audit";
const VERSIONS_CURSOR: &str = "versions";

pub(crate) fn dir_need(op: Operation, dir: &DirPath) -> Need<'_> {
    Need {
        op,
        bucket: dir.bucket(),
        owner: dir.owner(),
        file_id: None,
        path: None,
    }
}

/// Splits `items` fetched with one extra into the page and whether more follow.
pub(crate) fn split_page<T>(mut items: Vec<T>, limit: Limit) -> (Vec<T>, bool) {
    let more = items.len() > limit.get() as usize;
    items.truncate(limit.get() as usize);
    (items, more)
}

/// Cuts a listing page at `limit` entries, or `limit + 1` when the cut would fall between a
/// file and a sub-directory that share a name.
fn split_list_page(mut items: Vec<ListEntry>, limit: Limit) -> (Vec<ListEntry>, bool) {
    let mut take = limit.get() as usize;
    if let (Some(ListEntry::File(file)), Some(ListEntry::Directory { name })) = (
        take.checked_sub(1).and_then(|i| items.get(i)),
        items.get(take),
    ) && file.path.name() == name
    {
        take += 1;
    }
    let more = items.len() > take;
    items.truncate(take);
    (items, more)
}

impl StorageService {
    /// `GET /list`: the direct children of a directory, sorted by name, one page (of `limit`
    /// entries, one more when a file and a sub-directory of the same name meet at the cut).
    ///
    /// # Errors
    /// Access errors, `invalid_request` (limit, cursor), faults.
    pub async fn list(
        &self,
        ctx: &RequestContext,
        dir: DirPath,
        cursor: Option<&str>,
        limit: Limit,
    ) -> Result<ListPage, StorageError> {
        let after = cursor.map(decode_list_cursor).transpose()?;
        self.authorize(ctx, &[dir_need(Operation::List, &dir)])
            .await?;
        // One extra entry tells whether more follow; a second one lets a page keep together a
        // file and a sub-directory of the same name: the cursor is a name, and the next page
        // starts after both entries of that name.
        let fetched = self
            .ports
            .metadata
            .list_children(&dir, after, limit.get() + 2)
            .await?;
        let (entries, more) = split_list_page(fetched, limit);
        let next_cursor = more
            .then(|| entries.last().map(|e| encode_cursor(LIST_CURSOR, e.name())))
            .flatten();
        Ok(ListPage {
            dir,
            entries,
            next_cursor,
        })
    }

    /// `GET /metadata`.
    ///
    /// # Errors
    /// Access errors, `file_not_found`, faults.
    pub async fn metadata(
        &self,
        ctx: &RequestContext,
        path: FilePath,
    ) -> Result<FileRecord, StorageError> {
        self.authorize(ctx, &[Need::on(Operation::ReadMetadata, &path)])
            .await?;
        self.existing_file(&path).await
    }

    /// `PATCH /metadata`: replaces the tags.
    ///
    /// # Errors
    /// `invalid_request` (tags too large), access errors, `file_not_found`, `file_locked`,
    /// `invalid_transition` (archived), faults.
    pub async fn update_tags(
        &self,
        ctx: &RequestContext,
        path: FilePath,
        tags: Tags,
    ) -> Result<FileRecord, StorageError> {
        check_tags(&tags)?;
        self.authorize(ctx, &[Need::on(Operation::UpdateTags, &path)])
            .await?;
        let file = self.existing_file(&path).await?;
        let audit = self.audit_draft(ctx, AuditAction::UpdateTags, &path, None);
        Ok(self
            .ports
            .metadata
            .set_tags(SetTags {
                file_id: file.id,
                actor: ctx.user().clone(),
                tags,
                audit,
            })
            .await?)
    }

    /// `GET /versions`: one page of the history, newest first. The cursor holds the number of
    /// the page's last version; the next page starts below it, so versions committed while a
    /// client pages sort above every cursor and are not repeated.
    ///
    /// # Errors
    /// `invalid_request` (cursor), access errors, `file_not_found`, faults.
    pub async fn versions(
        &self,
        ctx: &RequestContext,
        path: FilePath,
        cursor: Option<&str>,
        limit: Limit,
    ) -> Result<VersionsPage, StorageError> {
        let before = cursor.map(decode_versions_cursor).transpose()?;
        self.authorize(ctx, &[Need::on(Operation::ListVersions, &path)])
            .await?;
        let file = self.existing_file(&path).await?;
        let fetched = self
            .ports
            .metadata
            .list_versions(file.id, before, limit.get() + 1)
            .await?;
        let (versions, more) = split_page(fetched, limit);
        let next_cursor = more
            .then(|| versions.last().map(encode_versions_cursor))
            .flatten();
        Ok(VersionsPage {
            file,
            versions,
            next_cursor,
        })
    }

    /// `GET /audit`: the events of a file or a directory's subtree, newest first. Works for
    /// deleted files too (the trail outlives them).
    ///
    /// # Errors
    /// Access errors, `invalid_request` (limit, cursor), faults.
    pub async fn audit(
        &self,
        ctx: &RequestContext,
        scope: AuditScope,
        cursor: Option<&str>,
        limit: Limit,
    ) -> Result<AuditPage, StorageError> {
        let before = cursor.map(decode_audit_cursor).transpose()?;
        let need = match &scope {
            AuditScope::File(path) => Need::on(Operation::Audit, path),
            AuditScope::Directory(dir) => dir_need(Operation::Audit, dir),
        };
        self.authorize(ctx, &[need]).await?;
        let fetched = self
            .ports
            .metadata
            .list_audit(&scope, before, limit.get() + 1)
            .await?;
        let (events, more) = split_page(fetched, limit);
        let next_cursor = more
            .then(|| events.last().map(encode_audit_cursor))
            .flatten();
        Ok(AuditPage {
            events,
            next_cursor,
        })
    }

    /// `POST /archive` (`archived: true`) and `POST /unarchive`: an archived file is kept
    /// read-only.
    ///
    /// # Errors
    /// Access errors (`validate`), `file_not_found`, `invalid_transition`, `file_locked`,
    /// faults.
    pub async fn set_archived(
        &self,
        ctx: &RequestContext,
        path: FilePath,
        archived: bool,
    ) -> Result<FileRecord, StorageError> {
        self.authorize(ctx, &[Need::on(Operation::Archive, &path)])
            .await?;
        let file = self.existing_file(&path).await?;
        let action = if archived {
            AuditAction::Archive
        } else {
            AuditAction::Unarchive
        };
        let audit = self.audit_draft(ctx, action, &path, None);
        Ok(self
            .ports
            .metadata
            .set_archived(SetArchived {
                file_id: file.id,
                actor: ctx.user().clone(),
                archived,
                audit,
            })
            .await?)
    }

    /// `DELETE /delete`: removes the file, its versions and their objects. Metadata goes first,
    /// in one unit of work that queues the objects; they are then deleted, and any the store
    /// fails to delete stay queued for the janitor. The audit trail stays.
    ///
    /// # Errors
    /// Access errors, `file_not_found`, `file_locked`, database faults (an object-store fault
    /// does not fail the delete).
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        path: FilePath,
    ) -> Result<FileRecord, StorageError> {
        self.authorize(ctx, &[Need::on(Operation::Delete, &path)])
            .await?;
        let file = self.existing_file(&path).await?;
        if let Some(lock) = file.lock_held_by_other(ctx.user()) {
            return Err(StorageError::FileLocked(Box::new(lock.clone())));
        }
        let audit = self.audit_draft(ctx, AuditAction::Delete, &path, None);
        let queued = self
            .ports
            .metadata
            .delete_file(DeleteFile {
                file_id: file.id,
                actor: ctx.user().clone(),
                audit,
            })
            .await?;
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
        Ok(file)
    }
}

/// A listing's cursor holds the name of the last entry sent: one path segment.
fn decode_list_cursor(cursor: &str) -> Result<String, StorageError> {
    let name = decode_cursor(LIST_CURSOR, cursor)?;
    if name.is_empty() || name.len() > MAX_SEGMENT_BYTES || name.contains('/') {
        return Err(malformed_cursor());
    }
    Ok(name)
}

fn encode_versions_cursor(version: &Version) -> String {
    encode_cursor(VERSIONS_CURSOR, &version.number.to_string())
}

/// A versions cursor: a version number (1 to [`VersionNumber::MAX`], decimal digits only).
fn decode_versions_cursor(cursor: &str) -> Result<VersionNumber, StorageError> {
    let raw = decode_cursor(VERSIONS_CURSOR, cursor)?;
    if raw.is_empty() || raw.len() > 10 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed_cursor());
    }
    raw.parse::<u32>()
        .ok()
        .and_then(|n| VersionNumber::new(n).ok())
        .ok_or_else(malformed_cursor)
}

fn encode_audit_cursor(event: &AuditEvent) -> String {
    encode_time_cursor(AUDIT_CURSOR, event.at, event.id)
}

fn decode_audit_cursor(cursor: &str) -> Result<AuditCursor, StorageError> {
    let (at, id) = decode_time_cursor(AUDIT_CURSOR, cursor, AuditId::parse)?;
    Ok(AuditCursor { at, id })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    #[test]
    fn versions_cursor_round_trip_and_refusals() {
        let v = VersionNumber::new(42).unwrap();
        let c = encode_cursor(VERSIONS_CURSOR, &v.to_string());
        assert_eq!(decode_versions_cursor(&c).unwrap(), v);
        for bad in ["0", "", "-1", "+3", " 3", "2147483648", "99999999999", "3a"] {
            let c = encode_cursor(VERSIONS_CURSOR, bad);
            assert!(decode_versions_cursor(&c).is_err(), "{bad:?}");
        }
        // A cursor of another listing.
        assert!(decode_versions_cursor(&encode_cursor(LIST_CURSOR, "3")).is_err());
        assert!(decode_versions_cursor("!!").is_err());
    }

    #[test]
    fn audit_cursor_round_trip() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = AuditId::from_uuid(uuid::Uuid::now_v7());
        let raw = encode_cursor(AUDIT_CURSOR, &format!("{}|{}", at.to_rfc3339(), id));
        let back = decode_audit_cursor(&raw).unwrap();
        assert_eq!(back, AuditCursor { at, id });
        assert!(decode_audit_cursor(&encode_cursor(AUDIT_CURSOR, "nope")).is_err());
        assert!(decode_audit_cursor(&encode_cursor(LIST_CURSOR, "x|y")).is_err());
        let far = format!("+10000-01-01T00:00:00Z|{id}");
        assert!(decode_audit_cursor(&encode_cursor(AUDIT_CURSOR, &far)).is_err());
        let early = format!("1969-12-31T23:59:59Z|{id}");
        assert!(decode_audit_cursor(&encode_cursor(AUDIT_CURSOR, &early)).is_err());
    }

    #[test]
    fn list_cursors_hold_one_name() {
        assert_eq!(
            decode_list_cursor(&encode_cursor(LIST_CURSOR, "a.txt")).unwrap(),
            "a.txt"
        );
        for bad in ["", "a/b", &"n".repeat(MAX_SEGMENT_BYTES + 1), "a\u{0}"] {
            assert!(
                decode_list_cursor(&encode_cursor(LIST_CURSOR, bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pages_split_on_the_extra_item() {
        let limit = Limit::new(Some(2)).unwrap();
        assert_eq!(split_page(vec![1, 2, 3], limit), (vec![1, 2], true));
        assert_eq!(split_page(vec![1, 2], limit), (vec![1, 2], false));
        assert_eq!(split_page(Vec::<u8>::new(), limit), (vec![], false));
    }
}
