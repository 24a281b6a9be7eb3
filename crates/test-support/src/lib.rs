//! Test support: contract suites for every port, test services (PostgreSQL, Garage, project-service stand-in).
//!
//! Tests that need a service read its address from the `TEST_*` variables `tests/run.sh`
//! exports, and fail (never skip) when they are missing.
//!
//! - [`postgres`]: per-test PostgreSQL databases cloned from a migrated template;
//! - [`metadata_contract`]: the behaviour every `MetadataStore` adapter must show;
//! - [`timing`]: timing assertions (a contract's bound plus one stated margin);
//! - [`fault_proxy`]: an HTTP proxy in front of Garage that fails chosen requests;
//! - [`prometheus`]: a scraped exposition, parsed strictly, as series to look up.

pub mod blob_contract;
pub mod bytes_gen;
pub mod env;
pub mod fault_proxy;
pub mod metadata_contract;
pub mod nats;
pub mod postgres;
pub mod project_standin;
pub mod prometheus;
pub mod s3;
pub mod services;
pub mod timing;
pub mod trash_contract;
pub mod webhook_receiver;
