//! [`MeteredProjects`]: the project-access port, counted per outcome and timed.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use storage_domain::{
    model::Principal,
    ports::{AccessCheck, AccessDecision, ProjectAccess, ProjectAccessError},
};

use crate::Metrics;

/// A [`ProjectAccess`] that counts every check by outcome (`allowed`, `denied`, `unavailable`)
/// in `storage_project_checks_total` (each check of a batch counts) and times every call in
/// `storage_project_check_duration_seconds{outcome}`.
pub struct MeteredProjects {
    inner: Arc<dyn ProjectAccess>,
    metrics: Metrics,
}

impl std::fmt::Debug for MeteredProjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredProjects").finish_non_exhaustive()
    }
}

impl MeteredProjects {
    pub fn new(inner: Arc<dyn ProjectAccess>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

const fn decision(d: &AccessDecision) -> &'static str {
    match d {
        AccessDecision::Allowed { .. } => "allowed",
        AccessDecision::Denied { .. } => "denied",
    }
}

#[async_trait]
impl ProjectAccess for MeteredProjects {
    async fn check(
        &self,
        caller: &Principal,
        check: &AccessCheck,
    ) -> Result<AccessDecision, ProjectAccessError> {
        let started = Instant::now();
        let result = self.inner.check(caller, check).await;
        let outcome = result.as_ref().map_or("unavailable", decision);
        self.metrics
            .record_project_call(&[outcome], outcome, started.elapsed());
        result
    }

    async fn check_batch(
        &self,
        caller: &Principal,
        checks: &[AccessCheck],
    ) -> Result<Vec<AccessDecision>, ProjectAccessError> {
        let started = Instant::now();
        let result = self.inner.check_batch(caller, checks).await;
        let elapsed = started.elapsed();
        match &result {
            Ok(decisions) => {
                let outcomes: Vec<&'static str> = decisions.iter().map(decision).collect();
                let call = if decisions.iter().all(AccessDecision::is_allowed) {
                    "allowed"
                } else {
                    "denied"
                };
                self.metrics.record_project_call(&outcomes, call, elapsed);
            }
            Err(_) => {
                let outcomes = vec!["unavailable"; checks.len()];
                self.metrics
                    .record_project_call(&outcomes, "unavailable", elapsed);
            }
        }
        result
    }
}
