//! Mapping of diesel and pool errors to the port's [`RepoError`], at the boundary.
//!
//! Refusals (`FileLocked`, `VersionConflict`, ...) are decided by the SQL and built by the store
//! itself; everything that comes from the backend becomes `Unavailable` (it could not answer in
//! time) or `Internal` (it answered something the domain should have prevented), with a short
//! fixed text. The backend's own message goes to the log only.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::PoolError;
use storage_domain::ports::RepoError;

/// The error of a unit of work: a refusal decided inside the transaction (rolls it back), or a
/// database error.
#[derive(Debug)]
pub(crate) enum TxError {
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

impl From<TxError> for RepoError {
    fn from(value: TxError) -> Self {
        match value {
            TxError::Repo(e) => e,
            TxError::Db(e) => map_diesel(e),
        }
    }
}

/// Messages PostgreSQL gives (in its default English) for conditions worth retrying: the
/// statement timeout, a lock timeout, a deadlock, an administrator's cancel.
const TRANSIENT_MESSAGES: [&str; 4] = [
    "statement timeout",
    "lock timeout",
    "deadlock detected",
    "canceling statement due to user request",
];

/// Maps a diesel error: connection problems and timeouts are `Unavailable`, the rest `Internal`.
pub(crate) fn map_diesel(error: DieselError) -> RepoError {
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
                if TRANSIENT_MESSAGES.iter().any(|m| message.contains(m)) {
                    tracing::warn!(error = %message, "metadata store timed out or deadlocked");
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
pub(crate) fn map_pool(error: PoolError) -> RepoError {
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
pub(crate) fn corrupt(what: &str) -> RepoError {
    tracing::error!(what, "corrupt metadata row");
    RepoError::Internal(format!("corrupt stored {what}"))
}
