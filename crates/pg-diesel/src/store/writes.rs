//! The units of work on PostgreSQL: the bodies are `storage_diesel_common::units!` (written
//! once for both stores; the concurrency reasoning is in `storage_diesel_common::units`),
//! expanded here over this dialect's hooks. Each runs in one READ COMMITTED transaction (see
//! `PgMetadataStore::write`): `lock_file` takes the file row `FOR UPDATE`, then reads the file
//! and its lock row in a statement of its own, which sees what was committed while it waited;
//! a reservation is row-locked before it is completed; the decisions on a key with no row are
//! serialised by an advisory lock; the unit's time is the transaction's `now()`. A refusal is
//! one statement (`upsert_refusal`), run without a transaction of its own (`PgMetadataStore`).

use chrono::{DateTime, Utc};
use diesel::OptionalExtension;
use diesel::connection::TransactionManagerStatus;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::sql_types::{BigInt, Double, Integer, Text};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::{
    AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    TransactionManager,
};
use futures_util::future::{try_join, try_join3};
use storage_diesel_common::queries::{self, NewAudit, NewDeletion, NewOutbox, NewReservation};
use storage_diesel_common::rows::{
    DELETION_COLUMNS, DeletionRow, FileLockRow, FileState, ReservationRow, chain_head, file_state,
    seconds, sql_limit,
};
use storage_diesel_common::schema::{audit_events, event_outbox, files, pending_deletions};
use storage_diesel_common::sql_types::{DbAt, DbId};
use storage_diesel_common::units::{FileKey, OpenUploadsCap, deletions};
use storage_domain::model::{FileId, FileRecord, PendingDeletion};
use storage_domain::ports::OutboxEvent;
use storage_domain::rules::chain::AuditChain;

pub(crate) use self::units::*;
use super::Work;
use crate::error::TxError;

type Conn = AsyncPgConnection;

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

/// The unit of work's time on PostgreSQL: the transaction's `now()`, which the statements that
/// need it read themselves (nothing is known of it before the first statement); whether the
/// store publishes events (`PgConfig::publish_events`); and the store's audit chain setting.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    pub(crate) publish: bool,
    pub(crate) chain: AuditChain,
}

impl Clock {
    /// Whether a change's event is queued for delivery.
    fn publishes(&self) -> bool {
        self.publish
    }
}

/// The transaction's time (`now()`), for a unit of work that locks no file before it needs it.
async fn unit_now(c: &mut Conn, _: &Clock) -> Result<DateTime<Utc>, TxError> {
    Ok(diesel::select(queries::store_now())
        .get_result::<DbAt>(c)
        .await?
        .0)
}

/// Locks the file's row (`FOR UPDATE`, waiting for any other unit of work on it), then reads
/// the file, its lock row as stored and the transaction's time in a new statement, which sees
/// what was committed while this one waited, with the head of the file's audit chain (not read
/// when the store's chain is off). `None` when there is no such file.
async fn lock_file(
    c: &mut Conn,
    clock: &Clock,
    key: FileKey<'_>,
) -> Result<Option<FileState>, TxError> {
    let locked: Option<DbId> = match key {
        FileKey::Id(id) => files::table
            .select(files::id)
            .filter(files::id.eq(DbId(id.as_uuid())))
            .for_update()
            .get_result(c)
            .await
            .optional()?,
        FileKey::Path(path) => files::table
            .select(files::id)
            .filter(files::bucket.eq(path.bucket().as_str()))
            .filter(files::path.eq(path.as_str()))
            .for_update()
            .get_result(c)
            .await
            .optional()?,
    };
    let Some(locked) = locked else {
        return Ok(None);
    };
    if !clock.chain.is_on() {
        let row: FileLockRow = queries::file_by_id(locked).get_result(c).await?;
        return Ok(Some(file_state(row)?));
    }
    // The file, its lock row and its audit chain's head, in one statement.
    let (row, seq, hash): (FileLockRow, Option<i64>, Option<String>) =
        storage_diesel_common::queries::file_and_chain_head(locked)
            .get_result(c)
            .await?;
    let mut state = file_state(row)?;
    state.head = chain_head(seq.map(|s| (Some(s), hash)))?;
    Ok(Some(state))
}

/// The reservation, row-locked until the transaction ends (a janitor's `SKIP LOCKED` passes it
/// by, a concurrent completion waits).
async fn lock_reservation(c: &mut Conn, id: DbId) -> Result<Option<ReservationRow>, TxError> {
    Ok(queries::reservation_by_id(id)
        .for_update()
        .get_result(c)
        .await
        .optional()?)
}

/// The trash entry with its file, its `trash` row locked `FOR UPDATE` first (a concurrent
/// restore or purge of the same entry waits, then finds it gone).
async fn lock_trash(
    c: &mut Conn,
    id: DbId,
) -> Result<Option<storage_diesel_common::trash::TrashEntryRow>, TxError> {
    use storage_diesel_common::schema::trash;
    let locked: Option<DbId> = trash::table
        .select(trash::id)
        .filter(trash::id.eq(id.clone()))
        .for_update()
        .get_result(c)
        .await
        .optional()?;
    if locked.is_none() {
        return Ok(None);
    }
    Ok(storage_diesel_common::trash::trash_by_id(id)
        .get_result(c)
        .await
        .optional()?)
}

/// Queues deletions in one multi-row `INSERT … RETURNING`.
async fn insert_deletions(
    c: &mut Conn,
    rows: &[NewDeletion<'_>],
) -> Result<Vec<DeletionRow>, TxError> {
    Ok(diesel::insert_into(pending_deletions::table)
        .values(rows)
        .returning(DELETION_COLUMNS)
        .get_results(c)
        .await?)
}

/// The file with this id, with its live lock (the read).
async fn find_file_by_id(c: &mut Conn, id: FileId) -> Result<Option<FileRecord>, TxError> {
    super::reads::find_file_by_id(c, id).await
}

/// Stores a reservation. Without a cap, the `INSERT` alone: one statement, atomic on its own
/// (the store runs this unit without a transaction, `PgMetadataStore::create_reservation`).
///
/// With a cap, a READ COMMITTED transaction of its own in two round trips, each a pipeline
/// of statements sent together (diesel-async pipelines the futures polled together on one
/// connection):
///
/// 1. `BEGIN`; `pg_advisory_xact_lock` on the author (the units of work on one author's open
///    uploads run one after the other, until this transaction ends); the count of the author's
///    open uploads at the transaction's `now()`. The server runs them in order, so the count
///    starts after the lock is granted and its snapshot sees every reservation committed by
///    the lock's previous holder (lock and count cannot be one statement: its snapshot would
///    be taken before the lock is granted).
/// 2. if the domain allows (`cap.check`), the `INSERT` and `COMMIT`. When the `INSERT` fails,
///    the `COMMIT` of the aborted transaction rolls it back.
///
/// The order on the wire is the order written, which the cap rests on: `try_join` polls the
/// futures in that order, and every statement of a pipeline is a prepared statement
/// (`Begin`, `AdvisoryXactLock`, the DSL's, `Commit`), which diesel-async sends after taking its
/// statement cache's lock (a FIFO lock, held while a statement not yet cached is prepared),
/// so a statement waiting for its preparation holds back those after it. A simple-protocol
/// `COMMIT` (`batch_execute`) would not wait: it would overtake an `INSERT` being prepared,
/// commit, release the lock, and the `INSERT` would run after, outside the transaction.
///
/// On any failure (or a refusal), `ROLLBACK` (a no-op warning when the transaction is already
/// over). diesel's transaction manager does not see this transaction: while it may be open, the
/// connection's transaction state is marked in error, which makes the pool drop the connection
/// instead of reusing it (`is_broken`) should this future be dropped or the `ROLLBACK` fail; it
/// is cleared once the transaction is known to be over.
async fn reserve(
    c: &mut Conn,
    row: &NewReservation<'_>,
    cap: Option<OpenUploadsCap<'_>>,
) -> Result<(), TxError> {
    let Some(cap) = cap else {
        queries::insert_reservation(row).execute(c).await?;
        return Ok(());
    };
    AnsiTransactionManager::transaction_manager_status_mut(c).set_in_error();
    let outcome = {
        let c: &Conn = c;
        async {
            let lock = AdvisoryXactLock {
                class: OPEN_UPLOADS_LOCK,
                key: cap.author,
            };
            let (_, _, open) = try_join3(
                Begin.execute(&mut &*c),
                lock.execute(&mut &*c),
                queries::open_uploads_of(cap.author).get_result::<i64>(&mut &*c),
            )
            .await?;
            cap.check(open)?;
            try_join(
                queries::insert_reservation(row).execute(&mut &*c),
                Commit.execute(&mut &*c),
            )
            .await?;
            Ok::<_, TxError>(())
        }
        .await
    };
    if outcome.is_err() {
        let mut conn: &Conn = c;
        if SimpleAsyncConnection::batch_execute(&mut conn, "ROLLBACK")
            .await
            .is_err()
        {
            // Left marked in error: the pool drops the connection.
            return outcome;
        }
    }
    *AnsiTransactionManager::transaction_manager_status_mut(c) =
        TransactionManagerStatus::default();
    outcome
}

/// `BEGIN` as a prepared statement (see `reserve`: it keeps its place in a pipeline).
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct Begin;

/// `COMMIT` as a prepared statement (see `reserve`: it keeps its place in a pipeline, behind
/// a statement being prepared).
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
struct Commit;

impl QueryFragment<Pg> for Begin {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // raw SQL: transaction control, pipelined by hand (`reserve`).
        out.push_sql("BEGIN");
        Ok(())
    }
}

impl QueryFragment<Pg> for Commit {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // raw SQL: transaction control, pipelined by hand (`reserve`).
        out.push_sql("COMMIT");
        Ok(())
    }
}

/// A transaction-scoped advisory lock on `(class, hashtext(key))`, held until the transaction
/// ends: the units of work deciding on one key (an author's open uploads) run one after the
/// other. Two keys whose hashes collide only wait for each other. A prepared statement (its
/// text never changes), unlike `sql_query`.
#[derive(Debug, Clone, Copy)]
struct AdvisoryXactLock<'a> {
    class: i32,
    key: &'a str,
}

impl QueryId for AdvisoryXactLock<'_> {
    type QueryId = AdvisoryXactLock<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for AdvisoryXactLock<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // raw SQL: PostgreSQL's own advisory lock (the dialect decides how to serialise on a key).
        out.push_sql("SELECT pg_advisory_xact_lock(");
        out.push_bind_param::<Integer, i32>(&self.class)?;
        out.push_sql(", hashtext(");
        out.push_bind_param::<Text, str>(self.key)?;
        out.push_sql("))");
        Ok(())
    }
}

/// Advisory-lock classes (the first key of `pg_advisory_xact_lock(int, int)`; arbitrary
/// constants private to this schema).
const OPEN_UPLOADS_LOCK: i32 = 0x5354_0001;

/// Records a refusal or counts it (`record_refusal!`), on the partial index of the refusals.
async fn upsert_refusal(c: &mut Conn, row: &NewAudit<'_>) -> Result<(), TxError> {
    storage_diesel_common::record_refusal!(row, where audit_events::refusal_window.is_not_null())
        .execute(c)
        .await?;
    Ok(())
}

/// A change's audit row and, when the event publishes, its outbox row, in one statement
/// ([`WithInserted`]): queueing an event costs the change no statement of its own. (Before, the
/// two inserts were pipelined: no round trip of their own, but a statement each, and on this
/// machine the service's sends to PostgreSQL are a quarter of its CPU.)
async fn insert_event(
    c: &mut Conn,
    row: &NewAudit<'_>,
    queued: Option<&NewOutbox>,
) -> Result<(), TxError> {
    match queued {
        None => queries::insert_audit(row).execute(c).await?,
        Some(queued) => {
            WithInserted(queries::insert_audit(row), queries::insert_outbox(queued))
                .execute(c)
                .await?
        }
    };
    Ok(())
}

/// `WITH inserted AS (<first>) <second>`: two `INSERT`s as one statement (PostgreSQL runs a
/// data-modifying `WITH` to its end whether or not the main statement reads it). Both are
/// diesel's statements, their parameters numbered in order; prepared and cached like them.
#[derive(Debug, Clone, Copy)]
struct WithInserted<A, B>(A, B);

impl<A: QueryId, B: QueryId> QueryId for WithInserted<A, B> {
    type QueryId = WithInserted<A::QueryId, B::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = A::HAS_STATIC_QUERY_ID && B::HAS_STATIC_QUERY_ID;
}

impl<A: QueryFragment<Pg>, B: QueryFragment<Pg>> QueryFragment<Pg> for WithInserted<A, B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // raw SQL: a data-modifying WITH (not in diesel's DSL) around two DSL inserts.
        out.push_sql("WITH inserted AS (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") ");
        self.1.walk_ast(out.reborrow())
    }
}

// ---- janitor -----------------------------------------------------------------------------

pub(crate) fn expire_reservations(
    c: &mut Conn,
    _: Clock,
    (keep_completed, limit): (std::time::Duration, u32),
) -> Work<'_, u64> {
    Box::pin(async move {
        // raw SQL: `FOR UPDATE SKIP LOCKED` inside a data-modifying CTE (janitors on several
        // instances take disjoint rows; a reservation being completed, row-locked, is left alone).
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
        // raw SQL: `FOR UPDATE SKIP LOCKED` and an interval from the store's clock.
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
    _: Clock,
    (lease, limit): (std::time::Duration, u32),
) -> Work<'_, Vec<PendingDeletion>> {
    Box::pin(async move {
        // raw SQL: `FOR UPDATE SKIP LOCKED` (disjoint claims across janitors).
        let rows: Vec<DeletionRow> = diesel::sql_query(
            "UPDATE pending_deletions SET attempts = attempts + 1, \
                 leased_until = now() + make_interval(secs => $2) \
             WHERE id IN ( \
                 SELECT id FROM pending_deletions \
                 WHERE leased_until IS NULL OR leased_until <= now() \
                 ORDER BY leased_until NULLS FIRST, created_at \
                 LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, bucket, object_key, attempts",
        )
        .bind::<BigInt, _>(sql_limit(limit))
        .bind::<Double, _>(seconds(lease))
        .load(c)
        .await?;
        deletions(rows)
    })
}

// ---- the outbox ----------------------------------------------------------------------------

/// `VACUUM (ANALYZE, SKIP_LOCKED, TRUNCATE false) event_outbox`: the outbox's dead row versions
/// go, so that claims stop walking them, and its statistics follow its size, so that the
/// claim's plan does (`PgMetadataStore::vacuum_outbox_now_and_then`). Skipped at once when
/// another vacuum of the table holds its lock. `TRUNCATE false`: giving the table's empty end
/// back to the system takes an exclusive lock that the changes inserting their events would
/// wait for (measured: 185 ms a vacuum with it).
pub(crate) async fn vacuum_outbox(c: &mut Conn) -> Result<(), TxError> {
    // raw SQL: maintenance, not a query; in the simple protocol, as VACUUM runs in no
    // transaction block.
    SimpleAsyncConnection::batch_execute(
        c,
        "VACUUM (ANALYZE, SKIP_LOCKED, TRUNCATE false) event_outbox",
    )
    .await?;
    Ok(())
}

/// An event id returned by the claim.
#[derive(diesel::QueryableByName)]
#[diesel(table_name = event_outbox)]
struct Claimed {
    event_id: DbId,
}

pub(crate) fn claim_events(
    c: &mut Conn,
    _: Clock,
    (lease, limit): (std::time::Duration, u32),
) -> Work<'_, Vec<OutboxEvent>> {
    Box::pin(async move {
        // A pass plans its statements for the tables as they are now (the settings' `LOCAL`:
        // this transaction only). A claim is once per pass, not per request, so planning costs
        // it little; a plan kept by the connection's cache may have been made when the tables
        // were nearly empty, and for the claimed events' read by primary key (`= ANY`) that
        // plan is a sequential scan of the audit trail (3.5-4.7 ms a pass, seen with
        // `auto_explain` in `storage-bench events`).
        // raw SQL: a PostgreSQL setting, not a query.
        SimpleAsyncConnection::batch_execute(c, "SET LOCAL plan_cache_mode = force_custom_plan")
            .await?;
        // raw SQL: `FOR UPDATE SKIP LOCKED` in a CTE, a `LATERAL` join and window functions in
        // one data-modifying statement (none of which diesel's DSL expresses).
        //
        // `heads`: each file's first pending event, due and not leased, row-locked
        // `FOR UPDATE SKIP LOCKED`; `runs`: after each head, the file's following pending
        // events in chain order, up to the first one leased elsewhere; `picked`: the runs in
        // turns (every head, then every second event, …; the longest-waiting file first) up
        // to `limit`; all leased in the same statement.
        //
        // Why no other claimer can take a later event of a file while an earlier one is
        // claimed here, under READ COMMITTED: a claim reaches a file's events only through its
        // head, the file's first pending event (`NOT EXISTS` an earlier pending one), and the
        // whole run stays pending (and leased) until the dispatcher settles it in one
        // transaction. While this statement's transaction is open, the head is row-locked: a
        // concurrent claim skips it, and cannot take any later event of the file as a head,
        // because the head is pending in every snapshot. Once this one committed, the head is
        // leased: a claim whose snapshot is later sees the lease; one whose snapshot is earlier
        // locks the row only after this commit and re-checks its conditions on the committed
        // row (READ COMMITTED's re-check of a row locked `FOR UPDATE`), which is leased, so it
        // drops it; the later events are still not heads. The followers are not row-locked
        // here: only this claim can reach them, through the head it holds.
        let claimed: Vec<Claimed> = diesel::sql_query(
            "WITH heads AS ( \
                 SELECT a.event_id, a.file_id, a.seq, a.next_attempt_at FROM event_outbox a \
                 WHERE a.delivery = 'pending' AND a.next_attempt_at <= now() \
                   AND (a.leased_until IS NULL OR a.leased_until <= now()) \
                   AND NOT EXISTS ( \
                       SELECT 1 FROM event_outbox b \
                       WHERE b.file_id = a.file_id AND b.seq < a.seq \
                         AND b.delivery = 'pending') \
                 ORDER BY a.next_attempt_at \
                 LIMIT $1 FOR UPDATE SKIP LOCKED), \
             runs AS ( \
                 SELECT h.event_id, h.file_id, h.next_attempt_at AS due, 1::bigint AS place \
                 FROM heads h \
                 UNION ALL \
                 SELECT f.event_id, h.file_id, h.next_attempt_at, f.place FROM heads h \
                 CROSS JOIN LATERAL ( \
                     SELECT r.event_id, r.place FROM ( \
                         SELECT e.event_id, row_number() OVER w + 1 AS place, \
                             count(*) FILTER (WHERE e.leased_until > now()) OVER w AS leased \
                         FROM ( \
                             SELECT x.event_id, x.seq, x.leased_until FROM event_outbox x \
                             WHERE x.file_id = h.file_id AND x.seq > h.seq \
                               AND x.delivery = 'pending' \
                             ORDER BY x.seq LIMIT $1) e \
                         WINDOW w AS (ORDER BY e.seq)) r \
                     WHERE r.leased = 0) f), \
             picked AS ( \
                 SELECT event_id FROM runs ORDER BY place, due, file_id LIMIT $1) \
             UPDATE event_outbox SET attempts = attempts + 1, \
                 leased_until = now() + make_interval(secs => $2) \
             WHERE event_id IN (SELECT event_id FROM picked) \
             RETURNING event_id",
        )
        .bind::<BigInt, _>(sql_limit(limit))
        .bind::<Double, _>(seconds(lease))
        .load(c)
        .await?;
        super::reads::events_by_id(c, claimed.into_iter().map(|r| r.event_id).collect()).await
    })
}
