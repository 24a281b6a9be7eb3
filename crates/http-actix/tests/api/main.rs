//! Tests of the HTTP adapter through its public API: the real `configure` (routes, middleware,
//! error handlers) over the real `StorageService`, whose ports are mocks (mockall) or, where a
//! port must await a stream, small hand-written doubles.

// Helpers outside `#[test]` functions panic on broken fixtures, as the tests themselves do.
#![expect(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod errors;
mod files;
mod openapi;
mod ops;
mod server;
mod support;
mod system;
mod transfer;
