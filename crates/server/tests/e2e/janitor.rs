//! The janitor: an abandoned presigned upload's staging object (and a completed one's) is
//! removed once its reservation has expired (`PRESIGN_TTL_SECONDS=1`, `UPLOAD_GRACE_SECONDS=1`), by the `storage-server janitor
//! --once` binary and by the server's own wiring; two passes at once share the work without
//! deleting anything twice or failing.

use std::{process::Command, time::Duration};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use storage_domain::{
    ErrorCode,
    model::{BucketKind, ObjectKey},
};
use storage_server::app::{Adapters, storage_service};

use crate::support::{App, Objects, Options, id_of, put_presigned, vars};

fn short_lived() -> Options {
    Options::default()
        .var("PRESIGN_TTL_SECONDS", 1)
        .var("UPLOAD_GRACE_SECONDS", 1)
}

/// Presigns an upload of `path` and PUTs `bytes` to its URL. With `PRESIGN_TTL_SECONDS=1` the
/// URL may die before the PUT (SigV4 dates have one-second resolution), so a try starts in
/// the first half of a second, and a refused PUT is tried again on a new reservation. Returns the
/// presign answer that worked and how many reservations were left without an object.
async fn presign_and_put(app: &App, path: &str, bytes: &[u8]) -> (Value, u64) {
    let alice = app.user("alice");
    let mut refused = 0;
    loop {
        let late = Utc::now().timestamp_subsec_millis();
        if late > 500 {
            tokio::time::sleep(Duration::from_millis(u64::from(1000 - late))).await;
        }
        let presigned = alice
            .presign_upload(
                path,
                json!({"content_type": "text/plain", "size": bytes.len()}),
            )
            .await
            .ok();
        let status = put_presigned(app, &presigned, bytes.to_vec()).await;
        if status.is_success() {
            return (presigned, refused);
        }
        assert_eq!(status, StatusCode::FORBIDDEN, "presigned PUT");
        refused += 1;
        assert!(refused < 5, "presigned PUTs keep being refused");
    }
}

/// Presigns `count` uploads under `dir`, PUTs bytes to each URL, completes none. Returns their
/// upload ids and object keys (checked present), and the number of reservations made.
async fn abandon(
    app: &App,
    objects: &Objects,
    dir: &str,
    count: usize,
) -> (Vec<(String, (BucketKind, ObjectKey))>, u64) {
    let mut abandoned = Vec::new();
    let mut reservations = 0;
    for i in 0..count {
        let path = format!("{dir}abandoned-{i}.txt");
        let (presigned, refused) =
            presign_and_put(app, &path, format!("never completed {i}").as_bytes()).await;
        reservations += refused + 1;
        let key = Objects::key_of_url(presigned["url"].as_str().expect("url"));
        assert!(objects.exists(&key).await, "the PUT stored {key:?}");
        abandoned.push((
            presigned["upload_id"]
                .as_str()
                .expect("upload_id")
                .to_owned(),
            key,
        ));
    }
    (abandoned, reservations)
}

/// Waits until reservations made now have expired: URL lifetime plus grace, and a margin.
async fn wait_for_expiry() {
    tokio::time::sleep(Duration::from_millis(2_300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_janitor_binary_removes_an_abandoned_upload() {
    let app = App::start_with(short_lived()).await;
    let objects = Objects::connect().await;
    let alice = app.user("alice");
    let (abandoned, mut reservations) = abandon(&app, &objects, "/users/alice/inbox/", 1).await;
    // A completed upload of the same age: its object must stay.
    let kept_path = "/users/alice/inbox/kept.txt";
    let (presigned, refused) = presign_and_put(&app, kept_path, b"kept").await;
    reservations += refused;
    let kept = alice
        .complete(presigned["upload_id"].as_str().unwrap())
        .await
        .ok();
    let kept_key = Objects::key_of(kept_path, &id_of(&kept));
    // A proxy upload too.
    let proxied = id_of(
        &alice
            .upload("/users/alice/inbox/proxied.txt", b"p".to_vec())
            .await
            .ok(),
    );
    let proxied_key = Objects::key_of("/users/alice/inbox/proxied.txt", &proxied);

    wait_for_expiry().await;
    let mut env = vars(
        &app.db,
        &app.standin,
        &storage_test_support::env::require("TEST_S3_ENDPOINT"),
    );
    env.push(("PRESIGN_TTL_SECONDS".into(), "1".into()));
    env.push(("UPLOAD_GRACE_SECONDS".into(), "1".into()));
    let workdir = std::env::temp_dir();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_storage-server"))
            .args(["janitor", "--once"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env)
            .current_dir(workdir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "janitor --once failed: {stderr}");
    // One deletion per expired reservation, and the kept upload's staging object (queued when
    // it was completed, due once its reservation expired).
    assert!(
        stderr.contains(&format!("reservations_expired={reservations}"))
            && stderr.contains(&format!("objects_deleted={}", reservations + 1))
            && stderr.contains("deletions_failed=0"),
        "the pass reports its work ({reservations} reservations): {stderr}"
    );
    let kept_staging = Objects::key_of_url(presigned["url"].as_str().unwrap());
    assert!(
        !objects.exists(&kept_staging).await,
        "the completed upload's staging object is removed"
    );

    let (upload_id, key) = &abandoned[0];
    assert!(
        !objects.exists(key).await,
        "the abandoned object is removed"
    );
    alice
        .complete(upload_id)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::UploadNotFound);
    alice
        .metadata("/users/alice/inbox/abandoned-0.txt")
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    assert!(
        objects.exists(&kept_key).await,
        "a completed upload's object stays"
    );
    assert!(
        objects.exists(&proxied_key).await,
        "a proxy upload's object stays"
    );
    assert_eq!(alice.download(kept_path, "latest").await.bytes, b"kept");
    // Completing the kept upload again still answers its version (idempotent).
    let again = alice
        .complete(presigned["upload_id"].as_str().unwrap())
        .await
        .ok();
    assert_eq!(again["version"]["id"], kept["version"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_janitor_passes_at_once_share_the_work() {
    let app = App::start_with(short_lived()).await;
    let objects = Objects::connect().await;
    const COUNT: usize = 12;
    let (abandoned, reservations) = abandon(&app, &objects, "/users/alice/tmp/", COUNT).await;
    wait_for_expiry().await;

    // Two janitors, each with its own adapters (own pools), as two instances would have.
    let base_url = app.config.public_base_url(app.config.bind_addr.port());
    let first = storage_service(
        &Adapters::connect(&app.config, &base_url).await.unwrap(),
        &app.config,
    );
    let second = storage_service(
        &Adapters::connect(&app.config, &base_url).await.unwrap(),
        &app.config,
    );
    let (one, two) = tokio::join!(first.run_janitor_once(), second.run_janitor_once());
    let (one, two) = (one.expect("first pass"), two.expect("second pass"));
    assert_eq!(
        one.reservations_expired + two.reservations_expired,
        reservations,
        "each reservation expired once: {one:?} {two:?}"
    );
    assert_eq!(
        one.objects_deleted + two.objects_deleted,
        reservations,
        "each object deleted once: {one:?} {two:?}"
    );
    assert_eq!(one.deletions_failed + two.deletions_failed, 0);
    for (upload_id, key) in &abandoned {
        assert!(!objects.exists(key).await, "{key:?} removed");
        app.user("alice")
            .complete(upload_id)
            .await
            .err(StatusCode::NOT_FOUND, ErrorCode::UploadNotFound);
    }
    // Nothing is left for a third pass.
    let third = first.run_janitor_once().await.unwrap();
    assert_eq!(third, Default::default());
}
