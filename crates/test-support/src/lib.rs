//! Test support: contract suites for every port, test services (PostgreSQL, Garage,
//! project-service stand-in).
//!
//! - [`postgres`]: per-test PostgreSQL databases cloned from a migrated template;
//! - [`metadata_contract`]: the behaviour every `MetadataStore` adapter must show.

pub mod metadata_contract;
pub mod postgres;
