//! Proxy uploads (multipart, streamed) and proxy downloads (ranges, validators, headers).

use std::sync::{Arc, atomic::Ordering};

use actix_web::{
    body::{BodySize, MessageBody},
    http::header,
    test,
    web::Bytes,
};
use futures::stream;
use storage_domain::{
    model::VersionStatus,
    ports::{BlobError, BlobRead, MockBlobStore},
    service::content_disposition,
};

use crate::support::*;

const BOUNDARY: &str = "XbOuNdArYx";

/// A `multipart/form-data` body: the text fields, then `file` when given.
pub fn multipart(fields: &[(&str, &str)], file: Option<(&[u8], &str)>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((bytes, content_type)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

pub fn upload_request(body: Vec<u8>) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/upload/proxy")
        .insert_header((header::AUTHORIZATION, ALICE))
        .insert_header((header::CONTENT_TYPE, multipart_type()))
        .set_payload(body)
}

/// Metadata expectations of an upload that goes through: no file yet, one reservation, one
/// commit recording what the store was given.
pub fn accept_new_file(setup: &mut Setup) {
    setup.meta.expect_find_file().returning(|_| Ok(None));
    setup
        .meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    setup
        .meta
        .expect_commit_version()
        .times(1)
        .returning(|cmd| {
            let mut f = file(&cmd.path, 1);
            f.size = cmd.size;
            f.sha256 = cmd.sha256.clone();
            f.content_type = cmd.content_type.clone();
            if let Some(tags) = cmd.tags.clone() {
                f.tags = tags;
            }
            let mut v = version_of(&f, 1, VersionStatus::Draft);
            v.id = cmd.version_id;
            v.message = cmd.message.clone();
            Ok((f, v))
        });
}

#[actix_web::test]
async fn a_proxy_upload_streams_the_file_and_records_a_version() {
    let mut setup = Setup::new();
    accept_new_file(&mut setup);
    let blobs = Arc::new(RecordingBlobs::default());
    setup.blobs = blobs.clone();
    let app = setup.app().await;
    let content: Vec<u8> = (0..900u32).map(|i| (i % 251) as u8).collect();
    let body = multipart(
        &[
            ("bucket", "users"),
            ("path", "/users/alice/up/data.bin"),
            ("tags", "{\"k\":\"v\"}"),
            ("message", "first"),
        ],
        Some((&content, "application/x-test")),
    );
    let res = test::call_service(&app, upload_request(body).to_request()).await;
    assert_eq!(res.status(), 200);
    let json = json_of(res).await;
    assert_eq!(json["file"]["size"], 900);
    assert_eq!(json["file"]["content_type"], "application/x-test");
    assert_eq!(json["file"]["tags"]["k"], "v");
    assert_eq!(json["version"]["message"], "first");
    assert_eq!(*blobs.data.lock().unwrap(), content);
    use sha2::Digest;
    assert_eq!(
        json["file"]["sha256"],
        hex::encode(sha2::Sha256::digest(&content))
    );
}

#[actix_web::test]
async fn a_proxy_upload_over_the_limit_is_413_and_nothing_is_kept() {
    let mut setup = Setup::new();
    setup.meta.expect_find_file().returning(|_| Ok(None));
    setup
        .meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    // The failed upload's reservation is abandoned (and its object deleted).
    setup
        .meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    // ...and its key queued once more, deferred, in case the store finishes the put late.
    setup
        .meta
        .expect_queue_deletions()
        .withf(|objects, not_before| objects.len() == 1 && not_before.is_some())
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    let blobs = Arc::new(RecordingBlobs::default());
    setup.blobs = blobs.clone();
    let app = setup.app().await;
    let content = vec![7u8; 50_000]; // the limit is 1000
    let body = multipart(
        &[("bucket", "users"), ("path", "/users/alice/big.bin")],
        Some((&content, "application/octet-stream")),
    );
    let res = test::call_service(&app, upload_request(body).to_request()).await;
    let json = error_body(res, 413, "payload_too_large").await;
    assert!(json["detail"].as_str().unwrap().contains("1000"));
    assert!(
        blobs.bytes.load(Ordering::SeqCst) <= 1000,
        "the store was given {} bytes",
        blobs.bytes.load(Ordering::SeqCst)
    );
}

#[actix_web::test]
async fn if_match_failing_is_412_and_expected_version_409() {
    let p = path("/users/alice/a.txt");
    let f = file(&p, 3);
    let mut setup = Setup::new();
    setup
        .meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    let app = setup.app().await;
    let fields = [("bucket", "users"), ("path", "/users/alice/a.txt")];

    let req = upload_request(multipart(&fields, Some((b"abc", "text/plain"))))
        .insert_header((header::IF_MATCH, "2"))
        .to_request();
    let body = error_body(test::call_service(&app, req).await, 412, "version_conflict").await;
    assert_eq!(body["current_version"], 3);

    let req = upload_request(multipart(
        &[
            ("bucket", "users"),
            ("path", "/users/alice/a.txt"),
            ("expected_version", "2"),
        ],
        Some((b"abc", "text/plain")),
    ))
    .to_request();
    error_body(test::call_service(&app, req).await, 409, "version_conflict").await;

    // 0: the file must not exist yet.
    let req = upload_request(multipart(&fields, Some((b"abc", "text/plain"))))
        .insert_header((header::IF_MATCH, "\"0\""))
        .to_request();
    error_body(test::call_service(&app, req).await, 412, "version_conflict").await;

    let req = upload_request(multipart(&fields, Some((b"abc", "text/plain"))))
        .insert_header((header::IF_MATCH, "*"))
        .to_request();
    error_body(test::call_service(&app, req).await, 400, "invalid_request").await;
}

#[actix_web::test]
async fn proxy_upload_form_mistakes_are_invalid_request() {
    let app = Setup::new().app().await;
    let cases = [
        // No `path` (the file, sent first, is held aside and dropped).
        multipart(&[("bucket", "users")], Some((b"abc", "text/plain"))),
        // No file at all.
        multipart(&[("bucket", "users"), ("path", "/users/alice/a")], None),
        // Tags that are not an object.
        multipart(
            &[
                ("bucket", "users"),
                ("path", "/users/alice/a"),
                ("tags", "[1]"),
            ],
            Some((b"abc", "text/plain")),
        ),
        // A field given twice.
        multipart(
            &[
                ("bucket", "users"),
                ("bucket", "users"),
                ("path", "/users/alice/a"),
            ],
            Some((b"abc", "text/plain")),
        ),
    ];
    for body in cases {
        let res = test::call_service(&app, upload_request(body).to_request()).await;
        error_body(res, 400, "invalid_request").await;
    }
    let req = test::TestRequest::post()
        .uri("/upload/proxy")
        .insert_header((header::AUTHORIZATION, ALICE))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{}")
        .to_request();
    error_body(test::call_service(&app, req).await, 400, "invalid_request").await;
}

#[actix_web::test]
async fn proxy_upload_text_fields_are_capped() {
    let mut setup = Setup::new();
    setup.config.form_fields_limit_bytes = 64;
    let app = setup.app().await;
    let long = "x".repeat(100);
    let body = multipart(
        &[
            ("bucket", "users"),
            ("path", "/users/alice/a"),
            ("message", &long),
        ],
        Some((b"abc", "text/plain")),
    );
    let res = test::call_service(&app, upload_request(body).to_request()).await;
    error_body(res, 413, "payload_too_large").await;
}

// ---- downloads -------------------------------------------------------------------------------

pub const DATA: &[u8] = b"0123456789";

/// A file `/users/alice/r\u{e9}sum\u{e9} "v1".txt` at version 2 whose object holds `DATA`.
pub fn download_setup(expected_gets: usize) -> Setup {
    let mut setup = Setup::new();
    let p = path("/users/alice/r\u{e9}sum\u{e9} \"v1\".txt");
    let f = file(&p, 2);
    let v = version_of(&f, 2, VersionStatus::Draft);
    setup
        .meta
        .expect_find_file_version()
        .returning(move |_, _| Ok(Some((f.clone(), Some(v.clone())))));
    let mut blobs = MockBlobStore::new();
    blobs
        .expect_get()
        .times(expected_gets)
        .returning(|_, _, range| {
            let total = DATA.len() as u64;
            let span = match range {
                None => None,
                Some(r) => Some(r.resolve(total).ok_or(BlobError::RangeNotSatisfiable)?),
            };
            let (first, last) = span.unwrap_or((0, total - 1));
            let bytes = Bytes::copy_from_slice(&DATA[first as usize..=last as usize]);
            // Two chunks, to stream for real.
            let mid = bytes.len() / 2;
            let chunks = vec![Ok(bytes.slice(..mid)), Ok(bytes.slice(mid..))];
            Ok(BlobRead {
                total_size: total,
                range: span,
                etag: None,
                body: Box::pin(stream::iter(chunks)),
            })
        });
    setup.with_blobs(blobs)
}

pub const DOWNLOAD: &str =
    "/download/proxy?bucket=users&path=/users/alice/r%C3%A9sum%C3%A9%20%22v1%22.txt";

fn etag() -> String {
    format!("\"{}\"", "ab".repeat(32))
}

#[actix_web::test]
async fn a_download_streams_the_whole_file_with_its_headers() {
    let app = download_setup(1).app().await;
    let req = test::TestRequest::get()
        .uri(DOWNLOAD)
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let h = res.headers();
    // The length is the body's (the server writes it as `Content-Length`).
    assert_eq!(res.response().body().size(), BodySize::Sized(10));
    assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "text/plain");
    assert_eq!(h.get(header::ETAG).unwrap().to_str().unwrap(), etag());
    assert_eq!(h.get(header::ACCEPT_RANGES).unwrap(), "bytes");
    assert_eq!(h.get("x-file-version").unwrap(), "2");
    let disposition = h
        .get(header::CONTENT_DISPOSITION)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        disposition,
        content_disposition("r\u{e9}sum\u{e9} \"v1\".txt")
    );
    assert!(disposition.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v1%22.txt"));
    assert!(h.contains_key(header::LAST_MODIFIED));
    assert_eq!(test::read_body(res).await, DATA);
}

#[actix_web::test]
async fn a_single_range_is_206_with_content_range() {
    let app = download_setup(3).app().await;
    for (range, content_range, body) in [
        ("bytes=2-5", "bytes 2-5/10", &DATA[2..=5]),
        ("bytes=7-", "bytes 7-9/10", &DATA[7..]),
        ("bytes=-3", "bytes 7-9/10", &DATA[7..]),
    ] {
        let req = test::TestRequest::get()
            .uri(DOWNLOAD)
            .insert_header((header::AUTHORIZATION, ALICE))
            .insert_header((header::RANGE, range))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(
            res.headers().get(header::CONTENT_RANGE).unwrap(),
            content_range
        );
        assert_eq!(
            res.response().body().size(),
            BodySize::Sized(body.len() as u64)
        );
        assert_eq!(
            res.headers().get(header::ETAG).unwrap().to_str().unwrap(),
            etag()
        );
        assert_eq!(test::read_body(res).await, body, "{range}");
    }
}

#[actix_web::test]
async fn several_or_malformed_ranges_send_the_whole_file() {
    let app = download_setup(2).app().await;
    for range in ["bytes=0-1,4-5", "bytes=abc"] {
        let req = test::TestRequest::get()
            .uri(DOWNLOAD)
            .insert_header((header::AUTHORIZATION, ALICE))
            .insert_header((header::RANGE, range))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 200, "{range}");
        assert!(!res.headers().contains_key(header::CONTENT_RANGE));
        assert_eq!(test::read_body(res).await, DATA);
    }
}

#[actix_web::test]
async fn a_range_outside_the_file_is_416_with_the_size() {
    let app = download_setup(1).app().await;
    let req = test::TestRequest::get()
        .uri(DOWNLOAD)
        .insert_header((header::AUTHORIZATION, ALICE))
        .insert_header((header::RANGE, "bytes=50-60"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(
        res.headers().get(header::CONTENT_RANGE).unwrap(),
        "bytes */10"
    );
    error_body(res, 416, "invalid_request").await;
}

#[actix_web::test]
async fn if_none_match_is_304_and_a_stale_if_range_sends_the_whole_file() {
    let app = download_setup(3).app().await;
    let req = test::TestRequest::get()
        .uri(DOWNLOAD)
        .insert_header((header::AUTHORIZATION, ALICE))
        .insert_header((header::IF_NONE_MATCH, format!("\"other\", {}", etag())))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 304);
    assert_eq!(
        res.headers().get(header::ETAG).unwrap().to_str().unwrap(),
        etag()
    );
    assert!(test::read_body(res).await.is_empty());

    // Stale `If-Range`: the range is dropped (a second read, whole).
    let req = test::TestRequest::get()
        .uri(DOWNLOAD)
        .insert_header((header::AUTHORIZATION, ALICE))
        .insert_header((header::RANGE, "bytes=0-1"))
        .insert_header((header::IF_RANGE, "\"old\""))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(test::read_body(res).await, DATA);
}

#[actix_web::test]
async fn the_validated_version_of_a_file_without_one_is_version_not_found() {
    let mut setup = Setup::new();
    let p = path("/users/alice/a.txt");
    let f = file(&p, 1);
    setup
        .meta
        .expect_find_file_version()
        .returning(move |_, _| Ok(Some((f.clone(), None))));
    let app = setup.app().await;
    let req = test::TestRequest::get()
        .uri("/download/proxy?bucket=users&path=/users/alice/a.txt&version=validated")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    error_body(
        test::call_service(&app, req).await,
        404,
        "version_not_found",
    )
    .await;

    let req = test::TestRequest::get()
        .uri("/download/proxy?bucket=users&path=/users/alice/a.txt&version=v2")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    error_body(test::call_service(&app, req).await, 400, "invalid_request").await;
}

#[actix_web::test]
async fn an_unknown_upload_id_is_upload_not_found() {
    let mut setup = Setup::new();
    setup.meta.expect_find_reservation().returning(|_| Ok(None));
    let app = setup.app().await;
    let req = test::TestRequest::post()
        .uri("/upload/complete")
        .insert_header((header::AUTHORIZATION, ALICE))
        .set_json(serde_json::json!({"upload_id": uuid::Uuid::new_v4()}))
        .to_request();
    error_body(test::call_service(&app, req).await, 404, "upload_not_found").await;
}
