//! storage-server: configuration and wiring of storage-service. The binary (`main.rs`) parses
//! the command line; this library holds what tests reuse (`Application::build` binds port 0).

pub mod app;
pub mod config;
pub mod observability;
pub mod secrets;
pub mod signed_blobs;
pub mod token;
