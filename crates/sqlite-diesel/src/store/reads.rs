//! Reads: each is one statement of the query DSL (`storage_diesel_common::reads!`, written once
//! for both stores; prepared and cached on the connection), in a deferred transaction (one WAL
//! snapshot, see `SqliteMetadataStore::run`), run on the blocking connection as it is called
//! (`storage_diesel_common::blocking`). Reads return live locks only, judged by the store's
//! `now()` (the function each connection registers) read in the same statement. In the review
//! queue, times are integer microseconds and ids hyphenated lower-case text, which sort as
//! PostgreSQL's do.

use storage_diesel_common::blocking::RunQueryDsl;

use super::Conn;

storage_diesel_common::reads!();

/// The trash's reads (`storage_diesel_common::trash_reads!`).
pub(crate) mod trash {
    use super::*;
    storage_diesel_common::trash_reads!();
}
