//! SIGTERM to the real binary with a proxy upload in flight: readiness answers 503 at once
//! while the listener still accepts (for `SHUTDOWN_READINESS_DELAY_SECONDS`), then the
//! listener closes, the upload still completes and is recorded, and only then does the process
//! exit (0), well before `SHUTDOWN_GRACE_SECONDS`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Body, StatusCode, multipart};
use storage_test_support::project_standin::ProjectStandin;

use super::{Binary, binary_vars, count, eventually, shared_database, slow_body};

/// The upload: 16 MiB, the first 2 at once, then 1 MiB every 250 ms (about 3.5 s).
const TOTAL_MIB: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_503_then_lets_the_upload_finish_then_exits() {
    let db = shared_database().await;
    let standin = ProjectStandin::start().await;
    let vars = binary_vars(
        db.url(),
        &standin.url(),
        &[
            ("SHUTDOWN_READINESS_DELAY_SECONDS", "1"),
            ("SHUTDOWN_GRACE_SECONDS", "30"),
        ],
    );
    let mut server = Binary::start(&vars);
    let api = server.api.clone();
    let ready = format!("{}/health/ready", api.base);
    let probe = |url: String| {
        let client = api.client.clone();
        async move { client.get(url).send().await.map(|r| r.status()) }
    };
    assert_eq!(probe(ready.clone()).await.ok(), Some(StatusCode::OK));

    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let body = slow_body(TOTAL_MIB, 2, Duration::from_millis(250), move |n| {
        counter.store(n, Ordering::SeqCst);
    });
    let part = multipart::Part::stream(Body::wrap_stream(body)).file_name("big.bin");
    let uploader = api.clone();
    let upload = tokio::spawn(async move {
        let answer = uploader
            .upload_part("alice", "users", "/users/alice/drain/big.bin", part)
            .await;
        (answer, Instant::now())
    });
    eventually(Duration::from_secs(20), "4 MiB sent", || {
        let sent = Arc::clone(&sent);
        async move { sent.load(Ordering::SeqCst) >= 4 }
    })
    .await;

    server.sigterm();
    let signalled = Instant::now();
    // Readiness turns 503 first ({"status":"draining"}), while the upload is still running.
    let mut turned = None;
    while signalled.elapsed() < Duration::from_secs(5) {
        let res = api
            .client
            .get(&ready)
            .send()
            .await
            .expect("the listener still accepts");
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            let body: serde_json::Value = res.json().await.expect("JSON");
            assert_eq!(body, serde_json::json!({"status": "draining"}));
            turned = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let turned = turned.expect("readiness turned 503 within 5 s of SIGTERM");
    let sent_then = sent.load(Ordering::SeqCst);
    assert!(
        sent_then < TOTAL_MIB,
        "the upload was still in flight when readiness turned 503 ({sent_then} MiB sent)"
    );
    // During the delay the instance still serves new connections (liveness).
    let live = probe(format!("{}/health/live", api.base)).await;
    assert_eq!(live.ok(), Some(StatusCode::OK));

    // The upload completes and is recorded, although the listener has closed meanwhile.
    let (answer, uploaded) = tokio::time::timeout(Duration::from_secs(30), upload)
        .await
        .expect("the upload finishes within the grace period")
        .expect("task");
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["file"]["size"], TOTAL_MIB * 1024 * 1024);
    assert!(
        turned < uploaded,
        "readiness turned 503 before the upload ended"
    );
    assert!(
        uploaded.duration_since(signalled) > Duration::from_secs(1),
        "the upload outlived the readiness delay, so it finished on a closed listener"
    );

    // Then the process exits, with success, without waiting for the whole grace period.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = server.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 15 s after the upload ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
    eprintln!(
        "SIGTERM → readiness 503: {:?}; → upload done: {:?}; → exited: {:?}",
        turned.duration_since(signalled),
        uploaded.duration_since(signalled),
        signalled.elapsed()
    );
    assert!(
        probe(ready).await.is_err(),
        "nothing listens once the process has exited"
    );
    assert_eq!(count(db.url(), "SELECT 1 FROM versions").await, 1);
    assert_eq!(
        count(
            db.url(),
            "SELECT 1 FROM upload_reservations WHERE completed_version IS NULL"
        )
        .await,
        0
    );
}
