//! The raw side of the comparisons: the statements of a service operation issued straight to
//! the run's PostgreSQL, at the same concurrency, from the bench process (tokio-postgres, one
//! connection per client, every statement prepared once per connection, one round trip per
//! statement as the service's adapter does: no pipelining).
//!
//! The statements are copies of what the PostgreSQL adapter runs (`crates/diesel-common/src/
//! queries.rs`, `crates/pg-diesel/src/store/writes.rs`), written out here so the raw side does
//! not go through the adapter it is the yardstick of. Two shapes of lock+unlock:
//!
//! - `minimal`: what any implementation must do, the decision inside the statement (the
//!   issue's pgbench yardstick): a transaction of a conditional upsert of the lock row plus the
//!   audit INSERT, then one of the conditional DELETE plus the audit INSERT;
//! - `service`: the service's own statements, in its order: the file by path (the use case's
//!   read), then `BEGIN`, the row lock (`SELECT … FOR UPDATE`), the file with its lock row and
//!   `now()`, the upsert (or DELETE), the audit INSERT, `COMMIT`.

use std::sync::Arc;

use anyhow::{Context, bail};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

/// The file row of a point read, by bucket and path (the metadata read's file).
const POINT_SELECT: &str = "SELECT * FROM files WHERE bucket = $1 AND path = $2";

const FILE_ID: &str = "SELECT id FROM files WHERE bucket = $1 AND path = $2";

/// The service's row lock of a unit of work (`lock_file`).
const FOR_UPDATE: &str = "SELECT id FROM files WHERE id = $1 FOR UPDATE";

/// The file with its lock row and the store's time (`queries::file_by_id`).
const FILE_WITH_LOCK: &str = "SELECT files.*, locks.file_id, locks.bucket, locks.path, \
     locks.holder, locks.acquired_at, locks.expires_at, locks.base_version, now() \
     FROM files LEFT JOIN locks ON locks.file_id = files.id WHERE files.id = $1";

/// The lock row stored as decided by the service (`store_lock!`).
const STORE_LOCK: &str = "INSERT INTO locks \
     (file_id, bucket, path, holder, acquired_at, expires_at, base_version) \
     VALUES ($1, 'users', $2, $3, now(), now() + interval '5 minutes', 1) \
     ON CONFLICT (file_id) DO UPDATE SET holder = excluded.holder, \
     acquired_at = excluded.acquired_at, expires_at = excluded.expires_at, \
     base_version = excluded.base_version";

/// The lock taken when free, expired or already the holder's, decided by the statement.
const CONDITIONAL_LOCK: &str = "INSERT INTO locks \
     (file_id, bucket, path, holder, acquired_at, expires_at, base_version) \
     SELECT id, bucket, path, $2, now(), now() + interval '5 minutes', version \
     FROM files WHERE id = $1 \
     ON CONFLICT (file_id) DO UPDATE SET holder = excluded.holder, \
     acquired_at = excluded.acquired_at, expires_at = excluded.expires_at, \
     base_version = excluded.base_version \
     WHERE locks.expires_at <= now() OR locks.holder = excluded.holder";

const DELETE_LOCK: &str = "DELETE FROM locks WHERE file_id = $1";

const CONDITIONAL_UNLOCK: &str = "DELETE FROM locks WHERE file_id = $1 AND holder = $2";

/// An audit event of the file (`queries::insert_audit`).
const AUDIT: &str = "INSERT INTO audit_events \
     (id, actor, action, bucket, path, file_id, version, outcome, request_id, detail, at) \
     VALUES ($1, $2, $3, 'users', $4, $5, 1, 'success', $6, NULL, now())";

/// An upload reservation (`queries::insert_reservation`), as an upload presign writes it.
const RESERVATION: &str = "INSERT INTO upload_reservations \
     (id, kind, bucket, path, created_by, version_id, object_key, content_type, expected_size, \
     expected_sha256, max_bytes, expires_at, created_at, completed_version, completed_at) \
     VALUES ($1, 'presigned', 'users', $2, $3, $4, $5, 'application/octet-stream', NULL, NULL, \
     $6, now() + interval '1 hour', now(), NULL, NULL)";

/// One client's connection and its prepared statements.
pub struct Raw {
    client: Client,
    point_select: Statement,
    file_id: Statement,
    for_update: Statement,
    file_with_lock: Statement,
    store_lock: Statement,
    conditional_lock: Statement,
    delete_lock: Statement,
    conditional_unlock: Statement,
    audit: Statement,
    reservation: Statement,
}

/// How lock+unlock is issued (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockShape {
    Minimal,
    Service,
}

impl Raw {
    /// A connection to `url` with every statement prepared.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .context("raw PostgreSQL connection")?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("[bench] raw PostgreSQL connection ended: {e}");
            }
        });
        Ok(Self {
            point_select: client.prepare(POINT_SELECT).await?,
            file_id: client.prepare(FILE_ID).await?,
            for_update: client.prepare(FOR_UPDATE).await?,
            file_with_lock: client.prepare(FILE_WITH_LOCK).await?,
            store_lock: client.prepare(STORE_LOCK).await?,
            conditional_lock: client.prepare(CONDITIONAL_LOCK).await?,
            delete_lock: client.prepare(DELETE_LOCK).await?,
            conditional_unlock: client.prepare(CONDITIONAL_UNLOCK).await?,
            audit: client.prepare(AUDIT).await?,
            reservation: client.prepare(RESERVATION).await?,
            client,
        })
    }

    /// `clients` connections.
    pub async fn pool(url: &str, clients: usize) -> anyhow::Result<Arc<Vec<Self>>> {
        let mut all = Vec::with_capacity(clients);
        for _ in 0..clients {
            all.push(Self::connect(url).await?);
        }
        Ok(Arc::new(all))
    }

    /// The file row at `path` of the users bucket; fails when there is none.
    pub async fn point_select(&self, path: &str) -> anyhow::Result<()> {
        let rows = self
            .client
            .query(&self.point_select, &[&"users", &path])
            .await?;
        if rows.len() != 1 {
            bail!("{path}: {} rows", rows.len());
        }
        Ok(())
    }

    /// The id of the file at `path` of the users bucket.
    pub async fn file_id(&self, path: &str) -> anyhow::Result<Uuid> {
        Ok(self
            .client
            .query_one(&self.file_id, &[&"users", &path])
            .await?
            .try_get(0)?)
    }

    async fn audit(&self, actor: &str, action: &str, path: &str, file: Uuid) -> anyhow::Result<()> {
        let request = Uuid::new_v4().to_string();
        self.client
            .execute(
                &self.audit,
                &[&Uuid::new_v4(), &actor, &action, &path, &file, &request],
            )
            .await?;
        Ok(())
    }

    async fn begin(&self) -> anyhow::Result<()> {
        self.client.batch_execute("BEGIN").await?;
        Ok(())
    }

    async fn commit(&self) -> anyhow::Result<()> {
        self.client.batch_execute("COMMIT").await?;
        Ok(())
    }

    /// One lock+unlock pair of `holder` on the file `file` at `path`, as `shape` issues it;
    /// fails when a transaction did not lock or unlock.
    pub async fn lock_unlock(
        &self,
        shape: LockShape,
        holder: &str,
        path: &str,
        file: Uuid,
    ) -> anyhow::Result<()> {
        for locking in [true, false] {
            if shape == LockShape::Service {
                // The use case's read of the file, then the unit of work's row lock and read.
                self.point_select(path).await?;
                self.begin().await?;
                self.client.query_one(&self.for_update, &[&file]).await?;
                self.client
                    .query_one(&self.file_with_lock, &[&file])
                    .await?;
            } else {
                self.begin().await?;
            }
            let changed = match (shape, locking) {
                (LockShape::Minimal, true) => {
                    self.client
                        .execute(&self.conditional_lock, &[&file, &holder])
                        .await?
                }
                (LockShape::Minimal, false) => {
                    self.client
                        .execute(&self.conditional_unlock, &[&file, &holder])
                        .await?
                }
                (LockShape::Service, true) => {
                    self.client
                        .execute(&self.store_lock, &[&file, &path, &holder])
                        .await?
                }
                (LockShape::Service, false) => {
                    self.client.execute(&self.delete_lock, &[&file]).await?
                }
            };
            if changed != 1 {
                self.client.batch_execute("ROLLBACK").await?;
                bail!("{path}: the lock row was not changed (locking: {locking})");
            }
            let action = if locking { "lock" } else { "unlock" };
            self.audit(holder, action, path, file).await?;
            self.commit().await?;
        }
        Ok(())
    }

    /// One reservation of a presigned upload to `path`, in its own transaction.
    pub async fn reserve(&self, user: &str, path: &str) -> anyhow::Result<()> {
        let version = Uuid::new_v4();
        let key = format!("users/{}", version.simple());
        self.begin().await?;
        self.client
            .execute(
                &self.reservation,
                &[
                    &Uuid::new_v4(),
                    &path,
                    &user,
                    &version,
                    &key,
                    &(1_i64 << 40),
                ],
            )
            .await?;
        self.commit().await
    }
}
