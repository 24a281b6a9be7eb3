//! Time and identifiers, as ports so that tests can fix them.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The service's clock and timer. Lock expiry is decided by the metadata store's own clock, not
/// this one; this one stamps presign expiries and reservation lifetimes, and paces the heartbeat
/// of long uploads.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Completes after `duration` (the runtime's timer; the domain has none of its own).
    async fn sleep(&self, duration: Duration);
}

/// Generates identifiers for new files, versions, uploads and audit events.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// UUIDv7 identifiers: unique, and ordered by creation time (index-friendly).
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
