//! PostgreSQL metadata adapter (diesel + diesel-async + deadpool): implements the domain's
//! [`MetadataStore`](storage_domain::ports::MetadataStore) port.
//!
//! - [`PgMetadataStore`] — the store, built from a [`PgConfig`];
//! - [`run_migrations`] / [`revert_all`] — the schema (`migrations/` at the repository root,
//!   embedded), for a `migrate` command and the tests.
//!
//! Every decision is taken under the file row's `FOR UPDATE` lock by the domain's functions
//! (`storage_domain::rules::store`) on the rows read again once the lock is held: who gets a
//! lock, the next version number, whether a write or a commit is refused; a review is a
//! conditional `UPDATE … WHERE status = from`; the janitor claims with `FOR UPDATE SKIP LOCKED`
//! and a lease. Every unit of work locks the file row before its lock row, so they serialise on
//! the file and do not deadlock each other. Time comes from the database (`now()`, the
//! transaction's start, read with the file and bound in the unit of work's writes), also for
//! audit events.
//!
//! The schema (`table!`), rows, statements (query DSL), the listing scan and the error mapping
//! are shared with the SQLite adapter through `storage-diesel-common`; PostgreSQL's own are the
//! row lock, the listing function and the janitor's `SKIP LOCKED` statements. A read is one
//! statement without an explicit transaction, prepared once per connection.
//!
//! # Choices where the port is silent
//! - Listing order: bytes of the name; a file and a sub-directory of the same name are both
//!   listed, the file first; the cursor (a name) skips both (see `store::listing`).
//! - `Upsert` checks, in order: archived, another user's live lock, `expected`, `overwrite`
//!   (`overwrite: false` refuses an existing file even when `expected` matches). `Commit`:
//!   archived, no lock, another holder, stale `base_version`.
//! - A checkout on an archived file is refused (`InvalidTransition`), as `acquire_lock` is; a
//!   checkout by the holder of a live lock keeps `acquired_at` and sets the new `base_version`.
//! - The audit event of a lock or an unlock carries the lock's `base_version`; of a review,
//!   tags, archive or delete, the file's latest version.
//! - A release is recorded as `force_unlock` when another user's lock was released and as
//!   `unlock` for one's own (the port's rule), whatever the draft's action.
//! - A submission (`reviewer: None`) leaves `reviewed_by`, `reviewed_at` and `review_comment`.
//! - `expire_reservations` returns the number of objects queued (forgotten completed
//!   reservations are not counted).
//! - Timeouts, deadlocks and serialization failures are `Unavailable` (worth a retry); the
//!   timeout and deadlock cases are recognised by PostgreSQL's English messages (the default
//!   `lc_messages`), as the driver gives no SQLSTATE for them through diesel.
//! - Timestamps are kept to the microsecond (PostgreSQL's precision).

mod config;
mod error;
mod migrate;
mod store;

pub use config::PgConfig;
pub use migrate::{MIGRATIONS, MigrationError, revert_all, run_migrations};
pub use store::{PgMetadataStore, PoolBuildError, session_settings};
