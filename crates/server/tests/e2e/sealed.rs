//! Sealed versions: a presigned upload URL writes a staging object of its upload only, so
//! nothing done with it after `/upload/complete` changes a version's bytes or hash; staging
//! objects are removed by the janitor once the URL's lifetime (and the grace to complete) has
//! passed, whatever became of the upload; an approved version downloads byte-identical to what
//! was approved. Checked behind the service's back in Garage (`Objects`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{App, Objects, Options, id_of, put_presigned, sha256_hex};

/// Presigns an upload of `bytes` (size announced), PUTs them, completes; returns the presign
/// answer and the completion's answer.
async fn upload_presigned(app: &App, user: &str, path: &str, bytes: &[u8]) -> (Value, Value) {
    let who = app.user(user);
    let presigned = who
        .presign_upload(
            path,
            json!({"content_type": "text/plain", "size": bytes.len()}),
        )
        .await
        .ok();
    assert_eq!(
        put_presigned(app, &presigned, bytes.to_vec()).await,
        StatusCode::OK
    );
    let done = who
        .complete(presigned["upload_id"].as_str().expect("upload_id"))
        .await
        .ok();
    (presigned, done)
}

/// A second PUT to a used URL lands in its staging object only: the version's object, its
/// sha256, its download, a completion again and an approval all keep the reviewed bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_upload_url_changes_no_version() {
    let app = App::start().await;
    app.allow("alice", "p", &["read", "write"]);
    app.allow("bob", "p", &["read", "validate"]);
    let objects = Objects::connect().await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    let path = "/projects/p/report.txt";

    let (first_url, v1) = upload_presigned(&app, "alice", path, b"good!").await;
    let v1_id = id_of(&v1);
    assert_eq!(v1["version"]["sha256"], sha256_hex(b"good!"));
    let v1_key = Objects::key_of(path, &v1_id);
    let staging = Objects::key_of_url(first_url["url"].as_str().expect("url"));
    assert_ne!(v1_key, staging, "the URL never names the version's object");
    assert!(
        !objects.exists(&staging).await,
        "completion removed the staging object"
    );

    // The uploader PUTs other bytes to the used URL: S3 accepts them, into staging only.
    assert_eq!(
        put_presigned(&app, &first_url, b"evil!".to_vec()).await,
        StatusCode::OK
    );
    assert_eq!(objects.bytes(&staging).await, b"evil!");
    assert_eq!(objects.bytes(&v1_key).await, b"good!");
    let meta = alice.metadata(path).await.ok();
    assert_eq!(meta["file"]["sha256"], sha256_hex(b"good!"));
    assert_eq!(alice.download(path, "1").await.bytes, b"good!");
    // Completing again answers the same version, unchanged.
    let again = alice
        .complete(first_url["upload_id"].as_str().expect("upload_id"))
        .await
        .ok();
    assert_eq!(again["version"]["id"], v1["version"]["id"]);
    assert_eq!(again["version"]["sha256"], sha256_hex(b"good!"));

    // A second version; both URLs written again: neither version changes.
    let (second_url, v2) = upload_presigned(&app, "alice", path, b"v2 ok").await;
    for url in [&first_url, &second_url] {
        assert_eq!(
            put_presigned(&app, url, b"evil!".to_vec()).await,
            StatusCode::OK
        );
    }
    let versions = alice.versions(path).await.ok();
    let hashes: Vec<_> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["sha256"].as_str().expect("sha256").to_owned())
        .collect();
    assert_eq!(hashes, [sha256_hex(b"v2 ok"), sha256_hex(b"good!")]);
    assert_eq!(
        objects.bytes(&Objects::key_of(path, &id_of(&v2))).await,
        b"v2 ok"
    );

    // Review of version 1, then the uploader keeps PUTting to both URLs: the approved version
    // downloads byte-identical to what was approved, through the service and a presigned URL.
    alice.submit(&v1_id).await.ok();
    let approved = bob.approve(&v1_id, Some("reviewed")).await.ok();
    assert_eq!(approved["version"]["sha256"], sha256_hex(b"good!"));
    for url in [&first_url, &second_url] {
        assert_eq!(
            put_presigned(&app, url, b"evil, after the review".to_vec()).await,
            StatusCode::OK
        );
    }
    let validated = bob.download(path, "validated").await;
    assert_eq!(validated.status, StatusCode::OK);
    assert_eq!(validated.bytes, b"good!");
    let presigned = bob.presign_download(path, json!("validated")).await.ok();
    let direct = app
        .client
        .get(presigned["url"].as_str().expect("url"))
        .send()
        .await
        .expect("presigned GET");
    assert_eq!(direct.bytes().await.expect("body").as_ref(), b"good!");
    assert_eq!(objects.bytes(&v1_key).await, b"good!");
}

fn short_lived() -> Options {
    Options::default()
        .var("PRESIGN_TTL_SECONDS", 2)
        .var("UPLOAD_GRACE_SECONDS", 1)
}

/// Waits until reservations made now have expired: URL lifetime plus grace, and a margin.
async fn past_the_url_lifetime() {
    tokio::time::sleep(Duration::from_millis(3_600)).await;
}

/// After the URL's lifetime, one janitor pass leaves no staging object: neither the one a PUT
/// re-created after completion, nor one whose file was deleted (whose version objects go too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_staging_object_outlives_the_url() {
    let app = App::start_with(short_lived()).await;
    let objects = Objects::connect().await;
    let alice = app.user("alice");

    // Completed, then written again through its URL.
    let kept = "/users/alice/kept.txt";
    let (kept_url, kept_v) = upload_presigned(&app, "alice", kept, b"kept").await;
    assert_eq!(
        put_presigned(&app, &kept_url, b"late".to_vec()).await,
        StatusCode::OK
    );
    let kept_staging = Objects::key_of_url(kept_url["url"].as_str().expect("url"));
    assert!(objects.exists(&kept_staging).await);

    // Completed, the file deleted, then written again through its URL.
    let gone = "/users/alice/gone.txt";
    let (gone_url, gone_v) = upload_presigned(&app, "alice", gone, b"gone").await;
    alice.delete(gone).await.ok();
    assert_eq!(
        put_presigned(&app, &gone_url, b"after the delete".to_vec()).await,
        StatusCode::OK
    );
    let gone_staging = Objects::key_of_url(gone_url["url"].as_str().expect("url"));
    assert!(objects.exists(&gone_staging).await, "the PUT re-created it");

    past_the_url_lifetime().await;
    // The URLs are dead now: a PUT is refused by the store (Garage answers 400).
    let late = put_presigned(&app, &kept_url, b"too late".to_vec()).await;
    assert!(late.is_client_error(), "{late}");
    let report = app.run_janitor().await;
    assert_eq!(report.deletions_failed, 0, "{report:?}");
    assert!(
        !objects.exists(&kept_staging).await,
        "staging of a completed upload"
    );
    assert!(
        !objects.exists(&gone_staging).await,
        "staging of a deleted file"
    );
    assert!(
        !objects
            .exists(&Objects::key_of(gone, &id_of(&gone_v)))
            .await,
        "the deleted file's version object"
    );
    let kept_key = Objects::key_of(kept, &id_of(&kept_v));
    assert_eq!(
        objects.bytes(&kept_key).await,
        b"kept",
        "the version stays as it was"
    );
    assert_eq!(alice.download(kept, "latest").await.bytes, b"kept");
    // Nothing is left for another pass.
    let again = app.run_janitor().await;
    assert_eq!(again.objects_deleted, 0, "{again:?}");
}
