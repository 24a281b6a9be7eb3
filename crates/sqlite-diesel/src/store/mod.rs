//! [`SqliteMetadataStore`]: the [`MetadataStore`] port on SQLite.
//!
//! Each method takes a connection from its pool (the writer for units of work, a reader for
//! reads), then runs its whole transaction on a blocking thread (`spawn_blocking`) that owns the
//! connection: one hop per method, never a blocking call on an async worker. If the caller's
//! future is dropped, the blocking task still runs the transaction to its commit or rollback,
//! and the connection goes back to its pool only when the task ends.

mod listing;
mod reads;
mod writes;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool::managed::Pool;
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use futures::executor::block_on;
use storage_diesel_common::error::{TxError, map_pool, task_failed};
use storage_domain::model::{
    AuditEvent, AuditId, BucketKind, DeletionId, DirPath, FileId, FilePath, FileRecord, Lock,
    ObjectKey, PendingDeletion, UploadId, UploadReservation, Version, VersionId, VersionNumber,
    VersionSelector,
};
use storage_domain::ports::{
    AcquireLock, AuditCursor, AuditScope, DeleteFile, DeliveryState, ListEntry, LockedFile,
    MetadataStore, NewVersion, OutboxEvent, PendingReview, PruneVersions, ReleaseLock, RepoError,
    ReviewCursor, ReviewTransition, SetArchived, SetPin, SetTags, Settlement,
};
use storage_domain::rules::chain::AuditChain;
use storage_domain::rules::retention::RetentionRule;

use crate::config::SqliteConfig;
use crate::connection::{LocationError, Manager, database_path};
use crate::migrate::{MigrationError, migrate_blocking};

pub(crate) type Conn = SqliteConnection;

/// A read (or the health check): runs on the connection inside its transaction, at the store's
/// time `now` (read once when the transaction starts).
pub(crate) type Step<D, T> = fn(&mut Conn, DateTime<Utc>, D) -> Result<T, TxError>;

/// The future of a unit of work (`storage_diesel_common::units!`), borrowing the connection:
/// every statement in it runs when it is called, so it is driven to its end at once
/// (`futures::executor::block_on`) on the blocking thread of its transaction.
pub(crate) type Work<'c, T> = Pin<Box<dyn Future<Output = Result<T, TxError>> + 'c>>;

/// A unit of work: `work(conn, now, data)`.
type Unit<D, T> = for<'c> fn(&'c mut Conn, writes::Clock, D) -> Work<'c, T>;

/// Messages SQLite gives for conditions worth retrying (`SQLITE_BUSY` after `busy_timeout`,
/// `SQLITE_LOCKED`) or for a file it cannot reach.
const TRANSIENT_MESSAGES: [&str; 5] = [
    "database is locked",
    "database table is locked",
    "database schema is locked",
    "unable to open database file",
    "disk I/O error",
];

fn repo(error: TxError) -> RepoError {
    error.into_repo(&TRANSIENT_MESSAGES)
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error("cannot build the connection pools: {0}")]
    Pool(String),
    #[error("open task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The SQLite metadata store: one writer connection and a pool of readers on one file.
#[derive(Clone)]
pub struct SqliteMetadataStore {
    path: PathBuf,
    writer: Pool<Manager>,
    readers: Pool<Manager>,
    /// `SqliteConfig::publish_events`, handed to every unit of work in its `Clock`.
    publish_events: bool,
    /// Whether the events written are chained (`SqliteConfig::audit_chain`).
    chain: AuditChain,
}

impl std::fmt::Debug for SqliteMetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let readers = self.readers.status();
        f.debug_struct("SqliteMetadataStore")
            .field("path", &self.path)
            .field("max_readers", &readers.max_size)
            .field("readers", &readers.size)
            .finish()
    }
}

impl SqliteMetadataStore {
    /// The writer's pool figures (one connection), for the metrics.
    pub fn writer_pool_status(&self) -> deadpool::Status {
        self.writer.status()
    }

    /// The readers' pool figures, for the metrics.
    pub fn reader_pool_status(&self) -> deadpool::Status {
        self.readers.status()
    }
}

/// The store's clock: the system clock (SQLite's own `'now'` is the same clock), to the
/// millisecond. Each connection registers it as the SQL function `now()`, which the shared
/// statements read (`storage_diesel_common::queries::store_now`).
pub(crate) fn clock_now() -> DateTime<Utc> {
    let millis = Utc::now().timestamp_millis();
    DateTime::from_timestamp_millis(millis).unwrap_or_else(Utc::now)
}

fn store_now(_: &mut Conn) -> Result<DateTime<Utc>, TxError> {
    Ok(clock_now())
}

#[derive(Clone, Copy)]
enum Role {
    Read,
    Write,
}

impl SqliteMetadataStore {
    /// Opens the store on `path_or_url` (a file path, or `sqlite://PATH`): creates the file and
    /// its directory when missing, switches it to WAL, applies the pending migrations, and
    /// builds the pools (connections open lazily).
    ///
    /// # Errors
    /// [`OpenError`] when the location is unusable, the file cannot be opened or migrated, or
    /// the pool settings are refused.
    pub async fn open(path_or_url: &str, config: SqliteConfig) -> Result<Self, OpenError> {
        let path = database_path(path_or_url)?;
        let busy_timeout = config.busy_timeout;
        let at = path.clone();
        tokio::task::spawn_blocking(move || migrate_blocking(&at, busy_timeout)).await??;
        let build = |size: usize, read_only: bool| {
            Pool::builder(Manager::new(path.clone(), busy_timeout, read_only))
                .max_size(size)
                .wait_timeout(Some(config.wait_timeout))
                .create_timeout(Some(config.wait_timeout))
                .recycle_timeout(Some(config.wait_timeout))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .map_err(|e| OpenError::Pool(e.to_string()))
        };
        Ok(Self {
            writer: build(1, false)?,
            readers: build(config.max_readers.max(1), true)?,
            path,
            publish_events: config.publish_events,
            chain: config.audit_chain,
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Runs `work(conn, now, data)` in one transaction on a blocking thread: a write takes
    /// SQLite's write lock at `BEGIN IMMEDIATE`, so check-then-write decisions are serialised by
    /// the database; a read is a deferred transaction, one WAL snapshot.
    async fn run<D, T>(&self, role: Role, data: D, work: Step<D, T>) -> Result<T, RepoError>
    where
        D: Send + 'static,
        T: Send + 'static,
    {
        let pool = match role {
            Role::Read => &self.readers,
            Role::Write => &self.writer,
        };
        let mut conn = pool.get().await.map_err(map_pool)?;
        let task = tokio::task::spawn_blocking(move || {
            let c: &mut Conn = &mut conn;
            let unit = |c: &mut Conn| {
                let now = store_now(c)?;
                work(c, now, data)
            };
            match role {
                Role::Write => c.immediate_transaction(unit),
                Role::Read => c.transaction(unit),
            }
        });
        task.await.map_err(|e| task_failed(&e))?.map_err(repo)
    }

    async fn read<D, T>(&self, data: D, work: Step<D, T>) -> Result<T, RepoError>
    where
        D: Send + 'static,
        T: Send + 'static,
    {
        self.run(Role::Read, data, work).await
    }

    /// Runs the unit of work `work(conn, now, data)` in a `BEGIN IMMEDIATE` transaction, on
    /// the blocking thread that owns the writer connection.
    async fn write<D, T>(&self, data: D, work: Unit<D, T>) -> Result<T, RepoError>
    where
        D: Send + 'static,
        T: Send + 'static,
    {
        let (publish, chain) = (self.publish_events, self.chain.clone());
        self.run(
            Role::Write,
            (work, data, publish, chain),
            |c, now, (work, data, publish, chain)| {
                block_on(work(
                    c,
                    writes::Clock {
                        now,
                        publish,
                        chain,
                    },
                    data,
                ))
            },
        )
        .await
    }
}

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn health(&self) -> Result<(), RepoError> {
        self.read((), |c, _, ()| Ok(c.batch_execute("SELECT 1")?))
            .await
    }

    async fn find_file(&self, path: &FilePath) -> Result<Option<FileRecord>, RepoError> {
        self.read(path.clone(), |c, _, p| block_on(reads::find_file(c, &p)))
            .await
    }

    async fn find_file_by_id(&self, id: FileId) -> Result<Option<FileRecord>, RepoError> {
        self.read(id, |c, _, id| block_on(reads::find_file_by_id(c, id)))
            .await
    }

    async fn find_version(
        &self,
        id: VersionId,
    ) -> Result<Option<(FileRecord, Version)>, RepoError> {
        self.read(id, |c, _, id| block_on(reads::find_version(c, id)))
            .await
    }

    async fn find_file_version(
        &self,
        path: &FilePath,
        selector: VersionSelector,
    ) -> Result<Option<(FileRecord, Option<Version>)>, RepoError> {
        self.read((path.clone(), selector), |c, _, (p, s)| {
            block_on(reads::find_file_version(c, &p, s))
        })
        .await
    }

    async fn list_versions(
        &self,
        file_id: FileId,
        before: Option<VersionNumber>,
        limit: u32,
    ) -> Result<Vec<Version>, RepoError> {
        self.read((file_id, before, limit), |c, _, (f, b, l)| {
            block_on(reads::list_versions(c, f, b, l))
        })
        .await
    }

    async fn list_children(
        &self,
        dir: &DirPath,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<ListEntry>, RepoError> {
        self.read((dir.clone(), after, limit), listing::list_children)
            .await
    }

    async fn list_locks(
        &self,
        dir: &DirPath,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<LockedFile>, RepoError> {
        self.read((dir.clone(), after, limit), |c, _, (d, a, l)| {
            block_on(reads::list_locks(c, &d, a, l))
        })
        .await
    }

    async fn list_pending_reviews(
        &self,
        dir: &DirPath,
        after: Option<ReviewCursor>,
        limit: u32,
    ) -> Result<Vec<PendingReview>, RepoError> {
        self.read((dir.clone(), after, limit), |c, _, (d, a, l)| {
            block_on(reads::list_pending_reviews(c, &d, a, l))
        })
        .await
    }

    async fn list_audit(
        &self,
        scope: &AuditScope,
        before: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError> {
        self.read((scope.clone(), before, limit), |c, _, (s, b, l)| {
            block_on(reads::list_audit(c, &s, b, l))
        })
        .await
    }

    async fn find_reservation(&self, id: UploadId) -> Result<Option<UploadReservation>, RepoError> {
        self.read(id, |c, _, id| block_on(reads::find_reservation(c, id)))
            .await
    }

    async fn create_reservation(
        &self,
        reservation: &UploadReservation,
        max_open: Option<u32>,
    ) -> Result<(), RepoError> {
        self.write((reservation.clone(), max_open), writes::create_reservation)
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

    async fn acquire_lock(&self, cmd: AcquireLock) -> Result<Lock, RepoError> {
        self.write(cmd, writes::acquire_lock).await
    }

    async fn release_lock(&self, cmd: ReleaseLock) -> Result<Option<Lock>, RepoError> {
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
        self.read((bucket, rule, after, limit), |c, _, (b, r, a, l)| {
            block_on(writes::retention_candidates(c, b, r, a, l))
        })
        .await
    }

    async fn prune_versions(&self, cmd: PruneVersions) -> Result<Vec<VersionNumber>, RepoError> {
        self.write(cmd, writes::prune_versions).await
    }

    async fn record_refusal(
        &self,
        event: &AuditEvent,
        window: std::time::Duration,
    ) -> Result<(), RepoError> {
        self.write((event.clone(), window), writes::record_refusal)
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
        self.read((bucket, after, limit), |c, _, (b, a, l)| {
            block_on(reads::audit_chain(c, b, a, l))
        })
        .await
    }

    async fn audit_unchained(
        &self,
        bucket: Option<BucketKind>,
        after: Option<AuditId>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError> {
        self.read((bucket, after, limit), |c, _, (b, a, l)| {
            block_on(reads::audit_unchained(c, b, a, l))
        })
        .await
    }

    async fn claim_events(
        &self,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, RepoError> {
        self.write((lease, limit), writes::claim_events).await
    }

    async fn settle_events(&self, outcomes: Vec<(AuditId, Settlement)>) -> Result<(), RepoError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.write(outcomes, writes::settle_events).await
    }

    async fn list_events(
        &self,
        state: DeliveryState,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, RepoError> {
        self.read((state, limit), |c, _, (s, l)| {
            block_on(reads::list_events(c, s, l))
        })
        .await
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
        self.read((dir.clone(), after, limit), |c, _, (d, a, l)| {
            block_on(reads::trash::list_trash(c, &d, a, l))
        })
        .await
    }

    async fn find_trash(
        &self,
        id: storage_domain::model::TrashId,
    ) -> Result<Option<storage_domain::model::TrashEntry>, RepoError> {
        self.read(id, |c, _, id| block_on(reads::trash::find_trash(c, id)))
            .await
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

/// `now` moved by `by` (a ttl, a lease, a retention), or `Internal` when out of range.
pub(crate) fn shifted(
    now: DateTime<Utc>,
    by: std::time::Duration,
    later: bool,
) -> Result<DateTime<Utc>, TxError> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|d| {
            if later {
                now.checked_add_signed(d)
            } else {
                now.checked_sub_signed(d)
            }
        })
        .ok_or_else(|| TxError::Repo(RepoError::Internal("duration out of range".into())))
}
