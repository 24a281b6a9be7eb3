//! The units of work on SQLite: the bodies are `storage_diesel_common::units!` (written once
//! for both stores; the concurrency reasoning is in `storage_diesel_common::units`), expanded
//! here over this dialect's hooks. Each runs in one `BEGIN IMMEDIATE` transaction on the one
//! writer connection (see `SqliteMetadataStore::write`), so it holds SQLite's write lock from
//! its first statement: the rows its decision reads cannot change before it writes, and no
//! other unit of work runs meanwhile. Locking a row or serialising on a key is therefore
//! nothing more, and the unit's time is the store's clock, read once when the transaction
//! starts. The statements run on the blocking connection as they are called
//! (`storage_diesel_common::blocking`): the whole unit stays on its one blocking thread.

use chrono::{DateTime, Utc};
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl};
use storage_diesel_common::blocking::RunQueryDsl;
use storage_diesel_common::error::TxError;
use storage_diesel_common::queries::{self, NewAudit, NewDeletion, NewOutbox, NewReservation};
use storage_diesel_common::rows::{
    DELETION_COLUMNS, DeletionRow, FileLockRow, FileState, ReservationRow, chain_head, file_state,
    sql_limit,
};
use storage_diesel_common::schema::{event_outbox, pending_deletions, upload_reservations};
use storage_diesel_common::sql_types::{DbAt, DbId};
use storage_diesel_common::units::{FileKey, OpenUploadsCap, deletions};
use storage_domain::model::{FileId, FileRecord, PendingDeletion};
use storage_domain::ports::OutboxEvent;
use storage_domain::rules::chain::AuditChain;

use super::reads::events_by_id;

pub(crate) use self::units::*;
use super::{Conn, Work, shifted};

/// The units of work (`storage_diesel_common::units!`) over the hooks below.
mod units {
    use super::*;
    storage_diesel_common::units!();

    /// The trash's units of work (`storage_diesel_common::trash_units!`).
    mod trash {
        use super::*;
        storage_diesel_common::trash_units!();
    }
    pub(crate) use self::trash::*;
    storage_diesel_common::pin_retention_units!();
}

/// The unit of work's time on SQLite: the store's clock, read once when its transaction
/// starts (`SqliteMetadataStore::write`); whether the store publishes events
/// (`SqliteConfig::publish_events`); and the store's audit chain setting.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    pub(crate) now: DateTime<Utc>,
    pub(crate) publish: bool,
    pub(crate) chain: AuditChain,
}

impl Clock {
    /// Whether a change's event is queued for delivery.
    fn publishes(&self) -> bool {
        self.publish
    }
}

async fn unit_now(_: &mut Conn, clock: &Clock) -> Result<DateTime<Utc>, TxError> {
    Ok(clock.now)
}

/// The file, its lock row as stored (live or expired) and the unit of work's time. Under
/// SQLite's write lock nothing changes between this read and the unit of work's writes.
async fn lock_file(
    c: &mut Conn,
    clock: &Clock,
    key: FileKey<'_>,
) -> Result<Option<FileState>, TxError> {
    let row: Option<FileLockRow> = match key {
        FileKey::Id(id) => queries::file_by_id(DbId(id.as_uuid()))
            .get_result(c)
            .await
            .optional()?,
        FileKey::Path(path) => queries::file_by_path(path.bucket().as_str(), path.as_str())
            .get_result(c)
            .await
            .optional()?,
    };
    let Some((file, lock, _)) = row else {
        return Ok(None);
    };
    let id = file.id.clone();
    let mut state = file_state((file, lock, DbAt(clock.now)))?;
    // The chain's head (not read when the store's chain is off).
    if clock.chain.is_on() {
        let head = queries::chain_head(id).get_result(c).await.optional()?;
        state.head = chain_head(head)?;
    }
    Ok(Some(state))
}

/// The reservation (under SQLite's write lock, as every row).
async fn lock_reservation(c: &mut Conn, id: DbId) -> Result<Option<ReservationRow>, TxError> {
    Ok(queries::reservation_by_id(id)
        .get_result(c)
        .await
        .optional()?)
}

/// The trash entry with its file (under SQLite's write lock nothing changes it meanwhile).
async fn lock_trash(
    c: &mut Conn,
    id: DbId,
) -> Result<Option<storage_diesel_common::trash::TrashEntryRow>, TxError> {
    Ok(storage_diesel_common::trash::trash_by_id(id)
        .get_result(c)
        .await
        .optional()?)
}

/// Queues deletions, one `INSERT … RETURNING` a row (as before the bodies were shared; each is
/// a prepared statement on the same connection, no round trip).
async fn insert_deletions(
    c: &mut Conn,
    rows: &[NewDeletion<'_>],
) -> Result<Vec<DeletionRow>, TxError> {
    let mut queued = Vec::with_capacity(rows.len());
    for row in rows {
        queued.push(queries::insert_deletion(row).get_result(c).await?);
    }
    Ok(queued)
}

/// The file with this id, with its live lock (the read).
async fn find_file_by_id(c: &mut Conn, id: FileId) -> Result<Option<FileRecord>, TxError> {
    super::reads::find_file_by_id(c, id).await
}

/// Records a refusal or counts it (`record_refusal!`, on SQLite's whole index).
async fn upsert_refusal(c: &mut Conn, row: &NewAudit<'_>) -> Result<(), TxError> {
    storage_diesel_common::record_refusal!(row)
        .execute(c)
        .await?;
    Ok(())
}

/// A change's audit row and, when the event publishes, its outbox row (two statements under
/// the unit's write lock).
async fn insert_event(
    c: &mut Conn,
    row: &NewAudit<'_>,
    queued: Option<&NewOutbox>,
) -> Result<(), TxError> {
    queries::insert_audit(row).execute(c).await?;
    if let Some(queued) = queued {
        queries::insert_outbox(queued).execute(c).await?;
    }
    Ok(())
}

/// Stores a reservation, with a cap only if the author's open uploads leave room for it
/// (`cap.check`). SQLite's write lock, held since `BEGIN IMMEDIATE`, already runs every unit
/// of work one after the other: nothing to serialise. The count reads the store's clock
/// (`now()`, the same clock as the unit's `now`).
async fn reserve(
    c: &mut Conn,
    row: &NewReservation<'_>,
    cap: Option<OpenUploadsCap<'_>>,
) -> Result<(), TxError> {
    if let Some(cap) = cap {
        let open: i64 = queries::open_uploads_of(cap.author).get_result(c).await?;
        cap.check(open)?;
    }
    queries::insert_reservation(row).execute(c).await?;
    Ok(())
}

// ---- janitor -----------------------------------------------------------------------------
// The one writer connection serialises janitors: no row can be claimed twice.

pub(crate) fn expire_reservations(
    c: &mut Conn,
    Clock { now, .. }: Clock,
    (keep_completed, limit): (std::time::Duration, u32),
) -> Work<'_, u64> {
    Box::pin(async move {
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
            .load(c)
            .await?;
        let mut queued = 0_u64;
        for (id, bucket, key) in expired {
            diesel::delete(upload_reservations::table.filter(upload_reservations::id.eq(id)))
                .execute(c)
                .await?;
            insert_deletions(c, &[NewDeletion::of(&bucket, &key, None, now)]).await?;
            queued += 1;
        }
        let forgotten: Vec<DbId> = upload_reservations::table
            .select(upload_reservations::id)
            .filter(upload_reservations::completed_version.is_not_null())
            .filter(upload_reservations::completed_at.lt(DbAt(shifted(
                now,
                keep_completed,
                false,
            )?)))
            .order(upload_reservations::completed_at)
            .limit(sql_limit(limit))
            .load(c)
            .await?;
        diesel::delete(
            upload_reservations::table.filter(upload_reservations::id.eq_any(forgotten)),
        )
        .execute(c)
        .await?;
        Ok(queued)
    })
}

pub(crate) fn claim_deletions(
    c: &mut Conn,
    Clock { now, .. }: Clock,
    (lease, limit): (std::time::Duration, u32),
) -> Work<'_, Vec<PendingDeletion>> {
    Box::pin(async move {
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
            .load(c)
            .await?;
        let leased_until = Some(DbAt(shifted(now, lease, true)?));
        let rows: Vec<DeletionRow> =
            diesel::update(pending_deletions::table.filter(pending_deletions::id.eq_any(due)))
                .set((
                    pending_deletions::attempts.eq(pending_deletions::attempts + 1),
                    pending_deletions::leased_until.eq(leased_until),
                ))
                .returning(DELETION_COLUMNS)
                .get_results(c)
                .await?;
        deletions(rows)
    })
}

// ---- the outbox ----------------------------------------------------------------------------
// The one writer connection serialises dispatchers too: no event can be claimed twice.

pub(crate) fn claim_events(
    c: &mut Conn,
    Clock { now, .. }: Clock,
    (lease, limit): (std::time::Duration, u32),
) -> Work<'_, Vec<OutboxEvent>> {
    Box::pin(async move {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let pending = || event_outbox::table.filter(event_outbox::delivery.eq("pending"));
        let free = |leased_until: &Option<DbAt>| leased_until.as_ref().is_none_or(|t| t.0 <= now);
        // Each file's first pending event (the head), when it is due and not leased.
        let firsts: Vec<(Option<DbId>, Option<i64>)> = pending()
            .filter(event_outbox::file_id.is_not_null())
            .group_by(event_outbox::file_id)
            .select((event_outbox::file_id, diesel::dsl::min(event_outbox::seq)))
            .load(c)
            .await?;
        let mut heads: Vec<(DbAt, DbId, DbId, i64)> = Vec::new();
        for (file_id, seq) in firsts {
            let (Some(file_id), Some(seq)) = (file_id, seq) else {
                continue;
            };
            let (id, due, leased_until): (DbId, Option<DbAt>, Option<DbAt>) = pending()
                .filter(event_outbox::file_id.eq(file_id.clone()))
                .filter(event_outbox::seq.eq(seq))
                .select((
                    event_outbox::event_id,
                    event_outbox::next_attempt_at,
                    event_outbox::leased_until,
                ))
                .get_result(c)
                .await?;
            if let Some(due) = due
                && due.0 <= now
                && free(&leased_until)
            {
                heads.push((due, file_id, id, seq));
            }
        }
        // The longest-waiting files first (as PostgreSQL's claim), at most `limit` of them.
        heads.sort_by_key(|h| (h.0.0, h.1.0));
        heads.truncate(limit);
        // Each head's run: the file's following pending events in chain order, up to the
        // first one leased (none is, while the head is not: a run is claimed and settled whole).
        let mut runs: Vec<Vec<DbId>> = Vec::with_capacity(heads.len());
        for (_, file_id, id, seq) in &heads {
            let following: Vec<(DbId, Option<DbAt>)> = pending()
                .filter(event_outbox::file_id.eq(file_id.clone()))
                .filter(event_outbox::seq.gt(*seq))
                .order(event_outbox::seq)
                .select((event_outbox::event_id, event_outbox::leased_until))
                .limit(sql_limit(u32::try_from(limit).unwrap_or(u32::MAX)))
                .load(c)
                .await?;
            let mut run = vec![id.clone()];
            run.extend(
                following
                    .into_iter()
                    .take_while(|(_, leased_until)| free(leased_until))
                    .map(|(id, _)| id),
            );
            runs.push(run);
        }
        // The runs in turns (every head, then every second event, …) up to `limit`.
        let mut claimed: Vec<DbId> = Vec::new();
        let longest = runs.iter().map(Vec::len).max().unwrap_or(0);
        'turns: for place in 0..longest {
            for run in &runs {
                if claimed.len() >= limit {
                    break 'turns;
                }
                if let Some(id) = run.get(place) {
                    claimed.push(id.clone());
                }
            }
        }
        let leased_until = Some(DbAt(shifted(now, lease, true)?));
        diesel::update(event_outbox::table.filter(event_outbox::event_id.eq_any(claimed.clone())))
            .set((
                event_outbox::attempts.eq(event_outbox::attempts + 1),
                event_outbox::leased_until.eq(leased_until),
            ))
            .execute(c)
            .await?;
        events_by_id(c, claimed).await
    })
}
