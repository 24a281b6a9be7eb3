//! Units of work: each runs in one transaction (see `PgMetadataStore::write`). Each locks the
//! row of the file it decides on first ([`lock_file`]), then reads the file and its lock row in
//! a statement of its own: under READ COMMITTED that statement sees every change committed
//! before it started, including a lock taken or released while the transaction waited for the
//! row (a `SELECT … JOIN locks … FOR UPDATE OF files` that waited would return the lock row of
//! its pre-wait snapshot). Every change of a lock holds the file row too, so writes and lock
//! changes of one file are ordered. The decisions are the domain's
//! (`storage_domain::rules::store`); the audit event is written in the same transaction.

use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_diesel_common::rows::{FILE_COLUMNS, FileRow, FileState, STORED_FILE_FROM};
use storage_domain::model::{
    AuditDraft, AuditEvent, AuditOutcome, BucketKind, CheckoutTicket, DeletionId, FileId, FilePath,
    FileRecord, FileStatus, Lock, ObjectKey, PendingDeletion, UploadId, UploadReservation, Version,
    VersionId, VersionNumber, VersionStatus,
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

use super::Work;
use super::reads::{file_by_id, version_by_id};
use crate::error::TxError;
use crate::rows::{
    DeletionRow, StatusRow, VERSION_COLUMNS, VersionRow, seconds, sql_limit, sql_number, sql_size,
    tags_json,
};

type Conn = AsyncPgConnection;

/// Appends a completed audit event; its time is the transaction's (`now()`).
async fn audit(
    c: &mut Conn,
    draft: AuditDraft,
    file_id: Option<FileId>,
    version: Option<VersionNumber>,
) -> Result<(), TxError> {
    let version = version.map(sql_number).transpose()?;
    diesel::sql_query(
        "INSERT INTO audit_events \
         (id, actor, action, bucket, path, file_id, version, outcome, request_id, detail, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())",
    )
    .bind::<SqlUuid, _>(draft.id.as_uuid())
    .bind::<Text, _>(draft.actor.as_str())
    .bind::<Text, _>(draft.action.as_str())
    .bind::<Text, _>(draft.path.bucket().as_str())
    .bind::<Text, _>(draft.path.as_str())
    .bind::<Nullable<SqlUuid>, _>(file_id.map(|f| f.as_uuid()))
    .bind::<Nullable<Integer>, _>(version)
    .bind::<Text, _>(AuditOutcome::Success.as_str())
    .bind::<Text, _>(&draft.request_id)
    .bind::<Nullable<Text>, _>(draft.detail.as_deref())
    .execute(c)
    .await?;
    Ok(())
}

/// Which file a unit of work locks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FileKey<'a> {
    Id(FileId),
    Path(&'a FilePath),
}

#[derive(Debug, QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

#[derive(Debug, QueryableByName)]
struct StateRow {
    #[diesel(embed)]
    file: FileRow,
    #[diesel(sql_type = Timestamptz)]
    store_now: DateTime<Utc>,
}

/// Locks the file's row (`FOR UPDATE`, waiting for any other unit of work on it), then reads
/// the file, its lock row as stored and the transaction's time in a new statement, which sees
/// what was committed while this one waited. `None` when there is no such file.
pub(crate) async fn lock_file(
    c: &mut Conn,
    key: FileKey<'_>,
) -> Result<Option<FileState>, TxError> {
    let locked: Option<IdRow> = match key {
        FileKey::Id(id) => diesel::sql_query("SELECT id FROM files WHERE id = $1 FOR UPDATE")
            .bind::<SqlUuid, _>(id.as_uuid())
            .get_result(c)
            .await
            .optional()?,
        FileKey::Path(path) => {
            diesel::sql_query("SELECT id FROM files WHERE bucket = $1 AND path = $2 FOR UPDATE")
                .bind::<Text, _>(path.bucket().as_str())
                .bind::<Text, _>(path.as_str())
                .get_result(c)
                .await
                .optional()?
        }
    };
    let Some(locked) = locked else {
        return Ok(None);
    };
    let row: StateRow = diesel::sql_query(format!(
        "SELECT {FILE_COLUMNS}, now() AS store_now FROM {STORED_FILE_FROM} WHERE f.id = $1"
    ))
    .bind::<SqlUuid, _>(locked.id)
    .get_result(c)
    .await?;
    Ok(Some(row.file.into_state(row.store_now)?))
}

/// The file with this id after a change (with its live lock).
async fn reread(c: &mut Conn, id: FileId) -> Result<FileRecord, TxError> {
    file_by_id(c, id).await?.ok_or_else(|| {
        TxError::Repo(RepoError::Internal(
            "file vanished in its transaction".into(),
        ))
    })
}

/// Stores `lock` as the file's lock row (the decision was taken by the caller).
async fn store_lock(c: &mut Conn, file: &FileRecord, lock: &Lock) -> Result<(), TxError> {
    diesel::sql_query(
        "INSERT INTO locks (file_id, bucket, path, holder, acquired_at, expires_at, \
                            base_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (file_id) DO UPDATE SET \
             holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at, \
             expires_at = EXCLUDED.expires_at, base_version = EXCLUDED.base_version",
    )
    .bind::<SqlUuid, _>(file.id.as_uuid())
    .bind::<Text, _>(file.bucket().as_str())
    .bind::<Text, _>(file.path.as_str())
    .bind::<Text, _>(lock.holder.as_str())
    .bind::<Timestamptz, _>(lock.acquired_at)
    .bind::<Timestamptz, _>(lock.expires_at)
    .bind::<Integer, _>(sql_number(lock.base_version)?)
    .execute(c)
    .await?;
    Ok(())
}

async fn delete_lock(c: &mut Conn, file_id: FileId) -> Result<(), TxError> {
    diesel::sql_query("DELETE FROM locks WHERE file_id = $1")
        .bind::<SqlUuid, _>(file_id.as_uuid())
        .execute(c)
        .await?;
    Ok(())
}

/// Records a file's checkout ticket.
async fn set_ticket(c: &mut Conn, file_id: FileId, ticket: &CheckoutTicket) -> Result<(), TxError> {
    diesel::sql_query(
        "UPDATE files SET checkout_file_id = $2, checkout_path = $3, checkout_version = $4 \
         WHERE id = $1",
    )
    .bind::<SqlUuid, _>(file_id.as_uuid())
    .bind::<SqlUuid, _>(ticket.file_id.as_uuid())
    .bind::<Text, _>(ticket.path.as_str())
    .bind::<Integer, _>(sql_number(ticket.version)?)
    .execute(c)
    .await?;
    Ok(())
}

pub(crate) fn acquire_lock(c: &mut Conn, cmd: AcquireLock) -> Work<'_, Lock> {
    Box::pin(async move {
        let state = lock_file(c, FileKey::Id(cmd.file_id))
            .await?
            .ok_or_else(file_not_found)?;
        let lock = decide_lock(
            &state.file,
            state.stored_lock.as_ref(),
            &cmd.holder,
            cmd.ttl,
            None,
            state.now,
        )?;
        store_lock(c, &state.file, &lock).await?;
        audit(c, cmd.audit, Some(cmd.file_id), Some(lock.base_version)).await?;
        Ok(lock)
    })
}

pub(crate) fn release_lock(c: &mut Conn, cmd: ReleaseLock) -> Work<'_, Option<Lock>> {
    Box::pin(async move {
        let state = lock_file(c, FileKey::Id(cmd.file_id))
            .await?
            .ok_or_else(file_not_found)?;
        match decide_unlock(state.stored_lock.as_ref(), &cmd, state.now)? {
            UnlockDecision::NotLocked => Ok(None),
            UnlockDecision::Release(lock) => {
                delete_lock(c, cmd.file_id).await?;
                let draft = release_audit(&lock, &cmd);
                audit(c, draft, Some(cmd.file_id), Some(lock.base_version)).await?;
                Ok(Some(lock))
            }
        }
    })
}

#[derive(Debug, QueryableByName)]
struct ReservationCheck {
    #[diesel(sql_type = Nullable<SqlUuid>)]
    completed_version: Option<Uuid>,
    #[diesel(sql_type = Bool)]
    open: bool,
}

/// Checks the reservation is open and unexpired (row-locked until the transaction ends).
async fn reservation_open(c: &mut Conn, id: UploadId) -> Result<(), TxError> {
    let row: Option<ReservationCheck> = diesel::sql_query(
        "SELECT completed_version, expires_at > now() AS open FROM upload_reservations \
         WHERE id = $1 FOR UPDATE",
    )
    .bind::<SqlUuid, _>(id.as_uuid())
    .get_result(c)
    .await
    .optional()?;
    Ok(check_reservation(row.map(|r| {
        (r.completed_version.map(VersionId::from_uuid), r.open)
    }))?)
}

/// Inserts the file of a first version, unless another transaction created the path first
/// (then `false`: the caller re-reads it, row-locked).
async fn insert_new_file(c: &mut Conn, cmd: &NewVersion) -> Result<bool, TxError> {
    let empty = storage_domain::model::Tags::new();
    let tags = tags_json(cmd.tags.as_ref().unwrap_or(&empty));
    let inserted = diesel::sql_query(
        "INSERT INTO files (id, bucket, path, created_by, version, validated_version, status, \
                            tags, size, content_type, sha256, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, NULL, $5, $6, $7, $8, $9, now(), now()) \
         ON CONFLICT (bucket, path) DO NOTHING",
    )
    .bind::<SqlUuid, _>(cmd.new_file_id.as_uuid())
    .bind::<Text, _>(cmd.path.bucket().as_str())
    .bind::<Text, _>(cmd.path.as_str())
    .bind::<Text, _>(cmd.author.as_str())
    .bind::<Text, _>(file_status_following(cmd.status).as_str())
    .bind::<Jsonb, _>(tags)
    .bind::<BigInt, _>(sql_size(cmd.size)?)
    .bind::<Text, _>(&cmd.content_type)
    .bind::<Text, _>(&cmd.sha256)
    .execute(c)
    .await?;
    Ok(inserted == 1)
}

pub(crate) fn commit_version(c: &mut Conn, cmd: NewVersion) -> Work<'_, (FileRecord, Version)> {
    Box::pin(async move {
        reservation_open(c, cmd.reservation).await?;
        if let Some(upload) = cmd.completes {
            reservation_open(c, upload).await?;
        }
        // A commit's source, the workspace copy, first: every unit of work that locks two files
        // locks the workspace copy first (a checkout locks its target, then the source).
        let source = match cmd.mode {
            WriteMode::Commit { source, .. } => Some(
                lock_file(c, FileKey::Id(source))
                    .await?
                    .ok_or_else(file_not_found)?,
            ),
            WriteMode::Upsert { .. } => None,
        };
        let ticket = source.as_ref().and_then(|s| s.file.checkout.as_ref());

        // The target file; created when the path is free.
        let mut existing = lock_file(c, FileKey::Path(&cmd.path)).await?;
        let mut created = false;
        if existing.is_none() {
            check_new_file(&cmd.mode)?;
            if insert_new_file(c, &cmd).await? {
                created = true;
            } else {
                // Another first upload of this path won the race: it is now an existing file.
                existing = lock_file(c, FileKey::Path(&cmd.path)).await?;
                if existing.is_none() {
                    return Err(TxError::Repo(RepoError::Unavailable(
                        "concurrent change of the path, retry".into(),
                    )));
                }
            }
        }

        let (file_id, number) = match &existing {
            Some(state) if !created => {
                check_write(&state.file, &cmd, ticket)?;
                (state.file.id, next_number(state.file.version)?)
            }
            _ => (cmd.new_file_id, VersionNumber::FIRST),
        };
        let sql_n = sql_number(number)?;

        diesel::sql_query(
            "INSERT INTO versions (id, file_id, number, size, sha256, content_type, author, \
                                   message, status, created_at, object_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), $10)",
        )
        .bind::<SqlUuid, _>(cmd.version_id.as_uuid())
        .bind::<SqlUuid, _>(file_id.as_uuid())
        .bind::<Integer, _>(sql_n)
        .bind::<BigInt, _>(sql_size(cmd.size)?)
        .bind::<Text, _>(&cmd.sha256)
        .bind::<Text, _>(&cmd.content_type)
        .bind::<Text, _>(cmd.author.as_str())
        .bind::<Nullable<Text>, _>(cmd.message.as_deref())
        .bind::<Text, _>(cmd.status.as_str())
        .bind::<Text, _>(cmd.object_key.as_str())
        .execute(c)
        .await?;

        if let Some(state) = existing.as_ref().filter(|_| !created) {
            diesel::sql_query(
                "UPDATE files SET version = $2, status = $3, size = $4, content_type = $5, \
                     sha256 = $6, tags = COALESCE($7, tags), updated_at = now() \
                 WHERE id = $1",
            )
            .bind::<SqlUuid, _>(file_id.as_uuid())
            .bind::<Integer, _>(sql_n)
            .bind::<Text, _>(file_status_following(cmd.status).as_str())
            .bind::<BigInt, _>(sql_size(cmd.size)?)
            .bind::<Text, _>(&cmd.content_type)
            .bind::<Text, _>(&cmd.sha256)
            .bind::<Nullable<Jsonb>, _>(cmd.tags.as_ref().map(tags_json))
            .execute(c)
            .await?;

            match lock_after_version(state.stored_lock.as_ref(), &cmd.author, cmd.mode, number) {
                LockAfterVersion::Unchanged => {}
                LockAfterVersion::Released => delete_lock(c, file_id).await?,
                LockAfterVersion::Rebased(base) => {
                    diesel::sql_query("UPDATE locks SET base_version = $2 WHERE file_id = $1")
                        .bind::<SqlUuid, _>(file_id.as_uuid())
                        .bind::<Integer, _>(sql_number(base)?)
                        .execute(c)
                        .await?;
                }
            }
        }
        if let Some(source) = &source
            && let Some(moved) = ticket_after_commit(ticket, file_id, number)
        {
            set_ticket(c, source.file.id, &moved).await?;
        }

        complete_reservation(c, cmd.reservation, cmd.version_id).await?;
        if let Some(upload) = cmd.completes {
            complete_reservation(c, upload, cmd.version_id).await?;
            // Its URL can write the staging object until the reservation expires.
            diesel::sql_query(
                "INSERT INTO pending_deletions (id, bucket, object_key, leased_until) \
                 SELECT gen_random_uuid(), bucket, object_key, expires_at \
                 FROM upload_reservations WHERE id = $1",
            )
            .bind::<SqlUuid, _>(upload.as_uuid())
            .execute(c)
            .await?;
        }

        if let Some(Checkout {
            file_id: other,
            path,
            base_version,
            ttl,
            audit: draft,
        }) = cmd.checkout
        {
            let state = lock_file(c, FileKey::Id(other))
                .await?
                .ok_or_else(file_not_found)?;
            let lock = decide_lock(
                &state.file,
                state.stored_lock.as_ref(),
                &cmd.author,
                ttl,
                Some(base_version),
                state.now,
            )?;
            store_lock(c, &state.file, &lock).await?;
            let ticket = CheckoutTicket {
                file_id: other,
                path,
                version: base_version,
            };
            set_ticket(c, file_id, &ticket).await?;
            audit(c, draft, Some(other), Some(base_version)).await?;
        }
        audit(c, cmd.audit, Some(file_id), Some(number)).await?;

        let file = reread(c, file_id).await?;
        let version = version_by_id(c, cmd.version_id)
            .await?
            .ok_or_else(|| TxError::Repo(RepoError::Internal("version vanished".into())))?;
        Ok((file, version))
    })
}

/// Marks a reservation completed as `version`.
async fn complete_reservation(
    c: &mut Conn,
    id: UploadId,
    version: VersionId,
) -> Result<(), TxError> {
    diesel::sql_query(
        "UPDATE upload_reservations SET completed_version = $2, completed_at = now() \
         WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id.as_uuid())
    .bind::<SqlUuid, _>(version.as_uuid())
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Debug, QueryableByName)]
struct FileOfVersion {
    #[diesel(sql_type = SqlUuid)]
    file_id: Uuid,
}

pub(crate) fn review_version(
    c: &mut Conn,
    cmd: ReviewTransition,
) -> Work<'_, (FileRecord, Version)> {
    Box::pin(async move {
        let version_not_found = || TxError::Repo(RepoError::VersionNotFound);
        let owner: FileOfVersion = diesel::sql_query("SELECT file_id FROM versions WHERE id = $1")
            .bind::<SqlUuid, _>(cmd.version_id.as_uuid())
            .get_result(c)
            .await
            .optional()?
            .ok_or_else(version_not_found)?;
        let file_id = FileId::from_uuid(owner.file_id);
        // The file row first (the order every unit of work follows), then the decision.
        lock_file(c, FileKey::Id(file_id))
            .await?
            .ok_or_else(version_not_found)?;

        let sql = if cmd.reviewer.is_some() {
            format!(
                "UPDATE versions v SET status = $3, reviewed_by = $4, reviewed_at = now(), \
                     review_comment = $5 \
                 WHERE v.id = $1 AND v.status = $2 RETURNING {VERSION_COLUMNS}"
            )
        } else {
            format!(
                "UPDATE versions v SET status = $3 \
                 WHERE v.id = $1 AND v.status = $2 RETURNING {VERSION_COLUMNS}"
            )
        };
        let mut query = diesel::sql_query(sql)
            .into_boxed()
            .bind::<SqlUuid, _>(cmd.version_id.as_uuid())
            .bind::<Text, _>(cmd.from.as_str())
            .bind::<Text, _>(cmd.to.as_str());
        if let Some(reviewer) = &cmd.reviewer {
            query = query
                .bind::<Text, _>(reviewer.as_str().to_owned())
                .bind::<Nullable<Text>, _>(cmd.comment.clone());
        }
        let row: Option<VersionRow> = query.get_result(c).await.optional()?;
        let Some(row) = row else {
            return Err(not_in_status(cmd.from).into());
        };
        let version = row.into_version()?;
        let n = sql_number(version.number)?;

        diesel::sql_query(
            "UPDATE files SET \
                 validated_version = CASE WHEN $3 THEN GREATEST(validated_version, $2) \
                                          ELSE validated_version END, \
                 status = CASE WHEN version = $2 AND status <> 'archived' THEN $4 \
                               ELSE status END, \
                 updated_at = now() \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(file_id.as_uuid())
        .bind::<Integer, _>(n)
        .bind::<Bool, _>(cmd.to == VersionStatus::Validated)
        .bind::<Text, _>(file_status_following(cmd.to).as_str())
        .execute(c)
        .await?;
        audit(c, cmd.audit, Some(file_id), Some(version.number)).await?;
        Ok((reread(c, file_id).await?, version))
    })
}

pub(crate) fn set_tags(c: &mut Conn, cmd: SetTags) -> Work<'_, FileRecord> {
    Box::pin(async move {
        let file = lock_file(c, FileKey::Id(cmd.file_id))
            .await?
            .ok_or_else(file_not_found)?
            .file;
        check_set_tags(&file, &cmd.actor)?;
        diesel::sql_query("UPDATE files SET tags = $2, updated_at = now() WHERE id = $1")
            .bind::<SqlUuid, _>(cmd.file_id.as_uuid())
            .bind::<Jsonb, _>(tags_json(&cmd.tags))
            .execute(c)
            .await?;
        audit(c, cmd.audit, Some(cmd.file_id), Some(file.version)).await?;
        reread(c, cmd.file_id).await
    })
}

pub(crate) fn set_archived(c: &mut Conn, cmd: SetArchived) -> Work<'_, FileRecord> {
    Box::pin(async move {
        let file = lock_file(c, FileKey::Id(cmd.file_id))
            .await?
            .ok_or_else(file_not_found)?
            .file;
        check_set_archived(&file, &cmd)?;
        let status = if cmd.archived {
            FileStatus::Archived
        } else {
            let latest: StatusRow =
                diesel::sql_query("SELECT status FROM versions WHERE file_id = $1 AND number = $2")
                    .bind::<SqlUuid, _>(cmd.file_id.as_uuid())
                    .bind::<Integer, _>(sql_number(file.version)?)
                    .get_result(c)
                    .await?;
            let latest = VersionStatus::from_stored(&latest.status)
                .ok_or_else(|| TxError::Repo(crate::error::corrupt("version status")))?;
            file_status_following(latest)
        };
        diesel::sql_query("UPDATE files SET status = $2, updated_at = now() WHERE id = $1")
            .bind::<SqlUuid, _>(cmd.file_id.as_uuid())
            .bind::<Text, _>(status.as_str())
            .execute(c)
            .await?;
        audit(c, cmd.audit, Some(cmd.file_id), Some(file.version)).await?;
        reread(c, cmd.file_id).await
    })
}

const DELETION_COLUMNS: &str = "id, bucket, object_key, attempts";

fn deletions(rows: Vec<DeletionRow>) -> Result<Vec<PendingDeletion>, TxError> {
    Ok(rows
        .into_iter()
        .map(DeletionRow::into_deletion)
        .collect::<Result<_, _>>()?)
}

pub(crate) fn delete_file(c: &mut Conn, cmd: DeleteFile) -> Work<'_, Vec<PendingDeletion>> {
    Box::pin(async move {
        let file = lock_file(c, FileKey::Id(cmd.file_id))
            .await?
            .ok_or_else(file_not_found)?
            .file;
        check_not_locked_by_other(&file, &cmd.actor)?;
        let rows: Vec<DeletionRow> = diesel::sql_query(format!(
            "WITH gone AS (DELETE FROM versions WHERE file_id = $1 RETURNING object_key) \
             INSERT INTO pending_deletions (id, bucket, object_key) \
             SELECT gen_random_uuid(), $2, object_key FROM gone \
             RETURNING {DELETION_COLUMNS}"
        ))
        .bind::<SqlUuid, _>(cmd.file_id.as_uuid())
        .bind::<Text, _>(file.bucket().as_str())
        .load(c)
        .await?;
        // `locks` goes with the file (ON DELETE CASCADE).
        diesel::sql_query("DELETE FROM files WHERE id = $1")
            .bind::<SqlUuid, _>(cmd.file_id.as_uuid())
            .execute(c)
            .await?;
        audit(c, cmd.audit, Some(cmd.file_id), Some(file.version)).await?;
        deletions(rows)
    })
}

pub(crate) fn record_audit(c: &mut Conn, event: AuditEvent) -> Work<'_, ()> {
    Box::pin(async move {
        let version = event.version.map(sql_number).transpose()?;
        diesel::sql_query(
            "INSERT INTO audit_events \
             (id, actor, action, bucket, path, file_id, version, outcome, request_id, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind::<SqlUuid, _>(event.id.as_uuid())
        .bind::<Text, _>(event.actor.as_str())
        .bind::<Text, _>(event.action.as_str())
        .bind::<Text, _>(event.path.bucket().as_str())
        .bind::<Text, _>(event.path.as_str())
        .bind::<Nullable<SqlUuid>, _>(event.file_id.map(|f| f.as_uuid()))
        .bind::<Nullable<Integer>, _>(version)
        .bind::<Text, _>(event.outcome.as_str())
        .bind::<Text, _>(&event.request_id)
        .bind::<Nullable<Text>, _>(event.detail.as_deref())
        .bind::<Timestamptz, _>(event.at)
        .execute(c)
        .await?;
        Ok(())
    })
}

// ---- reservations ------------------------------------------------------------------------

pub(crate) fn create_reservation(c: &mut Conn, r: UploadReservation) -> Work<'_, ()> {
    Box::pin(async move {
        diesel::sql_query(
            "INSERT INTO upload_reservations \
             (id, kind, bucket, path, created_by, version_id, object_key, content_type, \
              expected_size, expected_sha256, max_bytes, expires_at, created_at, \
              completed_version, completed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                     CASE WHEN $14 IS NULL THEN NULL ELSE now() END)",
        )
        .bind::<SqlUuid, _>(r.id.as_uuid())
        .bind::<Text, _>(r.kind.as_str())
        .bind::<Text, _>(r.path.bucket().as_str())
        .bind::<Text, _>(r.path.as_str())
        .bind::<Text, _>(r.created_by.as_str())
        .bind::<SqlUuid, _>(r.version_id.as_uuid())
        .bind::<Text, _>(r.object_key.as_str())
        .bind::<Text, _>(&r.content_type)
        .bind::<Nullable<BigInt>, _>(r.expected_size.map(sql_size).transpose()?)
        .bind::<Nullable<Text>, _>(r.expected_sha256.as_deref())
        .bind::<BigInt, _>(sql_size(r.max_bytes)?)
        .bind::<Timestamptz, _>(r.expires_at)
        .bind::<Timestamptz, _>(r.created_at)
        .bind::<Nullable<SqlUuid>, _>(r.completed_version.map(|v| v.as_uuid()))
        .execute(c)
        .await?;
        Ok(())
    })
}

pub(crate) fn extend_reservation(
    c: &mut Conn,
    (id, expires_at): (UploadId, DateTime<Utc>),
) -> Work<'_, ()> {
    Box::pin(async move {
        let n = diesel::sql_query(
            "UPDATE upload_reservations SET expires_at = $2 \
             WHERE id = $1 AND completed_version IS NULL AND expires_at > now()",
        )
        .bind::<SqlUuid, _>(id.as_uuid())
        .bind::<Timestamptz, _>(expires_at)
        .execute(c)
        .await?;
        if n == 0 {
            return Err(TxError::Repo(RepoError::UploadNotFound));
        }
        Ok(())
    })
}

pub(crate) fn abandon_reservation(c: &mut Conn, id: UploadId) -> Work<'_, Option<PendingDeletion>> {
    Box::pin(async move {
        let rows: Vec<DeletionRow> = diesel::sql_query(format!(
            "WITH gone AS (DELETE FROM upload_reservations \
                           WHERE id = $1 AND completed_version IS NULL \
                           RETURNING bucket, object_key) \
             INSERT INTO pending_deletions (id, bucket, object_key) \
             SELECT gen_random_uuid(), bucket, object_key FROM gone \
             RETURNING {DELETION_COLUMNS}"
        ))
        .bind::<SqlUuid, _>(id.as_uuid())
        .load(c)
        .await?;
        Ok(deletions(rows)?.into_iter().next())
    })
}

// ---- janitor -----------------------------------------------------------------------------

pub(crate) fn expire_reservations(
    c: &mut Conn,
    (keep_completed, limit): (std::time::Duration, u32),
) -> Work<'_, u64> {
    Box::pin(async move {
        // SKIP LOCKED: janitors on several instances take disjoint rows, and a reservation
        // being completed right now (row-locked by commit_version) is left alone.
        let queued = diesel::sql_query(
            "WITH gone AS ( \
                 DELETE FROM upload_reservations WHERE id IN ( \
                     SELECT id FROM upload_reservations \
                     WHERE completed_version IS NULL AND expires_at < now() \
                     ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 RETURNING bucket, object_key) \
             INSERT INTO pending_deletions (id, bucket, object_key) \
             SELECT gen_random_uuid(), bucket, object_key FROM gone",
        )
        .bind::<BigInt, _>(sql_limit(limit))
        .execute(c)
        .await?;
        diesel::sql_query(
            "DELETE FROM upload_reservations WHERE id IN ( \
                 SELECT id FROM upload_reservations \
                 WHERE completed_version IS NOT NULL \
                   AND completed_at < now() - make_interval(secs => $2) \
                 ORDER BY completed_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
        )
        .bind::<BigInt, _>(sql_limit(limit))
        .bind::<Double, _>(seconds(keep_completed))
        .execute(c)
        .await?;
        Ok(u64::try_from(queued).unwrap_or(0))
    })
}

pub(crate) fn claim_deletions(
    c: &mut Conn,
    (lease, limit): (std::time::Duration, u32),
) -> Work<'_, Vec<PendingDeletion>> {
    Box::pin(async move {
        let rows: Vec<DeletionRow> = diesel::sql_query(format!(
            "UPDATE pending_deletions SET attempts = attempts + 1, \
                 leased_until = now() + make_interval(secs => $2) \
             WHERE id IN ( \
                 SELECT id FROM pending_deletions \
                 WHERE leased_until IS NULL OR leased_until <= now() \
                 ORDER BY leased_until NULLS FIRST, created_at \
                 LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING {DELETION_COLUMNS}"
        ))
        .bind::<BigInt, _>(sql_limit(limit))
        .bind::<Double, _>(seconds(lease))
        .load(c)
        .await?;
        deletions(rows)
    })
}

pub(crate) fn forget_deletion(c: &mut Conn, id: DeletionId) -> Work<'_, ()> {
    Box::pin(async move {
        diesel::sql_query("DELETE FROM pending_deletions WHERE id = $1")
            .bind::<SqlUuid, _>(id.as_uuid())
            .execute(c)
            .await?;
        Ok(())
    })
}

pub(crate) fn queue_deletions(
    c: &mut Conn,
    (objects, not_before): (Vec<(BucketKind, ObjectKey)>, Option<DateTime<Utc>>),
) -> Work<'_, Vec<PendingDeletion>> {
    Box::pin(async move {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let buckets: Vec<&str> = objects.iter().map(|(b, _)| b.as_str()).collect();
        let keys: Vec<&str> = objects.iter().map(|(_, k)| k.as_str()).collect();
        let rows: Vec<DeletionRow> = diesel::sql_query(format!(
            "INSERT INTO pending_deletions (id, bucket, object_key, leased_until) \
             SELECT gen_random_uuid(), b, k, $3 \
             FROM unnest($1::text[], $2::text[]) AS t(b, k) \
             RETURNING {DELETION_COLUMNS}"
        ))
        .bind::<Array<Text>, _>(buckets)
        .bind::<Array<Text>, _>(keys)
        .bind::<Nullable<Timestamptz>, _>(not_before)
        .load(c)
        .await?;
        deletions(rows)
    })
}
