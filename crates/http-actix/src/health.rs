//! `GET /health` and `GET /health/ready`: the state of the database and the object store, as
//! the composition root probes them, and whether the instance is draining.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_trait::async_trait;

/// The state of one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentHealth {
    Ok,
    /// `cause` is logged, never returned to the client.
    Unavailable {
        cause: String,
    },
}

impl ComponentHealth {
    pub fn is_ok(&self) -> bool {
        matches!(self, ComponentHealth::Ok)
    }

    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            ComponentHealth::Ok => "ok",
            ComponentHealth::Unavailable { .. } => "unavailable",
        }
    }
}

/// The state of the service's dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    pub database: ComponentHealth,
    pub object_store: ComponentHealth,
}

/// Probes the dependencies. Implementations must bound every probe with a timeout (a health
/// check that hangs is worse than one that fails).
#[async_trait]
pub trait HealthCheck: Send + Sync {
    async fn check(&self) -> HealthReport;
}

/// Whether the instance takes new work: `GET /health/ready` answers 503 once
/// [`start_draining`](Self::start_draining) was called (on SIGTERM, before the listener
/// closes). Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// From now on, readiness answers 503 (for good: a draining instance does not come back).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
