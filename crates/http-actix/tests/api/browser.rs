//! What browser front-ends and generated clients meet: CORS, the cross-site check, strict JSON
//! bodies, and multipart fields in any order.

use std::{sync::Arc, time::Duration};

use actix_web::{http::header, test};
use storage_domain::model::AuditOutcome;
use storage_http_actix::BrowserAccess;

use crate::support::*;
use crate::transfer::{accept_new_file, multipart_type, upload_request};

const APP: &str = "http://app.example";
const EVIL: &str = "http://evil.example";

fn with_cors(mut setup: Setup) -> Setup {
    setup.config.browser = BrowserAccess {
        allowed_origins: vec![APP.into()],
        public_origin: None,
        preflight_max_age: Duration::from_secs(600),
    };
    setup
}

fn header_of<B>(res: &actix_web::dev::ServiceResponse<B>, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

// ---- CORS ------------------------------------------------------------------------------------

#[actix_web::test]
async fn preflights_of_allowed_origins_are_answered_on_every_route() {
    let app = with_cors(Setup::new()).app().await;
    for (path, method) in [
        ("/lock", "POST"),
        ("/metadata", "PATCH"),
        ("/delete", "DELETE"),
        ("/blob/users/alice/0190aaaa", "PUT"),
        ("/no/such/route", "GET"),
    ] {
        let req = test::TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri(path)
            .insert_header((header::ORIGIN, APP))
            .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, method))
            .insert_header((header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type"))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 200, "{method} {path}");
        assert_eq!(
            header_of(&res, "access-control-allow-origin").as_deref(),
            Some(APP)
        );
        assert_eq!(
            header_of(&res, "access-control-allow-credentials").as_deref(),
            Some("true")
        );
        assert_eq!(
            header_of(&res, "access-control-max-age").as_deref(),
            Some("600")
        );
        let methods = header_of(&res, "access-control-allow-methods").unwrap();
        assert!(methods.contains(method), "{methods}");
        assert!(header_of(&res, "x-request-id").is_some());
    }
}

#[actix_web::test]
async fn answers_to_allowed_origins_expose_the_headers_a_page_needs() {
    let app = with_cors(Setup::new()).app().await;
    let req = test::TestRequest::get()
        .uri("/version")
        .insert_header((header::ORIGIN, APP))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header_of(&res, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
    let exposed = header_of(&res, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in storage_http_actix::EXPOSED_HEADERS {
        assert!(exposed.contains(&name.to_ascii_lowercase()), "{exposed}");
    }
    // Error answers carry them too (a page reads the error body).
    let req = test::TestRequest::get()
        .uri("/metadata")
        .insert_header((header::ORIGIN, APP))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(
        header_of(&res, "access-control-allow-origin").as_deref(),
        Some(APP)
    );
    error_body(res, 401, "missing_jwt_token").await;
}

#[actix_web::test]
async fn other_origins_get_no_cors_header_and_a_refused_preflight_in_the_error_shape() {
    let app = with_cors(Setup::new()).app().await;
    let req = test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/lock")
        .insert_header((header::ORIGIN, EVIL))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert!(header_of(&res, "access-control-allow-origin").is_none());
    let body = error_body(res, 400, "invalid_request").await;
    assert!(
        body["detail"].as_str().unwrap().contains("CORS preflight"),
        "{body}"
    );
    // A simple request is served (curl, tools), without any CORS header.
    let req = test::TestRequest::get()
        .uri("/version")
        .insert_header((header::ORIGIN, EVIL))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert!(header_of(&res, "access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn without_allowed_origins_there_is_no_cors_at_all() {
    let app = Setup::new().app().await;
    let req = test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/lock")
        .insert_header((header::ORIGIN, APP))
        .insert_header((header::ACCESS_CONTROL_REQUEST_METHOD, "POST"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert!(
        res.headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        res.headers()
    );
    error_body(res, 405, "invalid_request").await;
    let req = test::TestRequest::get()
        .uri("/version")
        .insert_header((header::ORIGIN, APP))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert!(header_of(&res, "access-control-allow-origin").is_none());
}

// ---- cross-site ------------------------------------------------------------------------------

fn lock_request(origin: Option<&str>, bearer: bool) -> test::TestRequest {
    let mut req = test::TestRequest::post()
        .uri("/lock")
        .insert_header((header::HOST, "storage.local:5000"))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(r#"{"bucket":"users","path":"/users/alice/a.txt"}"#);
    req = if bearer {
        req.insert_header((header::AUTHORIZATION, ALICE))
    } else {
        req.insert_header((header::COOKIE, "theme=dark; access_token=user:alice"))
    };
    if let Some(origin) = origin {
        req = req.insert_header((header::ORIGIN, origin));
    }
    req
}

#[actix_web::test]
async fn a_change_sent_with_the_cookie_from_another_origin_is_refused_and_audited() {
    let mut setup = with_cors(Setup::new());
    // Nothing is looked up; the attempt is recorded as a denied lock on the file.
    setup
        .meta
        .expect_record_refusal()
        .withf(|e, _| {
            e.outcome == AuditOutcome::Denied
                && e.path.as_str() == "/users/alice/a.txt"
                && e.detail.as_deref().is_some_and(|d| d.contains(EVIL))
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let app = setup.app().await;
    let res = test::call_service(&app, lock_request(Some(EVIL), false).to_request()).await;
    let body = error_body(res, 403, "access_denied").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("origin http://evil.example") && detail.contains("CORS_ALLOWED_ORIGINS"),
        "{detail}"
    );
}

#[actix_web::test]
async fn a_browser_marked_cross_site_request_without_origin_is_refused() {
    let mut setup = with_cors(Setup::new());
    setup
        .meta
        .expect_record_refusal()
        .times(1)
        .returning(|_, _| Ok(()));
    let app = setup.app().await;
    let req = lock_request(None, false)
        .insert_header(("Sec-Fetch-Site", "cross-site"))
        .to_request();
    let body = error_body(test::call_service(&app, req).await, 403, "access_denied").await;
    assert!(body["detail"].as_str().unwrap().contains("Sec-Fetch-Site"));
}

#[actix_web::test]
async fn allowed_own_bearer_and_originless_changes_go_through() {
    // Each reaches the store (which answers: no such file).
    let mut setup = with_cors(Setup::new());
    setup
        .meta
        .expect_find_file()
        .times(5)
        .returning(|_| Ok(None));
    let app = setup.app().await;
    for req in [
        lock_request(Some(APP), false),
        lock_request(Some("http://storage.local:5000"), false),
        lock_request(Some(EVIL), true),
        lock_request(None, false),
        lock_request(None, false).insert_header(("Sec-Fetch-Site", "same-origin")),
    ] {
        let res = test::call_service(&app, req.to_request()).await;
        error_body(res, 404, "file_not_found").await;
    }
}

#[actix_web::test]
async fn a_cross_site_upload_keeps_no_byte_and_is_refused() {
    let mut setup = with_cors(Setup::new());
    setup
        .meta
        .expect_record_refusal()
        .times(2)
        .returning(|_, _| Ok(()));
    let spool = tempfile::tempdir().unwrap();
    setup.config.spool_dir = spool.path().to_owned();
    setup.settings.max_upload_bytes = 1 << 20;
    let app = setup.app().await;
    let content = vec![1u8; 600 * 1024];
    for body in [
        // `file` last: refused before a byte is read; `file` first: counted, never stored.
        parts(&[
            ("bucket", Part::Text("users")),
            ("path", Part::Text("/users/alice/x.bin")),
            ("file", Part::File(&content)),
        ]),
        parts(&[
            ("file", Part::File(&content)),
            ("bucket", Part::Text("users")),
            ("path", Part::Text("/users/alice/x.bin")),
        ]),
    ] {
        let req = test::TestRequest::post()
            .uri("/upload/proxy")
            .insert_header((header::COOKIE, "access_token=user:alice"))
            .insert_header((header::ORIGIN, EVIL))
            .insert_header((header::CONTENT_TYPE, multipart_type()))
            .set_payload(body)
            .to_request();
        error_body(test::call_service(&app, req).await, 403, "access_denied").await;
        assert_spool_empty(spool.path()).await;
    }
}

// ---- JSON bodies -----------------------------------------------------------------------------

#[actix_web::test]
async fn a_json_endpoint_refuses_a_body_that_is_not_declared_json() {
    let app = Setup::new().app().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = test::TestRequest::post()
            .uri("/lock")
            .insert_header((header::AUTHORIZATION, ALICE))
            .set_payload(r#"{"bucket":"users","path":"/users/alice/a.txt"}"#);
        if let Some(ct) = content_type {
            req = req.insert_header((header::CONTENT_TYPE, ct));
        }
        let body = error_body(
            test::call_service(&app, req.to_request()).await,
            400,
            "invalid_request",
        )
        .await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("Content-Type: application/json"),
            "{body}"
        );
    }
}

// ---- multipart in any order ------------------------------------------------------------------

enum Part<'a> {
    Text(&'a str),
    File(&'a [u8]),
}

const BOUNDARY: &str = "XbOuNdArYx";

/// A multipart body with the parts in the order given.
fn parts(list: &[(&str, Part<'_>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, part) in list {
        match part {
            Part::Text(value) => body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            ),
            Part::File(bytes) => {
                body.extend_from_slice(
                    format!(
                        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"f.bin\"\r\nContent-Type: application/x-test\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The spool directory is empty (its removals run on blocking threads: allow them a moment).
async fn assert_spool_empty(dir: &std::path::Path) {
    for _ in 0..100 {
        if std::fs::read_dir(dir).unwrap().next().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    panic!("spooled files left behind: {left:?}");
}

#[actix_web::test]
async fn a_file_sent_before_bucket_and_path_is_held_aside_then_stored_with_every_field() {
    for size in [900usize, 600 * 1024] {
        let mut setup = Setup::new();
        setup.settings.max_upload_bytes = 1 << 20;
        let spool = tempfile::tempdir().unwrap();
        setup.config.spool_dir = spool.path().to_owned();
        accept_new_file(&mut setup);
        let blobs = Arc::new(RecordingBlobs::default());
        setup.blobs = blobs.clone();
        let app = setup.app().await;
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        // The order of a generated client: required fields alphabetically, then the others.
        let body = parts(&[
            ("bucket", Part::Text("users")),
            ("file", Part::File(&content)),
            ("path", Part::Text("/users/alice/up/data.bin")),
            ("message", Part::Text("first")),
            ("tags", Part::Text("{\"k\":\"v\"}")),
        ]);
        let res = test::call_service(&app, upload_request(body).to_request()).await;
        assert_eq!(res.status(), 200, "{size} bytes");
        let json = json_of(res).await;
        assert_eq!(json["file"]["size"], size);
        assert_eq!(json["file"]["content_type"], "application/x-test");
        assert_eq!(json["file"]["tags"]["k"], "v");
        assert_eq!(json["version"]["message"], "first");
        assert_eq!(*blobs.data.lock().unwrap(), content);
        assert_spool_empty(spool.path()).await;
    }
}

#[actix_web::test]
async fn a_held_aside_file_of_a_caller_without_access_is_dropped() {
    let mut setup = Setup::new();
    setup.settings.max_upload_bytes = 1 << 20;
    let spool = tempfile::tempdir().unwrap();
    setup.config.spool_dir = spool.path().to_owned();
    setup
        .meta
        .expect_record_refusal()
        .times(1)
        .returning(|_, _| Ok(()));
    let app = setup.app().await;
    let content = vec![3u8; 600 * 1024];
    let body = parts(&[
        ("file", Part::File(&content)),
        ("path", Part::Text("/users/bob/x.bin")),
        ("bucket", Part::Text("users")),
    ]);
    let res = test::call_service(&app, upload_request(body).to_request()).await;
    error_body(res, 403, "access_denied").await;
    assert_spool_empty(spool.path()).await;

    // Over the limit while held aside: 413 at once, nothing left.
    let big = vec![3u8; (1 << 20) + 1];
    let body = parts(&[("file", Part::File(&big)), ("bucket", Part::Text("users"))]);
    let res = test::call_service(&app, upload_request(body).to_request()).await;
    error_body(res, 413, "payload_too_large").await;
    assert_spool_empty(spool.path()).await;
}

/// One recorded version, from one reservation and one put.
fn accept_once(setup: &mut Setup) {
    setup.meta.expect_find_file().returning(|_| Ok(None));
    setup
        .meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    setup.meta.expect_abandon_reservation().never();
    setup
        .meta
        .expect_commit_version()
        .times(1)
        .returning(|cmd| {
            let mut f = file(&cmd.path, 1);
            f.size = cmd.size;
            f.tags = cmd.tags.clone().unwrap_or_default();
            f.content_type = cmd.content_type.clone();
            let mut v = version_of(&f, 1, storage_domain::model::VersionStatus::Draft);
            v.id = cmd.version_id;
            v.message = cmd.message.clone();
            Ok((f, v))
        });
}

#[actix_web::test]
async fn fields_after_a_file_stored_as_it_arrived_are_recorded_with_it_and_no_copy_is_made() {
    for size in [3usize, 600 * 1024] {
        let mut setup = Setup::new();
        setup.settings.max_upload_bytes = 1 << 20;
        // A spool directory that cannot be written: nothing is held aside, none is needed.
        setup.config.spool_dir = std::path::PathBuf::from("/nonexistent/spool");
        accept_once(&mut setup);
        let blobs = Arc::new(RecordingBlobs::default());
        setup.blobs = blobs.clone();
        let app = setup.app().await;
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        // A browser's FormData in insertion order, the optional fields last.
        let body = parts(&[
            ("bucket", Part::Text("users")),
            ("path", Part::Text("/users/alice/a.txt")),
            ("file", Part::File(&content)),
            ("tags", Part::Text("{\"k\":\"v\"}")),
            ("message", Part::Text("late")),
            ("content_type", Part::Text("text/markdown")),
        ]);
        let res = test::call_service(&app, upload_request(body).to_request()).await;
        assert_eq!(res.status(), 200, "{size} bytes");
        let json = json_of(res).await;
        assert_eq!(json["file"]["tags"]["k"], "v");
        assert_eq!(json["file"]["content_type"], "text/markdown");
        assert_eq!(json["version"]["message"], "late");
        assert_eq!(json["file"]["size"], size);
        // Stored once, as it arrived.
        assert_eq!(*blobs.data.lock().unwrap(), content);
        assert_eq!(blobs.deletes.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}

/// A first attempt abandoned: its reservation dropped, its key queued again (deferred).
fn expect_abandoned(setup: &mut Setup) {
    setup.meta.expect_find_file().returning(|_| Ok(None));
    setup
        .meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    setup
        .meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    // The abandoned attempt's key is queued once more, deferred (a put the store may finish late).
    setup
        .meta
        .expect_queue_deletions()
        .withf(|objects, not_before| objects.len() == 1 && not_before.is_some())
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    setup.meta.expect_commit_version().never();
}

#[actix_web::test]
async fn a_refused_field_after_a_file_stored_as_it_arrived_records_nothing() {
    let big = "x".repeat(70 * 1024);
    let cases: [(&str, Part<'_>, u16, &str, &str); 5] = [
        (
            "tags",
            Part::Text("not json"),
            400,
            "invalid_request",
            "tags must be a JSON object",
        ),
        (
            "tags",
            Part::Text("{\"k\":\"\\u0000\"}"),
            400,
            "invalid_request",
            "control characters",
        ),
        (
            "path",
            Part::Text("/users/alice/b.txt"),
            400,
            "invalid_request",
            "given twice",
        ),
        (
            "file",
            Part::File(b"again"),
            400,
            "invalid_request",
            "'file' is given twice",
        ),
        (
            "message",
            Part::Text(&big),
            413,
            "payload_too_large",
            "limit",
        ),
    ];
    for (name, part, status, code, detail) in cases {
        let mut setup = Setup::new();
        setup.settings.max_upload_bytes = 1 << 20;
        setup.config.spool_dir = std::path::PathBuf::from("/nonexistent/spool");
        expect_abandoned(&mut setup);
        setup.blobs = Arc::new(RecordingBlobs::default());
        let app = setup.app().await;
        let content = vec![5u8; 600 * 1024];
        let body = parts(&[
            ("bucket", Part::Text("users")),
            ("path", Part::Text("/users/alice/a.txt")),
            ("file", Part::File(&content)),
            (name, part),
        ]);
        let res = test::call_service(&app, upload_request(body).to_request()).await;
        let body = error_body(res, status, code).await;
        assert!(
            body["detail"].as_str().unwrap().contains(detail),
            "{name}: {body}"
        );
    }
}

#[actix_web::test]
async fn unknown_fields_are_refused_wherever_they_come() {
    let mut setup = Setup::new();
    setup.meta.expect_find_file().returning(|_| Ok(None));
    setup
        .meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    setup
        .meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    // The abandoned attempt's key is queued once more, deferred (a put the store may finish late).
    setup
        .meta
        .expect_queue_deletions()
        .withf(|objects, not_before| objects.len() == 1 && not_before.is_some())
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    setup.blobs = Arc::new(RecordingBlobs::default());
    let app = setup.app().await;
    let body = parts(&[
        ("bucket", Part::Text("users")),
        ("submit", Part::Text("Upload")),
        ("path", Part::Text("/users/alice/a.txt")),
        ("file", Part::File(b"abc")),
    ]);
    let res = test::call_service(&app, upload_request(body).to_request()).await;
    let json = error_body(res, 400, "invalid_request").await;
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field 'submit'")
    );
    let body = parts(&[
        ("bucket", Part::Text("users")),
        ("path", Part::Text("/users/alice/a.txt")),
        ("file", Part::File(b"abc")),
        ("submit", Part::Text("Upload")),
    ]);
    // After a file stored as it arrived: that attempt is abandoned, nothing recorded.
    let res = test::call_service(&app, upload_request(body).to_request()).await;
    let json = error_body(res, 400, "invalid_request").await;
    assert!(
        json["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field 'submit'")
    );
}
