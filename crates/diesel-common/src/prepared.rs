//! [`Prepared`]: a statement kept in the connection's prepared-statement cache although diesel
//! calls it unsafe to cache.
//!
//! diesel marks every `UPDATE` and every `ON CONFLICT … DO UPDATE` unsafe to cache (their `SET`
//! list may change with the values: an `AsChangeset` skips its `None` fields), so diesel-async
//! prepares them again on every execution: on PostgreSQL one more round trip (Parse/Describe)
//! before the statement runs, and the server plans it afresh. Measured with
//! `log_min_duration_statement = 0` over `pg::timing_of_lock_and_commit`: each lock's upsert and
//! each commit's `UPDATE files` parsed once per call.
//!
//! Caching such a statement is safe when the cache is keyed by its text: [`Prepared`] reports
//! no static query id, so diesel's statement cache keys it by the SQL it builds and the bind
//! types (`StatementCacheKey::Sql`), and a changeset that writes other columns is another text,
//! another entry. The number of entries stays bounded by the number of shapes a statement can
//! take (a changeset of `n` optional fields at most `2^n`; every use here has at most a few).
//! Not for statements whose text grows with their input (`IN (…)` lists, batch inserts): those
//! would fill the cache.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

/// `statement` kept in the prepared-statement cache, keyed by its text (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // No static id: the cache keys the statement by its SQL text and bind types.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

// diesel's blocking `RunQueryDsl` is implemented per statement type (diesel-async's for every
// type): a prepared statement runs as the one it wraps.
impl<Q, Conn> diesel::RunQueryDsl<Conn> for Prepared<Q> {}
