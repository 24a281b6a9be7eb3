//! The recorder, the decorators and the exposition, with mocks of the ports; the exposition is
//! read back with a strict Prometheus text parser (`storage_test_support::prometheus`).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{StreamExt, executor::block_on, stream};
use storage_domain::{
    ErrorCode,
    model::{BucketKind, ObjectKey, OwnerId, Principal, UserId},
    ports::{
        AccessCheck, AccessDecision, BlobError, BlobStore, ByteStream, MetadataStore,
        MockBlobStore, MockMetadataStore, MockProjectAccess, ProjectAccess, ProjectAccessError,
        ProjectAction, RepoError,
    },
};
use storage_test_support::prometheus::{Exposition, Kind};

use super::*;

fn parse(text: &str) -> Exposition {
    storage_test_support::prometheus::parse(text)
}

/// The value of the series `name` with exactly `labels` (a histogram's count).
fn value(scrape: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.get(name, labels)
}

#[test]
fn every_metric_is_described_and_named_by_the_conventions() {
    let metrics = Metrics::new();
    let text = metrics.render();
    let scrape = parse(&text);
    let mut seen = std::collections::HashSet::new();
    for spec in names::ALL {
        assert!(seen.insert(spec.name), "{} listed twice", spec.name);
        assert!(spec.name.starts_with("storage_"), "{}", spec.name);
        let is_counter = spec.kind == MetricKind::Counter;
        assert_eq!(spec.name.ends_with("_total"), is_counter, "{}", spec.name);
        if spec.kind == MetricKind::Histogram {
            assert!(spec.name.ends_with("_seconds"), "{}", spec.name);
            assert!(
                spec.buckets
                    .is_some_and(|b| b.windows(2).all(|w| w[0] < w[1]))
            );
        }
        if spec.unit == Some(metrics::Unit::Bytes) {
            assert!(spec.name.ends_with("_bytes_total"), "{}", spec.name);
        }
        for label in spec.labels {
            assert!(
                !["path", "user", "id", "key"].contains(label),
                "{}",
                spec.name
            );
        }
    }
    // Label-free series and the fixed label sets are there from the start, at zero.
    assert_eq!(
        value(&scrape, names::JANITOR_OBJECTS_DELETED, &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&scrape, names::UPLOADED_BYTES, &[("bucket", "projects")]),
        Some(0.0)
    );
    assert_eq!(
        value(&scrape, names::HTTP_ERRORS, &[("code", "file_locked")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &scrape,
            names::TRANSFERS_IN_FLIGHT,
            &[("direction", "upload")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &scrape,
            names::BUILD_INFO,
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    for spec in names::ALL.iter().filter(|s| s.labels.is_empty()) {
        let kind = match spec.kind {
            MetricKind::Counter => Kind::Counter,
            MetricKind::Gauge => Kind::Gauge,
            MetricKind::Histogram => Kind::Histogram,
        };
        assert_eq!(scrape.kind(spec.name), Some(kind), "{}", spec.name);
    }
    assert_eq!(scrape.kind(names::HTTP_ERRORS), Some(Kind::Counter));
    assert_eq!(
        scrape.help.get(names::HTTP_ERRORS).map(String::as_str),
        names::ALL
            .iter()
            .find(|s| s.name == names::HTTP_ERRORS)
            .map(|s| s.help)
    );
}

#[test]
fn http_requests_are_counted_by_method_route_status_and_code() {
    let metrics = Metrics::new();
    for _ in 0..3 {
        metrics.record_http("GET", "/list", 200, None, Duration::from_millis(3));
    }
    metrics.record_http(
        "POST",
        "/lock",
        409,
        Some(ErrorCode::FileLocked),
        Duration::from_millis(1),
    );
    metrics.record_http(
        "BREW",
        "unmatched",
        404,
        Some(ErrorCode::InvalidRequest),
        Duration::ZERO,
    );
    let scrape = parse(&metrics.render());
    let get_list = [("method", "GET"), ("route", "/list"), ("status", "200")];
    assert_eq!(value(&scrape, names::HTTP_REQUESTS, &get_list), Some(3.0));
    assert_eq!(
        value(&scrape, names::HTTP_REQUEST_DURATION, &get_list),
        Some(3.0)
    );
    let bucket_5ms = scrape
        .matching(names::HTTP_REQUEST_DURATION, &[("route", "/list")])
        .next()
        .and_then(|s| {
            s.buckets
                .iter()
                .find(|(le, _)| *le == 0.005)
                .map(|(_, n)| *n)
        });
    assert_eq!(bucket_5ms, Some(3.0), "3 ms falls in the 5 ms bucket");
    assert_eq!(
        value(
            &scrape,
            names::HTTP_REQUESTS,
            &[
                ("method", "other"),
                ("route", "unmatched"),
                ("status", "404")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, names::HTTP_ERRORS, &[("code", "file_locked")]),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, names::HTTP_ERRORS, &[("code", "invalid_request")]),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, names::HTTP_ERRORS, &[("code", "access_denied")]),
        Some(0.0)
    );
}

#[test]
fn each_method_and_status_of_a_route_is_counted_apart() {
    let metrics = Metrics::new();
    let calls = [
        ("GET", 200, 3),
        ("GET", 404, 2),
        ("PATCH", 200, 1),
        ("GET", 200, 1),
    ];
    for (method, status, times) in calls {
        for _ in 0..times {
            metrics.record_http(method, "/metadata", status, None, Duration::ZERO);
        }
    }
    metrics.record_http("GET", "/list", 200, None, Duration::ZERO);
    let scrape = parse(&metrics.render());
    let count = |method: &str, route: &str, status: &str| {
        let labels = [("method", method), ("route", route), ("status", status)];
        (
            value(&scrape, names::HTTP_REQUESTS, &labels),
            value(&scrape, names::HTTP_REQUEST_DURATION, &labels),
        )
    };
    assert_eq!(count("GET", "/metadata", "200"), (Some(4.0), Some(4.0)));
    assert_eq!(count("GET", "/metadata", "404"), (Some(2.0), Some(2.0)));
    assert_eq!(count("PATCH", "/metadata", "200"), (Some(1.0), Some(1.0)));
    assert_eq!(count("GET", "/list", "200"), (Some(1.0), Some(1.0)));
}

fn path() -> storage_domain::model::FilePath {
    storage_domain::model::FilePath::parse_request("users", "/users/alice/a.txt").unwrap()
}

#[test]
fn metadata_calls_are_timed_by_operation_and_outcome() {
    let metrics = Metrics::new();
    let mut mock = MockMetadataStore::new();
    mock.expect_find_file().times(1).returning(|_| Ok(None));
    mock.expect_find_file()
        .times(1)
        .returning(|_| Err(RepoError::Unavailable("down".into())));
    mock.expect_forget_deletion()
        .returning(|_| Err(RepoError::FileNotFound));
    mock.expect_health()
        .returning(|| Err(RepoError::Internal("bad".into())));
    let store = MeteredMetadata::new(Arc::new(mock), metrics.clone());
    assert_eq!(block_on(store.find_file(&path())), Ok(None));
    assert_eq!(
        block_on(store.find_file(&path())),
        Err(RepoError::Unavailable("down".into())),
        "answers pass through unchanged"
    );
    let _ =
        block_on(store.forget_deletion(storage_domain::model::DeletionId::from_uuid(uuid_v7())));
    let _ = block_on(store.health());
    let scrape = parse(&metrics.render());
    let call = |op: &str, outcome: &str| {
        value(
            &scrape,
            names::METADATA_CALL_DURATION,
            &[("operation", op), ("outcome", outcome)],
        )
    };
    assert_eq!(call("find_file", "ok"), Some(1.0));
    assert_eq!(call("find_file", "unavailable"), Some(1.0));
    assert_eq!(call("forget_deletion", "refused"), Some(1.0));
    assert_eq!(call("health", "error"), Some(1.0));
}

fn uuid_v7() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

#[test]
fn object_store_calls_are_timed_by_operation_and_outcome() {
    let metrics = Metrics::new();
    let mut mock = MockBlobStore::new();
    mock.expect_head()
        .returning(|_, _| Err(BlobError::NotFound));
    mock.expect_delete()
        .returning(|_, _| Err(BlobError::Unavailable("gone".into())));
    let store = MeteredBlobs::new(Arc::new(mock), metrics.clone());
    let key = ObjectKey::from_stored("k");
    assert!(matches!(
        block_on(store.head(BucketKind::Users, &key)),
        Err(BlobError::NotFound)
    ));
    assert!(matches!(
        block_on(store.delete(BucketKind::Users, &key)),
        Err(BlobError::Unavailable(_))
    ));
    let scrape = parse(&metrics.render());
    let call = |op: &str, outcome: &str| {
        value(
            &scrape,
            names::OBJECT_STORE_CALL_DURATION,
            &[("operation", op), ("outcome", outcome)],
        )
    };
    assert_eq!(call("head", "not_found"), Some(1.0));
    assert_eq!(call("delete", "unavailable"), Some(1.0));
}

fn check(action: ProjectAction) -> AccessCheck {
    AccessCheck {
        project_id: OwnerId::new("p1").unwrap(),
        action,
        file_id: None,
    }
}

#[test]
fn project_checks_are_counted_per_check_and_timed_per_call() {
    let metrics = Metrics::new();
    let mut mock = MockProjectAccess::new();
    mock.expect_check()
        .times(1)
        .returning(|_, _| Ok(AccessDecision::Allowed { role: None }));
    mock.expect_check()
        .times(1)
        .returning(|_, _| Err(ProjectAccessError::Timeout));
    mock.expect_check_batch().times(1).returning(|_, _| {
        Ok(vec![
            AccessDecision::Allowed { role: None },
            AccessDecision::Denied { reason: None },
        ])
    });
    mock.expect_check_batch()
        .times(1)
        .returning(|_, _| Err(ProjectAccessError::BadStatus(500)));
    let projects = MeteredProjects::new(Arc::new(mock), metrics.clone());
    let caller = Principal::new(UserId::new("alice").unwrap(), None);
    let read = check(ProjectAction::Read);
    assert!(block_on(projects.check(&caller, &read)).is_ok_and(|d| d.is_allowed()));
    assert_eq!(
        block_on(projects.check(&caller, &read)),
        Err(ProjectAccessError::Timeout)
    );
    let both = [read.clone(), check(ProjectAction::Lock)];
    assert_eq!(
        block_on(projects.check_batch(&caller, &both)).map(|d| d.len()),
        Ok(2)
    );
    assert!(
        block_on(projects.check_batch(&caller, &both))
            .is_err_and(|e| e == ProjectAccessError::BadStatus(500))
    );
    let scrape = parse(&metrics.render());
    let checks = |outcome: &str| value(&scrape, names::PROJECT_CHECKS, &[("outcome", outcome)]);
    assert_eq!(checks("allowed"), Some(2.0));
    assert_eq!(checks("denied"), Some(1.0));
    assert_eq!(
        checks("unavailable"),
        Some(3.0),
        "one, then a failed batch of two"
    );
    let calls = |outcome: &str| {
        value(
            &scrape,
            names::PROJECT_CHECK_DURATION,
            &[("outcome", outcome)],
        )
    };
    assert_eq!(calls("allowed"), Some(1.0));
    assert_eq!(calls("denied"), Some(1.0), "a batch with a denial");
    assert_eq!(calls("unavailable"), Some(2.0));
}

#[test]
fn transfers_count_bytes_and_stay_in_flight_until_dropped() {
    let metrics = Metrics::new();
    let body: ByteStream = Box::pin(stream::iter(vec![
        Ok(Bytes::from_static(b"hello ")),
        Ok(Bytes::from_static(b"world")),
    ]));
    let mut metered = metrics.meter_transfer(Direction::Download, BucketKind::Companies, body);
    assert_eq!(metrics.transfers_in_flight(), 1);
    let in_flight = |m: &Metrics| {
        value(
            &parse(&m.render()),
            names::TRANSFERS_IN_FLIGHT,
            &[("direction", "download")],
        )
    };
    assert_eq!(in_flight(&metrics), Some(1.0));
    let first = block_on(metered.next());
    assert!(matches!(first, Some(Ok(ref b)) if b.len() == 6));
    let scrape = parse(&metrics.render());
    assert_eq!(
        value(&scrape, names::DOWNLOADED_BYTES, &[("bucket", "companies")]),
        Some(6.0)
    );
    assert_eq!(
        block_on(metered.next()).map(|r| r.map(|b| b.len()).ok()),
        Some(Some(5))
    );
    drop(metered);
    assert_eq!(metrics.transfers_in_flight(), 0);
    assert_eq!(in_flight(&metrics), Some(0.0));
    let scrape = parse(&metrics.render());
    assert_eq!(
        value(&scrape, names::DOWNLOADED_BYTES, &[("bucket", "companies")]),
        Some(11.0)
    );
    assert_eq!(
        value(&scrape, names::UPLOADED_BYTES, &[("bucket", "companies")]),
        Some(0.0)
    );
}

#[test]
fn pools_are_sampled_at_each_render() {
    let metrics = Metrics::new();
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let probe_waiting = Arc::clone(&waiting);
    metrics.watch_pool(
        "postgres",
        Arc::new(move || PoolFigures {
            max_size: 16,
            size: 4,
            idle: 1,
            waiting: probe_waiting.load(std::sync::atomic::Ordering::SeqCst),
        }),
    );
    let pool = [("pool", "postgres")];
    let scrape = parse(&metrics.render());
    assert_eq!(value(&scrape, names::DB_POOL_MAX_SIZE, &pool), Some(16.0));
    assert_eq!(value(&scrape, names::DB_POOL_SIZE, &pool), Some(4.0));
    assert_eq!(value(&scrape, names::DB_POOL_IDLE, &pool), Some(1.0));
    assert_eq!(value(&scrape, names::DB_POOL_WAITING, &pool), Some(0.0));
    waiting.store(7, std::sync::atomic::Ordering::SeqCst);
    let scrape = parse(&metrics.render());
    assert_eq!(value(&scrape, names::DB_POOL_WAITING, &pool), Some(7.0));
}

#[test]
fn janitor_passes_are_counted() {
    let metrics = Metrics::new();
    let report = JanitorReport {
        reservations_expired: 2,
        objects_deleted: 5,
        deletions_failed: 1,
        trash_purged: 0,
        versions_pruned: 0,
    };
    metrics.record_janitor_pass(Ok(&report), Duration::from_millis(20));
    metrics.record_janitor_pass(Err(()), Duration::from_millis(1));
    let scrape = parse(&metrics.render());
    assert_eq!(
        value(&scrape, names::JANITOR_PASSES, &[("outcome", "ok")]),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, names::JANITOR_PASSES, &[("outcome", "failed")]),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, names::JANITOR_RESERVATIONS_EXPIRED, &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&scrape, names::JANITOR_OBJECTS_DELETED, &[]),
        Some(5.0)
    );
    assert_eq!(
        value(&scrape, names::JANITOR_DELETIONS_FAILED, &[]),
        Some(1.0)
    );
    assert_eq!(value(&scrape, names::JANITOR_PASS_DURATION, &[]), Some(2.0));
}

#[test]
fn two_recorders_keep_their_figures_apart() {
    let (a, b) = (Metrics::new(), Metrics::new());
    a.record_http("GET", "/list", 200, None, Duration::ZERO);
    let list = [("method", "GET"), ("route", "/list"), ("status", "200")];
    assert_eq!(
        value(&parse(&a.render()), names::HTTP_REQUESTS, &list),
        Some(1.0)
    );
    assert_eq!(
        value(&parse(&b.render()), names::HTTP_REQUESTS, &list),
        None
    );
}

#[test]
fn draining_is_a_gauge() {
    let metrics = Metrics::new();
    assert_eq!(
        value(&parse(&metrics.render()), names::DRAINING, &[]),
        Some(0.0)
    );
    metrics.set_draining(true);
    assert_eq!(
        value(&parse(&metrics.render()), names::DRAINING, &[]),
        Some(1.0)
    );
}

#[test]
fn labels_are_bounded() {
    assert_eq!(method_label("GET"), "GET");
    assert_eq!(method_label("get"), "other");
    assert_eq!(method_label("X-ANYTHING"), "other");
    assert_eq!(status_label(204).as_ref(), "204");
    assert_eq!(status_label(1000).as_ref(), "other");
}

/// The `storage_…` names in `text` that follow `before` (`` ` `` for names quoted in Markdown,
/// nothing for queries), histogram series suffixes removed.
fn names_in(text: &str, before: &str) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut rest = text;
    let pattern = format!("{before}storage_");
    while let Some(at) = rest.find(&pattern) {
        let tail = &rest[at + before.len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|base| names::ALL.iter().any(|m| m.name == *base))
            .unwrap_or(name);
        found.insert(name.to_owned());
        rest = &tail[end..];
    }
    found
}

#[test]
fn the_docs_the_dashboard_and_the_alerts_name_the_metrics_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let known: std::collections::BTreeSet<String> =
        names::ALL.iter().map(|m| m.name.to_owned()).collect();
    let docs = read("docs/operations.md");
    for spec in names::ALL {
        assert!(
            docs.contains(&format!("| `{}` |", spec.name)),
            "docs/operations.md does not describe {}",
            spec.name
        );
    }
    // The outbox gauge is announced in the docs, not exposed yet.
    let announced = ["storage_outbox_pending_events".to_owned()];
    for (file, text, before) in [
        ("docs/operations.md", docs.clone(), "`"),
        (
            "deploy/grafana/dashboards/storage-service.json",
            read("deploy/grafana/dashboards/storage-service.json"),
            "",
        ),
        (
            "deploy/prometheus/alerts.yml",
            read("deploy/prometheus/alerts.yml"),
            "",
        ),
    ] {
        let named = names_in(&text, before);
        assert!(!named.is_empty(), "{file} names no metric");
        for name in named {
            assert!(
                known.contains(&name) || announced.contains(&name),
                "{file} names {name}, which the service does not expose"
            );
        }
    }
}
