//! Every metric of the service: name, type, unit, labels and help text, in one table
//! ([`ALL`]). `docs/operations.md` explains each; a test checks the two agree.
//!
//! Names follow the Prometheus conventions: the `storage_` prefix, base units in the name
//! (`_seconds`, `_bytes`), `_total` on counters only.

use metrics::Unit;

/// The type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    pub name: &'static str,
    pub kind: MetricKind,
    pub unit: Option<Unit>,
    /// Its labels, each with a bounded set of values.
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// Bucket bounds of a histogram.
    pub buckets: Option<&'static [f64]>,
}

pub const HTTP_REQUESTS: &str = "storage_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "storage_http_request_duration_seconds";
pub const HTTP_ERRORS: &str = "storage_http_errors_total";
pub const METADATA_CALL_DURATION: &str = "storage_metadata_call_duration_seconds";
pub const OBJECT_STORE_CALL_DURATION: &str = "storage_object_store_call_duration_seconds";
pub const PROJECT_CHECKS: &str = "storage_project_checks_total";
pub const PROJECT_CHECK_DURATION: &str = "storage_project_check_duration_seconds";
pub const UPLOADED_BYTES: &str = "storage_uploaded_bytes_total";
pub const DOWNLOADED_BYTES: &str = "storage_downloaded_bytes_total";
pub const TRANSFERS_IN_FLIGHT: &str = "storage_transfers_in_flight";
pub const DB_POOL_MAX_SIZE: &str = "storage_db_pool_max_size";
pub const DB_POOL_SIZE: &str = "storage_db_pool_size";
pub const DB_POOL_IDLE: &str = "storage_db_pool_idle";
pub const DB_POOL_WAITING: &str = "storage_db_pool_waiting";
pub const JANITOR_PASSES: &str = "storage_janitor_passes_total";
pub const JANITOR_PASS_DURATION: &str = "storage_janitor_pass_duration_seconds";
pub const JANITOR_RESERVATIONS_EXPIRED: &str = "storage_janitor_reservations_expired_total";
pub const JANITOR_OBJECTS_DELETED: &str = "storage_janitor_objects_deleted_total";
pub const JANITOR_DELETIONS_FAILED: &str = "storage_janitor_deletions_failed_total";
pub const DRAINING: &str = "storage_draining";
pub const BUILD_INFO: &str = "storage_build_info";
// The outbox backlog (events not yet delivered) comes with the events issue, as a gauge
// `storage_outbox_pending_events` sampled at render like the pools: add it to `ALL` and to
// `Metrics::render`'s sampling then.

/// Requests answered from memory or one indexed query up to long proxy transfers.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// One query or unit of work: sub-millisecond to the statement timeout (10 s by default).
const METADATA_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// A head or delete up to a whole streamed put.
const OBJECT_STORE_BUCKETS: &[f64] = &[
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Up to the project service's budget (2 s by default).
const PROJECT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
];
const JANITOR_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];

const fn spec(
    name: &'static str,
    kind: MetricKind,
    unit: Option<Unit>,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricSpec {
    MetricSpec {
        name,
        kind,
        unit,
        labels,
        help,
        buckets: None,
    }
}

const fn histogram(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
    buckets: &'static [f64],
) -> MetricSpec {
    MetricSpec {
        name,
        kind: MetricKind::Histogram,
        unit: Some(Unit::Seconds),
        labels,
        help,
        buckets: Some(buckets),
    }
}

use MetricKind::{Counter, Gauge};

/// Every metric the service exposes.
pub const ALL: &[MetricSpec] = &[
    spec(
        HTTP_REQUESTS,
        Counter,
        None,
        &["method", "route", "status"],
        "HTTP requests answered, by method, route template (`unmatched` when no route matched) and status.",
    ),
    histogram(
        HTTP_REQUEST_DURATION,
        &["method", "route", "status"],
        "Time from a request's arrival to its answer's head (a streamed download's body is not included).",
        HTTP_BUCKETS,
    ),
    spec(
        HTTP_ERRORS,
        Counter,
        None,
        &["code"],
        "Error answers, by the contract's error code.",
    ),
    histogram(
        METADATA_CALL_DURATION,
        &["operation", "outcome"],
        "Metadata-store calls (PostgreSQL or SQLite), by port operation and outcome (ok, refused, unavailable, error).",
        METADATA_BUCKETS,
    ),
    histogram(
        OBJECT_STORE_CALL_DURATION,
        &["operation", "outcome"],
        "Object-store calls, by port operation and outcome (ok, not_found, refused, source_failed, unavailable, error); a put lasts until its last byte is stored, a get until the store's answer head.",
        OBJECT_STORE_BUCKETS,
    ),
    spec(
        PROJECT_CHECKS,
        Counter,
        None,
        &["outcome"],
        "Project-access checks, by outcome (allowed, denied, unavailable); each check of a batch counts.",
    ),
    histogram(
        PROJECT_CHECK_DURATION,
        &["outcome"],
        "Project-service calls (one check or one batch), by outcome (unavailable if the call failed, denied if any check was denied, else allowed).",
        PROJECT_BUCKETS,
    ),
    spec(
        UPLOADED_BYTES,
        Counter,
        Some(Unit::Bytes),
        &["bucket"],
        "Bytes received from clients and streamed into the object store (proxy uploads, local signed URLs).",
    ),
    spec(
        DOWNLOADED_BYTES,
        Counter,
        Some(Unit::Bytes),
        &["bucket"],
        "Bytes read from the object store and streamed to clients (proxy downloads, local signed URLs).",
    ),
    spec(
        TRANSFERS_IN_FLIGHT,
        Gauge,
        None,
        &["direction"],
        "Transfers streaming through this instance now, by direction (upload, download).",
    ),
    spec(
        DB_POOL_MAX_SIZE,
        Gauge,
        None,
        &["pool"],
        "Most connections the database pool may open.",
    ),
    spec(
        DB_POOL_SIZE,
        Gauge,
        None,
        &["pool"],
        "Database connections open (idle or in use).",
    ),
    spec(
        DB_POOL_IDLE,
        Gauge,
        None,
        &["pool"],
        "Database connections open and free.",
    ),
    spec(
        DB_POOL_WAITING,
        Gauge,
        None,
        &["pool"],
        "Callers waiting for a database connection.",
    ),
    spec(
        JANITOR_PASSES,
        Counter,
        None,
        &["outcome"],
        "Janitor passes, by outcome (ok, failed).",
    ),
    histogram(
        JANITOR_PASS_DURATION,
        &[],
        "Duration of janitor passes.",
        JANITOR_BUCKETS,
    ),
    spec(
        JANITOR_RESERVATIONS_EXPIRED,
        Counter,
        None,
        &[],
        "Expired upload reservations whose objects the janitor queued for deletion.",
    ),
    spec(
        JANITOR_OBJECTS_DELETED,
        Counter,
        None,
        &[],
        "Objects the janitor deleted from the object store.",
    ),
    spec(
        JANITOR_DELETIONS_FAILED,
        Counter,
        None,
        &[],
        "Object deletions that failed and stay queued for the next pass.",
    ),
    spec(
        DRAINING,
        Gauge,
        None,
        &[],
        "1 while the instance shuts down (readiness answers 503), else 0.",
    ),
    spec(
        BUILD_INFO,
        Gauge,
        None,
        &["version"],
        "Always 1; the label carries the service's version.",
    ),
];
