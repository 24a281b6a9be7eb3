//! Reads: each is one statement of the query DSL (`storage_diesel_common::reads!`, written once
//! for both stores; prepared and cached on the connection), run on its own without an explicit
//! transaction (see `PgMetadataStore`). Reads return live locks only, judged by the store's
//! `now()` read in the same statement.

use diesel_async::{AsyncPgConnection, RunQueryDsl};

type Conn = AsyncPgConnection;

storage_diesel_common::reads!();

/// The trash's reads (`storage_diesel_common::trash_reads!`).
pub(crate) mod trash {
    use super::*;
    storage_diesel_common::trash_reads!();
}
