//! The statements both adapters run, written once in diesel's query DSL over
//! [`crate::schema`]: columns and types are checked at compile time, and each adapter runs them
//! on its own connection (diesel-async on PostgreSQL, diesel on SQLite). A query built here is
//! backend-independent until it runs, so one function serves both.
//!
//! Times: a read selects [`store_now`] (PostgreSQL's `now()`; on SQLite a function of that name
//! each connection registers, see `storage-sqlite-diesel`) beside the file, so that liveness
//! of its lock is judged by the store's clock without a statement of its own. A unit of work
//! binds the time it read with the file's row lock ([`crate::rows::FileState::now`]).

use diesel::dsl::{self, auto_type};
use diesel::prelude::*;
use diesel::sql_types;

use crate::first::helper_types::{first_row, first_value};
use crate::first::{first_row, first_value};
use crate::prepared::Prepared;
use crate::rows::{DELETION_COLUMNS, LOCK_COLUMNS};
use crate::schema::{
    audit_events, event_outbox, files, locks, pending_deletions, upload_reservations, versions,
};
use crate::sql_types::{DbAt, DbDoc, DbId, DbTime};

diesel::define_sql_function! {
    /// The store's time: PostgreSQL's `now()` (the transaction's start); on SQLite, a function
    /// of the same name registered on each connection.
    #[sql_name = "now"]
    fn store_now() -> DbTime;
}

/// A file, its lock row as stored, and the store's time ([`crate::rows::FileLockRow`]).
#[auto_type]
pub fn file_with_lock() -> _ {
    let now: store_now = store_now();
    let file: FileColumns = files::all_columns;
    let lock: LockColumns = LOCK_COLUMNS;
    files::table
        .left_join(locks::table)
        .select((file, lock.nullable(), now))
}

/// The file with this id ([`crate::rows::FileLockRow`]).
#[auto_type]
pub fn file_by_id(id: DbId) -> _ {
    file_with_lock().filter(files::id.eq(id))
}

/// The file at `path` in `bucket` ([`crate::rows::FileLockRow`]).
#[auto_type]
pub fn file_by_path<'a>(bucket: &'a str, path: &'a str) -> _ {
    file_with_lock()
        .filter(files::bucket.eq(bucket))
        .filter(files::path.eq(path))
}

/// The files at these paths of `bucket` (a listing page's files).
#[auto_type]
pub fn files_at<'a>(bucket: &'a str, paths: &'a [String]) -> _ {
    file_with_lock()
        .filter(files::bucket.eq(bucket))
        .filter(files::path.eq_any(paths))
}

/// A version with its file ([`crate::rows::FileLockRow`] after the version).
#[auto_type]
pub fn version_with_file(id: DbId) -> _ {
    let now: store_now = store_now();
    let version: VersionColumns = versions::all_columns;
    let file: FileColumns = files::all_columns;
    let lock: LockColumns = LOCK_COLUMNS;
    versions::table
        .inner_join(files::table.left_join(locks::table))
        .filter(versions::id.eq(id))
        .select((version, (file, lock.nullable(), now)))
}

#[auto_type]
pub fn version_by_id(id: DbId) -> _ {
    versions::table.filter(versions::id.eq(id))
}

/// The file at `path` in `bucket` with its lock and the store's time
/// ([`crate::rows::FileLockRow`]), and, in the same statement, the version a selector picks (if
/// the file has it): version `number` when given, else the validated version when `validated`,
/// else the latest. The pick is the join's condition, so each side is one index probe.
#[auto_type]
pub fn file_with_version<'a>(
    bucket: &'a str,
    path: &'a str,
    number: Option<i32>,
    validated: bool,
) -> _ {
    let now: store_now = store_now();
    let file: FileColumns = files::all_columns;
    let lock: LockColumns = LOCK_COLUMNS;
    let version: VersionColumns = versions::all_columns;
    let given: dsl::AsExprOf<Option<i32>, sql_types::Nullable<sql_types::Integer>> =
        number.into_sql::<sql_types::Nullable<sql_types::Integer>>();
    let given_again: dsl::AsExprOf<Option<i32>, sql_types::Nullable<sql_types::Integer>> =
        number.into_sql::<sql_types::Nullable<sql_types::Integer>>();
    let validated: dsl::AsExprOf<bool, sql_types::Bool> = validated.into_sql::<sql_types::Bool>();
    let picked = dsl::case_when(given.is_not_null(), given_again)
        .when(validated, files::validated_version)
        .otherwise(files::version.nullable());
    files::table
        .left_join(locks::table)
        .left_join(
            versions::table.on(versions::file_id
                .eq(files::id)
                .and(versions::number.nullable().eq(picked))),
        )
        .filter(files::bucket.eq(bucket))
        .filter(files::path.eq(path))
        .select(((file, lock.nullable(), now), version.nullable()))
}

/// A page of a file's versions, newest first: numbered at most `upto` (the cursor's number
/// minus one, or `i32::MAX` for the first page), at most `limit`. One range of the
/// `(file_id, number)` unique index, read backwards.
#[auto_type]
pub fn versions_page(file_id: DbId, upto: i32, limit: i64) -> _ {
    versions::table
        .filter(versions::file_id.eq(file_id))
        .filter(versions::number.le(upto))
        .order(versions::number.desc())
        .limit(limit)
}

/// A page of the audit trail: events of a scope (`&AuditScope`) strictly before a cursor
/// (`Option<AuditCursor>`), newest first (keyset on `(at, id)`), at most `limit` (`i64`). (A
/// macro: the boxed query names its backend, which the connection it runs on decides.)
#[macro_export]
macro_rules! audit_page {
    ($scope:expr, $before:expr, $limit:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::audit_events;
        let mut query = audit_events::table.into_boxed();
        match $scope {
            ::storage_domain::ports::AuditScope::File(path) => {
                query = query
                    .filter(audit_events::bucket.eq(path.bucket().as_str()))
                    .filter(audit_events::path.eq(path.as_str()));
            }
            ::storage_domain::ports::AuditScope::Directory(dir) => {
                query = query
                    .filter(audit_events::bucket.eq(dir.bucket().as_str()))
                    .filter(audit_events::path.ge(dir.as_str()))
                    .filter(
                        audit_events::path.lt($crate::listing::prefix_upper_bound(dir.as_str())),
                    );
            }
        }
        if let Some(cursor) = $before {
            let (at, id) = (
                $crate::sql_types::DbAt(cursor.at),
                $crate::sql_types::DbId(cursor.id.as_uuid()),
            );
            query = query.filter(
                audit_events::at
                    .lt(at.clone())
                    .or(audit_events::at.eq(at).and(audit_events::id.lt(id))),
            );
        }
        query
            .order((audit_events::at.desc(), audit_events::id.desc()))
            .limit($limit)
    }};
}

/// A page of the audit chains (`audit verify`): chained events (`seq` set) of a bucket
/// (`Option<BucketKind>`) strictly after a position (`Option<(FileId, u64)>`), in
/// `(file_id, seq)` order (the `audit_events_chain_idx`), at most `limit` (`i64`). A macro, as
/// [`audit_page!`].
#[macro_export]
macro_rules! audit_chain_page {
    ($bucket:expr, $after:expr, $limit:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::audit_events as a;
        let mut query = a::table.filter(a::seq.is_not_null()).into_boxed();
        if let Some(bucket) = $bucket {
            query = query.filter(a::bucket.eq(::storage_domain::model::BucketKind::as_str(bucket)));
        }
        if let Some((file, seq)) = $after {
            let file = Some($crate::sql_types::DbId(
                ::storage_domain::model::FileId::as_uuid(&file),
            ));
            let seq = Some(i64::try_from(seq).unwrap_or(i64::MAX));
            query = query.filter(
                a::file_id
                    .gt(file.clone())
                    .or(a::file_id.eq(file).and(a::seq.gt(seq))),
            );
        }
        query.order((a::file_id.asc(), a::seq.asc())).limit($limit)
    }};
}

/// A page of the events outside every chain (`seq` NULL: refusals, older events) of a bucket
/// (`Option<BucketKind>`) strictly after an id (`Option<AuditId>`), by id, at most `limit`.
#[macro_export]
macro_rules! audit_unchained_page {
    ($bucket:expr, $after:expr, $limit:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::audit_events as a;
        let mut query = a::table.filter(a::seq.is_null()).into_boxed();
        if let Some(bucket) = $bucket {
            query = query.filter(a::bucket.eq(::storage_domain::model::BucketKind::as_str(bucket)));
        }
        if let Some(id) = $after {
            query = query.filter(a::id.gt($crate::sql_types::DbId(
                ::storage_domain::model::AuditId::as_uuid(&id),
            )));
        }
        query.order(a::id.asc()).limit($limit)
    }};
}

/// Queued events in a delivery state (`&str`) with their outbox rows
/// ([`crate::rows::OutboxRow`], [`crate::rows::AuditRow`]), oldest first (by the event's time,
/// then id), at most `limit` (for `events list`: a few rows, read rarely).
#[auto_type]
pub fn events_in<'a>(delivery: &'a str, limit: i64) -> _ {
    let columns: (
        <event_outbox::table as diesel::Table>::AllColumns,
        <audit_events::table as diesel::Table>::AllColumns,
    ) = (event_outbox::all_columns, audit_events::all_columns);
    event_outbox::table
        .inner_join(audit_events::table)
        .filter(event_outbox::delivery.eq(delivery))
        .order((audit_events::at.asc(), audit_events::id.asc()))
        .select(columns)
        .limit(limit)
}

/// Outbox rows by id (each one step of the primary key).
#[auto_type]
pub fn outbox_rows(ids: Vec<DbId>) -> _ {
    event_outbox::table.filter(event_outbox::event_id.eq_any(ids))
}

/// Audit rows by id, by time then id (each one step of the primary key).
#[auto_type]
pub fn audit_rows(ids: Vec<DbId>) -> _ {
    audit_events::table
        .filter(audit_events::id.eq_any(ids))
        .order((audit_events::at.asc(), audit_events::id.asc()))
}

/// Puts dead events back in the queue (pending, due at `now`, attempts reset).
#[auto_type]
pub fn retry_dead(now: DbAt) -> _ {
    let due: Option<DbAt> = Some(now);
    let no_lease: Option<DbAt> = None;
    dsl::update(event_outbox::table.filter(event_outbox::delivery.eq("dead"))).set((
        event_outbox::delivery.eq("pending"),
        event_outbox::next_attempt_at.eq(due),
        event_outbox::attempts.eq(0_i32),
        event_outbox::leased_until.eq(no_lease),
    ))
}

/// Puts one dead event back in the queue, as [`retry_dead`].
#[auto_type]
pub fn retry_dead_one(id: DbId, now: DbAt) -> _ {
    let due: Option<DbAt> = Some(now);
    let no_lease: Option<DbAt> = None;
    dsl::update(
        event_outbox::table
            .filter(event_outbox::event_id.eq(id))
            .filter(event_outbox::delivery.eq("dead")),
    )
    .set((
        event_outbox::delivery.eq("pending"),
        event_outbox::next_attempt_at.eq(due),
        event_outbox::attempts.eq(0_i32),
        event_outbox::leased_until.eq(no_lease),
    ))
}

/// Live locks of `bucket` whose path lies in `[low, upper)` and after `after`, by path.
#[auto_type]
pub fn live_locks<'a>(
    bucket: &'a str,
    low: &'a str,
    upper: &'a str,
    after: &'a str,
    limit: i64,
) -> _ {
    let now: store_now = store_now();
    locks::table
        .filter(locks::bucket.eq(bucket))
        .filter(locks::path.ge(low))
        .filter(locks::path.lt(upper))
        .filter(locks::path.gt(after))
        .filter(locks::expires_at.gt(now))
        .order(locks::path)
        .limit(limit)
}

#[auto_type]
pub fn reservation_by_id(id: DbId) -> _ {
    upload_reservations::table.filter(upload_reservations::id.eq(id))
}

// ---- units of work ------------------------------------------------------------------------

/// Stores a lock row (`&NewLock`): inserts it, or replaces the file's row. (A macro: the
/// type of an upsert cannot be inferred by `auto_type`.)
#[macro_export]
macro_rules! store_lock {
    ($row:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::locks;
        // Kept prepared: one text whatever the row (`Prepared`).
        $crate::prepared::Prepared(
            diesel::insert_into(locks::table)
                .values($row)
                .on_conflict(locks::file_id)
                .do_update()
                .set((
                    locks::holder.eq(diesel::upsert::excluded(locks::holder)),
                    locks::acquired_at.eq(diesel::upsert::excluded(locks::acquired_at)),
                    locks::expires_at.eq(diesel::upsert::excluded(locks::expires_at)),
                    locks::base_version.eq(diesel::upsert::excluded(locks::base_version)),
                )),
        )
    }};
}

/// Inserts the file of a first version (`&NewFile`), unless the path holds one already (then
/// no row is inserted). A macro, as [`store_lock!`].
#[macro_export]
macro_rules! insert_file {
    ($row:expr) => {{
        use diesel::prelude::*;
        use $crate::schema::files;
        diesel::insert_into(files::table)
            .values($row)
            .on_conflict((files::bucket, files::path))
            .do_nothing()
    }};
}

#[auto_type]
pub fn delete_lock(file_id: DbId) -> _ {
    dsl::delete(locks::table.filter(locks::file_id.eq(file_id)))
}

/// Moves the lock's `base_version` (the author's own new version).
#[auto_type]
pub fn rebase_lock(file_id: DbId, base: i32) -> _ {
    Prepared(
        dsl::update(locks::table.filter(locks::file_id.eq(file_id)))
            .set(locks::base_version.eq(base)),
    )
}

/// Records a file's checkout ticket.
#[auto_type]
pub fn set_ticket<'a>(file_id: DbId, ticket_file: DbId, ticket_path: &'a str, version: i32) -> _ {
    let ticket_file: Option<DbId> = Some(ticket_file);
    let ticket_path: Option<&'a str> = Some(ticket_path);
    let version: Option<i32> = Some(version);
    Prepared(
        dsl::update(files::table.filter(files::id.eq(file_id))).set((
            files::checkout_file_id.eq(ticket_file),
            files::checkout_path.eq(ticket_path),
            files::checkout_version.eq(version),
        )),
    )
}

#[auto_type]
pub fn insert_version<'a>(row: &'a NewVersionRow<'a>) -> _ {
    dsl::insert_into(versions::table).values(row)
}

/// The file after a new version (its tags replaced when given: two texts, each kept prepared).
#[auto_type]
pub fn update_file_after_version<'a>(file_id: DbId, change: &'a FileAfterVersion<'a>) -> _ {
    Prepared(dsl::update(files::table.filter(files::id.eq(file_id))).set(change))
}

/// Marks a reservation completed as `version`.
#[auto_type]
pub fn complete_reservation(id: DbId, version: DbId, now: DbAt) -> _ {
    let version: Option<DbId> = Some(version);
    let now: Option<DbAt> = Some(now);
    Prepared(
        dsl::update(upload_reservations::table.filter(upload_reservations::id.eq(id))).set((
            upload_reservations::completed_version.eq(version),
            upload_reservations::completed_at.eq(now),
        )),
    )
}

#[auto_type]
pub fn insert_deletion<'a>(row: &'a NewDeletion<'a>) -> _ {
    let columns: DeletionColumns = DELETION_COLUMNS;
    dsl::insert_into(pending_deletions::table)
        .values(row)
        .returning(columns)
}

/// A file's audit chain, newest link first (the rows of [`chain_head()`] and
/// [`file_and_chain_head()`], read one step down `audit_events_chain_idx`).
#[auto_type]
fn links_newest_first(file_id: DbId) -> _ {
    let file: Option<DbId> = Some(file_id);
    audit_events::table
        .filter(audit_events::file_id.eq(file))
        .filter(audit_events::seq.is_not_null())
        .order(audit_events::seq.desc())
}

/// The head of a file's audit chain: its last `(seq, hash)`, if any.
///
/// `ORDER BY seq DESC` and a literal `LIMIT 1` ([`crate::first`]), not `max(seq)`: PostgreSQL
/// reads this one step down `audit_events_chain_idx` whatever the chain's length, with the
/// plan it made when the chain was short. For `max(seq)` that plan is the plain aggregate over
/// every link of the file (the cheaper plan when the statistics see one event per file), kept
/// by the plan cache: a file locked ten thousand times made each of its reads walk ten
/// thousand index entries (`pg::the_chain_head_is_one_index_step_whatever_its_length`).
#[auto_type]
pub fn chain_head(file_id: DbId) -> _ {
    let links: links_newest_first = links_newest_first(file_id);
    first_row(links.select((audit_events::seq, audit_events::hash)))
}

/// The `seq` of a file's last link (NULL for an empty chain), as a subselect ([`chain_head()`]
/// says why this shape).
#[auto_type]
pub fn head_seq(file_id: DbId) -> _ {
    let links: links_newest_first = links_newest_first(file_id);
    first_value(links.select(audit_events::seq))
}

/// The `hash` of a file's last link (NULL for an empty chain), as a subselect ([`chain_head()`]
/// says why this shape).
#[auto_type]
pub fn head_hash(file_id: DbId) -> _ {
    let links: links_newest_first = links_newest_first(file_id);
    first_value(links.select(audit_events::hash))
}

/// The file with this id ([`crate::rows::FileLockRow`]) and the head of its audit chain
/// (last `seq`, its hash), in one statement: the read a unit of work makes once it holds the
/// file's row lock, so the chain costs no round trip of its own.
///
/// The head is read as [`chain_head()`] reads it, each of its two columns a subselect of that
/// shape, so the statement keeps one generic plan (no bound `LIMIT`:
/// `pg::the_locked_read_is_planned_once_per_connection`) and that plan reads the head in one
/// index step however long the chain grew after it was made
/// (`pg::the_chain_head_is_one_index_step_whatever_its_length`).
#[auto_type]
pub fn file_and_chain_head(id: DbId) -> _ {
    let file: FileColumns = files::all_columns;
    let lock: LockColumns = LOCK_COLUMNS;
    let now: store_now = store_now();
    let seq: head_seq = head_seq(id.clone());
    let hash: head_hash = head_hash(id.clone());
    files::table
        .left_join(locks::table)
        .filter(files::id.eq(id))
        .select(((file, lock.nullable(), now), seq, hash))
}

/// Settles a claimed event that stays queued (retried or dead): its delivery state, next
/// attempt, last error and the sinks that acknowledged it; the lease ends.
#[auto_type]
pub fn settle_event<'a>(
    id: DbId,
    delivery: &'a str,
    next_attempt_at: Option<DbAt>,
    error: Option<&'a str>,
    acked_sinks: Option<&'a str>,
) -> _ {
    let no_lease: Option<DbAt> = None;
    Prepared(
        dsl::update(event_outbox::table.filter(event_outbox::event_id.eq(id))).set((
            event_outbox::delivery.eq(delivery),
            event_outbox::next_attempt_at.eq(next_attempt_at),
            event_outbox::last_error.eq(error),
            event_outbox::leased_until.eq(no_lease),
            event_outbox::acked_sinks.eq(acked_sinks),
        )),
    )
}

/// Delivered events leave the outbox (the audit trail keeps them).
#[auto_type]
pub fn settle_delivered(ids: Vec<DbId>) -> _ {
    dsl::delete(event_outbox::table.filter(event_outbox::event_id.eq_any(ids)))
}

/// Releases claimed events not attempted: still pending, due as before, the claim's attempt
/// taken back; the lease ends.
#[auto_type]
pub fn release_events(ids: Vec<DbId>) -> _ {
    let no_lease: Option<DbAt> = None;
    dsl::update(event_outbox::table.filter(event_outbox::event_id.eq_any(ids))).set((
        event_outbox::attempts.eq(event_outbox::attempts - 1_i32),
        event_outbox::leased_until.eq(no_lease),
    ))
}

/// Queues an event for delivery (the change's transaction inserts it with the audit row).
#[auto_type]
pub fn insert_outbox<'a>(row: &'a NewOutbox) -> _ {
    dsl::insert_into(event_outbox::table).values(row)
}

#[auto_type]
pub fn insert_audit<'a>(row: &'a NewAudit<'a>) -> _ {
    dsl::insert_into(audit_events::table).values(row)
}

/// Records a refusal (`&NewAudit` with its window), or counts it on the event of the same
/// actor, action, path and window: one `INSERT … ON CONFLICT … DO UPDATE` on
/// `audit_events_refusal_window_idx`, which raises `repeat_count` and sets `last_repeat_at` to
/// the later of the two times. (A macro: PostgreSQL's index is partial and its conflict target
/// must name the index's predicate, given as `where …`; diesel writes no such predicate for
/// SQLite, whose index is therefore whole.)
#[macro_export]
macro_rules! record_refusal {
    ($row:expr $(, where $partial:expr)?) => {{
        use diesel::prelude::*;
        use diesel::upsert::excluded;
        #[allow(unused_imports)]
        use diesel::query_builder::DecoratableTarget;
        use $crate::schema::audit_events as a;
        let later = diesel::dsl::case_when(excluded(a::at).gt(a::at), excluded(a::at).nullable())
            .otherwise(a::at.nullable());
        // Kept prepared: one text whatever the row (`Prepared`).
        $crate::prepared::Prepared(
            diesel::insert_into(a::table)
                .values($row)
                .on_conflict((a::actor, a::action, a::bucket, a::path, a::refusal_window))
                $(.filter_target($partial))?
                .do_update()
                .set((
                    a::repeat_count.eq(a::repeat_count + 1_i32),
                    a::last_repeat_at.eq(later),
                )),
        )
    }};
}

/// A review transition, applied only if the version is in `from`; returns the version.
#[auto_type]
pub fn review<'a>(id: DbId, from: &'a str, change: &'a ReviewChange<'a>) -> _ {
    let version: VersionColumns = versions::all_columns;
    dsl::update(
        versions::table
            .filter(versions::id.eq(id))
            .filter(versions::status.eq(from)),
    )
    .set(change)
    .returning(version)
}

/// The file's review summary after a review: its validated version and status.
#[auto_type]
pub fn update_file_review<'a>(
    file_id: DbId,
    validated: Option<i32>,
    status: &'a str,
    now: DbAt,
) -> _ {
    dsl::update(files::table.filter(files::id.eq(file_id))).set((
        files::validated_version.eq(validated),
        files::status.eq(status),
        files::updated_at.eq(now),
    ))
}

#[auto_type]
pub fn set_tags(file_id: DbId, tags: DbDoc, now: DbAt) -> _ {
    dsl::update(files::table.filter(files::id.eq(file_id)))
        .set((files::tags.eq(tags), files::updated_at.eq(now)))
}

#[auto_type]
pub fn set_status<'a>(file_id: DbId, status: &'a str, now: DbAt) -> _ {
    dsl::update(files::table.filter(files::id.eq(file_id)))
        .set((files::status.eq(status), files::updated_at.eq(now)))
}

/// The status of the version with this id.
#[auto_type]
pub fn version_status_by_id(id: DbId) -> _ {
    versions::table
        .filter(versions::id.eq(id))
        .select(versions::status)
}

/// The status of version `number` of a file.
#[auto_type]
pub fn version_status(file_id: DbId, number: i32) -> _ {
    versions::table
        .filter(versions::file_id.eq(file_id))
        .filter(versions::number.eq(number))
        .select(versions::status)
}

/// Deletes a file's versions, returning their object keys.
#[auto_type]
pub fn delete_versions(file_id: DbId) -> _ {
    dsl::delete(versions::table.filter(versions::file_id.eq(file_id)))
        .returning(versions::object_key)
}

#[auto_type]
pub fn delete_file(file_id: DbId) -> _ {
    dsl::delete(files::table.filter(files::id.eq(file_id)))
}

/// How many presigned uploads `user` holds open at the store's time ([`store_now`]: on
/// PostgreSQL the transaction's `now()`, read by this statement, not by one of its own): not
/// completed, unexpired. One range of `upload_reservations_open_by_user_idx`.
///
/// The kind is written into the statement ([`PRESIGNED_KIND`]), not bound: the index is partial
/// (`WHERE … kind = 'presigned'`), and a plan for `kind = $n` cannot use it for every value, so
/// PostgreSQL's plan cache kept planning this statement on every execution (measured with
/// `pg_stat_statements.track_planning` in `storage-bench presign`: 17 448 plans in 20 187
/// calls, more time planning than running). A literal makes diesel call it unsafe to cache;
/// [`Prepared`] keeps it cached by its text, which never changes.
#[auto_type]
pub fn open_uploads_of<'a>(user: &'a str) -> _ {
    let presigned: diesel::expression::SqlLiteral<sql_types::Text> = dsl::sql(PRESIGNED_KIND);
    let now: store_now = store_now();
    Prepared(
        upload_reservations::table
            .filter(upload_reservations::created_by.eq(user))
            .filter(upload_reservations::kind.eq(presigned))
            .filter(upload_reservations::completed_version.is_null())
            .filter(upload_reservations::expires_at.gt(now))
            .select(dsl::count_star()),
    )
}

/// [`storage_domain::model::UploadKind::Presigned`] as an SQL string literal (checked by a test
/// against the domain's name).
pub const PRESIGNED_KIND: &str = "'presigned'";

#[auto_type]
pub fn insert_reservation<'a>(row: &'a NewReservation<'a>) -> _ {
    dsl::insert_into(upload_reservations::table).values(row)
}

/// Pushes back an open reservation's expiry (open and unexpired at `now`).
#[auto_type]
pub fn extend_reservation(id: DbId, expires_at: DbAt, now: DbAt) -> _ {
    Prepared(
        dsl::update(
            upload_reservations::table
                .filter(upload_reservations::id.eq(id))
                .filter(upload_reservations::completed_version.is_null())
                .filter(upload_reservations::expires_at.gt(now)),
        )
        .set(upload_reservations::expires_at.eq(expires_at)),
    )
}

/// Drops an open reservation, returning its bucket and object key.
#[auto_type]
pub fn abandon_reservation(id: DbId) -> _ {
    dsl::delete(
        upload_reservations::table
            .filter(upload_reservations::id.eq(id))
            .filter(upload_reservations::completed_version.is_null()),
    )
    .returning((upload_reservations::bucket, upload_reservations::object_key))
}

#[auto_type]
pub fn forget_deletion(id: DbId) -> _ {
    dsl::delete(pending_deletions::table.filter(pending_deletions::id.eq(id)))
}

// ---- rows written ---------------------------------------------------------------------------

#[derive(Debug, Insertable)]
#[diesel(table_name = locks)]
pub struct NewLock<'a> {
    pub file_id: DbId,
    pub bucket: &'a str,
    pub path: &'a str,
    pub holder: &'a str,
    pub acquired_at: DbAt,
    pub expires_at: DbAt,
    pub base_version: i32,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = files)]
pub struct NewFile<'a> {
    pub id: DbId,
    pub bucket: &'a str,
    pub path: &'a str,
    pub created_by: &'a str,
    pub version: i32,
    pub status: &'a str,
    pub tags: DbDoc,
    pub size: i64,
    pub content_type: &'a str,
    pub sha256: &'a str,
    pub created_at: DbAt,
    pub updated_at: DbAt,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = versions)]
// NULL for None (no column here has a default): one statement text, prepared once per
// connection, instead of `DEFAULT` for each None and a new statement to prepare on every call.
#[diesel(treat_none_as_default_value = false)]
pub struct NewVersionRow<'a> {
    pub id: DbId,
    pub file_id: DbId,
    pub number: i32,
    pub size: i64,
    pub sha256: &'a str,
    pub content_type: &'a str,
    pub author: &'a str,
    pub message: Option<&'a str>,
    pub status: &'a str,
    pub created_at: DbAt,
    pub object_key: &'a str,
    pub restored_from: Option<i32>,
}

/// The file's columns a new version changes; `tags: None` keeps the tags.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = files)]
pub struct FileAfterVersion<'a> {
    pub version: i32,
    pub status: &'a str,
    pub size: i64,
    pub content_type: &'a str,
    pub sha256: &'a str,
    pub tags: Option<DbDoc>,
    pub updated_at: DbAt,
}

/// A review's change of a version: the status, and for a decision (not a submission) the
/// reviewer, when, and the comment.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = versions)]
pub struct ReviewChange<'a> {
    pub status: &'a str,
    pub reviewed_by: Option<&'a str>,
    pub reviewed_at: Option<DbAt>,
    /// `None` keeps the column (a submission); `Some(None)` clears it.
    pub review_comment: Option<Option<&'a str>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = pending_deletions)]
// NULL for None (no column here has a default): one statement text, prepared once per
// connection, instead of `DEFAULT` for each None and a new statement to prepare on every call.
#[diesel(treat_none_as_default_value = false)]
pub struct NewDeletion<'a> {
    pub id: DbId,
    pub bucket: &'a str,
    pub object_key: &'a str,
    pub attempts: i32,
    pub leased_until: Option<DbAt>,
    pub created_at: DbAt,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
// NULL for None (no column here has a default): one statement text, prepared once per
// connection, instead of `DEFAULT` for each None and a new statement to prepare on every call.
#[diesel(treat_none_as_default_value = false)]
pub struct NewAudit<'a> {
    pub id: DbId,
    pub actor: &'a str,
    pub action: &'a str,
    pub bucket: &'a str,
    pub path: &'a str,
    pub file_id: Option<DbId>,
    pub version: Option<i32>,
    pub outcome: &'a str,
    pub request_id: &'a str,
    pub detail: Option<&'a str>,
    pub at: DbAt,
    pub refusal_window: Option<i64>,
    pub event_type: Option<&'a str>,
    pub data: Option<&'a str>,
    pub seq: Option<i64>,
    pub prev_hash: Option<&'a str>,
    pub hash: Option<&'a str>,
}

/// An event queued for delivery: pending, due at once (its own time).
#[derive(Debug, Insertable)]
#[diesel(table_name = event_outbox)]
// NULL for None (no column here has a default): one statement text, prepared once per
// connection, instead of `DEFAULT` for each None and a new statement to prepare on every call.
#[diesel(treat_none_as_default_value = false)]
pub struct NewOutbox {
    pub event_id: DbId,
    pub file_id: Option<DbId>,
    pub seq: Option<i64>,
    pub delivery: &'static str,
    pub next_attempt_at: Option<DbAt>,
}

/// A reservation row. Its `None`s are written as `NULL` (no column of it has a default), so
/// the `INSERT` has one text whatever is set, and PostgreSQL prepares it once per connection
/// (an `INSERT` whose `None`s are `DEFAULT` changes with them, and is prepared every time).
#[derive(Debug, Insertable)]
#[diesel(table_name = upload_reservations)]
#[diesel(treat_none_as_default_value = false)]
pub struct NewReservation<'a> {
    pub id: DbId,
    pub kind: &'a str,
    pub bucket: &'a str,
    pub path: &'a str,
    pub created_by: &'a str,
    pub version_id: DbId,
    pub object_key: &'a str,
    pub content_type: &'a str,
    pub expected_size: Option<i64>,
    pub expected_sha256: Option<&'a str>,
    pub max_bytes: i64,
    pub expires_at: DbAt,
    pub created_at: DbAt,
    pub completed_version: Option<DbId>,
    pub completed_at: Option<DbAt>,
}

pub(crate) type FileColumns = <files::table as Table>::AllColumns;
pub(crate) type VersionColumns = <versions::table as Table>::AllColumns;
pub(crate) type LockColumns = (
    locks::holder,
    locks::acquired_at,
    locks::expires_at,
    locks::base_version,
);
type DeletionColumns = (
    pending_deletions::id,
    pending_deletions::bucket,
    pending_deletions::object_key,
    pending_deletions::attempts,
);

// ---- rows from the domain's values ----------------------------------------------------------

use storage_domain::model::{AuditEvent, FileRecord, Lock, UploadReservation, VersionNumber};
use storage_domain::ports::{NewVersion, RepoError, file_status_following};

use crate::rows::{sql_number, sql_size, tags_json};

impl<'a> NewLock<'a> {
    pub fn of(file: &'a FileRecord, lock: &'a Lock) -> Result<Self, RepoError> {
        Ok(Self {
            file_id: DbId(file.id.as_uuid()),
            bucket: file.bucket().as_str(),
            path: file.path.as_str(),
            holder: lock.holder.as_str(),
            acquired_at: DbAt(lock.acquired_at),
            expires_at: DbAt(lock.expires_at),
            base_version: sql_number(lock.base_version)?,
        })
    }
}

impl<'a> NewFile<'a> {
    /// The file a first version creates.
    pub fn first(
        cmd: &'a NewVersion,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, RepoError> {
        Ok(Self {
            id: DbId(cmd.new_file_id.as_uuid()),
            bucket: cmd.path.bucket().as_str(),
            path: cmd.path.as_str(),
            created_by: cmd.author.as_str(),
            version: 1,
            status: file_status_following(cmd.status).as_str(),
            tags: DbDoc(tags_json(
                cmd.tags
                    .as_ref()
                    .unwrap_or(&storage_domain::model::Tags::new()),
            )),
            size: sql_size(cmd.size)?,
            content_type: &cmd.content_type,
            sha256: &cmd.sha256,
            created_at: DbAt(now),
            updated_at: DbAt(now),
        })
    }
}

impl<'a> NewVersionRow<'a> {
    pub fn of(
        cmd: &'a NewVersion,
        file_id: storage_domain::model::FileId,
        number: VersionNumber,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, RepoError> {
        Ok(Self {
            id: DbId(cmd.version_id.as_uuid()),
            file_id: DbId(file_id.as_uuid()),
            number: sql_number(number)?,
            size: sql_size(cmd.size)?,
            sha256: &cmd.sha256,
            content_type: &cmd.content_type,
            author: cmd.author.as_str(),
            message: cmd.message.as_deref(),
            status: cmd.status.as_str(),
            created_at: DbAt(now),
            object_key: cmd.object_key.as_str(),
            restored_from: cmd.mode.restored_from().map(sql_number).transpose()?,
        })
    }
}

impl<'a> FileAfterVersion<'a> {
    pub fn of(
        cmd: &'a NewVersion,
        number: VersionNumber,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, RepoError> {
        Ok(Self {
            version: sql_number(number)?,
            status: file_status_following(cmd.status).as_str(),
            size: sql_size(cmd.size)?,
            content_type: &cmd.content_type,
            sha256: &cmd.sha256,
            tags: cmd.tags.as_ref().map(|t| DbDoc(tags_json(t))),
            updated_at: DbAt(now),
        })
    }
}

impl<'a> NewAudit<'a> {
    pub fn of(event: &'a AuditEvent) -> Result<Self, RepoError> {
        Ok(Self {
            id: DbId(event.id.as_uuid()),
            actor: event.actor.as_str(),
            action: event.action.as_str(),
            bucket: event.path.bucket().as_str(),
            path: event.path.as_str(),
            file_id: event.file_id.map(|f| DbId(f.as_uuid())),
            version: event.version.map(sql_number).transpose()?,
            outcome: event.outcome.as_str(),
            request_id: &event.request_id,
            detail: event.detail.as_deref(),
            at: DbAt(event.at),
            refusal_window: None,
            event_type: event.event_type.map(|t| t.as_str()),
            data: event.data.as_deref(),
            seq: event
                .seq
                .map(|s| i64::try_from(s).map_err(|_| RepoError::Internal("seq".into())))
                .transpose()?,
            prev_hash: event.prev_hash.as_deref(),
            hash: event.hash.as_deref(),
        })
    }

    /// A refusal, with its counting window.
    pub fn refusal(event: &'a AuditEvent, window: Option<i64>) -> Result<Self, RepoError> {
        Ok(Self {
            refusal_window: window,
            ..Self::of(event)?
        })
    }
}

impl NewOutbox {
    /// The outbox row of an event that publishes (one with a type); none for the others.
    pub fn of(event: &AuditEvent) -> Result<Option<Self>, RepoError> {
        if event.event_type.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            event_id: DbId(event.id.as_uuid()),
            file_id: event.file_id.map(|f| DbId(f.as_uuid())),
            seq: event
                .seq
                .map(|s| i64::try_from(s).map_err(|_| RepoError::Internal("seq".into())))
                .transpose()?,
            delivery: "pending",
            next_attempt_at: Some(DbAt(event.at)),
        }))
    }
}

impl<'a> NewReservation<'a> {
    pub fn of(r: &'a UploadReservation) -> Result<Self, RepoError> {
        Ok(Self {
            id: DbId(r.id.as_uuid()),
            kind: r.kind.as_str(),
            bucket: r.path.bucket().as_str(),
            path: r.path.as_str(),
            created_by: r.created_by.as_str(),
            version_id: DbId(r.version_id.as_uuid()),
            object_key: r.object_key.as_str(),
            content_type: &r.content_type,
            expected_size: r.expected_size.map(sql_size).transpose()?,
            expected_sha256: r.expected_sha256.as_deref(),
            max_bytes: sql_size(r.max_bytes)?,
            expires_at: DbAt(r.expires_at),
            created_at: DbAt(r.created_at),
            completed_version: r.completed_version.map(|v| DbId(v.as_uuid())),
            // A reservation stored completed was completed when it was made.
            completed_at: r.completed_version.map(|_| DbAt(r.created_at)),
        })
    }
}

impl<'a> NewDeletion<'a> {
    /// A deletion of `object_key` in `bucket`, queued at `now`, due at once or after `not_before`.
    pub fn of(
        bucket: &'a str,
        object_key: &'a str,
        not_before: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            id: DbId(uuid::Uuid::new_v4()),
            bucket,
            object_key,
            attempts: 0,
            leased_until: not_before.map(DbAt),
            created_at: DbAt(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use storage_domain::model::UploadKind;

    #[test]
    fn the_presigned_literal_is_the_domain_s_kind() {
        assert_eq!(
            super::PRESIGNED_KIND,
            format!("'{}'", UploadKind::Presigned.as_str())
        );
    }
}
