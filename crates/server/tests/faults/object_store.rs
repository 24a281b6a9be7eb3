//! Garage stopped mid-run: requests that need the store answer `minio_unreachable`, and an
//! upload in flight leaves no row (file, version or reservation); the object it owes is removed
//! by the janitor once the store is back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use reqwest::{Body, StatusCode, multipart};
use storage_domain::model::BucketKind;
use storage_test_support::{
    project_standin::ProjectStandin,
    s3::{multipart_uploads, object_keys},
    services::GarageNode,
    timing,
};

use super::{
    InProcess, binary_vars, count, eventually, run_janitor_once, shared_database, slow_body,
};

/// How fast a request needing the store is answered while it is down (docs/operations.md,
/// "Outages").
const OUTAGE_BOUND: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garage_stopped_answers_minio_unreachable_and_an_upload_in_flight_leaves_no_row() {
    let mut garage = tokio::task::spawn_blocking(GarageNode::start)
        .await
        .expect("start");
    let db = shared_database().await;
    let standin = ProjectStandin::start().await;
    let s3_vars: Vec<(String, String)> = [
        ("MINIO_ENDPOINT", garage.endpoint.clone()),
        ("MINIO_ACCESS_KEY", garage.access_key.clone()),
        ("MINIO_SECRET_KEY", garage.secret_key.clone()),
        ("MINIO_REGION", garage.region.clone()),
        ("MINIO_BUCKET_USERS", garage.bucket_users.clone()),
        ("MINIO_BUCKET_COMPANIES", garage.bucket_companies.clone()),
        ("MINIO_BUCKET_PROJECTS", garage.bucket_projects.clone()),
        ("MINIO_CREATE_BUCKETS", "false".to_owned()),
        ("MINIO_CONNECT_TIMEOUT_MS", "1000".to_owned()),
        ("MINIO_REQUEST_TIMEOUT_MS", "5000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let app = InProcess::start(db.url(), &standin.url(), &s3_vars).await;
    let api = app.api.clone();
    let kept = "/users/carol/store/kept.txt";
    let up = api.upload("carol", "users", kept, b"kept".to_vec()).await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);

    // A 64 MiB upload, 12 MiB at once (one part stored), then 1 MiB every 100 ms.
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let body = slow_body(64, 12, Duration::from_millis(100), move |n| {
        counter.store(n, Ordering::SeqCst);
    });
    let part = multipart::Part::stream(Body::wrap_stream(body)).file_name("big.bin");
    let uploader = api.clone();
    let in_flight = tokio::spawn(async move {
        uploader
            .upload_part("carol", "users", "/users/carol/store/big.bin", part)
            .await
    });
    eventually(Duration::from_secs(20), "16 MiB sent", || {
        let sent = Arc::clone(&sent);
        async move { sent.load(Ordering::SeqCst) >= 16 }
    })
    .await;

    let garage = tokio::task::spawn_blocking(move || {
        garage.stop();
        garage
    })
    .await
    .expect("stop");

    let failed = tokio::time::timeout(Duration::from_secs(20), in_flight)
        .await
        .expect("the upload in flight ends within 20 s")
        .expect("task");
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        failed.body
    );
    assert_eq!(failed.code(), "minio_unreachable");

    let download = api
        .get(
            "carol",
            "/download/proxy",
            &[("bucket", "users"), ("path", kept)],
        )
        .await;
    assert_eq!(download.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(download.code(), "minio_unreachable");
    timing::assert_within("download", download.took, OUTAGE_BOUND);
    let small = api
        .upload(
            "carol",
            "users",
            "/users/carol/store/small.txt",
            b"s".to_vec(),
        )
        .await;
    assert_eq!(small.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(small.code(), "minio_unreachable");
    timing::assert_within("upload", small.took, OUTAGE_BOUND);
    // What needs only the database is still served.
    assert_eq!(
        api.metadata("carol", "users", kept).await.status,
        StatusCode::OK
    );
    let health = api.health().await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.code(), "minio_unreachable", "{:?}", health.body);
    assert_eq!(health.body["database"], "ok", "{:?}", health.body);
    assert_eq!(
        health.body["object_store"], "unavailable",
        "{:?}",
        health.body
    );
    timing::assert_within("health", health.took, OUTAGE_BOUND);

    // No row from the failed uploads: only the kept file and its version.
    let url = db.url();
    assert_eq!(count(url, "SELECT 1 FROM files").await, 1);
    assert_eq!(count(url, "SELECT 1 FROM versions").await, 1);
    assert_eq!(
        count(
            url,
            "SELECT 1 FROM upload_reservations WHERE completed_version IS NULL"
        )
        .await,
        0
    );

    // Store back: the janitor removes what the failed upload owed, and nothing else.
    let mut garage = tokio::task::spawn_blocking(move || {
        let mut garage = garage;
        garage.restart();
        garage
    })
    .await
    .expect("restart");
    // The put could not abort its multipart upload while the store was down.
    let config = garage.s3_config();
    let unfinished = multipart_uploads(&config, BucketKind::Users, "carol/").await;
    assert_eq!(unfinished.len(), 1, "{unfinished:?}");
    let mut vars = binary_vars(url, &standin.url(), &[]);
    vars.retain(|(k, _)| !k.starts_with("MINIO_"));
    vars.extend(s3_vars.iter().cloned());
    let janitor_vars = vars.clone();
    tokio::task::spawn_blocking(move || run_janitor_once(&janitor_vars))
        .await
        .expect("janitor");
    // Nothing is left due; the failed puts' keys stay queued, deferred by the transfer lease,
    // in case the store finishes one of them late.
    assert_eq!(
        count(
            url,
            "SELECT 1 FROM pending_deletions WHERE leased_until IS NULL OR leased_until <= now()"
        )
        .await,
        0
    );
    let keys = object_keys(&config, BucketKind::Users, "carol/").await;
    assert_eq!(keys.len(), 1, "only the kept file's object: {keys:?}");
    let uploads = multipart_uploads(&config, BucketKind::Users, "carol/").await;
    assert!(
        uploads.is_empty(),
        "unfinished multipart uploads: {uploads:?}"
    );
    let down = api
        .get(
            "carol",
            "/download/proxy",
            &[("bucket", "users"), ("path", kept)],
        )
        .await;
    assert_eq!(down.status, StatusCode::OK);
    drop(app);
    tokio::task::spawn_blocking(move || garage.stop())
        .await
        .expect("stop");
}
