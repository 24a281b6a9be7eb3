//! [`FirstRow`] and [`FirstValue`]: `… LIMIT 1` with the limit written in the statement, not
//! bound.
//!
//! diesel binds every `.limit(n)` as a parameter, and PostgreSQL's generic plan for a `LIMIT $n`
//! assumes a tenth of the rows are read: the plan cache then plans the statement afresh on every
//! execution (measured: `docs/decisions.md`, "A hot statement is planned once per connection").
//! A literal `LIMIT 1` keeps the generic plan, and with an `ORDER BY` an index serves, that plan
//! is one step down the index whatever the statistics said when it was made.

use diesel::QueryResult;
use diesel::backend::Backend;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate,
};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::IntoNullable;

/// `<query> LIMIT 1`: the query's first row, if any.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct FirstRow<Q>(pub Q);

impl<Q: Query> Query for FirstRow<Q> {
    type SqlType = Q::SqlType;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for FirstRow<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        // raw SQL: a literal limit (the module docs).
        out.push_sql(" LIMIT 1");
        Ok(())
    }
}

// diesel's blocking `RunQueryDsl` is implemented per statement type (diesel-async's for every
// type).
impl<Q, Conn> diesel::RunQueryDsl<Conn> for FirstRow<Q> {}

/// `(<query> LIMIT 1)` as a value: the one column of the query's first row, NULL when it has
/// none. A subselect of its own (it reads nothing of the statement it appears in).
#[derive(Debug, Clone, Copy, QueryId)]
pub struct FirstValue<Q>(pub FirstRow<Q>);

impl<Q> Expression for FirstValue<Q>
where
    Q: Query,
    Q::SqlType: IntoNullable,
    <Q::SqlType as IntoNullable>::Nullable: diesel::sql_types::SingleValue,
{
    type SqlType = <Q::SqlType as IntoNullable>::Nullable;
}

impl<DB: Backend, Q: QueryFragment<DB>> QueryFragment<DB> for FirstValue<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

impl<Q, QS> AppearsOnTable<QS> for FirstValue<Q> where Self: Expression {}

impl<Q, QS> SelectableExpression<QS> for FirstValue<Q> where Self: AppearsOnTable<QS> {}

impl<Q, GB> ValidGrouping<GB> for FirstValue<Q> {
    type IsAggregate = is_aggregate::Never;
}

/// [`FirstRow`] of `query` (a function, for `#[auto_type]`).
pub fn first_row<Q>(query: Q) -> FirstRow<Q> {
    FirstRow(query)
}

/// [`FirstValue`] of `query` (a function, for `#[auto_type]`).
pub fn first_value<Q>(query: Q) -> FirstValue<Q> {
    FirstValue(FirstRow(query))
}

/// The types `#[auto_type]` names for [`first_row`] and [`first_value`].
#[allow(non_camel_case_types)]
pub mod helper_types {
    /// The type of [`super::first_row`].
    pub type first_row<Q> = super::FirstRow<Q>;
    /// The type of [`super::first_value`].
    pub type first_value<Q> = super::FirstValue<Q>;
}
