//! Every error code of the contract (spec §3) reached through real HTTP, with its status and
//! body; the refused requests change nothing. The three fault codes need a broken dependency:
//! an object store behind a proxy that is cut, a database that stops taking connections, an
//! object lost behind the service's back.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use storage_domain::ErrorCode;
use storage_jwt_auth::{JwtSigner, SignerConfig};
use storage_test_support::{project_standin::Mode, timing};

use crate::support::{
    App, As, MAX_UPLOAD, OPEN_RESERVATIONS, Objects, Options, Proxy, Upload, changes_only, count,
    denials, eventually, garage_addr, id_of, numbers,
};

/// The codes only a broken dependency answers; each has a test of its own below.
const FAULTS: [ErrorCode; 3] = [
    ErrorCode::MinioUnreachable,
    ErrorCode::DatabaseUnavailable,
    ErrorCode::InternalError,
];

/// What the refused requests of the table could have touched.
async fn snapshot(alice: &As<'_>) -> Value {
    let mut state = serde_json::Map::new();
    for path in [
        "/users/alice/doc.txt",
        "/projects/p/locked.txt",
        "/projects/p/review.txt",
    ] {
        state.insert(format!("versions {path}"), alice.versions(path).await.ok());
    }
    for dir in ["/users/alice/", "/projects/p/"] {
        state.insert(format!("list {dir}"), alice.list(dir).await.ok());
        state.insert(
            format!("audit {dir}"),
            changes_only(alice.audit(dir).await.ok()),
        );
        state.insert(format!("locks {dir}"), alice.locks(dir).await.ok());
    }
    Value::Object(state)
}

/// Every request-level code, in the contract's order, through HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_error_code() {
    let app = App::start().await;
    app.allow("alice", "p", &["read", "write", "lock"]);
    app.allow("bob", "p", &["read", "write", "lock", "validate"]);
    let alice = app.user("alice");
    let bob = app.user("bob");
    let doc = "/users/alice/doc.txt";
    alice.upload(doc, b"doc".to_vec()).await.ok();
    alice
        .upload("/projects/p/locked.txt", b"l".to_vec())
        .await
        .ok();
    bob.lock("/projects/p/locked.txt").await.ok();
    let review = id_of(
        &alice
            .upload("/projects/p/review.txt", b"r".to_vec())
            .await
            .ok(),
    );
    alice.submit(&review).await.ok();
    bob.approve(&review, None).await.ok();
    let before = snapshot(&alice).await;

    let mut reached = BTreeSet::new();
    macro_rules! expect {
        ($resp:expr, $status:ident, $code:ident) => {{
            let body = $resp.err(StatusCode::$status, ErrorCode::$code);
            reached.insert(ErrorCode::$code.as_str());
            body
        }};
    }

    // missing_jwt_token: no cookie, no bearer; also an empty bearer.
    expect!(
        app.anonymous().metadata(doc).await,
        UNAUTHORIZED,
        MissingJwtToken
    );
    expect!(
        app.anonymous().upload(doc, b"x".to_vec()).await,
        UNAUTHORIZED,
        MissingJwtToken
    );

    // unauthorized: garbage, another key, expired.
    let other_key = JwtSigner::new(&SignerConfig::hs256("another-secret-0123456789abcdef0123"))
        .unwrap()
        .mint_token("alice", None, Duration::from_secs(600))
        .unwrap();
    let expired = JwtSigner::new(&SignerConfig::hs256(crate::support::SECRET))
        .unwrap()
        .sign(&json!({"sub": "alice", "exp": chrono::Utc::now().timestamp() - 3600}))
        .unwrap();
    for token in ["not-a-jwt".to_owned(), other_key, expired] {
        expect!(
            app.with_token(Some(token.clone())).metadata(doc).await,
            UNAUTHORIZED,
            Unauthorized
        );
        expect!(
            app.with_token(Some(token)).by_cookie().delete(doc).await,
            UNAUTHORIZED,
            Unauthorized
        );
    }

    // access_denied: another user's space; a project the stand-in denies.
    expect!(bob.metadata(doc).await, FORBIDDEN, AccessDenied);
    expect!(
        app.user("carol").list("/projects/p/").await,
        FORBIDDEN,
        AccessDenied
    );
    expect!(alice.approve(&review, None).await, FORBIDDEN, AccessDenied);

    // project_service_unavailable: 500, slow (over PROJECT_SERVICE_TIMEOUT_MS), garbage, hang-up.
    for mode in [
        Mode::Status500,
        Mode::Slow(Duration::from_millis(1500)),
        Mode::Garbage,
        Mode::Close,
    ] {
        app.standin.set_mode(mode);
        expect!(
            alice.metadata("/projects/p/locked.txt").await,
            FORBIDDEN,
            ProjectServiceUnavailable
        );
        expect!(
            alice.upload("/projects/p/new.txt", b"n".to_vec()).await,
            FORBIDDEN,
            ProjectServiceUnavailable
        );
    }
    app.standin.set_mode(Mode::Normal);

    // invalid_path: bucket and path disagree, dot segments, empty segments, no file name.
    expect!(
        alice
            .get(
                "/metadata",
                &[("bucket", "users"), ("path", "/companies/alice/doc.txt")]
            )
            .await,
        BAD_REQUEST,
        InvalidPath
    );
    for bad in [
        "/users/alice/../bob/doc.txt",
        "/users/alice//doc.txt",
        "/users/alice/",
        "/users/al ice/doc.txt",
        "users/alice/doc.txt",
    ] {
        expect!(
            alice
                .get("/metadata", &[("bucket", "users"), ("path", bad)])
                .await,
            BAD_REQUEST,
            InvalidPath
        );
    }
    expect!(
        alice
            .upload_with(Upload {
                bucket: Some("users".into()),
                ..Upload::new("/users/alice/a\\b.txt", b"x".to_vec())
            })
            .await,
        BAD_REQUEST,
        InvalidPath
    );

    // invalid_request: malformed JSON, missing fields, bad limit, bad id, no reject comment,
    // unknown route, wrong method.
    expect!(
        alice
            .post_raw("/lock", "application/json", "{\"bucket\":")
            .await,
        BAD_REQUEST,
        InvalidRequest
    );
    expect!(
        alice.post("/lock", json!({"bucket": "users"})).await,
        BAD_REQUEST,
        InvalidRequest
    );
    expect!(
        alice
            .get(
                "/list",
                &[
                    ("bucket", "users"),
                    ("path", "/users/alice/"),
                    ("limit", "0")
                ]
            )
            .await,
        BAD_REQUEST,
        InvalidRequest
    );
    expect!(
        alice.approve("not-a-uuid", None).await,
        BAD_REQUEST,
        InvalidRequest
    );
    expect!(bob.reject(&review, None).await, BAD_REQUEST, InvalidRequest);
    expect!(
        alice
            .post(
                "/lock",
                json!({"bucket": "users", "path": doc, "ttl_seconds": 0})
            )
            .await,
        BAD_REQUEST,
        InvalidRequest
    );
    let resp = alice.get("/no/such/endpoint", &[]).await;
    expect!(resp, NOT_FOUND, InvalidRequest);
    let resp = alice.post("/list", json!({})).await;
    assert_eq!(resp.header("allow").as_deref(), Some("GET"));
    expect!(resp, METHOD_NOT_ALLOWED, InvalidRequest);

    // bucket_not_found.
    expect!(
        alice
            .get(
                "/metadata",
                &[("bucket", "archives"), ("path", "/archives/alice/doc.txt")]
            )
            .await,
        NOT_FOUND,
        BucketNotFound
    );

    // file_not_found, version_not_found, upload_not_found.
    expect!(
        alice.metadata("/users/alice/missing.txt").await,
        NOT_FOUND,
        FileNotFound
    );
    expect!(
        alice.lock("/users/alice/missing.txt").await,
        NOT_FOUND,
        FileNotFound
    );
    expect!(
        alice.download(doc, "9").await.json(),
        NOT_FOUND,
        VersionNotFound
    );
    expect!(
        alice.download(doc, "validated").await.json(),
        NOT_FOUND,
        VersionNotFound
    );
    let unknown = uuid_like();
    expect!(
        alice.approve(&unknown, None).await,
        NOT_FOUND,
        VersionNotFound
    );
    expect!(alice.complete(&unknown).await, NOT_FOUND, UploadNotFound);
    // Someone else's reservation is not found either.
    let bobs = bob
        .presign_upload(
            "/users/bob/x.txt",
            json!({"content_type": "text/plain", "size": 1}),
        )
        .await
        .ok();
    expect!(
        alice.complete(bobs["upload_id"].as_str().unwrap()).await,
        NOT_FOUND,
        UploadNotFound
    );

    // file_locked, with the lock.
    let body = expect!(
        alice.lock("/projects/p/locked.txt").await,
        CONFLICT,
        FileLocked
    );
    assert_eq!(body["lock"]["holder"], "bob");
    assert_eq!(body["lock"]["base_version"], 1);
    assert!(body["lock"]["expires_at"].is_string());

    // version_conflict: 409 for a copy onto an existing file, 412 for a failed If-Match.
    let body = expect!(
        alice.copy("/projects/p/review.txt", doc).await,
        CONFLICT,
        VersionConflict
    );
    assert_eq!(body["current_version"], 1);
    let body = expect!(
        alice
            .upload_with(Upload {
                if_match: Some("7".into()),
                ..Upload::new(doc, b"x".to_vec())
            })
            .await,
        PRECONDITION_FAILED,
        VersionConflict
    );
    assert_eq!(body["current_version"], 1);

    // invalid_transition: approve a validated version; submit it again.
    expect!(
        bob.approve(&review, None).await,
        CONFLICT,
        InvalidTransition
    );
    expect!(alice.submit(&review).await, CONFLICT, InvalidTransition);

    // payload_too_large: a proxy upload one byte over, an announced presign size, a JSON body.
    expect!(
        alice
            .upload(
                "/users/alice/big.bin",
                vec![7u8; usize::try_from(MAX_UPLOAD).unwrap() + 1]
            )
            .await,
        PAYLOAD_TOO_LARGE,
        PayloadTooLarge
    );
    expect!(
        alice
            .presign_upload("/users/alice/big.bin", json!({"size": MAX_UPLOAD + 1}))
            .await,
        PAYLOAD_TOO_LARGE,
        PayloadTooLarge
    );
    expect!(
        alice
            .post(
                "/lock",
                json!({"bucket": "users", "path": doc, "pad": "x".repeat(70_000)})
            )
            .await,
        PAYLOAD_TOO_LARGE,
        PayloadTooLarge
    );
    // Exactly the limit is accepted.
    let body = alice
        .upload(
            "/users/alice/limit.bin",
            vec![7u8; usize::try_from(MAX_UPLOAD).unwrap()],
        )
        .await
        .ok();
    assert_eq!(body["version"]["size"], MAX_UPLOAD);
    alice.delete("/users/alice/limit.bin").await.ok();

    // Past a cap of this instance: too_many_requests, with Retry-After, before any byte. Carol's
    // first upload stays open (its body is never finished), so her next ones are refused once
    // the first is running.
    let capped =
        App::start_with(Options::default().var("MAX_CONCURRENT_UPLOADS_PER_USER", 1)).await;
    let boundary = "capboundary";
    let preamble = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"bucket\"\r\n\r\nusers\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n\
         /users/carol/open.bin\r\n--{boundary}\r\nContent-Disposition: form-data; \
         name=\"file\"; filename=\"o.bin\"\r\n\r\nstarted"
    );
    let head = format!(
        "POST /upload/proxy HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000\r\n\r\n",
        capped.token("carol")
    );
    let mut open = tokio::net::TcpStream::connect(capped.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut open, format!("{head}{preamble}").as_bytes())
        .await
        .expect("the open upload");
    eventually("carol's open upload is running", || async {
        count(&capped, OPEN_RESERVATIONS).await == 1
    })
    .await;
    let refused = capped
        .user("carol")
        .upload("/users/carol/next.bin", b"n".to_vec())
        .await;
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    expect!(refused, TOO_MANY_REQUESTS, TooManyRequests);
    drop(open);

    // Every code but the faults was reached, and the faults are all the rest.
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let faults: BTreeSet<&str> = FAULTS.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        reached,
        all.difference(&faults).copied().collect::<BTreeSet<_>>()
    );

    // None of the refused requests changed anything (the accepted limit upload was deleted,
    // and its trail is the only difference in the audit of alice's space).
    let mut after = snapshot(&alice).await;
    let trail = after["audit /users/alice/"]["events"]
        .as_array_mut()
        .unwrap();
    let extra: Vec<Value> = trail.drain(..2).collect();
    assert_eq!(
        extra
            .iter()
            .map(|e| e["action"].clone())
            .collect::<Vec<_>>(),
        [json!("delete"), json!("upload")]
    );
    assert!(extra.iter().all(|e| e["path"] == "/users/alice/limit.bin"));
    assert_eq!(after, before);
    // The refused changes were recorded, as `denied`, with the refusal's sentence.
    let refused = denials(&alice.audit("/projects/p/").await.ok());
    assert!(
        refused.iter().any(|e| e["action"] == "approve"
            && e["actor"] == "alice"
            && e["detail"].as_str().is_some_and(|d| d.contains("validate"))),
        "{refused:?}"
    );
    alice
        .metadata("/users/alice/big.bin")
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
}

/// How fast a request is answered during an outage of the database or the object store, with
/// the default settings (docs/operations.md, "Outages"); checked within this plus
/// `timing::MARGIN`.
const OUTAGE_BOUND: Duration = Duration::from_secs(2);

/// The answer of `request` and how long it took.
async fn timed<T>(request: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let answer = request.await;
    (answer, started.elapsed())
}

fn uuid_like() -> String {
    "0190a0a0-0000-7000-8000-000000000000".to_owned()
}

/// `minio_unreachable`: the object store goes away (the proxy in front of Garage is cut)
/// after start-up, with the default settings. Reads of metadata still work; transfers answer
/// 503 within the outage bound; nothing is half-done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_outage_is_minio_unreachable() {
    let proxy = Proxy::start(garage_addr()).await;
    let app = App::start_on_store(Options::default(), &proxy.url()).await;
    let alice = app.user("alice");
    let path = "/users/alice/report.txt";
    alice.upload(path, b"q1".to_vec()).await.ok();
    proxy.cut().await;

    let (download, took) = timed(alice.download(path, "latest")).await;
    download
        .json()
        .err(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::MinioUnreachable);
    timing::assert_within("download", took, OUTAGE_BOUND);
    let (upload, took) = timed(alice.upload(path, b"q2".to_vec())).await;
    upload.err(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::MinioUnreachable);
    timing::assert_within("upload", took, OUTAGE_BOUND);
    let (copy, took) = timed(alice.copy(path, "/users/alice/copy.txt")).await;
    copy.err(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::MinioUnreachable);
    timing::assert_within("copy", took, OUTAGE_BOUND);
    let signed = alice
        .presign_upload("/users/alice/direct.txt", json!({"size": 1}))
        .await
        .ok(); // signing needs no network; the object store is only needed to complete
    assert!(
        signed["url"].as_str().is_some_and(|u| !u.is_empty()),
        "{signed}"
    );
    let (resp, took) = timed(app.anonymous().get("/health", &[])).await;
    assert_eq!(resp.body["database"], "ok");
    assert_eq!(resp.body["object_store"], "unavailable");
    resp.err(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::MinioUnreachable);
    timing::assert_within("health", took, OUTAGE_BOUND);

    // Nothing was recorded by the failed writes.
    let versions = alice.versions(path).await.ok();
    assert_eq!(numbers(&versions), [1]);
    alice
        .metadata("/users/alice/copy.txt")
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
}

/// `database_unavailable`: the database refuses connections and its sessions are ended, with
/// the default settings. Requests answer 503 within the outage bound; once it is back, the data
/// is as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_database_unavailable() {
    let app = App::start().await;
    let alice = app.user("alice");
    let path = "/users/alice/ledger.txt";
    alice.upload(path, b"1".to_vec()).await.ok();
    let before = alice.versions(path).await.ok();
    app.db.cut_off().await;

    let (metadata, took) = timed(alice.metadata(path)).await;
    metadata.err(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DatabaseUnavailable,
    );
    timing::assert_within("metadata", took, OUTAGE_BOUND);
    let (upload, took) = timed(alice.upload(path, b"2".to_vec())).await;
    upload.err(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DatabaseUnavailable,
    );
    timing::assert_within("upload", took, OUTAGE_BOUND);
    let (lock, took) = timed(alice.lock(path)).await;
    lock.err(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DatabaseUnavailable,
    );
    timing::assert_within("lock", took, OUTAGE_BOUND);
    let (resp, took) = timed(app.anonymous().get("/health", &[])).await;
    assert_eq!(resp.body["database"], "unavailable");
    assert_eq!(resp.body["object_store"], "ok");
    resp.err(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::DatabaseUnavailable,
    );
    timing::assert_within("health", took, OUTAGE_BOUND);

    app.db.restore().await;
    let mut after = None;
    for _ in 0..50 {
        let resp = alice.versions(path).await;
        if resp.status == StatusCode::OK {
            after = Some(resp.ok());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = after.expect("the service recovers when the database is back");
    assert_eq!(after, before, "nothing was written during the outage");
    assert_eq!(alice.download(path, "latest").await.bytes, b"1");
}

/// `internal_error`: a version whose object was deleted behind the service's back (a broken
/// invariant, not a request error) answers 500 with a generic sentence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_object_is_an_internal_error() {
    let app = App::start().await;
    let objects = Objects::connect().await;
    let alice = app.user("alice");
    let path = "/users/alice/vanishing.txt";
    let v1 = id_of(&alice.upload(path, b"here".to_vec()).await.ok());
    objects.remove(&Objects::key_of(path, &v1)).await;
    let body = alice
        .download(path, "latest")
        .await
        .json()
        .err(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError);
    assert_eq!(body["detail"], "internal error");
    // The metadata is still there: the operator sees what is broken.
    assert_eq!(alice.metadata(path).await.ok()["file"]["version"], 1);
}
