//! Units of work: each runs in one `BEGIN IMMEDIATE` transaction (see
//! `SqliteMetadataStore::run`), so it holds SQLite's write lock from its first statement: the
//! rows its decision reads cannot change before it writes, and no other unit of work runs
//! meanwhile. Its audit event is written in the same transaction, at the unit of work's `now`.
//! Each reads the file it decides on with its lock row as stored ([`lock_file`]) and asks the
//! domain's decision functions (`storage_domain::rules::store`), as the PostgreSQL adapter does,
//! with the statements both share (`storage_diesel_common::queries`).

use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, RunQueryDsl};
use storage_diesel_common::queries::{
    self, FileAfterVersion, NewAudit, NewDeletion, NewFile, NewLock, NewReservation, NewVersionRow,
    ReviewChange,
};
use storage_diesel_common::rows::{
    AuditRow, DELETION_COLUMNS, DeletionRow, FileLockRow, FileState, ReservationRow, VersionRow,
    file_state, review_refusal, sql_limit, sql_number, tags_json,
};
use storage_diesel_common::schema::{pending_deletions, upload_reservations};
use storage_diesel_common::sql_types::{DbAt, DbDoc, DbId};
use storage_diesel_common::{insert_file, store_lock};
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
    LockAfterVersion, UnlockDecision, check_new_file, check_not_locked_by_other,
    check_open_uploads, check_reservation, check_set_archived, check_set_tags, check_write,
    decide_lock, decide_unlock, file_after_review, file_not_found, lock_after_version, next_number,
    release_audit, repeated_refusal, ticket_after_commit,
};

use storage_diesel_common::error::TxError;

use super::{Conn, shifted};

/// Appends a completed audit event at the unit of work's time.
fn audit(
    c: &mut Conn,
    now: DateTime<Utc>,
    draft: AuditDraft,
    file_id: Option<FileId>,
    version: Option<VersionNumber>,
) -> Result<(), TxError> {
    let event = draft.complete(file_id, version, AuditOutcome::Success, now);
    queries::insert_audit(&NewAudit::of(&event)?).execute(c)?;
    Ok(())
}

/// Which file a unit of work locks.
#[derive(Debug, Clone, Copy)]
enum FileKey<'a> {
    Id(FileId),
    Path(&'a FilePath),
}

/// The file, its lock row as stored (live or expired) and the unit of work's time. Under
/// SQLite's write lock nothing changes between this read and the unit of work's writes.
fn lock_file(
    c: &mut Conn,
    now: DateTime<Utc>,
    key: FileKey<'_>,
) -> Result<Option<FileState>, TxError> {
    let row: Option<FileLockRow> = match key {
        FileKey::Id(id) => queries::file_by_id(DbId(id.as_uuid()))
            .get_result(c)
            .optional()?,
        FileKey::Path(path) => queries::file_by_path(path.bucket().as_str(), path.as_str())
            .get_result(c)
            .optional()?,
    };
    Ok(row
        .map(|(file, lock, _)| file_state((file, lock, DbAt(now))))
        .transpose()?)
}

/// The file with this id after a change (with its live lock).
fn reread(c: &mut Conn, id: FileId) -> Result<FileRecord, TxError> {
    super::reads::file_by_id(c, id)?.ok_or_else(|| {
        TxError::Repo(RepoError::Internal(
            "file vanished in its transaction".into(),
        ))
    })
}

/// Stores `lock` as the file's lock row (the decision was taken by the caller).
fn store_lock(c: &mut Conn, file: &FileRecord, lock: &Lock) -> Result<(), TxError> {
    let row = NewLock::of(file, lock)?;
    store_lock!(&row).execute(c)?;
    Ok(())
}

/// Records a file's checkout ticket.
fn set_ticket(c: &mut Conn, file_id: FileId, ticket: &CheckoutTicket) -> Result<(), TxError> {
    queries::set_ticket(
        DbId(file_id.as_uuid()),
        DbId(ticket.file_id.as_uuid()),
        ticket.path.as_str(),
        sql_number(ticket.version)?,
    )
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
            queries::delete_lock(DbId(cmd.file_id.as_uuid())).execute(c)?;
            let draft = release_audit(&lock, &cmd);
            audit(c, now, draft, Some(cmd.file_id), Some(lock.base_version))?;
            Ok(Some(lock))
        }
    }
}

/// Checks the reservation is open and unexpired at `now`; returns it.
fn reservation_open(
    c: &mut Conn,
    id: UploadId,
    now: DateTime<Utc>,
) -> Result<ReservationRow, TxError> {
    let row: Option<ReservationRow> = queries::reservation_by_id(DbId(id.as_uuid()))
        .get_result(c)
        .optional()?;
    check_reservation(row.as_ref().map(|r| {
        (
            r.completed_version
                .clone()
                .map(|v| VersionId::from_uuid(v.0)),
            r.expires_at.0 > now,
        )
    }))?;
    row.ok_or_else(|| TxError::Repo(RepoError::UploadNotFound))
}

pub(crate) fn commit_version(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: NewVersion,
) -> Result<(FileRecord, Version), TxError> {
    reservation_open(c, cmd.reservation, now)?;
    let completes = match cmd.completes {
        Some(upload) => Some(reservation_open(c, upload, now)?),
        None => None,
    };
    // A commit's source, the workspace copy, first: every unit of work that locks two files
    // locks the workspace copy first (a checkout locks its target, then the source).
    let source = match cmd.mode {
        WriteMode::Commit { source, .. } => {
            Some(lock_file(c, now, FileKey::Id(source))?.ok_or_else(file_not_found)?)
        }
        WriteMode::Upsert { .. } => None,
    };
    let ticket = source.as_ref().and_then(|s| s.file.checkout.as_ref());

    // The target file; created when the path is free.
    let mut existing = lock_file(c, now, FileKey::Path(&cmd.path))?;
    let mut created = false;
    if existing.is_none() {
        check_new_file(&cmd.mode)?;
        let row = NewFile::first(&cmd, now)?;
        if insert_file!(&row).execute(c)? == 1 {
            created = true;
        } else {
            // Another first upload of this path won the race: it is now an existing file.
            existing = lock_file(c, now, FileKey::Path(&cmd.path))?;
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
    let version_row: VersionRow =
        queries::insert_version(&NewVersionRow::of(&cmd, file_id, number, now)?)
            .returning(storage_diesel_common::schema::versions::all_columns)
            .get_result(c)?;

    if let Some(state) = existing.as_ref().filter(|_| !created) {
        queries::update_file_after_version(
            DbId(file_id.as_uuid()),
            &FileAfterVersion::of(&cmd, number, now)?,
        )
        .execute(c)?;
        match lock_after_version(state.stored_lock.as_ref(), &cmd.author, cmd.mode, number) {
            LockAfterVersion::Unchanged => {}
            LockAfterVersion::Released => {
                queries::delete_lock(DbId(file_id.as_uuid())).execute(c)?;
            }
            LockAfterVersion::Rebased(base) => {
                queries::rebase_lock(DbId(file_id.as_uuid()), sql_number(base)?).execute(c)?;
            }
        }
    }
    if let Some(source) = &source
        && let Some(moved) = ticket_after_commit(ticket, file_id, number)
    {
        set_ticket(c, source.file.id, &moved)?;
    }

    let version_id = DbId(cmd.version_id.as_uuid());
    queries::complete_reservation(
        DbId(cmd.reservation.as_uuid()),
        version_id.clone(),
        DbAt(now),
    )
    .execute(c)?;
    if let Some(upload) = &completes {
        queries::complete_reservation(upload.id.clone(), version_id, DbAt(now)).execute(c)?;
        // Its URL can write the staging object until the reservation expires.
        queries::insert_deletion(&NewDeletion::of(
            &upload.bucket,
            &upload.object_key,
            Some(upload.expires_at.0),
            now,
        ))
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

    let file = reread(c, file_id)?;
    Ok((file, version_row.into_version()?))
}

pub(crate) fn review_version(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: ReviewTransition,
) -> Result<(FileRecord, Version), TxError> {
    let version_not_found = || TxError::Repo(RepoError::VersionNotFound);
    let owner: DbId = storage_diesel_common::schema::versions::table
        .select(storage_diesel_common::schema::versions::file_id)
        .filter(storage_diesel_common::schema::versions::id.eq(DbId(cmd.version_id.as_uuid())))
        .get_result(c)
        .optional()?
        .ok_or_else(version_not_found)?;
    let file_id = FileId::from_uuid(owner.0);
    // The file row first (the order every unit of work follows), then the decision.
    let state = lock_file(c, now, FileKey::Id(file_id))?.ok_or_else(version_not_found)?;
    let change = ReviewChange {
        status: cmd.to.as_str(),
        reviewed_by: cmd.reviewer.as_ref().map(|r| r.as_str()),
        reviewed_at: cmd.reviewer.as_ref().map(|_| DbAt(now)),
        review_comment: cmd.reviewer.as_ref().map(|_| cmd.comment.as_deref()),
    };
    let row: Option<VersionRow> =
        queries::review(DbId(cmd.version_id.as_uuid()), cmd.from.as_str(), &change)
            .get_result(c)
            .optional()?;
    let Some(row) = row else {
        // The status that refused it, read under the same row lock, names why.
        let stored: String =
            queries::version_status_by_id(DbId(cmd.version_id.as_uuid())).get_result(c)?;
        return Err(review_refusal(&stored, cmd.from, cmd.to).into());
    };
    let version = row.into_version()?;
    let (validated, status) = file_after_review(&state.file, version.number, cmd.to);
    queries::update_file_review(
        DbId(file_id.as_uuid()),
        validated.map(sql_number).transpose()?,
        status.as_str(),
        DbAt(now),
    )
    .execute(c)?;
    audit(c, now, cmd.audit, Some(file_id), Some(version.number))?;
    Ok((reread(c, file_id)?, version))
}

pub(crate) fn set_tags(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: SetTags,
) -> Result<FileRecord, TxError> {
    let state = lock_file(c, now, FileKey::Id(cmd.file_id))?.ok_or_else(file_not_found)?;
    check_set_tags(&state.file, &cmd.actor)?;
    queries::set_tags(
        DbId(cmd.file_id.as_uuid()),
        DbDoc(tags_json(&cmd.tags)),
        DbAt(now),
    )
    .execute(c)?;
    audit(
        c,
        now,
        cmd.audit,
        Some(cmd.file_id),
        Some(state.file.version),
    )?;
    reread(c, cmd.file_id)
}

pub(crate) fn set_archived(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: SetArchived,
) -> Result<FileRecord, TxError> {
    let state = lock_file(c, now, FileKey::Id(cmd.file_id))?.ok_or_else(file_not_found)?;
    let file = &state.file;
    check_set_archived(file, &cmd)?;
    let status = if cmd.archived {
        FileStatus::Archived
    } else {
        let latest: String =
            queries::version_status(DbId(cmd.file_id.as_uuid()), sql_number(file.version)?)
                .get_result(c)?;
        let latest = VersionStatus::from_stored(&latest).ok_or_else(|| {
            TxError::Repo(storage_diesel_common::error::corrupt("version status"))
        })?;
        file_status_following(latest)
    };
    queries::set_status(DbId(cmd.file_id.as_uuid()), status.as_str(), DbAt(now)).execute(c)?;
    audit(c, now, cmd.audit, Some(cmd.file_id), Some(file.version))?;
    reread(c, cmd.file_id)
}

fn deletions(rows: Vec<DeletionRow>) -> Result<Vec<PendingDeletion>, TxError> {
    Ok(rows
        .into_iter()
        .map(DeletionRow::into_deletion)
        .collect::<Result<_, _>>()?)
}

/// Queues the deletion of `keys` in `bucket` at `now`, in one statement.
fn queue(
    c: &mut Conn,
    bucket: &str,
    keys: &[String],
    not_before: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<PendingDeletion>, TxError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut queued = Vec::with_capacity(keys.len());
    for key in keys {
        let row: DeletionRow =
            queries::insert_deletion(&NewDeletion::of(bucket, key, not_before, now))
                .get_result(c)?;
        queued.push(row);
    }
    deletions(queued)
}

pub(crate) fn delete_file(
    c: &mut Conn,
    now: DateTime<Utc>,
    cmd: DeleteFile,
) -> Result<Vec<PendingDeletion>, TxError> {
    let state = lock_file(c, now, FileKey::Id(cmd.file_id))?.ok_or_else(file_not_found)?;
    let file = &state.file;
    check_not_locked_by_other(file, &cmd.actor)?;
    let keys: Vec<String> = queries::delete_versions(DbId(cmd.file_id.as_uuid())).get_results(c)?;
    // `locks` goes with the file (ON DELETE CASCADE).
    queries::delete_file(DbId(cmd.file_id.as_uuid())).execute(c)?;
    let queued = queue(c, file.bucket().as_str(), &keys, None, now)?;
    audit(c, now, cmd.audit, Some(cmd.file_id), Some(file.version))?;
    Ok(queued)
}

/// Counts a refusal on the newest identical one within the window, or appends it, at the unit
/// of work's time (SQLite's write lock serialises every refusal).
pub(crate) fn record_refusal(
    c: &mut Conn,
    now: DateTime<Utc>,
    (event, window): (AuditEvent, std::time::Duration),
) -> Result<(), TxError> {
    let newest: Option<AuditRow> = queries::newest_refusal(
        event.path.bucket().as_str(),
        event.path.as_str(),
        event.actor.as_str(),
        event.action.as_str(),
    )
    .get_result(c)
    .optional()?;
    if let Some(row) = newest {
        let earlier = row.into_event()?;
        if let Some(at) = repeated_refusal(&earlier, &event, window, now) {
            queries::count_repeat(DbId(earlier.id.as_uuid()), DbAt(at)).execute(c)?;
            return Ok(());
        }
    }
    let event = AuditEvent { at: now, ..event };
    queries::insert_audit(&NewAudit::of(&event)?).execute(c)?;
    Ok(())
}

// ---- reservations ------------------------------------------------------------------------

/// Stores a reservation; with a cap, first counts the author's open presigned uploads under
/// SQLite's write lock (no other reservation can be made between the count and the insert).
pub(crate) fn create_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    (r, max_open): (UploadReservation, Option<u32>),
) -> Result<(), TxError> {
    if let Some(limit) = max_open {
        let open: i64 = queries::open_uploads_of(r.created_by.as_str(), DbAt(now)).get_result(c)?;
        check_open_uploads(u64::try_from(open).unwrap_or(0), limit)?;
    }
    queries::insert_reservation(&NewReservation::of(&r)?).execute(c)?;
    Ok(())
}

pub(crate) fn extend_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    (id, expires_at): (UploadId, DateTime<Utc>),
) -> Result<(), TxError> {
    let n =
        queries::extend_reservation(DbId(id.as_uuid()), DbAt(expires_at), DbAt(now)).execute(c)?;
    if n == 0 {
        return Err(TxError::Repo(RepoError::UploadNotFound));
    }
    Ok(())
}

pub(crate) fn abandon_reservation(
    c: &mut Conn,
    now: DateTime<Utc>,
    id: UploadId,
) -> Result<Option<PendingDeletion>, TxError> {
    let gone: Option<(String, String)> = queries::abandon_reservation(DbId(id.as_uuid()))
        .get_result(c)
        .optional()?;
    let Some((bucket, key)) = gone else {
        return Ok(None);
    };
    Ok(queue(c, &bucket, &[key], None, now)?.into_iter().next())
}

// ---- janitor -----------------------------------------------------------------------------
// The one writer connection serialises janitors: no row can be claimed twice.

pub(crate) fn expire_reservations(
    c: &mut Conn,
    now: DateTime<Utc>,
    (keep_completed, limit): (std::time::Duration, u32),
) -> Result<u64, TxError> {
    let expired: Vec<(DbId, String, String)> = upload_reservations::table
        .select((
            upload_reservations::id,
            upload_reservations::bucket,
            upload_reservations::object_key,
        ))
        .filter(upload_reservations::completed_version.is_null())
        .filter(upload_reservations::expires_at.lt(DbAt(now)))
        .order(upload_reservations::expires_at)
        .limit(sql_limit(limit))
        .load(c)?;
    let mut queued = 0_u64;
    for (id, bucket, key) in expired {
        diesel::delete(upload_reservations::table.filter(upload_reservations::id.eq(id)))
            .execute(c)?;
        queue(c, &bucket, &[key], None, now)?;
        queued += 1;
    }
    let forgotten: Vec<DbId> = upload_reservations::table
        .select(upload_reservations::id)
        .filter(upload_reservations::completed_version.is_not_null())
        .filter(upload_reservations::completed_at.lt(DbAt(shifted(now, keep_completed, false)?)))
        .order(upload_reservations::completed_at)
        .limit(sql_limit(limit))
        .load(c)?;
    diesel::delete(upload_reservations::table.filter(upload_reservations::id.eq_any(forgotten)))
        .execute(c)?;
    Ok(queued)
}

pub(crate) fn claim_deletions(
    c: &mut Conn,
    now: DateTime<Utc>,
    (lease, limit): (std::time::Duration, u32),
) -> Result<Vec<PendingDeletion>, TxError> {
    // SQLite sorts NULL first in ascending order, as the claim wants.
    let due: Vec<DbId> = pending_deletions::table
        .select(pending_deletions::id)
        .filter(
            pending_deletions::leased_until
                .is_null()
                .or(pending_deletions::leased_until.le(DbAt(now))),
        )
        .order((
            pending_deletions::leased_until,
            pending_deletions::created_at,
        ))
        .limit(sql_limit(limit))
        .load(c)?;
    let leased_until = Some(DbAt(shifted(now, lease, true)?));
    let rows: Vec<DeletionRow> =
        diesel::update(pending_deletions::table.filter(pending_deletions::id.eq_any(due)))
            .set((
                pending_deletions::attempts.eq(pending_deletions::attempts + 1),
                pending_deletions::leased_until.eq(leased_until),
            ))
            .returning(DELETION_COLUMNS)
            .get_results(c)?;
    deletions(rows)
}

pub(crate) fn forget_deletion(
    c: &mut Conn,
    _: DateTime<Utc>,
    id: DeletionId,
) -> Result<(), TxError> {
    queries::forget_deletion(DbId(id.as_uuid())).execute(c)?;
    Ok(())
}

pub(crate) fn queue_deletions(
    c: &mut Conn,
    now: DateTime<Utc>,
    (objects, not_before): (Vec<(BucketKind, ObjectKey)>, Option<DateTime<Utc>>),
) -> Result<Vec<PendingDeletion>, TxError> {
    let mut queued = Vec::with_capacity(objects.len());
    for (bucket, key) in &objects {
        let row: DeletionRow = queries::insert_deletion(&NewDeletion::of(
            bucket.as_str(),
            key.as_str(),
            not_before,
            now,
        ))
        .get_result(c)?;
        queued.push(row);
    }
    deletions(queued)
}
