//! What the diesel metadata adapters share (`storage-pg-diesel`, `storage-sqlite-diesel`): both
//! implement the domain's [`MetadataStore`](storage_domain::ports::MetadataStore) port over
//! schemas with the same tables and columns, and must answer identically (they pass the same
//! contract suite). Written once here:
//!
//! - [`schema`] — the tables as diesel's `table!` (checked against both migrated databases);
//! - [`sql_types`] — column types whose encoding depends on the backend (UUID, time, JSON), so
//!   that one row struct reads both (features `pg`, `sqlite`);
//! - [`queries`] — the statements in the query DSL, built once, run by both adapters;
//! - [`reviews`] — the review queue's statement, likewise;
//! - [`rows`] — the rows and their conversion to the domain's values, and the state of a file
//!   a unit of work decides on ([`rows::FileState`]);
//! - [`listing`] — the directory listing's loose index scan, over a [`listing::PathIndex`] each
//!   adapter answers;
//! - [`error`] — the error of a unit of work and the mapping of diesel and pool errors to
//!   `RepoError`;
//! - [`units`] — the units of work themselves ([`units!`], expanded for each adapter's
//!   connection over its dialect hooks), and [`blocking`], which lets them run on SQLite's
//!   blocking connection.
//!
//! The decisions themselves (who gets a lock, whether a write or a commit is refused, …) are
//! the domain's (`storage_domain::rules::store`): each adapter reads the rows under the file's
//! row lock, asks those functions, and writes with the statements of [`queries`]. What stays
//! in an adapter is where the dialects differ: how rows are locked (PostgreSQL's `FOR UPDATE`
//! and `SKIP LOCKED` against SQLite's one writer), the unit of work's `now`, PostgreSQL's
//! listing function, and SQLite's `now()` (a function each connection registers).

pub mod blocking;
pub mod error;
pub mod first;
pub mod listing;
pub mod prepared;
pub mod queries;
pub mod retention;
pub mod reviews;
pub mod rows;
pub mod schema;
pub mod sql_types;
pub mod trash;
pub mod units;
