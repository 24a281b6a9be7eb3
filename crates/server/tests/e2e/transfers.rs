//! Transfers bounded under load, and hostile input refused, over real HTTP on PostgreSQL and
//! Garage: the caps answer 429 with `Retry-After` and the service resumes; a stalled body is
//! cut after the idle timeout and leaves nothing in either store; an upload URL never stores
//! more than announced, nor, without an announced size, more than `MAX_UPLOAD_BYTES` (the
//! service's own URL, streamed by the service into S3), and a PUT to that URL whose body
//! outlives its upload keeps nothing (on Garage and on the local store); NUL in tags and
//! cursors is a 400.

use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};
use storage_domain::{
    ErrorCode,
    model::{BucketKind, ObjectKey},
    ports::BlobError,
};
use storage_server::app::{Adapters, storage_service};
use storage_test_support::{
    s3::{multipart_uploads, object_keys},
    timing,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::mpsc,
    task::JoinHandle,
};

use storage_local_fs::UrlSigner;

use crate::support::{
    App, As, MAX_UPLOAD, OPEN_RESERVATIONS, Objects, Options, Resp, count, eventually, numbers,
    put_presigned, sha256_hex,
};

/// A proxy upload whose file the test feeds: each `send` is a chunk, dropping the sender ends
/// the file (and the body). The answer comes from the task.
fn fed_upload(app: &App, user: &str, path: &str) -> (mpsc::Sender<Bytes>, JoinHandle<Resp>) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_of(rx).map(Ok::<_, std::io::Error>));
    let form = multipart::Form::new()
        .text("bucket", "users")
        .text("path", path.to_owned())
        .part("file", multipart::Part::stream(body).file_name("f.bin"));
    let request = app
        .client
        .post(format!("{}/upload/proxy", app.base))
        .bearer_auth(app.token(user))
        .multipart(form);
    let task = tokio::spawn(async move {
        let resp = request.send().await.expect("upload sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    });
    (tx, task)
}

fn tokio_stream_of(mut rx: mpsc::Receiver<Bytes>) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A refusal past a cap: 429 `too_many_requests` with `Retry-After` in whole seconds.
#[track_caller]
fn assert_too_many(resp: Resp, retry_after: &str) -> Value {
    assert_eq!(
        resp.header("retry-after").as_deref(),
        Some(retry_after),
        "{:?}",
        resp.headers
    );
    resp.err(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests)
}

#[tokio::test]
async fn caps_reached_answer_429_with_retry_after_then_the_service_resumes() {
    let app = App::start_with(
        Options::default()
            .var("MAX_UPLOAD_BYTES", 48 * 1024 * 1024)
            .var("MAX_CONCURRENT_UPLOADS", 2)
            .var("MAX_CONCURRENT_UPLOADS_PER_USER", 1)
            .var("MAX_CONCURRENT_DOWNLOADS_PER_USER", 1)
            .var("TRANSFER_RETRY_AFTER_SECONDS", 3),
    )
    .await;
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);

    // Alice's upload is running: her second one is refused before its body is read.
    let (alice_tx, alice_up) = fed_upload(&app, "alice", "/users/alice/first.bin");
    alice_tx.send(chunk.clone()).await.expect("feed");
    eventually("alice's upload holds a reservation", || async {
        count(&app, OPEN_RESERVATIONS).await == 1
    })
    .await;
    let refused = app
        .user("alice")
        .upload("/users/alice/second.bin", "x")
        .await;
    let body = assert_too_many(refused, "3");
    assert!(
        body["detail"].as_str().unwrap().contains("one user"),
        "{body}"
    );

    // Bob's runs beside it; with two running the instance is full, for Carol too.
    let (bob_tx, bob_up) = fed_upload(&app, "bob", "/users/bob/first.bin");
    bob_tx.send(chunk.clone()).await.expect("feed");
    eventually("bob's upload holds a reservation", || async {
        count(&app, OPEN_RESERVATIONS).await == 2
    })
    .await;
    let refused = app.user("carol").upload("/users/carol/a.bin", "x").await;
    let body = assert_too_many(refused, "3");
    assert!(
        body["detail"].as_str().unwrap().contains("this instance"),
        "{body}"
    );

    // Both finish; the refused ones left nothing; the service takes uploads again.
    for (tx, task, size) in [(alice_tx, alice_up, 2), (bob_tx, bob_up, 1)] {
        for _ in 1..size {
            tx.send(chunk.clone()).await.expect("feed");
        }
        drop(tx);
        let done = task.await.expect("task").ok();
        assert_eq!(done["version"]["size"], size * chunk.len(), "{done}");
    }
    assert_eq!(count(&app, "SELECT 1 FROM files").await, 2);
    assert_eq!(count(&app, OPEN_RESERVATIONS).await, 0);
    app.user("alice")
        .upload("/users/alice/second.bin", "x")
        .await
        .ok();
    app.user("carol")
        .upload("/users/carol/a.bin", "x")
        .await
        .ok();

    // Downloads: one of Alice's streams (her client reads no further than the first chunk);
    // a second is refused until the first is gone.
    let big = vec![9u8; 32 * 1024 * 1024];
    app.user("alice")
        .upload("/users/alice/big.bin", big)
        .await
        .ok();
    let first = app
        .client
        .get(format!("{}/download/proxy", app.base))
        .query(&[("bucket", "users"), ("path", "/users/alice/big.bin")])
        .bearer_auth(app.token("alice"))
        .send()
        .await
        .expect("download");
    assert_eq!(first.status(), StatusCode::OK);
    let mut stream = first.bytes_stream();
    assert!(stream.next().await.expect("a first chunk").is_ok());
    let refused = app
        .user("alice")
        .download("/users/alice/big.bin", "latest")
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after").as_deref(), Some("3"));
    assert_too_many(refused.json(), "3");
    drop(stream);
    eventually(
        "a download is served again once the first is gone",
        || async {
            app.user("alice")
                .download("/users/alice/big.bin", "latest")
                .await
                .status
                == StatusCode::OK
        },
    )
    .await;
}

/// The multipart preamble of a proxy upload of `path` up to the file's first byte.
fn preamble(path: &str) -> Vec<u8> {
    let b = "stallboundary";
    format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"bucket\"\r\n\r\nusers\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n{path}\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes()
}

/// Reads one HTTP answer: its head, then as many body bytes as its `Content-Length` says (the
/// server keeps the connection a moment after answering a request whose body it did not read).
async fn read_answer(socket: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if body.len() >= length {
                return got;
            }
        }
        if n == 0 {
            return got;
        }
    }
}

#[tokio::test]
async fn a_stalled_body_is_cut_after_the_idle_timeout_and_leaves_nothing() {
    const IDLE: Duration = Duration::from_secs(1);
    let app = App::start_with(
        Options::default()
            .var("MAX_UPLOAD_BYTES", 64 * 1024 * 1024)
            .var("BODY_IDLE_TIMEOUT_SECONDS", IDLE.as_secs())
            .var("TRANSFER_LEASE_SECONDS", 1),
    )
    .await;
    // An owner of its own: its keys in the shared Garage are this test's only.
    let user = format!("stall{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let path = format!("/users/{user}/stalled.bin");
    let head = format!(
        "POST /upload/proxy HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=stallboundary\r\n\
         Content-Length: {}\r\n\r\n",
        app.token(&user),
        32 * 1024 * 1024
    );
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&preamble(&path)).await.expect("preamble");
    // More than one 5 MiB part: once the multipart upload in the store has begun, the service
    // has read a whole part and reads on; the last bytes sent then, it waits on the client.
    let mib = vec![3u8; 1024 * 1024];
    for _ in 0..9 {
        socket.write_all(&mib).await.expect("body");
    }
    let s3 = storage_test_support::s3::s3_config_from_env();
    let prefix = format!("{user}/");
    eventually("the multipart upload began", || async {
        !multipart_uploads(&s3, BucketKind::Users, &prefix)
            .await
            .is_empty()
    })
    .await;
    socket.write_all(b"last bytes").await.expect("body");
    socket.flush().await.expect("flush");
    let stalled = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(30), read_answer(&mut socket))
        .await
        .expect("an answer within 30 s");
    let took = stalled.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\"invalid_request\""), "{text}");
    assert!(text.contains("sent nothing for 1 s"), "{text}");
    timing::assert_timed_out("a stalled upload body", took, IDLE);

    // Nothing in the database: no file, no version, no open reservation.
    assert_eq!(count(&app, "SELECT 1 FROM files").await, 0);
    assert_eq!(count(&app, "SELECT 1 FROM versions").await, 0);
    assert_eq!(count(&app, OPEN_RESERVATIONS).await, 0);
    // Nothing in the store: no object, no unfinished multipart upload.
    assert!(
        object_keys(&s3, BucketKind::Users, &prefix)
            .await
            .is_empty()
    );
    assert!(
        multipart_uploads(&s3, BucketKind::Users, &prefix)
            .await
            .is_empty()
    );
    // The key given up is queued once more, deferred by the transfer lease (1 s here) in case
    // the store finishes a write late: one janitor pass after that leaves the queue empty.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.run_janitor().await;
    assert_eq!(count(&app, "SELECT 1 FROM pending_deletions").await, 0);
    assert!(
        object_keys(&s3, BucketKind::Users, &prefix)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn an_upload_url_never_stores_more_than_announced() {
    let app = App::start().await;
    let objects = Objects::connect().await;
    let alice = app.user("alice");
    let path = "/users/alice/bounded.bin";

    let presigned = alice
        .presign_upload(
            path,
            json!({"content_type": "application/octet-stream", "size": 10}),
        )
        .await
        .ok();
    let url = presigned["url"].as_str().unwrap().to_owned();
    let staging = Objects::key_of_url(&url);
    let upload_id = presigned["upload_id"].as_str().unwrap().to_owned();
    for len in [11usize, 4096] {
        // Announced honestly: the signed length does not match.
        // (The store may answer, and hang up, before the body is sent: refused too.)
        let status = app
            .client
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .body(vec![1u8; len])
            .send()
            .await
            .map(|r| r.status());
        assert!(
            status.as_ref().map_or(true, StatusCode::is_client_error),
            "{len} bytes: {status:?}"
        );
        // Sent without a length (chunked).
        let chunks = futures_util::stream::iter(
            (0..len).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"z"))),
        );
        let status = app
            .client
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map(|r| r.status());
        assert!(
            status.as_ref().map_or(true, StatusCode::is_client_error),
            "{len} bytes chunked: {status:?}"
        );
        assert!(!objects.exists(&staging).await, "nothing staged");
        alice
            .complete(&upload_id)
            .await
            .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
        alice
            .versions(path)
            .await
            .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    }
    // The announced size goes through, and only that becomes the version.
    assert_eq!(
        put_presigned(&app, &presigned, vec![5u8; 10]).await,
        StatusCode::OK
    );
    let done = alice.complete(&upload_id).await.ok();
    assert_eq!(done["version"]["size"], 10);
}

/// A PUT to a URL of the service's own, with `headers`, answered in the contract's JSON (an
/// error) or with an empty 200. `None` when the service hung up before the answer was read
/// (it may refuse, and close, before the whole body is sent).
async fn put_to_service(
    app: &App,
    url: &str,
    headers: &[(&str, String)],
    body: reqwest::Body,
) -> Option<Resp> {
    put_with(&app.client, url, headers, body).await
}

/// [`put_to_service`] with `client` (for a task of its own).
async fn put_with(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: reqwest::Body,
) -> Option<Resp> {
    let mut builder = client.put(url);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let resp = builder.body(body).send().await.ok()?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.ok()?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// A presign of `path` (in `users`) without a size: the answer, its URL, its upload id, and
/// the staging key the URL names (`{base}/blob/users/<key>?…`).
async fn presign_without_size(
    user: &As<'_>,
    path: &str,
    content_type: &str,
) -> (Value, String, String, (BucketKind, ObjectKey)) {
    let presigned = user
        .presign_upload(path, json!({"content_type": content_type}))
        .await
        .ok();
    let url = presigned["url"].as_str().expect("url").to_owned();
    let upload_id = presigned["upload_id"]
        .as_str()
        .expect("upload_id")
        .to_owned();
    let key = url
        .split_once("/blob/users/")
        .and_then(|(_, rest)| rest.split('?').next())
        .expect("a /blob/users/ URL");
    let staging = (BucketKind::Users, ObjectKey::from_stored(key));
    (presigned, url, upload_id, staging)
}

fn chunked(len: usize, byte: u8) -> reqwest::Body {
    let chunks = (0..len.div_ceil(1000)).map(move |i| {
        let n = 1000.min(len - i * 1000);
        Ok::<_, std::io::Error>(Bytes::from(vec![byte; n]))
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsized_presign_on_s3_gets_a_service_url_bounded_by_the_upload_limit() {
    // The URLs' key derived from MINIO_SECRET_KEY (no LOCAL_PRESIGN_SECRET).
    let app = App::start().await;
    let objects = Objects::connect().await;
    let alice = app.user("alice");
    let path = "/users/alice/unsized.bin";
    let (presigned, url, upload_id, staging) =
        presign_without_size(&alice, path, "application/octet-stream").await;
    assert!(
        url.starts_with(&format!("{}/blob/users/~staging/alice/", app.base)),
        "a URL to the service itself: {url}"
    );
    assert_eq!(
        presigned["headers"],
        json!({"Content-Type": "application/octet-stream"}),
        "no length signed"
    );
    assert_eq!(presigned["max_bytes"], MAX_UPLOAD);
    let content_type = || vec![("Content-Type", "application/octet-stream".to_owned())];

    // Over MAX_UPLOAD_BYTES: announced, refused before a byte is read; chunked, cut as soon as
    // the limit is crossed. Nothing staged, nothing to complete, no version.
    let mut announced = content_type();
    announced.push(("Content-Length", (MAX_UPLOAD + 1).to_string()));
    let refused = put_to_service(
        &app,
        &url,
        &announced,
        reqwest::Body::from(vec![1u8; usize::try_from(MAX_UPLOAD).unwrap() + 1]),
    )
    .await;
    if let Some(refused) = refused {
        refused.err(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge);
    }
    let oversize = usize::try_from(MAX_UPLOAD).unwrap() + 1;
    if let Some(refused) = put_to_service(&app, &url, &content_type(), chunked(oversize, 2)).await {
        refused.err(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge);
    }
    assert!(!objects.exists(&staging).await, "nothing staged");
    assert!(
        multipart_uploads(
            &storage_test_support::s3::s3_config_from_env(),
            BucketKind::Users,
            staging.1.as_str()
        )
        .await
        .is_empty(),
        "no unfinished multipart upload"
    );
    alice
        .complete(&upload_id)
        .await
        .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    alice
        .versions(path)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);

    // Any length up to the limit, sent without announcing it: staged, then completed.
    let bytes: Vec<u8> = (0..MAX_UPLOAD).map(|i| (i % 251) as u8).collect();
    let stream = futures_util::stream::iter(
        bytes
            .chunks(7000)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let put = put_to_service(
        &app,
        &url,
        &content_type(),
        reqwest::Body::wrap_stream(stream),
    )
    .await
    .expect("an answer");
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(objects.bytes(&staging).await, bytes, "staged in S3");
    // One PUT per upload: a second one before completion is refused and changes nothing.
    put_to_service(&app, &url, &content_type(), chunked(10, 9))
        .await
        .expect("an answer")
        .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    let done = alice.complete(&upload_id).await.ok();
    assert_eq!(done["version"]["size"], MAX_UPLOAD);
    assert_eq!(done["version"]["sha256"], sha256_hex(&bytes));
    assert_eq!(alice.download(path, "latest").await.bytes, bytes);

    // The used URL writes nothing any more, not even into staging.
    let after = put_to_service(&app, &url, &content_type(), chunked(10, 3))
        .await
        .expect("an answer")
        .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    assert!(
        after["detail"].as_str().unwrap().contains("completed"),
        "{after}"
    );
    assert!(!objects.exists(&staging).await);
    assert_eq!(numbers(&alice.versions(path).await.ok()), [1]);
}

#[tokio::test]
async fn a_forged_or_expired_service_upload_url_is_refused() {
    const KEY: &str = "e2e-upload-url-secret-0123456789abcdef";
    let app = App::start_with(Options::default().var("LOCAL_PRESIGN_SECRET", KEY)).await;
    let objects = Objects::connect().await;
    let alice = app.user("alice");
    let path = "/users/alice/forged.bin";
    let (_, url, upload_id, staging) = presign_without_size(&alice, path, "text/plain").await;
    let headers = [("Content-Type", "text/plain".to_owned())];
    let ttl = Duration::from_secs(900);
    let sign = |secret: &[u8], now: chrono::DateTime<chrono::Utc>| {
        UrlSigner::new(secret, &app.base, ttl)
            .unwrap()
            .sign_put(BucketKind::Users, &staging.1, "text/plain", None, ttl, now)
            .url
    };
    let mut flipped = url.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    let expired = sign(
        KEY.as_bytes(),
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    let other_key = sign(&[7u8; 32], chrono::Utc::now());
    let longer = url.replace("method=PUT&expires=", "method=PUT&expires=9");
    for forged in [flipped, expired, other_key, longer] {
        let refused = put_to_service(&app, &forged, &headers, chunked(5, 1))
            .await
            .expect("an answer")
            .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
        assert!(!objects.exists(&staging).await, "{forged}: {refused}");
    }
    // Another content type than the one signed.
    put_to_service(
        &app,
        &url,
        &[("Content-Type", "text/html".to_owned())],
        chunked(5, 1),
    )
    .await
    .expect("an answer")
    .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    // A GET through an upload URL's route is no download.
    let get = app.client.get(&url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::FORBIDDEN);
    // A URL signed now with the service's key is served (the refusals above were for their
    // defect alone).
    let fresh = sign(KEY.as_bytes(), chrono::Utc::now());
    let put = put_to_service(&app, &fresh, &headers, chunked(5, 1))
        .await
        .expect("an answer");
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let done = alice.complete(&upload_id).await.ok();
    assert_eq!(done["version"]["sha256"], sha256_hex(&[1u8; 5]));
}

/// A PUT to the service's own upload URL whose body outlives its upload: it starts while the
/// reservation is open (`PRESIGN_TTL_SECONDS=2`, `UPLOAD_GRACE_SECONDS=1`: open for 3 s), then
/// stalls past the reservation's expiry while a janitor pass reclaims it, then ends. The
/// object it stored would be tracked by nothing: the PUT is refused and nothing is left, on
/// the store the app runs on (checked through the app's own blob store adapter).
async fn a_put_outliving_its_upload_leaves_nothing(app: &App) {
    let adapters = Adapters::connect(&app.config, &app.base)
        .await
        .expect("the adapters");
    let service = storage_service(&adapters, &app.config);
    let exists = |staging: &(BucketKind, ObjectKey)| {
        let blobs = adapters.blobs.clone();
        let (bucket, key) = staging.clone();
        async move {
            match blobs.head(bucket, &key).await {
                Ok(_) => true,
                Err(BlobError::NotFound) => false,
                Err(e) => panic!("head {key}: {e}"),
            }
        }
    };
    let alice = app.user("alice");
    let path = "/users/alice/late.bin";
    let presigned_at = Instant::now();
    let (_, url, upload_id, staging) =
        presign_without_size(&alice, path, "application/octet-stream").await;
    assert!(url.starts_with(&format!("{}/blob/", app.base)), "{url}");

    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_of(rx).map(Ok::<_, std::io::Error>));
    let put = {
        let client = app.client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            put_with(
                &client,
                &url,
                &[("Content-Type", "application/octet-stream".to_owned())],
                body,
            )
            .await
        })
    };
    tx.send(Bytes::from(vec![1u8; 1000]))
        .await
        .expect("the body's first bytes");
    // The reservation expires 3 s after the presign; the janitor reclaims it (and deletes
    // whatever was staged by then: nothing yet).
    tokio::time::sleep(Duration::from_millis(3_500).saturating_sub(presigned_at.elapsed())).await;
    let pass = service.run_janitor_once().await.expect("a janitor pass");
    assert_eq!(pass.reservations_expired, 1, "{pass:?}");
    assert!(!put.is_finished(), "the PUT is still sending its body");
    tx.send(Bytes::from(vec![2u8; 1000]))
        .await
        .expect("the body's last bytes");
    drop(tx);

    let answer = put.await.expect("the PUT's task").expect("an answer");
    let refused = answer.err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("nothing was kept")),
        "{refused}"
    );
    assert!(!exists(&staging).await, "the late object was removed");
    // Nothing left for a later pass either, and nothing to complete.
    let pass = service.run_janitor_once().await.expect("a janitor pass");
    assert_eq!(pass.deletions_failed, 0, "{pass:?}");
    assert!(!exists(&staging).await);
    alice
        .complete(&upload_id)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::UploadNotFound);
}

fn short_reservations() -> Options {
    Options::default()
        .var("PRESIGN_TTL_SECONDS", 2)
        .var("UPLOAD_GRACE_SECONDS", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_url_put_outliving_its_upload_leaves_nothing_on_s3() {
    let app = App::start_with(short_reservations()).await;
    a_put_outliving_its_upload_leaves_nothing(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_url_put_outliving_its_upload_leaves_nothing_on_the_local_store() {
    let data = tempfile::tempdir().expect("temp dir");
    let app = App::start_with(short_reservations().local_store(data.path())).await;
    a_put_outliving_its_upload_leaves_nothing(&app).await;
}

/// `kind:position` as the service encodes cursors.
fn cursor(kind: &str, position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

#[tokio::test]
async fn nul_and_control_characters_in_tags_and_cursors_are_refused() {
    let app = App::start().await;
    let alice = app.user("alice");
    alice.upload("/users/alice/t.txt", "text").await.ok();
    for tags in [
        json!({"k": "\u{0}"}),
        json!({"k\u{0}": "v"}),
        json!({"k": {"deep": ["a\u{0}b"]}}),
        json!({"k": "esc\u{1b}"}),
    ] {
        alice
            .set_tags("/users/alice/t.txt", tags)
            .await
            .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    }
    for (route, kind) in [
        ("/list", "list"),
        ("/locks", "locks"),
        ("/reviews", "reviews"),
    ] {
        for position in ["a\u{0}b", "/users/alice/a\u{0}", "\u{7f}"] {
            alice
                .get(
                    route,
                    &[
                        ("bucket", "users"),
                        ("path", "/users/alice/"),
                        ("cursor", &cursor(kind, position)),
                    ],
                )
                .await
                .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
        }
    }
    // The file is as it was.
    let meta = alice.metadata("/users/alice/t.txt").await.ok();
    assert_eq!(meta["file"]["tags"], json!({}));
}

/// Downloads read from the store in 64 KiB segments, three in flight: the same bytes
/// (sha256), headers and ranges as one GET gives, for the whole file and for ranges across
/// segment bounds; an unsatisfiable range is still a 416.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_read_in_segments_are_whole_and_ranged() {
    let segment: usize = 64 * 1024;
    let segmented = App::start_with(
        Options::default()
            .var("DOWNLOAD_SEGMENT_BYTES", segment)
            .var("DOWNLOAD_PARALLEL_SEGMENTS", 3)
            .var("DOWNLOAD_READ_AHEAD_BYTES", 4 * segment)
            .var("MAX_UPLOAD_BYTES", 32 * segment),
    )
    .await;
    let alice = segmented.user("alice");
    let path = "/users/alice/segments/big.bin";
    let bytes: Vec<u8> = (0..16 * segment + 321)
        .map(|i| u8::try_from((i * 7 + i / 251) % 256).unwrap_or(0))
        .collect();
    let size = bytes.len();
    alice.upload(path, bytes.clone()).await.ok();

    let whole = alice.download(path, "latest").await;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.header("content-length"), Some(size.to_string()));
    assert_eq!(sha256_hex(&whole.bytes), sha256_hex(&bytes), "whole file");
    let etag = whole.header("etag").expect("an ETag");

    for (range, first, last) in [
        (format!("bytes=1-{}", 3 * segment), 1, 3 * segment),
        (
            format!("bytes={}-{}", segment - 1, segment),
            segment - 1,
            segment,
        ),
        (format!("bytes={}-", segment + 5), segment + 5, size - 1),
        (
            format!("bytes=-{}", 2 * segment + 1),
            size - 2 * segment - 1,
            size - 1,
        ),
        (
            format!("bytes={}-{}", 5 * segment, size + 1000),
            5 * segment,
            size - 1,
        ),
    ] {
        let part = alice
            .download_with(path, "latest", &[("Range", &range)])
            .await;
        assert_eq!(part.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {first}-{last}/{size}")),
            "{range}"
        );
        assert_eq!(
            part.header("content-length"),
            Some((last + 1 - first).to_string()),
            "{range}"
        );
        assert_eq!(
            part.header("etag").as_deref(),
            Some(etag.as_str()),
            "{range}"
        );
        assert_eq!(
            sha256_hex(&part.bytes),
            sha256_hex(&bytes[first..=last]),
            "{range}: bytes"
        );
    }
    let beyond = alice
        .download_with(path, "latest", &[("Range", &format!("bytes={size}-"))])
        .await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{size}"))
    );
}
