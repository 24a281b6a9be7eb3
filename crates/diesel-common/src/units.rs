//! The units of work of both metadata stores, written once ([`units!`](crate::units!)).
//!
//! Each unit of work runs in one transaction, which its adapter opens, commits or rolls back;
//! the audit event of a change is written in the same transaction, at the unit of work's `now`.
//! Each locks the row of the file it decides on first (`lock_file`), reads the file with its
//! lock row as stored (live or expired) and the unit's time ([`FileState`](crate::rows::FileState)),
//! asks the domain's decision functions (`storage_domain::rules::store`) and writes with the
//! statements of [`crate::queries`]. Every change of a lock holds the file row too, so writes and
//! lock changes of one file are ordered; a unit that locks two files locks the workspace copy
//! first (a commit locks its source, then its target; a checkout its target, then the source).
//!
//! Why that is enough differs by dialect, and each part lives in its adapter's `writes.rs`,
//! beside the hooks it answers:
//!
//! - **PostgreSQL** (READ COMMITTED): `lock_file` takes the file row `FOR UPDATE` (waiting for
//!   any other unit of work on it), then reads the file and its lock row in a statement of its
//!   own, which sees every change committed before it started, including a lock taken or
//!   released while the transaction waited for the row (a `SELECT … JOIN locks … FOR UPDATE OF
//!   files` that waited would return the lock row of its pre-wait snapshot). A reservation is
//!   row-locked before it is completed; the decisions on a key with no row (a user's open
//!   uploads) are serialised by an advisory lock; `now` is the transaction's `now()`. A new
//!   reservation runs its transaction itself, pipelined (`reserve`: two round trips with a
//!   cap, one statement without).
//! - **SQLite**: a unit of work runs in a `BEGIN IMMEDIATE` transaction on the one writer
//!   connection, so it holds SQLite's write lock from its first statement: the rows its
//!   decision reads cannot change before it writes, and no other unit of work runs meanwhile.
//!   Locking a row, or serialising on a key, is nothing more; `now` is the store's clock, read
//!   once when the transaction starts.

use chrono::{DateTime, Utc};
use storage_domain::model::{FileId, FilePath, PendingDeletion, VersionId};
use storage_domain::ports::RepoError;
use storage_domain::rules::store::{check_open_uploads, check_reservation};

use crate::error::TxError;
use crate::rows::{DeletionRow, ReservationRow};

/// Which file a unit of work locks.
#[derive(Debug, Clone, Copy)]
pub enum FileKey<'a> {
    Id(FileId),
    Path(&'a FilePath),
}

/// The cap on a user's open presigned uploads (`MAX_OPEN_UPLOADS_PER_USER`) that a new
/// reservation must stay under: a decision on a key with no row to lock, so the units of work
/// on one author's open uploads must take it one after the other (each dialect's `reserve`
/// serialises them), counting what the author holds open at the unit's time.
#[derive(Debug, Clone, Copy)]
pub struct OpenUploadsCap<'a> {
    /// The reservation's author, whose open presigned uploads are counted.
    pub author: &'a str,
    /// The most they may hold open.
    pub limit: u32,
}

impl OpenUploadsCap<'_> {
    /// The domain's decision (`check_open_uploads`) on `open`, the author's open presigned
    /// uploads as counted under the serialisation (`queries::open_uploads_of`).
    ///
    /// # Errors
    /// `TooManyOpenUploads` when the author holds `limit` or more.
    pub fn check(&self, open: i64) -> Result<(), TxError> {
        Ok(check_open_uploads(
            u64::try_from(open).unwrap_or(0),
            self.limit,
        )?)
    }
}

/// The reservation read under its row lock, if it is open and unexpired at `now`.
///
/// # Errors
/// The domain's refusal (`check_reservation`) when it is missing, completed or expired.
pub fn open_reservation(
    row: Option<ReservationRow>,
    now: DateTime<Utc>,
) -> Result<ReservationRow, TxError> {
    check_reservation(row.as_ref().map(|r| {
        (
            r.completed_version
                .clone()
                .map(|v| VersionId::from_uuid(v.0)),
            r.expires_at.0 > now,
        )
    }))?;
    row.ok_or(TxError::Repo(RepoError::UploadNotFound))
}

/// Queued deletions as the port returns them.
///
/// # Errors
/// `Internal` for a row the domain cannot read.
pub fn deletions(rows: Vec<DeletionRow>) -> Result<Vec<PendingDeletion>, TxError> {
    Ok(rows
        .into_iter()
        .map(DeletionRow::into_deletion)
        .collect::<Result<_, _>>()?)
}

/// The units of work, for one connection type: expanded in a module of each adapter whose
/// parent (`use super::*`) provides
///
/// - `Conn`, the connection, and a `RunQueryDsl` for it whose methods return futures
///   (`diesel_async::RunQueryDsl`, or [`crate::blocking::RunQueryDsl`] on a blocking
///   connection);
/// - `Work<'c, T>`, the boxed future of a unit of work borrowing the connection;
/// - `Clock`, what the dialect knows of the unit's time before its first statement, with the
///   store's audit chain setting in its field `chain` (`storage_domain::rules::chain::AuditChain`;
///   with the chain off, `lock_file` reads no chain head) and whether the store publishes events
///   (`clock.publishes()`: `EVENTS_ENABLED`), and the hooks where the dialects differ (see the
///   module docs): `unit_now(c, &clock)`, `lock_file(c, &clock, FileKey)`,
///   `lock_reservation(c, DbId)`, `reserve(c, &NewReservation, Option<OpenUploadsCap>)`
///   (which runs its own transaction on PostgreSQL), `insert_deletions(c, &[NewDeletion])`,
///   `upsert_refusal(c, &NewAudit)`, `insert_event(c, &NewAudit, Option<&NewOutbox>)` (a
///   change's audit row and its outbox row) and `find_file_by_id(c, FileId)` (the read), each an
///   `async fn` returning `Result<_, TxError>`.
///
/// Each unit of work is `fn(&mut Conn, Clock, D) -> Work<'_, T>`.
#[macro_export]
macro_rules! units {
    () => {
        use ::chrono::{DateTime, Utc};
        use ::diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
        use ::storage_domain::model::{
            AuditDraft, AuditEvent, AuditOutcome, BucketKind, CheckoutTicket, DeletionId, FileId,
            FileRecord, FileStatus, Lock, ObjectKey, PendingDeletion, UploadId, UploadReservation,
            Version, VersionNumber, VersionStatus,
        };
        use ::storage_domain::ports::{
            AcquireLock, Checkout, DeleteFile, NewVersion, ReleaseLock, RepoError,
            ReviewTransition, SetArchived, SetTags, WriteMode, file_status_following,
        };
        use ::storage_domain::rules::chain::ChainHead;
        use ::storage_domain::rules::events::{EventFacts, change_event};
        use ::storage_domain::rules::store::{
            LockAfterVersion, UnlockDecision, check_new_file, check_not_locked_by_other,
            check_set_archived, check_set_tags, check_write, decide_lock,
            decide_unlock, file_after_review, file_not_found, lock_after_version, next_number,
            refusal_window, release_audit, ticket_after_commit,
        };
        use $crate::error::TxError;
        use $crate::queries::{
            self, FileAfterVersion, NewAudit, NewDeletion, NewFile, NewLock, NewOutbox,
            NewReservation, NewVersionRow, ReviewChange,
        };
        use $crate::rows::{VersionRow, review_refusal, sql_number, tags_json};
        use $crate::schema::versions;
        use $crate::sql_types::{DbAt, DbDoc, DbId};
        use $crate::units::{FileKey, OpenUploadsCap, deletions, open_reservation};
        use $crate::{insert_file, store_lock};

        /// Appends the audit event of a change at the unit of work's time: the outbox record of
        /// its event (type and `data`) and the next link of the file's chain after `head`, read
        /// under the file's row lock (`lock_file`), which the unit holds (one statement: the
        /// chain costs a hash, no round trip). Every unit of work records its change here.
        /// With the store's chain off (`clock.chain`, `AUDIT_CHAIN=off`) the event is written
        /// unchained and `head` is handed back unchanged.
        /// Returns the chain's new head: a unit that records several events in one file's
        /// chain links each after the one before. An event with a type is queued for delivery
        /// by a row in the outbox (`event_outbox`) written with it (`insert_event`); with
        /// publishing off (`EVENTS_ENABLED=false`, `clock.publishes()`), the event is written the
        /// same (its type, data and link) but not queued.
        #[allow(clippy::too_many_arguments)]
        async fn audit(
            c: &mut Conn,
            clock: &Clock,
            now: DateTime<Utc>,
            draft: AuditDraft,
            (file_id, head): (FileId, &ChainHead),
            version: Option<VersionNumber>,
            facts: EventFacts,
            data: ::serde_json::Value,
        ) -> Result<ChainHead, TxError> {
            let data = match data {
                ::serde_json::Value::Object(map) => map,
                _ => ::serde_json::Map::new(),
            };
            let chain = &clock.chain;
            let event = change_event(draft, file_id, version, now, facts, data, (chain, head));
            let row = NewAudit::of(&event)?;
            let queued = if clock.publishes() {
                NewOutbox::of(&event)?
            } else {
                None
            };
            insert_event(c, &row, queued.as_ref()).await?;
            chain.head_after(&event, head).ok_or_else(|| {
                TxError::Repo(RepoError::Internal("a change's event left unlinked".into()))
            })
        }

        /// A lock as events show it.
        fn lock_data(lock: &Lock) -> ::serde_json::Value {
            ::serde_json::json!({
                "holder": lock.holder.as_str(),
                "acquired_at": lock.acquired_at.to_rfc3339_opts(::chrono::SecondsFormat::Micros, true),
                "expires_at": lock.expires_at.to_rfc3339_opts(::chrono::SecondsFormat::Micros, true),
                "base_version": lock.base_version.get(),
            })
        }

        /// The file with this id after a change (with its live lock).
        async fn reread(c: &mut Conn, id: FileId) -> Result<FileRecord, TxError> {
            find_file_by_id(c, id).await?.ok_or_else(|| {
                TxError::Repo(RepoError::Internal(
                    "file vanished in its transaction".into(),
                ))
            })
        }

        /// Stores `lock` as the file's lock row (the decision was taken by the caller).
        async fn store_lock(c: &mut Conn, file: &FileRecord, lock: &Lock) -> Result<(), TxError> {
            let row = NewLock::of(file, lock)?;
            store_lock!(&row).execute(c).await?;
            Ok(())
        }

        /// Records a file's checkout ticket.
        async fn set_ticket(
            c: &mut Conn,
            file_id: FileId,
            ticket: &CheckoutTicket,
        ) -> Result<(), TxError> {
            queries::set_ticket(
                DbId(file_id.as_uuid()),
                DbId(ticket.file_id.as_uuid()),
                ticket.path.as_str(),
                sql_number(ticket.version)?,
            )
            .execute(c)
            .await?;
            Ok(())
        }

        /// Checks the reservation is open and unexpired at `now` (row-locked until the
        /// transaction ends); returns it.
        async fn reservation_open(
            c: &mut Conn,
            id: UploadId,
            now: DateTime<Utc>,
        ) -> Result<$crate::rows::ReservationRow, TxError> {
            let row = lock_reservation(c, DbId(id.as_uuid())).await?;
            open_reservation(row, now)
        }

        /// Queues the deletion of `keys` in `bucket` at `now`.
        async fn queue(
            c: &mut Conn,
            bucket: &str,
            keys: &[String],
            not_before: Option<DateTime<Utc>>,
            now: DateTime<Utc>,
        ) -> Result<Vec<PendingDeletion>, TxError> {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let rows: Vec<NewDeletion<'_>> = keys
                .iter()
                .map(|k| NewDeletion::of(bucket, k, not_before, now))
                .collect();
            deletions(insert_deletions(c, &rows).await?)
        }

        pub(crate) fn acquire_lock(c: &mut Conn, clock: Clock, cmd: AcquireLock) -> Work<'_, Lock> {
            Box::pin(async move {
                let state = lock_file(c, &clock, FileKey::Id(cmd.file_id))
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
                audit(c, &clock,
                    state.now,
                    cmd.audit,
                    (cmd.file_id, &state.head),
                    Some(lock.base_version),
                    EventFacts::default(),
                    lock_data(&lock),
                )
                .await?;
                Ok(lock)
            })
        }

        pub(crate) fn release_lock(
            c: &mut Conn,
            clock: Clock,
            cmd: ReleaseLock,
        ) -> Work<'_, Option<Lock>> {
            Box::pin(async move {
                let state = lock_file(c, &clock, FileKey::Id(cmd.file_id))
                    .await?
                    .ok_or_else(file_not_found)?;
                match decide_unlock(state.stored_lock.as_ref(), &cmd, state.now)? {
                    UnlockDecision::NotLocked => Ok(None),
                    UnlockDecision::Release(lock) => {
                        queries::delete_lock(DbId(cmd.file_id.as_uuid()))
                            .execute(c)
                            .await?;
                        let draft = release_audit(&lock, &cmd);
                        audit(c, &clock,
                            state.now,
                            draft,
                            (cmd.file_id, &state.head),
                            Some(lock.base_version),
                            EventFacts::default(),
                            lock_data(&lock),
                        )
                        .await?;
                        Ok(Some(lock))
                    }
                }
            })
        }

        pub(crate) fn commit_version(
            c: &mut Conn,
            clock: Clock,
            cmd: NewVersion,
        ) -> Work<'_, (FileRecord, Version)> {
            Box::pin(async move {
                let now = unit_now(c, &clock).await?;
                reservation_open(c, cmd.reservation, now).await?;
                let completes = match cmd.completes {
                    Some(upload) => Some(reservation_open(c, upload, now).await?),
                    None => None,
                };
                // A commit's source, the workspace copy, first: every unit of work that locks
                // two files locks the workspace copy first (a checkout locks its target, then
                // the source).
                let source = match cmd.mode {
                    WriteMode::Commit { source, .. } => Some(
                        lock_file(c, &clock, FileKey::Id(source))
                            .await?
                            .ok_or_else(file_not_found)?,
                    ),
                    WriteMode::Upsert { .. } | WriteMode::Restore { .. } => None,
                };
                let ticket = source.as_ref().and_then(|s| s.file.checkout.as_ref());

                // The target file; created when the path is free.
                let mut existing = lock_file(c, &clock, FileKey::Path(&cmd.path)).await?;
                let mut created = false;
                if existing.is_none() {
                    check_new_file(&cmd.mode)?;
                    let row = NewFile::first(&cmd, now)?;
                    if insert_file!(&row).execute(c).await? == 1 {
                        created = true;
                    } else {
                        // Another first upload of this path won the race: it is now an
                        // existing file.
                        existing = lock_file(c, &clock, FileKey::Path(&cmd.path)).await?;
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
                        .returning(versions::all_columns)
                        .get_result(c)
                        .await?;

                if let Some(state) = existing.as_ref().filter(|_| !created) {
                    queries::update_file_after_version(
                        DbId(file_id.as_uuid()),
                        &FileAfterVersion::of(&cmd, number, now)?,
                    )
                    .execute(c)
                    .await?;
                    match lock_after_version(
                        state.stored_lock.as_ref(),
                        &cmd.author,
                        cmd.mode,
                        number,
                    ) {
                        LockAfterVersion::Unchanged => {}
                        LockAfterVersion::Released => {
                            queries::delete_lock(DbId(file_id.as_uuid()))
                                .execute(c)
                                .await?;
                        }
                        LockAfterVersion::Rebased(base) => {
                            queries::rebase_lock(DbId(file_id.as_uuid()), sql_number(base)?)
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

                let version_id = DbId(cmd.version_id.as_uuid());
                queries::complete_reservation(
                    DbId(cmd.reservation.as_uuid()),
                    version_id.clone(),
                    DbAt(now),
                )
                .execute(c)
                .await?;
                if let Some(upload) = &completes {
                    queries::complete_reservation(upload.id.clone(), version_id, DbAt(now))
                        .execute(c)
                        .await?;
                    // Its URL can write the staging object until the reservation expires.
                    queries::insert_deletion(&NewDeletion::of(
                        &upload.bucket,
                        &upload.object_key,
                        Some(upload.expires_at.0),
                        now,
                    ))
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
                    let state = lock_file(c, &clock, FileKey::Id(other))
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
                    let mut data = lock_data(&lock);
                    data["workspace_path"] = cmd.path.as_str().into();
                    audit(c, &clock,
                        now,
                        draft,
                        (other, &state.head),
                        Some(base_version),
                        EventFacts::default(),
                        data,
                    )
                    .await?;
                }
                let head = existing
                    .as_ref()
                    .filter(|_| !created)
                    .map(|s| s.head.clone())
                    .unwrap_or_default();
                let facts = EventFacts {
                    file_created: created,
                    upload_completed: cmd.completes.is_some(),
                };
                let data = ::serde_json::json!({
                    "version_id": cmd.version_id.to_string(),
                    "size": cmd.size,
                    "sha256": cmd.sha256,
                    "content_type": cmd.content_type,
                    "status": cmd.status.as_str(),
                    "message": cmd.message,
                    "restored_from": cmd.mode.restored_from().map(VersionNumber::get),
                });
                audit(c, &clock, now, cmd.audit, (file_id, &head), Some(number), facts, data).await?;

                let file = reread(c, file_id).await?;
                Ok((file, version_row.into_version()?))
            })
        }

        pub(crate) fn review_version(
            c: &mut Conn,
            clock: Clock,
            cmd: ReviewTransition,
        ) -> Work<'_, (FileRecord, Version)> {
            Box::pin(async move {
                let version_not_found = || TxError::Repo(RepoError::VersionNotFound);
                let owner: DbId = versions::table
                    .select(versions::file_id)
                    .filter(versions::id.eq(DbId(cmd.version_id.as_uuid())))
                    .get_result(c)
                    .await
                    .optional()?
                    .ok_or_else(version_not_found)?;
                let file_id = FileId::from_uuid(owner.0);
                // The file row first (the order every unit of work follows), then the decision.
                let state = lock_file(c, &clock, FileKey::Id(file_id))
                    .await?
                    .ok_or_else(version_not_found)?;
                let now = state.now;
                let change = ReviewChange {
                    status: cmd.to.as_str(),
                    reviewed_by: cmd.reviewer.as_ref().map(|r| r.as_str()),
                    reviewed_at: cmd.reviewer.as_ref().map(|_| DbAt(now)),
                    review_comment: cmd.reviewer.as_ref().map(|_| cmd.comment.as_deref()),
                };
                let row: Option<VersionRow> =
                    queries::review(DbId(cmd.version_id.as_uuid()), cmd.from.as_str(), &change)
                        .get_result(c)
                        .await
                        .optional()?;
                let Some(row) = row else {
                    // The status that refused it, read under the same row lock, names why.
                    let stored: String =
                        queries::version_status_by_id(DbId(cmd.version_id.as_uuid()))
                            .get_result(c)
                            .await?;
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
                .execute(c)
                .await?;
                let data = ::serde_json::json!({
                    "version_id": cmd.version_id.to_string(),
                    "status": cmd.to.as_str(),
                    "reviewer": cmd.reviewer.as_ref().map(|r| r.as_str()),
                });
                audit(c, &clock,
                    now,
                    cmd.audit,
                    (file_id, &state.head),
                    Some(version.number),
                    EventFacts::default(),
                    data,
                )
                .await?;
                Ok((reread(c, file_id).await?, version))
            })
        }

        pub(crate) fn set_tags(c: &mut Conn, clock: Clock, cmd: SetTags) -> Work<'_, FileRecord> {
            Box::pin(async move {
                let state = lock_file(c, &clock, FileKey::Id(cmd.file_id))
                    .await?
                    .ok_or_else(file_not_found)?;
                check_set_tags(&state.file, &cmd.actor)?;
                queries::set_tags(
                    DbId(cmd.file_id.as_uuid()),
                    DbDoc(tags_json(&cmd.tags)),
                    DbAt(state.now),
                )
                .execute(c)
                .await?;
                audit(c, &clock,
                    state.now,
                    cmd.audit,
                    (cmd.file_id, &state.head),
                    Some(state.file.version),
                    EventFacts::default(),
                    ::serde_json::json!({ "tags": tags_json(&cmd.tags) }),
                )
                .await?;
                reread(c, cmd.file_id).await
            })
        }

        pub(crate) fn set_archived(
            c: &mut Conn,
            clock: Clock,
            cmd: SetArchived,
        ) -> Work<'_, FileRecord> {
            Box::pin(async move {
                let state = lock_file(c, &clock, FileKey::Id(cmd.file_id))
                    .await?
                    .ok_or_else(file_not_found)?;
                let file = &state.file;
                check_set_archived(file, &cmd)?;
                let status = if cmd.archived {
                    FileStatus::Archived
                } else {
                    let latest: String = queries::version_status(
                        DbId(cmd.file_id.as_uuid()),
                        sql_number(file.version)?,
                    )
                    .get_result(c)
                    .await?;
                    let latest = VersionStatus::from_stored(&latest)
                        .ok_or_else(|| TxError::Repo($crate::error::corrupt("version status")))?;
                    file_status_following(latest)
                };
                queries::set_status(
                    DbId(cmd.file_id.as_uuid()),
                    status.as_str(),
                    DbAt(state.now),
                )
                .execute(c)
                .await?;
                audit(c, &clock,
                    state.now,
                    cmd.audit,
                    (cmd.file_id, &state.head),
                    Some(file.version),
                    EventFacts::default(),
                    ::serde_json::json!({ "status": status.as_str() }),
                )
                .await?;
                reread(c, cmd.file_id).await
            })
        }

        pub(crate) fn delete_file(
            c: &mut Conn,
            clock: Clock,
            cmd: DeleteFile,
        ) -> Work<'_, Vec<PendingDeletion>> {
            Box::pin(async move {
                let state = lock_file(c, &clock, FileKey::Id(cmd.file_id))
                    .await?
                    .ok_or_else(file_not_found)?;
                let file = &state.file;
                check_not_locked_by_other(file, &cmd.actor)?;
                let keys: Vec<String> = queries::delete_versions(DbId(cmd.file_id.as_uuid()))
                    .get_results(c)
                    .await?;
                // `locks` goes with the file (ON DELETE CASCADE).
                queries::delete_file(DbId(cmd.file_id.as_uuid()))
                    .execute(c)
                    .await?;
                let queued = queue(c, file.bucket().as_str(), &keys, None, state.now).await?;
                audit(c, &clock,
                    state.now,
                    cmd.audit,
                    (cmd.file_id, &state.head),
                    Some(file.version),
                    EventFacts::default(),
                    ::serde_json::json!({ "versions": keys.len() }),
                )
                .await?;
                Ok(queued)
            })
        }

        /// Records a refusal at its own time, or counts it on the event of its actor, action,
        /// path and fixed window (`refusal_window`): one statement (`upsert_refusal`).
        pub(crate) fn record_refusal(
            c: &mut Conn,
            clock: Clock,
            (event, window): (AuditEvent, ::std::time::Duration),
        ) -> Work<'_, ()> {
            Box::pin(async move {
                // Sealed here, with the store's chain setting (unsealed when it is off).
                let event = clock.chain.seal(event);
                let row = NewAudit::refusal(&event, refusal_window(&event, window))?;
                upsert_refusal(c, &row).await
            })
        }

        /// Stores a reservation; with a cap, only if the author's open presigned uploads,
        /// counted serialised on the author (no other reservation of theirs between count and
        /// insert), leave room for it (`OpenUploadsCap::check`). How the dialect serialises,
        /// and in how many round trips, is its `reserve`.
        pub(crate) fn create_reservation(
            c: &mut Conn,
            _: Clock,
            (r, max_open): (UploadReservation, Option<u32>),
        ) -> Work<'_, ()> {
            Box::pin(async move {
                let row = NewReservation::of(&r)?;
                let cap = max_open.map(|limit| OpenUploadsCap {
                    author: r.created_by.as_str(),
                    limit,
                });
                reserve(c, &row, cap).await
            })
        }

        pub(crate) fn extend_reservation(
            c: &mut Conn,
            clock: Clock,
            (id, expires_at): (UploadId, DateTime<Utc>),
        ) -> Work<'_, ()> {
            Box::pin(async move {
                let now = unit_now(c, &clock).await?;
                let n =
                    queries::extend_reservation(DbId(id.as_uuid()), DbAt(expires_at), DbAt(now))
                        .execute(c)
                        .await?;
                if n == 0 {
                    return Err(TxError::Repo(RepoError::UploadNotFound));
                }
                Ok(())
            })
        }

        pub(crate) fn abandon_reservation(
            c: &mut Conn,
            clock: Clock,
            id: UploadId,
        ) -> Work<'_, Option<PendingDeletion>> {
            Box::pin(async move {
                let gone: Option<(String, String)> =
                    queries::abandon_reservation(DbId(id.as_uuid()))
                        .get_result(c)
                        .await
                        .optional()?;
                let Some((bucket, key)) = gone else {
                    return Ok(None);
                };
                let now = unit_now(c, &clock).await?;
                Ok(queue(c, &bucket, &[key], None, now)
                    .await?
                    .into_iter()
                    .next())
            })
        }

        pub(crate) fn forget_deletion(c: &mut Conn, _: Clock, id: DeletionId) -> Work<'_, ()> {
            Box::pin(async move {
                queries::forget_deletion(DbId(id.as_uuid()))
                    .execute(c)
                    .await?;
                Ok(())
            })
        }

        pub(crate) fn queue_deletions(
            c: &mut Conn,
            clock: Clock,
            (objects, not_before): (Vec<(BucketKind, ObjectKey)>, Option<DateTime<Utc>>),
        ) -> Work<'_, Vec<PendingDeletion>> {
            Box::pin(async move {
                if objects.is_empty() {
                    return Ok(Vec::new());
                }
                let now = unit_now(c, &clock).await?;
                let rows: Vec<NewDeletion<'_>> = objects
                    .iter()
                    .map(|(b, k)| NewDeletion::of(b.as_str(), k.as_str(), not_before, now))
                    .collect();
                deletions(insert_deletions(c, &rows).await?)
            })
        }

        /// Records a dispatch pass's outcomes (`settle_events`); their claims' lease ends. The
        /// delivered events in one statement, the released ones in another (their claim's
        /// attempt not counted), each failure in one of its own (its time and error).
        pub(crate) fn settle_events(
            c: &mut Conn,
            _: Clock,
            outcomes: Vec<(::storage_domain::model::AuditId, ::storage_domain::ports::Settlement)>,
        ) -> Work<'_, ()> {
            Box::pin(async move {
                use ::storage_domain::ports::Settlement;
                let mut delivered = Vec::new();
                let mut released = Vec::new();
                for (id, settlement) in &outcomes {
                    let id = DbId(id.as_uuid());
                    match settlement {
                        Settlement::Delivered => delivered.push(id),
                        Settlement::Released => released.push(id),
                        Settlement::Retry { at, error, acked } => {
                            let acked = acked_json(acked)?;
                            queries::settle_event(
                                id,
                                "pending",
                                Some(DbAt(*at)),
                                Some(error.as_str()),
                                acked.as_deref(),
                            )
                            .execute(c)
                            .await?;
                        }
                        Settlement::Dead { error, acked } => {
                            let acked = acked_json(acked)?;
                            queries::settle_event(
                                id,
                                "dead",
                                None,
                                Some(error.as_str()),
                                acked.as_deref(),
                            )
                            .execute(c)
                            .await?;
                        }
                    }
                }
                if !delivered.is_empty() {
                    queries::settle_delivered(delivered).execute(c).await?;
                }
                if !released.is_empty() {
                    queries::release_events(released).execute(c).await?;
                }
                Ok(())
            })
        }

        /// The sinks that acknowledged an event as stored: a JSON array, NULL for none.
        fn acked_json(acked: &[String]) -> Result<Option<String>, TxError> {
            if acked.is_empty() {
                return Ok(None);
            }
            ::serde_json::to_string(acked)
                .map(Some)
                .map_err(|e| TxError::Repo(RepoError::Internal(format!("acked sinks: {e}"))))
        }

        /// Puts dead events back in the queue, due at the store's time.
        pub(crate) fn retry_events(
            c: &mut Conn,
            clock: Clock,
            ids: Option<Vec<::storage_domain::model::AuditId>>,
        ) -> Work<'_, u64> {
            Box::pin(async move {
                let now = DbAt(unit_now(c, &clock).await?);
                let n = match ids {
                    None => queries::retry_dead(now).execute(c).await?,
                    Some(ids) => {
                        let mut n = 0;
                        for id in ids {
                            n += queries::retry_dead_one(DbId(id.as_uuid()), now.clone())
                                .execute(c)
                                .await?;
                        }
                        n
                    }
                };
                Ok(u64::try_from(n).unwrap_or(0))
            })
        }
    };
}

/// The reads of both stores, for one connection type: expanded in each adapter's `reads`
/// module, which provides `Conn` and a `RunQueryDsl` for it whose methods return futures
/// (`diesel_async::RunQueryDsl`, or [`crate::blocking::RunQueryDsl`] on a blocking
/// connection). Each read is one statement of [`crate::queries`] (or `storage_diesel_common::reviews`);
/// reads return live locks only, judged by the store's `now()` read in the same statement.
#[macro_export]
macro_rules! reads {
    () => {
        use ::diesel::OptionalExtension;
        use ::storage_domain::model::{
            AuditEvent, DirPath, FileId, FilePath, FileRecord, UploadId, UploadReservation,
            Version, VersionId, VersionNumber, VersionSelector,
        };
        use ::storage_domain::ports::{
            AuditCursor, AuditScope, LockedFile, PendingReview, RepoError, ReviewCursor,
        };
        use $crate::error::TxError;
        use $crate::listing::prefix_upper_bound;
        use $crate::queries;
        use $crate::reviews::{into_reviews, page_bounds, pending_reviews};
        use $crate::rows::{
            AuditRow, FileLockRow, FileVersionRow, LockedFileRow, OutboxRow, ReservationRow,
            VersionRow, file_record, file_with_version, selector_binds, sql_limit, versions_upto,
        };
        use $crate::sql_types::DbId;

        /// The file at `path`, with its live lock (a read: units of work use `lock_file`).
        pub(crate) async fn find_file(
            c: &mut Conn,
            path: &FilePath,
        ) -> Result<Option<FileRecord>, TxError> {
            let row: Option<FileLockRow> =
                queries::file_by_path(path.bucket().as_str(), path.as_str())
                    .get_result(c)
                    .await
                    .optional()?;
            Ok(row.map(file_record).transpose()?)
        }

        /// The file with this id, with its live lock (a read, or a re-read after a change).
        pub(crate) async fn find_file_by_id(
            c: &mut Conn,
            id: FileId,
        ) -> Result<Option<FileRecord>, TxError> {
            let row: Option<FileLockRow> = queries::file_by_id(DbId(id.as_uuid()))
                .get_result(c)
                .await
                .optional()?;
            Ok(row.map(file_record).transpose()?)
        }

        /// A version and its file, in one statement.
        pub(crate) async fn find_version(
            c: &mut Conn,
            id: VersionId,
        ) -> Result<Option<(FileRecord, Version)>, TxError> {
            let row: Option<(VersionRow, FileLockRow)> =
                queries::version_with_file(DbId(id.as_uuid()))
                    .get_result(c)
                    .await
                    .optional()?;
            Ok(row
                .map(|(v, f)| Ok::<_, RepoError>((file_record(f)?, v.into_version()?)))
                .transpose()?)
        }

        /// The file at `path` with its live lock and the version `selector` picks, in one
        /// statement.
        pub(crate) async fn find_file_version(
            c: &mut Conn,
            path: &FilePath,
            selector: VersionSelector,
        ) -> Result<Option<(FileRecord, Option<Version>)>, TxError> {
            let (number, validated) = selector_binds(selector)?;
            let row: Option<FileVersionRow> = queries::file_with_version(
                path.bucket().as_str(),
                path.as_str(),
                number,
                validated,
            )
            .get_result(c)
            .await
            .optional()?;
            Ok(row.map(file_with_version).transpose()?)
        }

        /// A page of a file's versions, newest first, below `before`: one statement.
        pub(crate) async fn list_versions(
            c: &mut Conn,
            file_id: FileId,
            before: Option<VersionNumber>,
            limit: u32,
        ) -> Result<Vec<Version>, TxError> {
            let rows: Vec<VersionRow> = queries::versions_page(
                DbId(file_id.as_uuid()),
                versions_upto(before)?,
                sql_limit(limit),
            )
            .load(c)
            .await?;
            Ok(rows
                .into_iter()
                .map(VersionRow::into_version)
                .collect::<Result<_, _>>()?)
        }

        /// Live locks under `dir`, by path: one range of `locks_bucket_path_idx`.
        pub(crate) async fn list_locks(
            c: &mut Conn,
            dir: &DirPath,
            after: Option<String>,
            limit: u32,
        ) -> Result<Vec<LockedFile>, TxError> {
            let upper = prefix_upper_bound(dir.as_str());
            // Every path under `dir` is longer than `dir`, so `> dir` starts at the first of
            // them.
            let after = after.unwrap_or_else(|| dir.as_str().to_owned());
            let rows: Vec<LockedFileRow> = queries::live_locks(
                dir.bucket().as_str(),
                dir.as_str(),
                &upper,
                &after,
                sql_limit(limit),
            )
            .load(c)
            .await?;
            Ok(rows
                .into_iter()
                .map(LockedFileRow::into_locked_file)
                .collect::<Result<_, _>>()?)
        }

        /// Audit events newest first, keyset on `(at, id)`.
        pub(crate) async fn list_audit(
            c: &mut Conn,
            scope: &AuditScope,
            before: Option<AuditCursor>,
            limit: u32,
        ) -> Result<Vec<AuditEvent>, TxError> {
            let rows: Vec<AuditRow> = $crate::audit_page!(scope, before, sql_limit(limit))
                .load(c)
                .await?;
            Ok(rows
                .into_iter()
                .map(AuditRow::into_event)
                .collect::<Result<_, _>>()?)
        }

        /// A page of the audit chains, in `(file_id, seq)` order.
        pub(crate) async fn audit_chain(
            c: &mut Conn,
            bucket: Option<::storage_domain::model::BucketKind>,
            after: Option<(FileId, u64)>,
            limit: u32,
        ) -> Result<Vec<AuditEvent>, TxError> {
            let rows: Vec<AuditRow> = $crate::audit_chain_page!(bucket, after, sql_limit(limit))
                .load(c)
                .await?;
            Ok(rows
                .into_iter()
                .map(AuditRow::into_event)
                .collect::<Result<_, _>>()?)
        }

        /// A page of the events outside every chain, by id.
        pub(crate) async fn audit_unchained(
            c: &mut Conn,
            bucket: Option<::storage_domain::model::BucketKind>,
            after: Option<::storage_domain::model::AuditId>,
            limit: u32,
        ) -> Result<Vec<AuditEvent>, TxError> {
            let rows: Vec<AuditRow> =
                $crate::audit_unchained_page!(bucket, after, sql_limit(limit))
                    .load(c)
                    .await?;
            Ok(rows
                .into_iter()
                .map(AuditRow::into_event)
                .collect::<Result<_, _>>()?)
        }

        /// Events in a delivery state, oldest first.
        pub(crate) async fn list_events(
            c: &mut Conn,
            state: ::storage_domain::ports::DeliveryState,
            limit: u32,
        ) -> Result<Vec<::storage_domain::ports::OutboxEvent>, TxError> {
            let rows: Vec<(OutboxRow, AuditRow)> =
                queries::events_in(state.as_str(), sql_limit(limit))
                    .load(c)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(queued, event)| queued.into_outbox(event))
                .collect::<Result<_, _>>()?)
        }

        /// Claimed events by id (after a dialect's claim statement returned their ids), in
        /// the order of their time. Two reads by primary key, joined here: a join in SQL let
        /// PostgreSQL's generic plan scan the outbox table, which a busy dispatcher's deletes
        /// leave full of dead rows between two vacuums (4.8 ms a pass of ~50 events, measured
        /// with pg_stat_statements during `storage-bench events`).
        pub(crate) async fn events_by_id(
            c: &mut Conn,
            ids: Vec<DbId>,
        ) -> Result<Vec<::storage_domain::ports::OutboxEvent>, TxError> {
            let queued: Vec<OutboxRow> = queries::outbox_rows(ids.clone()).load(c).await?;
            let events: Vec<AuditRow> = queries::audit_rows(ids).load(c).await?;
            let mut queued: ::std::collections::HashMap<_, _> =
                queued.into_iter().map(|q| (q.event_id.0, q)).collect();
            let mut out = Vec::with_capacity(events.len());
            for event in events {
                let q = queued.remove(&event.id.0).ok_or_else(|| {
                    TxError::Repo(RepoError::Internal(
                        "a claimed event left the outbox".into(),
                    ))
                })?;
                out.push(q.into_outbox(event)?);
            }
            Ok(out)
        }

        /// An upload reservation.
        pub(crate) async fn find_reservation(
            c: &mut Conn,
            id: UploadId,
        ) -> Result<Option<UploadReservation>, TxError> {
            let row: Option<ReservationRow> = queries::reservation_by_id(DbId(id.as_uuid()))
                .get_result(c)
                .await
                .optional()?;
            Ok(row.map(ReservationRow::into_reservation).transpose()?)
        }

        /// The review queue (`MetadataStore::list_pending_reviews`): one statement
        /// (`storage_diesel_common::reviews`), the versions with their files and the store's time.
        pub(crate) async fn list_pending_reviews(
            c: &mut Conn,
            dir: &DirPath,
            after: Option<ReviewCursor>,
            limit: u32,
        ) -> Result<Vec<PendingReview>, TxError> {
            let (after_at, after_id, upper) = page_bounds(dir, after);
            let rows = pending_reviews(
                dir.bucket().as_str(),
                dir.as_str(),
                &upper,
                after_at,
                after_id,
                sql_limit(limit),
            )
            .load(c)
            .await?;
            Ok(into_reviews(rows)?)
        }
    };
}
