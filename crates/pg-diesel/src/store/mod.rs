//! [`PgMetadataStore`]: the [`MetadataStore`] port on PostgreSQL.
//!
//! A unit of work runs in a task of its own (`tokio::spawn`) that owns its pooled connection:
//! if the caller's future is dropped, the task still runs the transaction to its commit or
//! rollback, so no transaction stays open and no connection goes back to the pool in the middle
//! of one. A read is one statement run on the caller's task without an explicit transaction
//! (nothing can be left half-done by dropping it), except the listing's two statements, which
//! share a snapshot in a transaction and therefore run like a unit of work. A connection is
//! held for the database work of one method only.

mod listing;
mod reads;
mod writes;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use secrecy::ExposeSecret;
use storage_domain::model::{
    AuditEvent, AuditId, BucketKind, DeletionId, DirPath, FileId, FilePath, FileRecord, ObjectKey,
    PendingDeletion, UploadId, UploadReservation, Version, VersionId, VersionNumber,
    VersionSelector,
};
use storage_domain::ports::{
    AcquireLock, AuditCursor, AuditScope, DeleteFile, DeliveryState, ListEntry, LockedFile,
    MetadataStore, NewVersion, OutboxEvent, PendingReview, PruneVersions, ReleaseLock, RepoError,
    ReviewCursor, ReviewTransition, SetArchived, SetPin, SetTags, Settlement,
};
use storage_domain::rules::chain::AuditChain;
use storage_domain::rules::retention::RetentionRule;

use crate::config::PgConfig;
use crate::error::{TxError, map_pool, repo};

type Conn = AsyncPgConnection;

/// A boxed future borrowing the connection, the shape of every unit of work.
pub(crate) type Work<'c, T> = Pin<Box<dyn Future<Output = Result<T, TxError>> + Send + 'c>>;

/// A unit of work (`storage_diesel_common::units!`): `work(conn, clock, data)`.
type Unit<D, T> = for<'c> fn(&'c mut Conn, writes::Clock, D) -> Work<'c, T>;

/// The PostgreSQL metadata store: a deadpool pool of `AsyncPgConnection`s.
#[derive(Clone)]
pub struct PgMetadataStore {
    pool: Pool<Conn>,
    /// `PgConfig::publish_events`, handed to every unit of work in its `Clock`.
    publish_events: bool,
    /// Whether the events written are chained (`PgConfig::audit_chain`).
    chain: AuditChain,
    /// Outbox rows this store (and its clones) claimed or settled since it started: each left
    /// a dead row version behind (`vacuum_outbox_now_and_then`).
    outbox_writes: Arc<AtomicU64>,
}

/// The planner's cost of a page read out of order, set on every connection (PostgreSQL's
/// default is 4, for spinning disks; 1.1 is the usual value for SSDs and for data that stays
/// cached, which a metadata store's working set does).
///
/// Why the service sets it: a connection keeps the generic plan of each prepared statement it
/// made on the statement's sixth execution, with the statistics of that moment, until the table
/// is analysed again. On a young database, at the default cost, the plan for a table of a few
/// pages is a sequential scan, and it stays while the table grows: the chain head read under
/// every lock became a scan of the audit trail (7 ms at 20 000 events, against 0.08 ms down
/// the index; `storage-bench events` saw it on most of one server's connections). At 1.1 the
/// index is chosen from the first pages on (docs/decisions.md, "A kept plan must stay cheap as
/// the data grows").
const SESSION_RANDOM_PAGE_COST: f64 = 1.1;

/// What every connection of the pool sets when it opens, as statements for the simple protocol:
/// the statement timeout (milliseconds) and the planner's `random_page_cost` (1.1; why: the
/// comment of `SESSION_RANDOM_PAGE_COST` in this module).
pub fn session_settings(statement_timeout_ms: u128) -> String {
    // raw SQL: session settings (`SET`), not a query.
    format!(
        "SET statement_timeout = {statement_timeout_ms}; \
         SET random_page_cost = {SESSION_RANDOM_PAGE_COST}"
    )
}

/// The outbox is vacuumed each time this many of its rows were claimed or settled by a store
/// (`vacuum_outbox_now_and_then`).
const OUTBOX_VACUUM_EVERY: u64 = 2_000;

impl std::fmt::Debug for PgMetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgMetadataStore")
            .field("max_size", &status.max_size)
            .field("size", &status.size)
            .finish()
    }
}

impl PgMetadataStore {
    /// The pool's figures, for the metrics: most connections, open ones, free ones, and
    /// callers waiting for one.
    pub fn pool_status(&self) -> deadpool::Status {
        self.pool.status()
    }
}

/// Why the pool could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the database pool: {0}")]
pub struct PoolBuildError(String);

impl PgMetadataStore {
    /// Builds the pool. Connections are opened lazily, on first use; each gets the configured
    /// `statement_timeout` and the planner setting of [`session_settings`] as soon as it is opened.
    ///
    /// # Errors
    /// [`PoolBuildError`] when the pool settings are refused.
    pub fn new(config: &PgConfig) -> Result<Self, PoolBuildError> {
        let timeout_ms = config.statement_timeout.as_millis().max(1);
        let mut manager_config = ManagerConfig::<Conn>::default();
        // A connection handed back is checked for an open or broken transaction only, without a
        // test query: a round trip per checkout otherwise. A connection the server closed fails
        // its next statement (`Unavailable`), and is then dropped from the pool.
        manager_config.recycling_method = RecyclingMethod::Fast;
        manager_config.custom_setup = Box::new(move |url| {
            let url = url.to_owned();
            Box::pin(async move {
                let mut conn = Conn::establish(&url).await?;
                diesel_async::SimpleAsyncConnection::batch_execute(
                    &mut conn,
                    &session_settings(timeout_ms),
                )
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        });
        let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(
            config.url.expose_secret(),
            manager_config,
        );
        let pool = Pool::builder(manager)
            .max_size(config.max_size)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.create_timeout))
            .recycle_timeout(Some(config.recycle_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| PoolBuildError(e.to_string()))?;
        Ok(Self {
            pool,
            publish_events: config.publish_events,
            chain: config.audit_chain.clone(),
            outbox_writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Counts `rows` outbox rows claimed or settled and, each time the count passes a multiple of
    /// [`OUTBOX_VACUUM_EVERY`], vacuums the outbox (`writes::vacuum_outbox`).
    ///
    /// Why: a claim leaves a dead version of each row it leases and a delivery deletes its
    /// row, leaving dead entries in the outbox's indexes, and PostgreSQL's autovacuum visits a
    /// database at most once a minute (`autovacuum_naptime`): at a thousand events a second
    /// the outbox held up to 38 000 dead rows beside a few hundred live ones, and every claim
    /// walked them (its `NOT EXISTS` an earlier pending event of the file reads the file's
    /// dead entries). Measured in `storage-bench events`: a claim 2.2-6.9 ms a pass before,
    /// about 1 ms with this; a vacuum takes 3-5 ms. A vacuum that fails, or that another one
    /// holds off (`SKIP_LOCKED`), is logged and left to autovacuum: the claim or settlement has
    /// already committed.
    async fn vacuum_outbox_now_and_then(&self, rows: usize) {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let before = self.outbox_writes.fetch_add(rows, Ordering::Relaxed);
        if before / OUTBOX_VACUUM_EVERY == before.saturating_add(rows) / OUTBOX_VACUUM_EVERY {
            return;
        }
        let vacuumed = self
            .run(|mut conn| async move { writes::vacuum_outbox(&mut conn).await })
            .await;
        if let Err(error) = vacuumed {
            tracing::warn!(%error, "could not vacuum the event outbox (autovacuum will)");
        }
    }

    /// Runs `work` in a task of its own, on a connection taken from the pool inside the task.
    async fn run<T, F, Fut>(&self, work: F) -> Result<T, RepoError>
    where
        F: FnOnce(Object<Conn>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, TxError>> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::spawn(async move {
            let conn = pool.get().await.map_err(map_pool)?;
            work(conn).await.map_err(repo)
        });
        task.await
            .map_err(|e| storage_diesel_common::error::task_failed(&e))?
    }

    /// Runs the unit of work `work(conn, clock, data)` in one read-write transaction (READ
    /// COMMITTED: the decisions rest on row locks and conditional writes).
    async fn write<D: Send + 'static, T: Send + 'static>(
        &self,
        data: D,
        work: Unit<D, T>,
    ) -> Result<T, RepoError> {
        let clock = writes::Clock {
            publish: self.publish_events,
            chain: self.chain.clone(),
        };
        self.run(move |mut conn| async move {
            let conn: &mut Conn = &mut conn;
            conn.transaction(async move |c: &mut Conn| work(c, clock, data).await)
                .await
        })
        .await
    }

    /// Runs the unit of work `work(conn, clock, data)` without a transaction opened here: a
    /// unit of one statement, atomic on its own, where a transaction would add two round trips
    /// and hold the row it changed until its `COMMIT` (a refusal's upsert: an identical one
    /// waits for no more than this statement; an uncapped reservation), or one that runs its
    /// own, pipelined (a capped reservation, `writes::reserve`).
    async fn single<D: Send + 'static, T: Send + 'static>(
        &self,
        data: D,
        work: Unit<D, T>,
    ) -> Result<T, RepoError> {
        let clock = writes::Clock {
            publish: self.publish_events,
            chain: self.chain.clone(),
        };
        self.run(move |mut conn| async move { work(&mut conn, clock, data).await })
            .await
    }

    /// Runs `work(conn, data)` in one read-only REPEATABLE READ transaction: every query of a
    /// read sees the same snapshot (the listing's two statements).
    async fn snapshot<D, T>(
        &self,
        data: D,
        work: for<'c> fn(&'c mut Conn, D) -> Work<'c, T>,
    ) -> Result<T, RepoError>
    where
        D: Send + 'static,
        T: Send + 'static,
    {
        self.run(move |mut conn| async move {
            let conn: &mut Conn = &mut conn;
            conn.build_transaction()
                .read_only()
                .repeatable_read()
                .run(async move |c: &mut Conn| work(c, data).await)
                .await
        })
        .await
    }

    /// A connection for a read of one statement, run on the caller's task.
    async fn conn(&self) -> Result<Object<Conn>, RepoError> {
        self.pool.get().await.map_err(map_pool)
    }
}

#[async_trait]
impl MetadataStore for PgMetadataStore {
    async fn health(&self) -> Result<(), RepoError> {
        use diesel::IntoSql;
        diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
            .execute(&mut *self.conn().await?)
            .await
            .map(|_| ())
            .map_err(|e| repo(e.into()))
    }

    async fn find_file(&self, path: &FilePath) -> Result<Option<FileRecord>, RepoError> {
        reads::find_file(&mut *self.conn().await?, path)
            .await
            .map_err(repo)
    }

    async fn find_file_by_id(&self, id: FileId) -> Result<Option<FileRecord>, RepoError> {
        reads::find_file_by_id(&mut *self.conn().await?, id)
            .await
            .map_err(repo)
    }

    async fn find_version(
        &self,
        id: VersionId,
    ) -> Result<Option<(FileRecord, Version)>, RepoError> {
        reads::find_version(&mut *self.conn().await?, id)
            .await
            .map_err(repo)
    }

    async fn find_file_version(
        &self,
        path: &FilePath,
        selector: VersionSelector,
    ) -> Result<Option<(FileRecord, Option<Version>)>, RepoError> {
        reads::find_file_version(&mut *self.conn().await?, path, selector)
            .await
            .map_err(repo)
    }

    async fn list_versions(
        &self,
        file_id: FileId,
        before: Option<VersionNumber>,
        limit: u32,
    ) -> Result<Vec<Version>, RepoError> {
        reads::list_versions(&mut *self.conn().await?, file_id, before, limit)
            .await
            .map_err(repo)
    }

    async fn list_children(
        &self,
        dir: &DirPath,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<ListEntry>, RepoError> {
        self.snapshot((dir.clone(), after, limit), listing::list_children)
            .await
    }

    async fn list_locks(
        &self,
        dir: &DirPath,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<LockedFile>, RepoError> {
        reads::list_locks(&mut *self.conn().await?, dir, after, limit)
            .await
            .map_err(repo)
    }

    async fn list_pending_reviews(
        &self,
        dir: &DirPath,
        after: Option<ReviewCursor>,
        limit: u32,
    ) -> Result<Vec<PendingReview>, RepoError> {
        reads::list_pending_reviews(&mut *self.conn().await?, dir, after, limit)
            .await
            .map_err(repo)
    }

    async fn list_audit(
        &self,
        scope: &AuditScope,
        before: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError> {
        reads::list_audit(&mut *self.conn().await?, scope, before, limit)
            .await
            .map_err(repo)
    }

    async fn find_reservation(&self, id: UploadId) -> Result<Option<UploadReservation>, RepoError> {
        reads::find_reservation(&mut *self.conn().await?, id)
            .await
            .map_err(repo)
    }

    async fn create_reservation(
        &self,
        reservation: &UploadReservation,
        max_open: Option<u32>,
    ) -> Result<(), RepoError> {
        // Its own transaction when capped (`writes::reserve`), pipelined; one statement else.
        self.single((reservation.clone(), max_open), writes::create_reservation)
            .await
    }

    async fn extend_reservation(
        &self,
        id: UploadId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.write((id, expires_at), writes::extend_reservation)
            .await
    }

    async fn abandon_reservation(
        &self,
        id: UploadId,
    ) -> Result<Option<PendingDeletion>, RepoError> {
        self.write(id, writes::abandon_reservation).await
    }

    async fn commit_version(&self, cmd: NewVersion) -> Result<(FileRecord, Version), RepoError> {
        self.write(cmd, writes::commit_version).await
    }

    async fn acquire_lock(
        &self,
        cmd: AcquireLock,
    ) -> Result<storage_domain::model::Lock, RepoError> {
        self.write(cmd, writes::acquire_lock).await
    }

    async fn release_lock(
        &self,
        cmd: ReleaseLock,
    ) -> Result<Option<storage_domain::model::Lock>, RepoError> {
        self.write(cmd, writes::release_lock).await
    }

    async fn review_version(
        &self,
        cmd: ReviewTransition,
    ) -> Result<(FileRecord, Version), RepoError> {
        self.write(cmd, writes::review_version).await
    }

    async fn set_tags(&self, cmd: SetTags) -> Result<FileRecord, RepoError> {
        self.write(cmd, writes::set_tags).await
    }

    async fn set_archived(&self, cmd: SetArchived) -> Result<FileRecord, RepoError> {
        self.write(cmd, writes::set_archived).await
    }

    async fn delete_file(&self, cmd: DeleteFile) -> Result<Vec<PendingDeletion>, RepoError> {
        self.write(cmd, writes::delete_file).await
    }

    async fn set_pin(&self, cmd: SetPin) -> Result<(FileRecord, Version), RepoError> {
        self.write(cmd, writes::set_pin).await
    }

    async fn retention_candidates(
        &self,
        bucket: BucketKind,
        rule: RetentionRule,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileId>, RepoError> {
        writes::retention_candidates(&mut *self.conn().await?, bucket, rule, after, limit)
            .await
            .map_err(repo)
    }

    async fn prune_versions(&self, cmd: PruneVersions) -> Result<Vec<VersionNumber>, RepoError> {
        self.write(cmd, writes::prune_versions).await
    }

    async fn record_refusal(
        &self,
        event: &AuditEvent,
        window: std::time::Duration,
    ) -> Result<(), RepoError> {
        self.single((event.clone(), window), writes::record_refusal)
            .await
    }

    async fn expire_reservations(
        &self,
        keep_completed: std::time::Duration,
        limit: u32,
    ) -> Result<u64, RepoError> {
        self.write((keep_completed, limit), writes::expire_reservations)
            .await
    }

    async fn claim_deletions(
        &self,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<PendingDeletion>, RepoError> {
        self.write((lease, limit), writes::claim_deletions).await
    }

    async fn forget_deletion(&self, id: DeletionId) -> Result<(), RepoError> {
        self.write(id, writes::forget_deletion).await
    }

    async fn queue_deletions(
        &self,
        objects: &[(BucketKind, ObjectKey)],
        not_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<PendingDeletion>, RepoError> {
        self.write((objects.to_vec(), not_before), writes::queue_deletions)
            .await
    }

    async fn audit_chain(
        &self,
        bucket: Option<BucketKind>,
        after: Option<(FileId, u64)>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError> {
        reads::audit_chain(&mut *self.conn().await?, bucket, after, limit)
            .await
            .map_err(repo)
    }

    async fn audit_unchained(
        &self,
        bucket: Option<BucketKind>,
        after: Option<AuditId>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError> {
        reads::audit_unchained(&mut *self.conn().await?, bucket, after, limit)
            .await
            .map_err(repo)
    }

    async fn claim_events(
        &self,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, RepoError> {
        let claimed = self.write((lease, limit), writes::claim_events).await?;
        self.vacuum_outbox_now_and_then(claimed.len()).await;
        Ok(claimed)
    }

    async fn settle_events(&self, outcomes: Vec<(AuditId, Settlement)>) -> Result<(), RepoError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let settled = outcomes.len();
        self.write(outcomes, writes::settle_events).await?;
        self.vacuum_outbox_now_and_then(settled).await;
        Ok(())
    }

    async fn list_events(
        &self,
        state: DeliveryState,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, RepoError> {
        reads::list_events(&mut *self.conn().await?, state, limit)
            .await
            .map_err(repo)
    }

    async fn retry_events(&self, ids: Option<Vec<AuditId>>) -> Result<u64, RepoError> {
        self.write(ids, writes::retry_events).await
    }

    // ---- trash (issue 16) ------------------------------------------------------------------

    async fn trash_file(
        &self,
        cmd: storage_domain::ports::TrashFile,
    ) -> Result<storage_domain::model::TrashEntry, RepoError> {
        self.write(cmd, writes::trash_file).await
    }

    async fn list_trash(
        &self,
        dir: &DirPath,
        after: Option<storage_domain::ports::TrashCursor>,
        limit: u32,
    ) -> Result<Vec<storage_domain::model::TrashEntry>, RepoError> {
        reads::trash::list_trash(&mut *self.conn().await?, dir, after, limit)
            .await
            .map_err(repo)
    }

    async fn find_trash(
        &self,
        id: storage_domain::model::TrashId,
    ) -> Result<Option<storage_domain::model::TrashEntry>, RepoError> {
        reads::trash::find_trash(&mut *self.conn().await?, id)
            .await
            .map_err(repo)
    }

    async fn due_trash(
        &self,
        retention: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<storage_domain::model::TrashEntry>, RepoError> {
        self.write((retention, limit), writes::due_trash).await
    }

    async fn restore_trash(
        &self,
        cmd: storage_domain::ports::RestoreTrash,
    ) -> Result<FileRecord, RepoError> {
        self.write(cmd, writes::restore_trash).await
    }

    async fn purge_trash(
        &self,
        cmd: storage_domain::ports::PurgeTrash,
    ) -> Result<Vec<PendingDeletion>, RepoError> {
        self.write(cmd, writes::purge_trash).await
    }
}
