//! diesel's blocking [`RunQueryDsl`](diesel::RunQueryDsl) with each result handed back as a
//! ready future, so that the async bodies of [`crate::units!`] and [`crate::reads!`], written
//! once for `diesel_async`'s connections, also run on a blocking connection (SQLite's): the
//! statement runs when the method is called, on the calling thread, and `.await` on its result
//! never waits. The SQLite adapter drives such a body to its end with
//! `futures::executor::block_on` inside the one blocking task of its unit of work.
//!
//! Import this trait instead of diesel's (both in scope would make every call ambiguous).

use std::future::{Ready, ready};

use diesel::QueryResult;
use diesel::connection::Connection;
use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::ExecuteDsl;

/// [`diesel::RunQueryDsl`]'s methods, each returning its result as a ready future.
pub trait RunQueryDsl<Conn>: diesel::RunQueryDsl<Conn> + Sized {
    /// [`diesel::RunQueryDsl::execute`].
    fn execute(self, conn: &mut Conn) -> Ready<QueryResult<usize>>
    where
        Conn: Connection,
        Self: ExecuteDsl<Conn>,
    {
        ready(diesel::RunQueryDsl::execute(self, conn))
    }

    /// [`diesel::RunQueryDsl::load`].
    fn load<'q, U>(self, conn: &mut Conn) -> Ready<QueryResult<Vec<U>>>
    where
        Self: LoadQuery<'q, Conn, U>,
    {
        ready(diesel::RunQueryDsl::load(self, conn))
    }

    /// [`diesel::RunQueryDsl::get_result`].
    fn get_result<'q, U>(self, conn: &mut Conn) -> Ready<QueryResult<U>>
    where
        Self: LoadQuery<'q, Conn, U>,
    {
        ready(diesel::RunQueryDsl::get_result(self, conn))
    }

    /// [`diesel::RunQueryDsl::get_results`].
    fn get_results<'q, U>(self, conn: &mut Conn) -> Ready<QueryResult<Vec<U>>>
    where
        Self: LoadQuery<'q, Conn, U>,
    {
        ready(diesel::RunQueryDsl::get_results(self, conn))
    }
}

impl<T: diesel::RunQueryDsl<Conn>, Conn> RunQueryDsl<Conn> for T {}
