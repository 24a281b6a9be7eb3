//! Mapping of diesel and pool errors to the port's [`RepoError`], at the boundary.
//!
//! Refusals (`FileLocked`, `VersionConflict`, ...) are decided inside the transaction and built
//! by the store itself; everything that comes from the backend becomes `Unavailable` (it could
//! not answer in time) or `Internal` (it answered something the domain should have prevented),
//! with a short fixed text. The backend's own message goes to the log only.

use std::fmt::Display;

use deadpool::managed::PoolError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use storage_domain::ports::RepoError;

/// The error of a unit of work: a refusal decided inside the transaction (rolls it back), or a
/// database error.
#[derive(Debug)]
pub enum TxError {
    Repo(RepoError),
    Db(DieselError),
}

impl From<DieselError> for TxError {
    fn from(value: DieselError) -> Self {
        TxError::Db(value)
    }
}

impl From<RepoError> for TxError {
    fn from(value: RepoError) -> Self {
        TxError::Repo(value)
    }
}

impl TxError {
    /// The port's error, with the backend's `transient` messages (see [`map_diesel`]).
    pub fn into_repo(self, transient: &[&str]) -> RepoError {
        match self {
            TxError::Repo(e) => e,
            TxError::Db(e) => map_diesel(e, transient),
        }
    }
}

/// Maps a diesel error: connection problems, timeouts and the conditions whose message contains
/// one of `transient` (the backend's words for "busy, retry") are `Unavailable`, the rest
/// `Internal`.
pub fn map_diesel(error: DieselError, transient: &[&str]) -> RepoError {
    match &error {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection => {
                tracing::warn!(error = %info.message(), "metadata store connection failed");
                RepoError::Unavailable("database connection failed".into())
            }
            DatabaseErrorKind::SerializationFailure => {
                tracing::warn!(error = %info.message(), "metadata store serialization failure");
                RepoError::Unavailable("database conflict, retry".into())
            }
            DatabaseErrorKind::UniqueViolation => {
                tracing::error!(
                    constraint = info.constraint_name().unwrap_or_default(),
                    "unexpected unique violation"
                );
                RepoError::Internal("unexpected unique violation".into())
            }
            _ => {
                let message = info.message();
                if transient.iter().any(|m| message.contains(m)) {
                    tracing::warn!(error = %message, "metadata store timed out or busy");
                    RepoError::Unavailable("database timed out".into())
                } else {
                    tracing::error!(error = %message, "metadata store error");
                    RepoError::Internal("database error".into())
                }
            }
        },
        DieselError::BrokenTransactionManager | DieselError::AlreadyInTransaction => {
            tracing::error!(%error, "metadata store transaction state");
            RepoError::Unavailable("database connection in a bad state".into())
        }
        _ => {
            tracing::error!(%error, "metadata store error");
            RepoError::Internal("database error".into())
        }
    }
}

/// Maps a pool error: every case is `Unavailable` (no connection could be had in time).
pub fn map_pool<E: Display>(error: PoolError<E>) -> RepoError {
    match error {
        PoolError::Timeout(kind) => {
            tracing::warn!(?kind, "metadata store pool timed out");
            RepoError::Unavailable("no database connection available".into())
        }
        PoolError::Backend(e) => {
            tracing::warn!(error = %e, "metadata store connection failed");
            RepoError::Unavailable("database connection failed".into())
        }
        PoolError::Closed => RepoError::Unavailable("database pool closed".into()),
        PoolError::NoRuntimeSpecified => RepoError::Internal("database pool misconfigured".into()),
        PoolError::PostCreateHook(e) => {
            tracing::warn!(error = %e, "metadata store connection setup failed");
            RepoError::Unavailable("database connection failed".into())
        }
    }
}

/// A row that does not hold what the schema promises.
pub fn corrupt(what: &str) -> RepoError {
    tracing::error!(what, "corrupt metadata row");
    RepoError::Internal(format!("corrupt stored {what}"))
}

/// A task that ran a unit of work failed (panicked or was cancelled by the runtime's shutdown).
pub fn task_failed(error: &dyn Display) -> RepoError {
    tracing::error!(error = %error, "metadata store task failed");
    RepoError::Internal("metadata store task failed".into())
}
