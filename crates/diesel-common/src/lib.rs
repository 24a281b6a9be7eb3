//! What the diesel metadata adapters share (`storage-pg-diesel`, `storage-sqlite-diesel`): both
//! implement the domain's [`MetadataStore`](storage_domain::ports::MetadataStore) port over
//! schemas with the same tables and columns, and must answer identically (they pass the same
//! contract suite). Written once here:
//!
//! - [`sql_types`] — column types whose encoding depends on the backend (UUID, time, JSON), so
//!   that one row struct reads both (features `pg`, `sqlite`);
//! - [`rows`] — the rows and their conversion to the domain's values, and the state of a file
//!   a unit of work decides on ([`rows::FileState`]);
//! - [`listing`] — the directory listing's loose index scan, over a [`listing::PathIndex`] each
//!   adapter answers;
//! - [`error`] — the error of a unit of work and the mapping of diesel and pool errors to
//!   `RepoError`.
//!
//! The decisions themselves (who gets a lock, whether a write or a commit is refused, …) are
//! the domain's (`storage_domain::rules::store`): each adapter reads the rows under the file's
//! row lock, asks those functions, and writes. The SQL statements stay in each adapter: the
//! dialects differ where the rows are locked (row locks and `SKIP LOCKED` against one writer;
//! `now()` and intervals against a clock read once per unit of work; arrays and `unnest`
//! against bound lists).

pub mod error;
pub mod listing;
pub mod queries;
pub mod rows;
pub mod schema;
pub mod sql_types;
