//! Where the database lives, and the connections to it.
//!
//! Every connection is opened on a blocking thread (`spawn_blocking`) and set up with
//! `busy_timeout` (bounded lock waits), `foreign_keys = ON` and `synchronous = NORMAL` (with WAL,
//! a commit is durable against a crash of the process and, except for the last transactions,
//! against a power loss). Readers are `query_only`. WAL mode is set once, when the store opens:
//! it is a property of the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::{Connection, ConnectionError, SqliteConnection};
use storage_diesel_common::sql_types::{DbAt, DbTime};

/// Why a database location cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("unsupported SQLite location {0:?}: give a file path or sqlite://PATH")]
    Unsupported(String),
    #[error("the SQLite path is not valid UTF-8")]
    NotUtf8,
    #[error("cannot create the directory of the database: {0}")]
    CreateDir(#[from] std::io::Error),
}

/// The file of `path_or_url`: a plain path, or `sqlite://PATH` / `sqlite:PATH` (so
/// `sqlite:///var/lib/storage/metadata.db` is an absolute path). In-memory databases and `file:`
/// URIs are refused: every connection of the store must open the same file.
pub fn database_path(path_or_url: &str) -> Result<PathBuf, LocationError> {
    let raw = path_or_url
        .strip_prefix("sqlite://")
        .or_else(|| path_or_url.strip_prefix("sqlite:"))
        .unwrap_or(path_or_url);
    if raw.is_empty() || raw.starts_with(':') || raw.starts_with("file:") || raw.contains('?') {
        return Err(LocationError::Unsupported(path_or_url.to_owned()));
    }
    Ok(PathBuf::from(raw))
}

/// Creates the parent directory of the database file when it is missing.
pub fn ensure_parent(path: &Path) -> Result<(), LocationError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

/// Opens a connection and sets it up (blocking).
pub fn connect(
    path: &Path,
    busy_timeout: Duration,
    read_only: bool,
) -> Result<SqliteConnection, ConnectionError> {
    let url = path
        .to_str()
        .ok_or_else(|| ConnectionError::InvalidConnectionUrl("path is not UTF-8".into()))?;
    let mut conn = SqliteConnection::establish(url)?;
    let busy_ms = busy_timeout.as_millis().clamp(1, i32::MAX as u128);
    let mut setup = format!(
        "PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
    );
    if read_only {
        setup.push_str(" PRAGMA query_only = ON;");
    }
    conn.batch_execute(&setup)
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    // `now()`, the store's clock, as the shared statements read it (PostgreSQL has its own).
    conn.register_noarg_sql_function::<DbTime, _, _>("now", false, || {
        DbAt(crate::store::clock_now())
    })
    .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Switches the file to write-ahead logging (persistent: done once, when the store opens).
pub fn enable_wal(conn: &mut SqliteConnection) -> Result<(), diesel::result::Error> {
    conn.batch_execute("PRAGMA journal_mode = WAL;")
}

/// The deadpool manager of the store's connections to one file.
#[derive(Debug)]
pub struct Manager {
    path: PathBuf,
    busy_timeout: Duration,
    read_only: bool,
}

impl Manager {
    pub fn new(path: PathBuf, busy_timeout: Duration, read_only: bool) -> Self {
        Self {
            path,
            busy_timeout,
            read_only,
        }
    }
}

impl managed::Manager for Manager {
    type Type = SqliteConnection;
    type Error = ConnectionError;

    async fn create(&self) -> Result<SqliteConnection, ConnectionError> {
        let path = self.path.clone();
        let (busy_timeout, read_only) = (self.busy_timeout, self.read_only);
        tokio::task::spawn_blocking(move || connect(&path, busy_timeout, read_only))
            .await
            .map_err(|e| ConnectionError::BadConnection(format!("connection task failed: {e}")))?
    }

    /// A connection comes back with no transaction open (every unit of work ends its own); one
    /// that does not (a panic in the middle of one) is dropped, which rolls it back.
    async fn recycle(
        &self,
        conn: &mut SqliteConnection,
        _: &Metrics,
    ) -> RecycleResult<ConnectionError> {
        if AnsiTransactionManager::is_broken_transaction_manager(conn) {
            return Err(RecycleError::message("connection left in a transaction"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::database_path;

    #[test]
    fn locations() {
        assert_eq!(
            database_path("sqlite:///var/lib/s/metadata.db").unwrap(),
            PathBuf::from("/var/lib/s/metadata.db")
        );
        assert_eq!(
            database_path("sqlite://data/metadata.db").unwrap(),
            PathBuf::from("data/metadata.db")
        );
        assert_eq!(
            database_path("sqlite:data/m.db").unwrap(),
            PathBuf::from("data/m.db")
        );
        assert_eq!(database_path("./m.db").unwrap(), PathBuf::from("./m.db"));
        for bad in [
            "",
            ":memory:",
            "sqlite::memory:",
            "file:m.db",
            "m.db?mode=ro",
            "sqlite://",
        ] {
            assert!(database_path(bad).is_err(), "{bad:?}");
        }
    }
}
