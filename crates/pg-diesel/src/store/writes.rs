//! Units of work: each runs in one transaction (see `PgMetadataStore::write`), takes the row
//! locks its decision rests on (always the file row first, then its lock row), and writes its
//! audit event in the same transaction.

use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_diesel_common::rules::{
    archived, check_existing, check_missing, check_not_locked_by_other, check_release,
    check_reservation, check_set_archived, check_set_tags, file_not_found, next_number,
    not_in_status, release_audit, releases_lock,
};
use storage_domain::model::{
    AuditDraft, AuditEvent, AuditOutcome, BucketKind, DeletionId, FileId, FileRecord, FileStatus,
    Lock, ObjectKey, PendingDeletion, UploadId, UploadReservation, UserId, Version, VersionNumber,
    VersionStatus,
};
use storage_domain::ports::{
    AcquireLock, Checkout, DeleteFile, NewVersion, ReleaseLock, RepoError, ReviewTransition,
    SetArchived, SetTags, file_status_following,
};
use uuid::Uuid;

use super::Work;
use super::reads::{file_by_id, file_by_path, version_by_id};
use crate::error::TxError;
use crate::rows::{
    DeletionRow, LockRow, StatusRow, VERSION_COLUMNS, VersionRow, seconds, sql_limit, sql_number,
    sql_size, tags_json,
};

type Conn = AsyncPgConnection;

/// How many times a lock statement is retried when the lock that refused it vanished before it
/// could be read (released or expired in between).
const LOCK_ATTEMPTS: usize = 5;

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

/// The live lock of a file, `FOR UPDATE` of its row.
async fn live_lock(c: &mut Conn, file_id: FileId) -> Result<Option<Lock>, TxError> {
    let row: Option<LockRow> = diesel::sql_query(
        "SELECT holder, acquired_at, expires_at, base_version FROM locks \
         WHERE file_id = $1 AND expires_at > now() FOR UPDATE",
    )
    .bind::<SqlUuid, _>(file_id.as_uuid())
    .get_result(c)
    .await
    .optional()?;
    Ok(row.map(LockRow::into_lock).transpose()?)
}

/// The file with this id after a change (with its live lock).
async fn reread(c: &mut Conn, id: FileId) -> Result<FileRecord, TxError> {
    file_by_id(c, id, false).await?.ok_or_else(|| {
        TxError::Repo(RepoError::Internal(
            "file vanished in its transaction".into(),
        ))
    })
}

/// Takes or refreshes a lock for `holder` in one statement: the store's clock sets the expiry;
/// an expired lock (whoever held it) is free; the same holder keeps `acquired_at` and, unless
/// `base` is given, `base_version`. `base: None` takes the file's latest version for a new lock.
/// The file row is share-locked first, so a lock is never taken in the middle of a commit.
///
/// Returns `None` when another holder has a live lock (or the file is missing or archived:
/// [`lock_refusal`] tells which).
async fn upsert_lock(
    c: &mut Conn,
    file_id: FileId,
    holder: &UserId,
    ttl: std::time::Duration,
    base: Option<VersionNumber>,
) -> Result<Option<Lock>, TxError> {
    let base = base.map(sql_number).transpose()?;
    let row: Option<LockRow> = diesel::sql_query(
        "WITH f AS ( \
             SELECT id, bucket, path, version FROM files \
             WHERE id = $1 AND status <> 'archived' FOR SHARE) \
         INSERT INTO locks AS l (file_id, bucket, path, holder, acquired_at, expires_at, \
                                 base_version) \
         SELECT f.id, f.bucket, f.path, $2, now(), now() + make_interval(secs => $3), \
                COALESCE($4, f.version) \
         FROM f \
         ON CONFLICT (file_id) DO UPDATE SET \
             acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() \
                                THEN l.acquired_at ELSE EXCLUDED.acquired_at END, \
             base_version = CASE WHEN $4 IS NULL AND l.holder = EXCLUDED.holder \
                                      AND l.expires_at > now() \
                                 THEN l.base_version ELSE EXCLUDED.base_version END, \
             holder = EXCLUDED.holder, \
             expires_at = EXCLUDED.expires_at \
         WHERE l.expires_at <= now() OR l.holder = EXCLUDED.holder \
         RETURNING l.holder, l.acquired_at, l.expires_at, l.base_version",
    )
    .bind::<SqlUuid, _>(file_id.as_uuid())
    .bind::<Text, _>(holder.as_str())
    .bind::<Double, _>(seconds(ttl))
    .bind::<Nullable<Integer>, _>(base)
    .get_result(c)
    .await
    .optional()?;
    Ok(row.map(LockRow::into_lock).transpose()?)
}

/// Why [`upsert_lock`] returned nothing: `Some(refusal)`, or `None` when the lock that refused
/// it is gone by now (retry).
async fn lock_refusal(c: &mut Conn, file_id: FileId) -> Result<Option<TxError>, TxError> {
    let row: Option<StatusRow> = diesel::sql_query("SELECT status FROM files WHERE id = $1")
        .bind::<SqlUuid, _>(file_id.as_uuid())
        .get_result(c)
        .await
        .optional()?;
    match row {
        None => Ok(Some(file_not_found().into())),
        Some(r) if r.status == FileStatus::Archived.as_str() => Ok(Some(archived().into())),
        Some(_) => Ok(live_lock(c, file_id)
            .await?
            .map(|l| TxError::Repo(RepoError::FileLocked(l)))),
    }
}

/// [`upsert_lock`], turning a refusal into its error.
async fn take_lock(
    c: &mut Conn,
    file_id: FileId,
    holder: &UserId,
    ttl: std::time::Duration,
    base: Option<VersionNumber>,
) -> Result<Lock, TxError> {
    for _ in 0..LOCK_ATTEMPTS {
        if let Some(lock) = upsert_lock(c, file_id, holder, ttl, base).await? {
            return Ok(lock);
        }
        if let Some(refusal) = lock_refusal(c, file_id).await? {
            return Err(refusal);
        }
    }
    Err(TxError::Repo(RepoError::Unavailable(
        "lock contention, retry".into(),
    )))
}

pub(crate) fn acquire_lock(c: &mut Conn, cmd: AcquireLock) -> Work<'_, Lock> {
    Box::pin(async move {
        let lock = take_lock(c, cmd.file_id, &cmd.holder, cmd.ttl, None).await?;
        audit(c, cmd.audit, Some(cmd.file_id), Some(lock.base_version)).await?;
        Ok(lock)
    })
}

pub(crate) fn release_lock(c: &mut Conn, cmd: ReleaseLock) -> Work<'_, Option<Lock>> {
    Box::pin(async move {
        file_by_id(c, cmd.file_id, true)
            .await?
            .ok_or_else(file_not_found)?;
        let Some(lock) = live_lock(c, cmd.file_id).await? else {
            // An expired row is a free lock: tidy it away, nothing to record.
            diesel::sql_query("DELETE FROM locks WHERE file_id = $1")
                .bind::<SqlUuid, _>(cmd.file_id.as_uuid())
                .execute(c)
                .await?;
            return Ok(None);
        };
        check_release(&lock, &cmd)?;
        diesel::sql_query("DELETE FROM locks WHERE file_id = $1")
            .bind::<SqlUuid, _>(cmd.file_id.as_uuid())
            .execute(c)
            .await?;
        let draft = release_audit(&lock, &cmd);
        audit(c, draft, Some(cmd.file_id), Some(lock.base_version)).await?;
        Ok(Some(lock))
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
    Ok(check_reservation(
        row.map(|r| (r.completed_version, r.open)),
    )?)
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

        // The target file, row-locked; created when the path is free.
        let mut existing = file_by_path(c, &cmd.path, true).await?;
        let mut created = false;
        if existing.is_none() {
            check_missing(&cmd)?;
            if insert_new_file(c, &cmd).await? {
                created = true;
            } else {
                // Another first upload of this path won the race: it is now an existing file.
                existing = file_by_path(c, &cmd.path, true).await?;
                if existing.is_none() {
                    return Err(TxError::Repo(RepoError::Unavailable(
                        "concurrent change of the path, retry".into(),
                    )));
                }
            }
        }

        let (file_id, number) = match &existing {
            Some(file) if !created => {
                check_existing(file, &cmd)?;
                (file.id, next_number(file.version)?)
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

        if !created {
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

            if releases_lock(cmd.mode) {
                diesel::sql_query("DELETE FROM locks WHERE file_id = $1")
                    .bind::<SqlUuid, _>(file_id.as_uuid())
                    .execute(c)
                    .await?;
            } else {
                // The author's live lock, if any, now stands on the new version.
                diesel::sql_query(
                    "UPDATE locks SET base_version = $3 \
                     WHERE file_id = $1 AND holder = $2 AND expires_at > now()",
                )
                .bind::<SqlUuid, _>(file_id.as_uuid())
                .bind::<Text, _>(cmd.author.as_str())
                .bind::<Integer, _>(sql_n)
                .execute(c)
                .await?;
            }
        }

        diesel::sql_query(
            "UPDATE upload_reservations SET completed_version = $2, completed_at = now() \
             WHERE id = $1",
        )
        .bind::<SqlUuid, _>(cmd.reservation.as_uuid())
        .bind::<SqlUuid, _>(cmd.version_id.as_uuid())
        .execute(c)
        .await?;

        if let Some(Checkout {
            file_id: other,
            base_version,
            ttl,
            audit: draft,
        }) = cmd.checkout
        {
            take_lock(c, other, &cmd.author, ttl, Some(base_version)).await?;
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
        file_by_id(c, file_id, true)
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
        let file = file_by_id(c, cmd.file_id, true)
            .await?
            .ok_or_else(file_not_found)?;
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
        let file = file_by_id(c, cmd.file_id, true)
            .await?
            .ok_or_else(file_not_found)?;
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
        let file = file_by_id(c, cmd.file_id, true)
            .await?
            .ok_or_else(file_not_found)?;
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
    objects: Vec<(BucketKind, ObjectKey)>,
) -> Work<'_, Vec<PendingDeletion>> {
    Box::pin(async move {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let buckets: Vec<&str> = objects.iter().map(|(b, _)| b.as_str()).collect();
        let keys: Vec<&str> = objects.iter().map(|(_, k)| k.as_str()).collect();
        let rows: Vec<DeletionRow> = diesel::sql_query(format!(
            "INSERT INTO pending_deletions (id, bucket, object_key) \
             SELECT gen_random_uuid(), b, k FROM unnest($1::text[], $2::text[]) AS t(b, k) \
             RETURNING {DELETION_COLUMNS}"
        ))
        .bind::<Array<Text>, _>(buckets)
        .bind::<Array<Text>, _>(keys)
        .load(c)
        .await?;
        deletions(rows)
    })
}
