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

async fn with_harness<T, F>(url: &str, work: F) -> Result<T, MigrationError>
where
    F: FnOnce(&mut Wrapper) -> Result<T, MigrationError> + Send + 'static,
    T: Send + 'static,
{
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = Wrapper::establish(&url)?;
        work(&mut conn)
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
