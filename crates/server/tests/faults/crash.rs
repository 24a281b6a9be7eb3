//! The real binary killed with SIGKILL in the middle of a proxy upload: once the transfer lease
//! has lapsed, one `storage-server janitor --once` leaves no row and no object (nor unfinished
//! multipart upload) from that upload.

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
    s3::{multipart_uploads, object_keys, s3_config_from_env},
};

use super::{Binary, binary_vars, count, eventually, run_janitor_once, shared_database, slow_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_proxy_upload_leaves_nothing_after_the_janitor() {
    let db = shared_database().await;
    let standin = ProjectStandin::start().await;
    let owner = format!("kill{}", uuid::Uuid::new_v4().simple());
    let vars = binary_vars(db.url(), &standin.url(), &[("TRANSFER_LEASE_SECONDS", "1")]);
    let server = Binary::start(&vars);
    let api = server.api.clone();

    // One finished upload, which must survive everything below.
    let kept = format!("/users/{owner}/kept.txt");
    let up = api.upload(&owner, "users", &kept, b"kept".to_vec()).await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);

    // 256 MiB: 20 MiB at once (two parts stored), then 1 MiB every 100 ms.
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let body = slow_body(256, 20, Duration::from_millis(100), move |n| {
        counter.store(n, Ordering::SeqCst);
    });
    let part = multipart::Part::stream(Body::wrap_stream(body)).file_name("big.bin");
    let uploader = api.clone();
    let token = api.token(&owner);
    let path = format!("/users/{owner}/big.bin");
    let upload = tokio::spawn(async move {
        let form = multipart::Form::new()
            .text("bucket", "users")
            .text("path", path)
            .part("file", part);
        uploader
            .client
            .post(format!("{}/upload/proxy", uploader.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
    });
    eventually(Duration::from_secs(20), "24 MiB sent", || {
        let sent = Arc::clone(&sent);
        async move { sent.load(Ordering::SeqCst) >= 24 }
    })
    .await;
    // The upload is under way: its reservation is open and parts are stored.
    let url = db.url().to_owned();
    eventually(Duration::from_secs(10), "an open reservation", || {
        let url = url.clone();
        async move {
            count(
                &url,
                "SELECT 1 FROM upload_reservations WHERE completed_version IS NULL",
            )
            .await
                == 1
        }
    })
    .await;

    server.kill9();
    let answer = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("the client notices the crash")
        .expect("task");
    assert!(
        answer.is_err() || answer.as_ref().is_ok_and(|r| r.status() != StatusCode::OK),
        "the upload cannot have succeeded: {answer:?}"
    );
    assert_eq!(count(db.url(), "SELECT 1 FROM files").await, 1);
    // The crash left an unfinished multipart upload (its stored parts) in the store.
    let config = s3_config_from_env();
    let prefix = format!("{owner}/");
    let unfinished = multipart_uploads(&config, BucketKind::Users, &prefix).await;
    assert_eq!(unfinished.len(), 1, "{unfinished:?}");

    // Past the lease (1 s, renewed every third while bytes flowed), the janitor reclaims.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let janitor_vars = vars.clone();
    tokio::task::spawn_blocking(move || run_janitor_once(&janitor_vars))
        .await
        .expect("janitor");

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
    assert_eq!(count(url, "SELECT 1 FROM pending_deletions").await, 0);
    let keys = object_keys(&config, BucketKind::Users, &prefix).await;
    assert_eq!(keys.len(), 1, "only the kept file's object: {keys:?}");
    let uploads = multipart_uploads(&config, BucketKind::Users, &prefix).await;
    assert!(
        uploads.is_empty(),
        "unfinished multipart uploads: {uploads:?}"
    );
}
