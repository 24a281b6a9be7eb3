//! Units of work: each runs in one `BEGIN IMMEDIATE` transaction (see
//! `SqliteMetadataStore::run`), so it holds SQLite's write lock from its first statement: the
//! rows its decision reads cannot change before it writes, and no other unit of work runs
//! meanwhile. Its audit event is written in the same transaction, at the transaction's `now`.
//! Each reads the file it decides on with its lock row as stored ([`lock_file`]) and asks the
//! domain's decision functions (`storage_domain::rules::store`), as the PostgreSQL adapter does.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel::{OptionalExtension, QueryableByName, RunQueryDsl};
use storage_diesel_common::error::{TxError, corrupt};
use storage_diesel_common::rows::{
    DeletionRow, FILE_COLUMNS, FileRow, FileState, STORED_FILE_FROM, StatusRow, sql_limit,
    sql_number, sql_size, tags_json,
};
use storage_diesel_common::sql_types::{DbJson, DbTime, DbUuid};
use storage_domain::model::{
    AuditDraft, AuditEvent, AuditOutcome, BucketKind, CheckoutTicket, DeletionId, FileId, FilePath,
    FileRecord, FileStatus, Lock, ObjectKey, PendingDeletion, Tags, UploadId, UploadReservation,
    Version, VersionId, VersionNumber, VersionStatus,
};
use storage_domain::ports::{
    AcquireLock, Checkout, DeleteFile, NewVersion, ReleaseLock, RepoError, ReviewTransition,
    SetArchived, SetTags, WriteMode, file_status_following,
};
use storage_domain::rules::store::{
    LockAfterVersion, UnlockDecision, check_new_file, check_not_locked_by_other, check_reservation,
    check_set_archived, check_set_tags, check_write, decide_lock, decide_unlock, file_not_found,
    lock_after_version, next_number, not_in_status, release_audit, ticket_after_commit,
};
use uuid::Uuid;

use super::reads::{file_by_id, version_by_id};
use super::{Conn, shifted};

/// Appends a completed audit event at the transaction's time.
fn audit(
    c: &mut Conn,
    now: DateTime<Utc>,
    draft: AuditDraft,
    file_id: Option<FileId>,
    version: Option<VersionNumber>,
) -> Result<(), TxError> {
    insert_audit(
        c,
        &draft.complete(file_id, version, AuditOutcome::Success, now),
    )
}

fn insert_audit(c: &mut Conn, event: &AuditEvent) -> Result<(), TxError> {
    let version = event.version.map(sql_number).transpose()?;
    diesel::sql_query(
        "INSERT INTO audit_events \
         (id, actor, action, bucket, path, file_id, version, outcome, request_id, detail, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind::<DbUuid, _>(event.id.as_uuid())
    .bind::<Text, _>(event.actor.as_str())
    .bind::<Text, _>(event.action.as_str())
    .bind::<Text, _>(event.path.bucket().as_str())
    .bind::<Text, _>(event.path.as_str())
    .bind::<Nullable<DbUuid>, _>(event.file_id.map(|f| f.as_uuid()))
    .bind::<Nullable<Integer>, _>(version)
    .bind::<Text, _>(event.outcome.as_str())
    .bind::<Text, _>(&event.request_id)
    .bind::<Nullable<Text>, _>(event.detail.as_deref())
    .bind::<DbTime, _>(event.at)
    .execute(c)?;
    Ok(())
}

/// The file with this id after a change (with its live lock).
fn reread(c: &mut Conn, now: DateTime<Utc>, id: FileId) -> Result<FileRecord, TxError> {
    file_by_id(c, now, id)?.ok_or_else(|| {
        TxError::Repo(RepoError::Internal(
            "file vanished in its transaction".into(),
        ))
    })
}

/// Which file a unit of work reads.
#[derive(Debug, Clone, Copy)]
enum FileKey<'a> {
    Id(FileId),
    Path(&'a FilePath),
}

/// The file, its lock row as stored (live or expired) and the transaction's time. Under
/// SQLite's write lock nothing changes between this read and the unit of work's writes.
fn lock_file(
    c: &mut Conn,
    now: DateTime<Utc>,
    key: FileKey<'_>,
) -> Result<Option<FileState>, TxError> {
    let row: Option<FileRow> = match key {
        FileKey::Id(id) => diesel::sql_query(format!(
            "SELECT {FILE_COLUMNS} FROM {STORED_FILE_FROM} WHERE f.id = ?1"
        ))
        .bind::<DbUuid, _>(id.as_uuid())
        .get_result(c)
        .optional()?,
        FileKey::Path(path) => diesel::sql_query(format!(
            "SELECT {FILE_COLUMNS} FROM {STORED_FILE_FROM} WHERE f.bucket = ?1 AND f.path = ?2"
        ))
        .bind::<Text, _>(path.bucket().as_str())
        .bind::<Text, _>(path.as_str())
        .get_result(c)
        .optional()?,
    };
    Ok(row.map(|r| r.into_state(now)).transpose()?)
}

/// Stores `lock` as the file's lock row (the decision was taken by the caller).
fn store_lock(c: &mut Conn, file: &FileRecord, lock: &Lock) -> Result<(), TxError> {
    diesel::sql_query(
        "INSERT INTO locks (file_id, bucket, path, holder, acquired_at, expires_at, \
                            base_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (file_id) DO UPDATE SET \
             holder = excluded.holder, acquired_at = excluded.acquired_at, \
             expires_at = excluded.expires_at, base_version = excluded.base_version",
    )
    .bind::<DbUuid, _>(file.id.as_uuid())
    .bind::<Text, _>(file.bucket().as_str())
    .bind::<Text, _>(file.path.as_str())
    .bind::<Text, _>(lock.holder.as_str())
    .bind::<DbTime, _>(lock.acquired_at)
    .bind::<DbTime, _>(lock.expires_at)
    .bind::<Integer, _>(sql_number(lock.base_version)?)
    .execute(c)?;
    Ok(())
}

fn delete_lock(c: &mut Conn, file_id: FileId) -> Result<(), TxError> {
    diesel::sql_query("DELETE FROM locks WHERE file_id = ?1")
        .bind::<DbUuid, _>(file_id.as_uuid())
        .execute(c)?;
    Ok(())
}

/// Records a file's checkout ticket.
fn set_ticket(c: &mut Conn, file_id: FileId, ticket: &CheckoutTicket) -> Result<(), TxError> {
    diesel::sql_query(
        "UPDATE files SET checkout_file_id = ?2, checkout_path = ?3, checkout_version = ?4 \
         WHERE id = ?1",
    )
    .bind::<DbUuid, _>(file_id.as_uuid())
    .bind::<DbUuid, _>(ticket.file_id.as_uuid())
    .bind::<Text, _>(ticket.path.as_str())
    .bind::<Integer, _>(sql_number(ticket.version)?)
    .execute(c)?;
    Ok(())
}

pub(crate) fn acquire_lock(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: AcquireLock,
) -> Result<Lock, TxError> {
    let state = lock_file(c, now, FileKey::Id(cmd.file_id))?.ok_or_else(file_not_found)?;
    let lock = decide_lock(
        &state.file,
        state.stored_lock.as_ref(),
        &cmd.holder,
        cmd.ttl,
        None,
        now,
    )?;
    store_lock(c, &state.file, &lock)?;
    audit(
        c,
        now,
        cmd.audit,
        Some(cmd.file_id),
        Some(lock.base_version),
    )?;
    Ok(lock)
}

pub(crate) fn release_lock(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: ReleaseLock,
) -> Result<Option<Lock>, TxError> {
    let state = lock_file(c, now, FileKey::Id(cmd.file_id))?.ok_or_else(file_not_found)?;
    match decide_unlock(state.stored_lock.as_ref(), &cmd, now)? {
        UnlockDecision::NotLocked => Ok(None),
        UnlockDecision::Release(lock) => {
            delete_lock(c, cmd.file_id)?;
            let draft = release_audit(&lock, &cmd);
            audit(c, now, draft, Some(cmd.file_id), Some(lock.base_version))?;
            Ok(Some(lock))
        }
    }
}

#[derive(Debug, QueryableByName)]
struct ReservationCheck {
    #[diesel(sql_type = Nullable<DbUuid>)]
    completed_version: Option<Uuid>,
    #[diesel(sql_type = DbTime)]
    expires_at: DateTime<Utc>,
}

/// Checks the reservation is open and unexpired at `now`.
fn reservation_open(c: &mut Conn, now: DateTime<Utc>, id: UploadId) -> Result<(), TxError> {
    let row: Option<ReservationCheck> = diesel::sql_query(
        "SELECT completed_version, expires_at FROM upload_reservations WHERE id = ?1",
    )
    .bind::<DbUuid, _>(id.as_uuid())
    .get_result(c)
    .optional()?;
    Ok(check_reservation(row.map(|r| {
        (
            r.completed_version.map(VersionId::from_uuid),
            r.expires_at > now,
        )
    }))?)
}

/// Inserts the file of a first version.
fn insert_new_file(c: &mut Conn, now: DateTime<Utc>, cmd: &NewVersion) -> Result<(), TxError> {
    let empty = Tags::new();
    diesel::sql_query(
        "INSERT INTO files (id, bucket, path, created_by, version, validated_version, status, \
                            tags, size, content_type, sha256, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 1, NULL, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    )
    .bind::<DbUuid, _>(cmd.new_file_id.as_uuid())
    .bind::<Text, _>(cmd.path.bucket().as_str())
    .bind::<Text, _>(cmd.path.as_str())
    .bind::<Text, _>(cmd.author.as_str())
    .bind::<Text, _>(file_status_following(cmd.status).as_str())
    .bind::<DbJson, _>(tags_json(cmd.tags.as_ref().unwrap_or(&empty)))
    .bind::<BigInt, _>(sql_size(cmd.size)?)
    .bind::<Text, _>(&cmd.content_type)
    .bind::<Text, _>(&cmd.sha256)
    .bind::<DbTime, _>(now)
    .execute(c)?;
    Ok(())
}

pub(crate) fn commit_version(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: NewVersion,
) -> Result<(FileRecord, Version), TxError> {
    reservation_open(c, now, cmd.reservation)?;
    if let Some(upload) = cmd.completes {
        reservation_open(c, now, upload)?;
    }
    let source = match cmd.mode {
        WriteMode::Commit { source, .. } => {
            Some(lock_file(c, now, FileKey::Id(source))?.ok_or_else(file_not_found)?)
        }
        WriteMode::Upsert { .. } => None,
    };
    let ticket = source.as_ref().and_then(|s| s.file.checkout.as_ref());

    // The target file; created when the path is free (nobody can take the path meanwhile: the
    // transaction holds the write lock).
    let existing = lock_file(c, now, FileKey::Path(&cmd.path))?;
    let (file_id, number) = match &existing {
        Some(state) => {
            check_write(&state.file, &cmd, ticket)?;
            (state.file.id, next_number(state.file.version)?)
        }
        None => {
            check_new_file(&cmd.mode)?;
            insert_new_file(c, now, &cmd)?;
            (cmd.new_file_id, VersionNumber::FIRST)
        }
    };
    let sql_n = sql_number(number)?;

    diesel::sql_query(
        "INSERT INTO versions (id, file_id, number, size, sha256, content_type, author, \
                               message, status, created_at, object_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind::<DbUuid, _>(cmd.version_id.as_uuid())
    .bind::<DbUuid, _>(file_id.as_uuid())
    .bind::<Integer, _>(sql_n)
    .bind::<BigInt, _>(sql_size(cmd.size)?)
    .bind::<Text, _>(&cmd.sha256)
    .bind::<Text, _>(&cmd.content_type)
    .bind::<Text, _>(cmd.author.as_str())
    .bind::<Nullable<Text>, _>(cmd.message.as_deref())
    .bind::<Text, _>(cmd.status.as_str())
    .bind::<DbTime, _>(now)
    .bind::<Text, _>(cmd.object_key.as_str())
    .execute(c)?;

    if let Some(state) = &existing {
        diesel::sql_query(
            "UPDATE files SET version = ?2, status = ?3, size = ?4, content_type = ?5, \
                 sha256 = ?6, tags = COALESCE(?7, tags), updated_at = ?8 \
             WHERE id = ?1",
        )
        .bind::<DbUuid, _>(file_id.as_uuid())
        .bind::<Integer, _>(sql_n)
        .bind::<Text, _>(file_status_following(cmd.status).as_str())
        .bind::<BigInt, _>(sql_size(cmd.size)?)
        .bind::<Text, _>(&cmd.content_type)
        .bind::<Text, _>(&cmd.sha256)
        .bind::<Nullable<DbJson>, _>(cmd.tags.as_ref().map(tags_json))
        .bind::<DbTime, _>(now)
        .execute(c)?;

        match lock_after_version(state.stored_lock.as_ref(), &cmd.author, cmd.mode, number) {
            LockAfterVersion::Unchanged => {}
            LockAfterVersion::Released => delete_lock(c, file_id)?,
            LockAfterVersion::Rebased(base) => {
                diesel::sql_query("UPDATE locks SET base_version = ?2 WHERE file_id = ?1")
                    .bind::<DbUuid, _>(file_id.as_uuid())
                    .bind::<Integer, _>(sql_number(base)?)
                    .execute(c)?;
            }
        }
    }
    if let Some(source) = &source
        && let Some(moved) = ticket_after_commit(ticket, file_id, number)
    {
        set_ticket(c, source.file.id, &moved)?;
    }

    complete_reservation(c, now, cmd.reservation, cmd.version_id)?;
    if let Some(upload) = cmd.completes {
        complete_reservation(c, now, upload, cmd.version_id)?;
        // Its URL can write the staging object until the reservation expires.
        diesel::sql_query(
            "INSERT INTO pending_deletions (id, bucket, object_key, attempts, leased_until, \
                                            created_at) \
             SELECT ?2, bucket, object_key, 0, expires_at, ?3 \
             FROM upload_reservations WHERE id = ?1",
        )
        .bind::<DbUuid, _>(upload.as_uuid())
        .bind::<DbUuid, _>(Uuid::new_v4())
        .bind::<DbTime, _>(now)
        .execute(c)?;
    }

    if let Some(Checkout {
        file_id: other,
        path,
        base_version,
        ttl,
        audit: draft,
    }) = cmd.checkout
    {
        let state = lock_file(c, now, FileKey::Id(other))?.ok_or_else(file_not_found)?;
        let lock = decide_lock(
            &state.file,
            state.stored_lock.as_ref(),
            &cmd.author,
            ttl,
            Some(base_version),
            now,
        )?;
        store_lock(c, &state.file, &lock)?;
        let ticket = CheckoutTicket {
            file_id: other,
            path,
            version: base_version,
        };
        set_ticket(c, file_id, &ticket)?;
        audit(c, now, draft, Some(other), Some(base_version))?;
    }
    audit(c, now, cmd.audit, Some(file_id), Some(number))?;

    let file = reread(c, now, file_id)?;
    let version = version_by_id(c, cmd.version_id)?
        .ok_or_else(|| TxError::Repo(RepoError::Internal("version vanished".into())))?;
    Ok((file, version))
}

/// Marks a reservation completed as `version`.
fn complete_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    id: UploadId,
    version: VersionId,
) -> Result<(), TxError> {
    diesel::sql_query(
        "UPDATE upload_reservations SET completed_version = ?2, completed_at = ?3 WHERE id = ?1",
    )
    .bind::<DbUuid, _>(id.as_uuid())
    .bind::<DbUuid, _>(version.as_uuid())
    .bind::<DbTime, _>(now)
    .execute(c)?;
    Ok(())
}

#[derive(Debug, QueryableByName)]
struct FileOfVersion {
    #[diesel(sql_type = DbUuid)]
    file_id: Uuid,
}

pub(crate) fn review_version(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: ReviewTransition,
) -> Result<(FileRecord, Version), TxError> {
    let version_not_found = || TxError::Repo(RepoError::VersionNotFound);
    let owner: FileOfVersion = diesel::sql_query("SELECT file_id FROM versions WHERE id = ?1")
        .bind::<DbUuid, _>(cmd.version_id.as_uuid())
        .get_result(c)
        .optional()?
        .ok_or_else(version_not_found)?;
    let file_id = FileId::from_uuid(owner.file_id);

    // The decision: a conditional update, alone under the write lock.
    let changed = if let Some(reviewer) = &cmd.reviewer {
        diesel::sql_query(
            "UPDATE versions SET status = ?3, reviewed_by = ?4, reviewed_at = ?5, \
                 review_comment = ?6 \
             WHERE id = ?1 AND status = ?2",
        )
        .bind::<DbUuid, _>(cmd.version_id.as_uuid())
        .bind::<Text, _>(cmd.from.as_str())
        .bind::<Text, _>(cmd.to.as_str())
        .bind::<Text, _>(reviewer.as_str())
        .bind::<DbTime, _>(now)
        .bind::<Nullable<Text>, _>(cmd.comment.as_deref())
        .execute(c)?
    } else {
        diesel::sql_query("UPDATE versions SET status = ?3 WHERE id = ?1 AND status = ?2")
            .bind::<DbUuid, _>(cmd.version_id.as_uuid())
            .bind::<Text, _>(cmd.from.as_str())
            .bind::<Text, _>(cmd.to.as_str())
            .execute(c)?
    };
    if changed == 0 {
        return Err(not_in_status(cmd.from).into());
    }
    let version = version_by_id(c, cmd.version_id)?.ok_or_else(version_not_found)?;
    let n = sql_number(version.number)?;

    diesel::sql_query(
        "UPDATE files SET \
             validated_version = CASE WHEN ?3 AND (validated_version IS NULL \
                                                   OR validated_version < ?2) \
                                      THEN ?2 ELSE validated_version END, \
             status = CASE WHEN version = ?2 AND status <> 'archived' THEN ?4 \
                           ELSE status END, \
             updated_at = ?5 \
         WHERE id = ?1",
    )
    .bind::<DbUuid, _>(file_id.as_uuid())
    .bind::<Integer, _>(n)
    .bind::<Bool, _>(cmd.to == VersionStatus::Validated)
    .bind::<Text, _>(file_status_following(cmd.to).as_str())
    .bind::<DbTime, _>(now)
    .execute(c)?;
    audit(c, now, cmd.audit, Some(file_id), Some(version.number))?;
    Ok((reread(c, now, file_id)?, version))
}

pub(crate) fn set_tags(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: SetTags,
) -> Result<FileRecord, TxError> {
    let file = lock_file(c, now, FileKey::Id(cmd.file_id))?
        .ok_or_else(file_not_found)?
        .file;
    check_set_tags(&file, &cmd.actor)?;
    diesel::sql_query("UPDATE files SET tags = ?2, updated_at = ?3 WHERE id = ?1")
        .bind::<DbUuid, _>(cmd.file_id.as_uuid())
        .bind::<DbJson, _>(tags_json(&cmd.tags))
        .bind::<DbTime, _>(now)
        .execute(c)?;
    audit(c, now, cmd.audit, Some(cmd.file_id), Some(file.version))?;
    reread(c, now, cmd.file_id)
}

pub(crate) fn set_archived(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: SetArchived,
) -> Result<FileRecord, TxError> {
    let file = lock_file(c, now, FileKey::Id(cmd.file_id))?
        .ok_or_else(file_not_found)?
        .file;
    check_set_archived(&file, &cmd)?;
    let status = if cmd.archived {
        FileStatus::Archived
    } else {
        let latest: StatusRow =
            diesel::sql_query("SELECT status FROM versions WHERE file_id = ?1 AND number = ?2")
                .bind::<DbUuid, _>(cmd.file_id.as_uuid())
                .bind::<Integer, _>(sql_number(file.version)?)
                .get_result(c)?;
        let latest = VersionStatus::from_stored(&latest.status)
            .ok_or_else(|| TxError::Repo(corrupt("version status")))?;
        file_status_following(latest)
    };
    diesel::sql_query("UPDATE files SET status = ?2, updated_at = ?3 WHERE id = ?1")
        .bind::<DbUuid, _>(cmd.file_id.as_uuid())
        .bind::<Text, _>(status.as_str())
        .bind::<DbTime, _>(now)
        .execute(c)?;
    audit(c, now, cmd.audit, Some(cmd.file_id), Some(file.version))?;
    reread(c, now, cmd.file_id)
}

/// Queues one object for deletion, due at once or not before `not_before`.
fn queue(
    c: &mut Conn,
    now: DateTime<Utc>,
    (bucket, object_key): (BucketKind, ObjectKey),
    not_before: Option<DateTime<Utc>>,
) -> Result<PendingDeletion, TxError> {
    let id = DeletionId::from_uuid(Uuid::new_v4());
    diesel::sql_query(
        "INSERT INTO pending_deletions (id, bucket, object_key, attempts, leased_until, \
                                        created_at) \
         VALUES (?1, ?2, ?3, 0, ?5, ?4)",
    )
    .bind::<DbUuid, _>(id.as_uuid())
    .bind::<Text, _>(bucket.as_str())
    .bind::<Text, _>(object_key.as_str())
    .bind::<DbTime, _>(now)
    .bind::<Nullable<DbTime>, _>(not_before)
    .execute(c)?;
    Ok(PendingDeletion {
        id,
        bucket,
        object_key,
        attempts: 0,
    })
}

#[derive(Debug, QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    object_key: String,
}

pub(crate) fn delete_file(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: DeleteFile,
) -> Result<Vec<PendingDeletion>, TxError> {
    let file = lock_file(c, now, FileKey::Id(cmd.file_id))?
        .ok_or_else(file_not_found)?
        .file;
    check_not_locked_by_other(&file, &cmd.actor)?;
    let keys: Vec<KeyRow> = diesel::sql_query("SELECT object_key FROM versions WHERE file_id = ?1")
        .bind::<DbUuid, _>(cmd.file_id.as_uuid())
        .load(c)?;
    let queued = keys
        .into_iter()
        .map(|k| {
            queue(
                c,
                now,
                (file.bucket(), ObjectKey::from_stored(k.object_key)),
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    diesel::sql_query("DELETE FROM versions WHERE file_id = ?1")
        .bind::<DbUuid, _>(cmd.file_id.as_uuid())
        .execute(c)?;
    // `locks` goes with the file (ON DELETE CASCADE, `foreign_keys = ON`).
    diesel::sql_query("DELETE FROM files WHERE id = ?1")
        .bind::<DbUuid, _>(cmd.file_id.as_uuid())
        .execute(c)?;
    audit(c, now, cmd.audit, Some(cmd.file_id), Some(file.version))?;
    Ok(queued)
}

pub(crate) fn record_audit(
    c: &mut Conn,
    _: DateTime<Utc>,
    event: AuditEvent,
) -> Result<(), TxError> {
    insert_audit(c, &event)
}

// ---- reservations ------------------------------------------------------------------------

pub(crate) fn create_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    r: UploadReservation,
) -> Result<(), TxError> {
    diesel::sql_query(
        "INSERT INTO upload_reservations \
         (id, kind, bucket, path, created_by, version_id, object_key, content_type, \
          expected_size, expected_sha256, max_bytes, expires_at, created_at, \
          completed_version, completed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
                 CASE WHEN ?14 IS NULL THEN NULL ELSE ?15 END)",
    )
    .bind::<DbUuid, _>(r.id.as_uuid())
    .bind::<Text, _>(r.kind.as_str())
    .bind::<Text, _>(r.path.bucket().as_str())
    .bind::<Text, _>(r.path.as_str())
    .bind::<Text, _>(r.created_by.as_str())
    .bind::<DbUuid, _>(r.version_id.as_uuid())
    .bind::<Text, _>(r.object_key.as_str())
    .bind::<Text, _>(&r.content_type)
    .bind::<Nullable<BigInt>, _>(r.expected_size.map(sql_size).transpose()?)
    .bind::<Nullable<Text>, _>(r.expected_sha256.as_deref())
    .bind::<BigInt, _>(sql_size(r.max_bytes)?)
    .bind::<DbTime, _>(r.expires_at)
    .bind::<DbTime, _>(r.created_at)
    .bind::<Nullable<DbUuid>, _>(r.completed_version.map(|v| v.as_uuid()))
    .bind::<DbTime, _>(now)
    .execute(c)?;
    Ok(())
}

pub(crate) fn extend_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    (id, expires_at): (UploadId, DateTime<Utc>),
) -> Result<(), TxError> {
    let n = diesel::sql_query(
        "UPDATE upload_reservations SET expires_at = ?2 \
         WHERE id = ?1 AND completed_version IS NULL AND expires_at > ?3",
    )
    .bind::<DbUuid, _>(id.as_uuid())
    .bind::<DbTime, _>(expires_at)
    .bind::<DbTime, _>(now)
    .execute(c)?;
    if n == 0 {
        return Err(TxError::Repo(RepoError::UploadNotFound));
    }
    Ok(())
}

#[derive(Debug, QueryableByName)]
struct OpenReservation {
    #[diesel(sql_type = DbUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    bucket: String,
    #[diesel(sql_type = Text)]
    object_key: String,
}

/// Deletes an open reservation and queues its object.
fn drop_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    r: OpenReservation,
) -> Result<PendingDeletion, TxError> {
    let bucket = storage_diesel_common::rows::bucket(&r.bucket)?;
    let queued = queue(c, now, (bucket, ObjectKey::from_stored(r.object_key)), None)?;
    diesel::sql_query("DELETE FROM upload_reservations WHERE id = ?1")
        .bind::<DbUuid, _>(r.id)
        .execute(c)?;
    Ok(queued)
}

pub(crate) fn abandon_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    id: UploadId,
) -> Result<Option<PendingDeletion>, TxError> {
    let open: Option<OpenReservation> = diesel::sql_query(
        "SELECT id, bucket, object_key FROM upload_reservations \
         WHERE id = ?1 AND completed_version IS NULL",
    )
    .bind::<DbUuid, _>(id.as_uuid())
    .get_result(c)
    .optional()?;
    open.map(|r| drop_reservation(c, now, r)).transpose()
}

// ---- janitor -----------------------------------------------------------------------------

/// Under the write lock, janitors on several instances (or tasks) run one after the other:
/// each sees what the previous one left.
pub(crate) fn expire_reservations(
    c: &mut Conn,
    now: DateTime<Utc>,
    (keep_completed, limit): (std::time::Duration, u32),
) -> Result<u64, TxError> {
    let expired: Vec<OpenReservation> = diesel::sql_query(
        "SELECT id, bucket, object_key FROM upload_reservations \
         WHERE completed_version IS NULL AND expires_at < ?1 \
         ORDER BY expires_at LIMIT ?2",
    )
    .bind::<DbTime, _>(now)
    .bind::<BigInt, _>(sql_limit(limit))
    .load(c)?;
    let mut queued = 0_u64;
    for r in expired {
        drop_reservation(c, now, r)?;
        queued += 1;
    }
    diesel::sql_query(
        "DELETE FROM upload_reservations WHERE id IN ( \
             SELECT id FROM upload_reservations \
             WHERE completed_version IS NOT NULL AND completed_at < ?2 \
             ORDER BY completed_at LIMIT ?1)",
    )
    .bind::<BigInt, _>(sql_limit(limit))
    .bind::<DbTime, _>(shifted(now, keep_completed, false)?)
    .execute(c)?;
    Ok(queued)
}

pub(crate) fn claim_deletions(
    c: &mut Conn,
    now: DateTime<Utc>,
    (lease, limit): (std::time::Duration, u32),
) -> Result<Vec<PendingDeletion>, TxError> {
    let rows: Vec<DeletionRow> = diesel::sql_query(
        "UPDATE pending_deletions SET attempts = attempts + 1, leased_until = ?3 \
         WHERE id IN ( \
             SELECT id FROM pending_deletions \
             WHERE leased_until IS NULL OR leased_until <= ?2 \
             ORDER BY leased_until NULLS FIRST, created_at \
             LIMIT ?1) \
         RETURNING id, bucket, object_key, attempts",
    )
    .bind::<BigInt, _>(sql_limit(limit))
    .bind::<DbTime, _>(now)
    .bind::<DbTime, _>(shifted(now, lease, true)?)
    .load(c)?;
    Ok(rows
        .into_iter()
        .map(DeletionRow::into_deletion)
        .collect::<Result<_, _>>()?)
}

pub(crate) fn forget_deletion(
    c: &mut Conn,
    _: DateTime<Utc>,
    id: DeletionId,
) -> Result<(), TxError> {
    diesel::sql_query("DELETE FROM pending_deletions WHERE id = ?1")
        .bind::<DbUuid, _>(id.as_uuid())
        .execute(c)?;
    Ok(())
}

pub(crate) fn queue_deletions(
    c: &mut Conn,
    now: DateTime<Utc>,
    (objects, not_before): (Vec<(BucketKind, ObjectKey)>, Option<DateTime<Utc>>),
) -> Result<Vec<PendingDeletion>, TxError> {
    objects
        .into_iter()
        .map(|object| queue(c, now, object, not_before))
        .collect()
}
