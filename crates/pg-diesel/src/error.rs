//! Mapping of diesel and pool errors to the port's [`RepoError`], at the boundary (shared with
//! the SQLite adapter: `storage_diesel_common::error`); PostgreSQL's words for "retry" are here.

pub(crate) use storage_diesel_common::error::{TxError, corrupt, map_pool};
use storage_domain::ports::RepoError;

/// Messages PostgreSQL gives (in its default English) for conditions worth retrying: the
/// statement timeout, a lock timeout, a deadlock, an administrator's cancel; and a session the
/// server ended (`pg_terminate_backend`, a shutdown: SQLSTATE 57P01), whose `FATAL` can reach the
/// next statement sent on the pooled connection before the client has seen it close.
const TRANSIENT_MESSAGES: [&str; 6] = [
    "statement timeout",
    "lock timeout",
    "deadlock detected",
    "canceling statement due to user request",
    "terminating connection due to administrator command",
    "the database system is shutting down",
];

/// The port's error of a unit of work: connection problems and timeouts are `Unavailable`, the
/// rest `Internal`.
pub(crate) fn repo(error: TxError) -> RepoError {
    error.into_repo(&TRANSIENT_MESSAGES)
}
