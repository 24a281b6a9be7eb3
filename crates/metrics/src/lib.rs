//! Prometheus metrics of storage-service: one [`Metrics`] per running application (a recorder
//! object of `metrics-exporter-prometheus`, never installed as the process's global recorder,
//! so that several applications in one test process keep their figures apart), the
//! decorators that meter the domain's ports ([`MeteredMetadata`], [`MeteredBlobs`],
//! [`MeteredProjects`]), and the exposition in the Prometheus text format ([`Metrics::render`]).
//!
//! The domain knows nothing of this crate: the server wraps each adapter in its decorator
//! before handing it to the domain's service. Every name is in [`names`], with its unit, type
//! and help text; every label takes a bounded set of values (route templates, operation names,
//! outcomes, error codes, bucket kinds), never a path, an id or a user.
//!
//! Recording costs one or two atomic operations on a handle; handles with labels known only at
//! run time (an HTTP route and status, a store operation's outcome) are looked up in the
//! recorder's sharded registry (a hash of the key). Histogram samples are buffered until the
//! next [`Metrics::run_upkeep`] or [`Metrics::render`]: the server runs upkeep every few
//! seconds so that an instance nobody scrapes does not accumulate them.

mod blobs;
mod metadata;
pub mod names;
mod projects;

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use storage_domain::{ErrorCode, model::BucketKind, ports::ByteStream, service::JanitorReport};

pub use blobs::MeteredBlobs;
pub use metadata::MeteredMetadata;
pub use projects::MeteredProjects;

use names::MetricKind;

/// The `Content-Type` of [`Metrics::render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a connection pool reports when sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// Most connections the pool may open.
    pub max_size: usize,
    /// Connections open (idle or in use).
    pub size: usize,
    /// Connections open and free.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// Samples one connection pool (called when the metrics are rendered).
pub type PoolProbe = Arc<dyn Fn() -> PoolFigures + Send + Sync>;

/// The metrics of one running application. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    pools: RwLock<Vec<(&'static str, PoolProbe)>>,
    /// Per bucket kind, in the order of [`BucketKind::ALL`].
    uploaded_bytes: [Counter; 3],
    downloaded_bytes: [Counter; 3],
    /// Uploads, downloads in flight: the gauges and the same counts, readable.
    transfers: [(Gauge, AtomicI64); 2],
    /// Per error code, in the order of [`ErrorCode::ALL`].
    errors: Vec<Counter>,
    draining: Gauge,
    janitor: JanitorHandles,
    /// The handles of `storage_http_requests_total` and `storage_http_request_duration_seconds`
    /// by route template, then method and status: found again without building their labels
    /// (six allocations and two lookups in the recorder's registry per request otherwise).
    /// Bounded as the labels are: route templates, methods, statuses.
    http: RwLock<HashMap<Box<str>, Vec<HttpHandles>>>,
}

/// One method and status of a route, and its two handles.
struct HttpHandles {
    method: &'static str,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

struct JanitorHandles {
    passes_ok: Counter,
    passes_failed: Counter,
    duration: Histogram,
    reservations_expired: Counter,
    objects_deleted: Counter,
    deletions_failed: Counter,
}

/// A direction of a transfer through the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

impl Direction {
    const fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }

    const fn index(self) -> usize {
        match self {
            Direction::Upload => 0,
            Direction::Download => 1,
        }
    }
}

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn bucket_index(bucket: BucketKind) -> usize {
    match bucket {
        BucketKind::Users => 0,
        BucketKind::Companies => 1,
        BucketKind::Projects => 2,
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A recorder with every metric of [`names`] described, the histograms' buckets set, and the
    /// label-free series registered (so they show as 0 before anything happens).
    pub fn new() -> Self {
        // Only an empty bucket list is refused, and no spec has one (a test checks); were one
        // refused, histograms would render as summaries rather than the service not start.
        let builder = names::ALL
            .iter()
            .try_fold(PrometheusBuilder::new(), |builder, spec| {
                match spec.buckets {
                    Some(buckets) if spec.kind == MetricKind::Histogram => {
                        builder.set_buckets_for_metric(Matcher::Full(spec.name.to_owned()), buckets)
                    }
                    _ => Ok(builder),
                }
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        for spec in names::ALL {
            let (name, help) = (
                metrics::KeyName::from(spec.name),
                SharedString::from(spec.help),
            );
            match spec.kind {
                MetricKind::Counter => recorder.describe_counter(name, spec.unit, help),
                MetricKind::Gauge => recorder.describe_gauge(name, spec.unit, help),
                MetricKind::Histogram => recorder.describe_histogram(name, spec.unit, help),
            }
        }
        let handle = recorder.handle();
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        let per_bucket = |name: &'static str| {
            BucketKind::ALL.map(|b| counter(name, vec![Label::new("bucket", b.as_str())]))
        };
        let transfer = |d: Direction| {
            let gauge = recorder.register_gauge(
                &Key::from_parts(
                    names::TRANSFERS_IN_FLIGHT,
                    vec![Label::new("direction", d.as_str())],
                ),
                &METADATA,
            );
            gauge.set(0.0);
            (gauge, AtomicI64::new(0))
        };
        let errors = ErrorCode::ALL
            .iter()
            .map(|code| counter(names::HTTP_ERRORS, vec![Label::new("code", code.as_str())]))
            .collect();
        let janitor = JanitorHandles {
            passes_ok: counter(names::JANITOR_PASSES, vec![Label::new("outcome", "ok")]),
            passes_failed: counter(names::JANITOR_PASSES, vec![Label::new("outcome", "failed")]),
            duration: recorder
                .register_histogram(&Key::from_name(names::JANITOR_PASS_DURATION), &METADATA),
            reservations_expired: counter(names::JANITOR_RESERVATIONS_EXPIRED, vec![]),
            objects_deleted: counter(names::JANITOR_OBJECTS_DELETED, vec![]),
            deletions_failed: counter(names::JANITOR_DELETIONS_FAILED, vec![]),
        };
        let build_info = recorder.register_gauge(
            &Key::from_parts(
                names::BUILD_INFO,
                vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
            ),
            &METADATA,
        );
        build_info.set(1.0);
        let draining = recorder.register_gauge(&Key::from_name(names::DRAINING), &METADATA);
        draining.set(0.0);
        let inner = Inner {
            uploaded_bytes: per_bucket(names::UPLOADED_BYTES),
            downloaded_bytes: per_bucket(names::DOWNLOADED_BYTES),
            transfers: [transfer(Direction::Upload), transfer(Direction::Download)],
            errors,
            draining,
            janitor,
            http: RwLock::new(HashMap::new()),
            pools: RwLock::new(Vec::new()),
            handle,
            recorder,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.inner
            .recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.inner
            .recorder
            .register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    /// The exposition, in the Prometheus text format ([`CONTENT_TYPE`]); samples the pools
    /// first.
    pub fn render(&self) -> String {
        self.sample_pools();
        self.inner.handle.render()
    }

    /// Folds buffered histogram samples into their buckets. Run it every few seconds.
    pub fn run_upkeep(&self) {
        self.inner.handle.run_upkeep();
    }

    /// Samples `probe` as pool `pool` (a label: `postgres`, `sqlite_writer`, …) at each render.
    pub fn watch_pool(&self, pool: &'static str, probe: PoolProbe) {
        if let Ok(mut pools) = self.inner.pools.write() {
            pools.push((pool, probe));
        }
    }

    fn sample_pools(&self) {
        let Ok(pools) = self.inner.pools.read() else {
            return;
        };
        for (pool, probe) in pools.iter() {
            let figures = probe();
            let label = || vec![Label::new("pool", *pool)];
            let gauge = |name: &'static str| {
                self.inner
                    .recorder
                    .register_gauge(&Key::from_parts(name, label()), &METADATA)
            };
            gauge(names::DB_POOL_MAX_SIZE).set(figures.max_size as f64);
            gauge(names::DB_POOL_SIZE).set(figures.size as f64);
            gauge(names::DB_POOL_IDLE).set(figures.idle as f64);
            gauge(names::DB_POOL_WAITING).set(figures.waiting as f64);
        }
    }

    /// Records one answered HTTP request. `route` is the route's template or
    /// `unmatched` (no route matched: never the raw path); `error` the contract code of an error answer.
    pub fn record_http(
        &self,
        method: &str,
        route: &str,
        status: u16,
        error: Option<ErrorCode>,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let record = |h: &HttpHandles| {
            h.requests.increment(1);
            h.duration.record(elapsed.as_secs_f64());
        };
        let known = |routes: &HashMap<Box<str>, Vec<HttpHandles>>| {
            routes
                .get(route)
                .and_then(|all| {
                    all.iter()
                        .find(|h| h.method == method && h.status == status)
                })
                .map(record)
                .is_some()
        };
        if self.inner.http.read().is_ok_and(|routes| known(&routes)) {
            return;
        }
        let labels = || {
            vec![
                Label::new("method", method),
                Label::new("route", route.to_owned()),
                Label::new("status", status_label(status)),
            ]
        };
        let handles = HttpHandles {
            method,
            status,
            requests: self.counter(names::HTTP_REQUESTS, labels()),
            duration: self.histogram(names::HTTP_REQUEST_DURATION, labels()),
        };
        record(&handles);
        if let Ok(mut routes) = self.inner.http.write() {
            let all = routes.entry(route.into()).or_default();
            if !all.iter().any(|h| h.method == method && h.status == status) {
                all.push(handles);
            }
        }
        if let Some(code) = error
            && let Some(counter) = ErrorCode::ALL
                .iter()
                .position(|c| *c == code)
                .and_then(|i| self.inner.errors.get(i))
        {
            counter.increment(1);
        }
    }

    /// Records one call of a metadata-store or object-store operation.
    fn record_call(
        &self,
        histogram: &'static str,
        operation: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        self.histogram(
            histogram,
            vec![
                Label::from_static_parts("operation", operation),
                Label::from_static_parts("outcome", outcome),
            ],
        )
        .record(elapsed.as_secs_f64());
    }

    /// Wraps a transfer's body: counts its bytes as uploaded or downloaded (for `bucket`) as
    /// they flow, and the transfer as in flight until the stream is dropped.
    pub fn meter_transfer(
        &self,
        direction: Direction,
        bucket: BucketKind,
        body: ByteStream,
    ) -> ByteStream {
        let counters = match direction {
            Direction::Upload => &self.inner.uploaded_bytes,
            Direction::Download => &self.inner.downloaded_bytes,
        };
        let bytes = counters
            .get(bucket_index(bucket))
            .cloned()
            .unwrap_or_else(Counter::noop);
        if let Some((gauge, count)) = self.inner.transfers.get(direction.index()) {
            count.fetch_add(1, Ordering::Relaxed);
            gauge.increment(1.0);
        }
        Box::pin(blobs::MeteredBody::new(
            body,
            bytes,
            TransferGuard {
                metrics: self.clone(),
                direction,
            },
        ))
    }

    /// Proxy and signed-URL transfers in flight through this instance, uploads plus downloads.
    pub fn transfers_in_flight(&self) -> i64 {
        self.inner
            .transfers
            .iter()
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum()
    }

    /// Records the answer of one project-service call of `checks` checks.
    fn record_project_call(
        &self,
        outcomes: &[&'static str],
        call_outcome: &'static str,
        elapsed: Duration,
    ) {
        for outcome in outcomes {
            self.counter(
                names::PROJECT_CHECKS,
                vec![Label::from_static_parts("outcome", outcome)],
            )
            .increment(1);
        }
        self.histogram(
            names::PROJECT_CHECK_DURATION,
            vec![Label::from_static_parts("outcome", call_outcome)],
        )
        .record(elapsed.as_secs_f64());
    }

    /// Records one janitor pass: its report, or its failure.
    pub fn record_janitor_pass(&self, outcome: Result<&JanitorReport, ()>, elapsed: Duration) {
        let j = &self.inner.janitor;
        j.duration.record(elapsed.as_secs_f64());
        match outcome {
            Ok(report) => {
                j.passes_ok.increment(1);
                j.reservations_expired
                    .increment(report.reservations_expired);
                j.objects_deleted.increment(report.objects_deleted);
                j.deletions_failed.increment(report.deletions_failed);
            }
            Err(()) => j.passes_failed.increment(1),
        }
    }

    /// Sets whether the instance is draining (shutting down: not ready).
    pub fn set_draining(&self, draining: bool) {
        self.inner.draining.set(if draining { 1.0 } else { 0.0 });
    }
}

/// Keeps a transfer counted in flight while alive.
pub(crate) struct TransferGuard {
    metrics: Metrics,
    direction: Direction,
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        if let Some((gauge, count)) = self.metrics.inner.transfers.get(self.direction.index()) {
            count.fetch_sub(1, Ordering::Relaxed);
            gauge.decrement(1.0);
        }
    }
}

/// The method label: the standard methods as they are, anything else `other`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("other")
}

/// The status label: the three digits (100 to 599 only, else `other`).
fn status_label(status: u16) -> SharedString {
    if (100..600).contains(&status) {
        SharedString::from(status.to_string())
    } else {
        SharedString::const_str("other")
    }
}

#[cfg(test)]
mod tests;
