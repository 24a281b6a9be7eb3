//! SQLite metadata adapter (diesel with bundled SQLite): implements the domain's
//! [`MetadataStore`](storage_domain::ports::MetadataStore) port in one file, for a single
//! instance without PostgreSQL. It answers as `storage-pg-diesel` does (the same contract suite
//! runs against both) and shares its rows, decision rules, listing scan and error mapping
//! through `storage-diesel-common`.
//!
//! - [`SqliteMetadataStore::open`] — opens (creates) the file, migrates it, builds the pools;
//!   settings in [`SqliteConfig`];
//! - [`run_migrations`] / [`revert_all`] — the schema (`migrations/` of this crate, embedded),
//!   for a `migrate` command and the tests.
//!
//! # Concurrency
//! SQLite has one writer. The store keeps **one writer connection** (a pool of one) and a pool
//! of **readers** (`query_only`), on a file in WAL mode: reads run beside the writer on their
//! own snapshot; units of work queue for the writer, in the order they asked, up to
//! `wait_timeout`. Every unit of work is a `BEGIN IMMEDIATE` transaction: it holds the
//! database's write lock from its first statement, so a check-then-write decision (who gets a
//! lock, which number a version gets, which review wins) cannot interleave with another, even
//! from another process on the same file. Waits are bounded: `wait_timeout` for a connection,
//! SQLite's `busy_timeout` for a lock another process holds; either gives `Unavailable`, never a
//! hang. Each method's transaction runs whole on a blocking thread (`spawn_blocking`), which
//! finishes (commits or rolls back) even when the caller's future is dropped.
//!
//! # Choices where the port is silent
//! The same as `storage-pg-diesel` (the check orders, listing order and cursor, audit versions,
//! submissions, the janitor's count), by the shared code. Besides:
//! - Time is the store's: SQLite's clock (`unixepoch('subsec')`, to the millisecond) is read
//!   once when a unit of work starts and is its `now` for every row it writes, expiry included.
//!   Times are stored as integer microseconds (UTC): values from outside (a reservation's
//!   expiry, an audit event's time) keep PostgreSQL's precision.
//! - Ids are UUID text; paths compare in byte order (SQLite's `BINARY` collation on UTF-8).
//! - Timeouts and `SQLITE_BUSY` / `SQLITE_LOCKED` are `Unavailable` (worth a retry), recognised
//!   by SQLite's messages (diesel gives no code for them); constraint failures are `Internal`.
//! - Durability: `synchronous = NORMAL` in WAL mode: a commit survives a crash of the process;
//!   a power loss may lose the last commits, never corrupt the file.

mod config;
mod connection;
mod migrate;
mod store;

pub use config::SqliteConfig;
pub use connection::{LocationError, database_path};
pub use migrate::{MIGRATIONS, MigrationError, revert_all, run_migrations};
pub use store::{OpenError, SqliteMetadataStore};
