//! PostgreSQL metadata adapter (diesel + diesel-async + deadpool): implements the domain's
//! [`MetadataStore`](storage_domain::ports::MetadataStore) port.
//!
//! - [`PgMetadataStore`] — the store, built from a [`PgConfig`];
//! - [`run_migrations`] / [`revert_all`] — the schema (`migrations/` at the repository root,
//!   embedded), for a `migrate` command and the tests.
//!
//! Every decision is PostgreSQL's: a lock is one `INSERT … ON CONFLICT … DO UPDATE … WHERE`,
//! a version number is the latest + 1 under the file row's `FOR UPDATE`, a review is a
//! conditional `UPDATE … WHERE status = from`, the janitor claims with `FOR UPDATE SKIP LOCKED`
//! and a lease. Every unit of work locks the file row before its lock row, so they serialise on
//! the file and do not deadlock each other. Time comes from the database (`now()`, the
//! transaction's start), also for audit events.
//!
//! Rows, the decision rules (check orders), the listing scan and the error mapping are shared
//! with the SQLite adapter through `storage-diesel-common`; the statements are PostgreSQL's.
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
pub use store::{PgMetadataStore, PoolBuildError};
