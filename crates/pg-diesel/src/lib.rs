//! PostgreSQL metadata adapter (diesel + diesel-async + deadpool): implements the domain's
//! [`MetadataStore`](storage_domain::ports::MetadataStore) port.
//!
//! - [`PgMetadataStore`] — the store, built from a [`PgConfig`];
//! - [`run_migrations`] / [`revert_all`] — the schema (`migrations/` at the repository root,
//!   embedded), for a `migrate` command and the tests.

mod config;
mod error;
mod migrate;
mod rows;
mod store;

pub use config::PgConfig;
pub use migrate::{MIGRATIONS, MigrationError, revert_all, run_migrations};
pub use store::{PgMetadataStore, PoolBuildError};
