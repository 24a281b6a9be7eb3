//! The SQLite schema migrations (`migrations/` of this crate), embedded in the binary.
//!
//! Diesel's migration harness is synchronous: it runs on a blocking thread (`spawn_blocking`),
//! never on an async worker. Each migration runs in its own transaction.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::connection::{LocationError, connect, database_path, enable_wal, ensure_parent};

/// Every migration of the SQLite metadata schema.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a migration waits for a lock held by another connection.
const MIGRATION_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("cannot open the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("cannot set up the database: {0}")]
    Setup(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("migration task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Opens `path` (creating the file and its directory), in WAL mode, for the harness.
pub(crate) fn open_for_migrations(
    path: &Path,
    busy_timeout: Duration,
) -> Result<SqliteConnection, MigrationError> {
    ensure_parent(path)?;
    let mut conn = connect(path, busy_timeout, false)?;
    enable_wal(&mut conn)?;
    Ok(conn)
}

/// Applies every pending migration on `path` (blocking); returns the versions applied.
pub(crate) fn migrate_blocking(
    path: &Path,
    busy_timeout: Duration,
) -> Result<Vec<String>, MigrationError> {
    let mut conn = open_for_migrations(path, busy_timeout)?;
    conn.run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| MigrationError::Migration(e.to_string()))
}

async fn blocking<T, F>(path_or_url: &str, work: F) -> Result<T, MigrationError>
where
    F: FnOnce(PathBuf) -> Result<T, MigrationError> + Send + 'static,
    T: Send + 'static,
{
    let path = database_path(path_or_url)?;
    tokio::task::spawn_blocking(move || work(path)).await?
}

/// Applies every pending migration to the database at `path_or_url` (a path or
/// `sqlite://PATH`), creating the file and its directory when missing; returns the versions
/// applied.
///
/// # Errors
/// [`MigrationError`] when the file cannot be opened or a migration fails (a failed migration
/// is rolled back).
pub async fn run_migrations(path_or_url: &str) -> Result<Vec<String>, MigrationError> {
    blocking(path_or_url, |path| {
        migrate_blocking(&path, MIGRATION_BUSY_TIMEOUT)
    })
    .await
}

/// Reverts every applied migration (drops the whole schema); returns the versions reverted.
///
/// # Errors
/// As [`run_migrations`].
pub async fn revert_all(path_or_url: &str) -> Result<Vec<String>, MigrationError> {
    blocking(path_or_url, |path| {
        let mut conn = open_for_migrations(&path, MIGRATION_BUSY_TIMEOUT)?;
        conn.revert_all_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| MigrationError::Migration(e.to_string()))
    })
    .await
}
