//! End to end over real HTTP: the real server (`Application::build` on port 0) on its own clone
//! of the migrated PostgreSQL database, the test Garage and a project-service stand-in; the
//! janitor through the `storage-server janitor --once` binary and the server's wiring.
//!
//! - `basics`: health, a round trip, the first checkout/commit/approve;
//! - `bounds`: `/versions` in pages, the per-user cap on open presigned uploads, an intruder's
//!   repeated refusals counted on one audit row;
//! - `workflows`: the seed's seven workflows in order, then reject, four-eyes, delete,
//!   `validated` downloads, lock conflicts, stale bases, `If-Match`, tags, audit;
//! - `errors`: every code of the contract's §3 reached through HTTP, outages included;
//! - `isolation`: users A/B and companies X/Y cannot see or touch each other's files;
//! - `janitor`: abandoned presigned uploads are reclaimed, also by two passes at once;
//! - `operations`: the metrics a workload moves, the metrics listener, readiness while the
//!   database is cut off, presigned URLs signed for `MINIO_PUBLIC_ENDPOINT`.
//! - `cross_site`: every change sent with the cookie from a foreign web origin is refused;
//! - `sealed`: a used presigned URL changes no version; no staging object outlives its URL;
//! - `tickets`: the checkout ticket on the workspace copy, whatever happens to the lock;
//! - `restore`: a version restored as the next one, with its bytes, under the write rules
//!   (the scenario shared with the embedded default, `tests/scenarios/restore.rs`);
//! - `retention`: pins, and `VERSION_KEEP_LAST=3` pruning exactly the documented set by two
//!   janitors at once (shared with the embedded default, `tests/scenarios/retention.rs`);
//! - `transfers`: caps answer 429 and the service resumes; a stalled body is cut and leaves
//!   nothing; an upload URL stores no more than announced; NUL in tags and cursors is a 400.
//!
//! Run through `tests/run.sh` (it starts PostgreSQL and Garage and exports the `TEST_*`
//! variables).

// Helpers outside `#[test]` functions panic on broken fixtures, as the tests themselves do.
#![expect(clippy::expect_used, reason = "test helpers outside #[test] functions")]

mod basics;
mod bounds;
mod cross_site;
mod errors;
mod events;
mod isolation;
mod janitor;
mod operations;
mod restore;
mod retention;
mod sealed;
mod support;
mod tickets;
mod transfers;
mod trash;
mod workflows;
