//! The schema migrations (`migrations/` at the repository root), embedded in the binary.
//!
//! Diesel's migration harness is synchronous: it runs through [`AsyncConnectionWrapper`] on a
//! blocking thread (`spawn_blocking`), never on an async worker.

use diesel::Connection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Every migration of the metadata schema.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("migration task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

type Wrapper = AsyncConnectionWrapper<AsyncPgConnection>;

/// The session advisory lock every migration run holds, so that two `migrate` runs started at
/// once (two deploys, two init containers) apply each migration once: the second waits, then
/// finds nothing pending. An arbitrary constant private to this schema.
const MIGRATION_LOCK: i64 = 0x5354_4f52_4147_4531; // "STORAGE1"

async fn with_harness<T, F>(url: &str, work: F) -> Result<T, MigrationError>
where
    F: FnOnce(&mut Wrapper) -> Result<T, MigrationError> + Send + 'static,
    T: Send + 'static,
{
    use diesel::RunQueryDsl;
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = Wrapper::establish(&url)?;
        let lock = |conn: &mut Wrapper, sql: &str| {
            // raw SQL: PostgreSQL's advisory lock functions, around the migrations.
            diesel::sql_query(sql)
                .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
                .execute(conn)
                .map_err(|e| MigrationError::Migration(format!("migration lock: {e}")))
        };
        lock(&mut conn, "SELECT pg_advisory_lock($1)")?;
        let result = work(&mut conn);
        // The lock also ends with the session, when the connection drops.
        let _ = lock(&mut conn, "SELECT pg_advisory_unlock($1)");
        result
    })
    .await?
}

/// Applies every pending migration; returns the versions applied.
///
/// # Errors
/// [`MigrationError`] when the database cannot be reached or a migration fails (a failed
/// migration is rolled back: each runs in its own transaction).
pub async fn run_migrations(url: &str) -> Result<Vec<String>, MigrationError> {
    with_harness(url, |conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| MigrationError::Migration(e.to_string()))
    })
    .await
}

/// Reverts every applied migration (drops the whole schema); returns the versions reverted.
///
/// # Errors
/// As [`run_migrations`].
pub async fn revert_all(url: &str) -> Result<Vec<String>, MigrationError> {
    with_harness(url, |conn| {
        conn.revert_all_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| MigrationError::Migration(e.to_string()))
    })
    .await
}
