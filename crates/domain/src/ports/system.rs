//! Time and identifiers, as ports so that tests can fix them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The service's clock. Lock expiry is decided by the metadata store's own clock, not this one;
/// this one stamps presign expiries and reservation lifetimes.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Generates identifiers for new files, versions, uploads and audit events.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// UUIDv7 identifiers: unique, and ordered by creation time (index-friendly).
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
