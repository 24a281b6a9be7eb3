//! Mapping of diesel and pool errors to the port's [`RepoError`], at the boundary (shared with
//! the SQLite adapter: `storage_diesel_common::error`); PostgreSQL's words for "retry" are here.

pub(crate) use storage_diesel_common::error::{TxError, map_pool};
use storage_domain::ports::RepoError;

/// Messages PostgreSQL gives (in its default English) for conditions worth retrying: the
/// statement timeout, a lock timeout, a deadlock, an administrator's cancel, and the server
/// going away (class 57P: `terminating connection due to administrator command` when it is
/// stopped or the connection is killed, `… because of crash of another server process`, `the
/// database system is starting up|shutting down|in recovery mode`). Which of these a cut
/// connection reports first (this, or the driver's "connection closed") is a race: both must
/// be `Unavailable`.
const TRANSIENT_MESSAGES: [&str; 6] = [
    "statement timeout",
    "lock timeout",
    "deadlock detected",
    "canceling statement due to user request",
    "terminating connection",
    "the database system is",
];

/// The port's error of a unit of work: connection problems and timeouts are `Unavailable`, the
/// rest `Internal`.
pub(crate) fn repo(error: TxError) -> RepoError {
    error.into_repo(&TRANSIENT_MESSAGES)
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::*;

    fn db_error(message: &str) -> RepoError {
        repo(TxError::Db(DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(message.to_owned()),
        )))
    }

    #[test]
    fn a_server_going_away_is_unavailable() {
        for message in [
            "terminating connection due to administrator command",
            "terminating connection because of crash of another server process",
            "the database system is shutting down",
            "the database system is starting up",
            "canceling statement due to statement timeout",
        ] {
            assert!(
                matches!(db_error(message), RepoError::Unavailable(_)),
                "{message}"
            );
        }
    }

    #[test]
    fn other_errors_are_internal() {
        assert!(matches!(
            db_error("column \"x\" does not exist"),
            RepoError::Internal(_)
        ));
    }
}
