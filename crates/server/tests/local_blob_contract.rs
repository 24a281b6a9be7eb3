//! The blob contract against the local-directory store, each test on its own temp directory.
//!
//! The presigned cases use a plain HTTP client against the URLs: a real HTTP server serves the
//! local routes for each test, with the very code the service uses (the HTTP adapter's signed
//! blob routes over the server's `SignedBlobRoutes`).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::ServerHandle};
use secrecy::SecretSlice;
use storage_domain::{
    model::BucketKind,
    ports::{BlobError, BlobStore, PresignGetOptions},
};
use storage_http_actix::{SignedBlobs, configure_signed_blobs};
use storage_local_fs::{LocalBlobStore, LocalConfig};
use storage_server::signed_blobs::SignedBlobRoutes;
use storage_test_support::blob_contract::{self as contract, MIB8};

/// A local store on a fresh temp directory, its routes served on a free port.
struct Local {
    store: Arc<LocalBlobStore>,
    base: String,
    server: ServerHandle,
    _dir: tempfile::TempDir,
}

impl Drop for Local {
    fn drop(&mut self) {
        let server = self.server.clone();
        tokio::spawn(async move { server.stop(false).await });
    }
}

const MAX_BYTES: u64 = 64 * 1024 * 1024;

async fn local() -> Local {
    local_with_limit(MAX_BYTES).await
}

/// A local store whose routes take at most `max_bytes` in a PUT without a signed length.
async fn local_with_limit(max_bytes: u64) -> Local {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let store = Arc::new(
        LocalBlobStore::open(LocalConfig {
            root: dir.path().join("objects"),
            public_base_url: base.clone(),
            presign_secret: SecretSlice::from(b"local-contract-secret-0123456789abcdef".to_vec()),
            presign_max_ttl: Duration::from_secs(3600),
        })
        .await
        .unwrap(),
    );
    let blobs = SignedBlobs::new(
        Arc::new(SignedBlobRoutes::uploads_and_downloads(
            store.signer().clone(),
            store.clone(),
        )),
        max_bytes,
    );
    let server = HttpServer::new(move || {
        let blobs = blobs.clone();
        App::new().configure(move |cfg| configure_signed_blobs(cfg, blobs))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Local {
        store,
        base,
        server: handle,
        _dir: dir,
    }
}

impl Local {
    fn store(&self) -> &dyn BlobStore {
        &*self.store
    }
}

#[tokio::test]
async fn round_trip_0() {
    contract::round_trip(local().await.store(), 0).await;
}

#[tokio::test]
async fn round_trip_1() {
    contract::round_trip(local().await.store(), 1).await;
}

#[tokio::test]
async fn round_trip_8mib_minus_1() {
    contract::round_trip(local().await.store(), MIB8 - 1).await;
}

#[tokio::test]
async fn round_trip_8mib() {
    contract::round_trip(local().await.store(), MIB8).await;
}

#[tokio::test]
async fn round_trip_8mib_plus_1() {
    contract::round_trip(local().await.store(), MIB8 + 1).await;
}

#[tokio::test]
async fn round_trip_3x8mib_plus_7() {
    contract::round_trip(local().await.store(), 3 * MIB8 + 7).await;
}

#[tokio::test]
async fn ranged_reads() {
    contract::ranged_reads(local().await.store()).await;
}

#[tokio::test]
async fn copy_copies() {
    contract::copy_copies(local().await.store()).await;
}

#[tokio::test]
async fn delete_is_idempotent() {
    contract::delete_is_idempotent(local().await.store()).await;
}

#[tokio::test]
async fn head_reports_size() {
    contract::head_reports_size(local().await.store()).await;
}

#[tokio::test]
async fn missing_is_not_found() {
    contract::missing_is_not_found(local().await.store()).await;
}

#[tokio::test]
async fn health_is_ok() {
    contract::health_is_ok(local().await.store()).await;
}

#[tokio::test]
async fn copy_copies_any_size() {
    contract::copy_copies_any_size(local().await.store(), MIB8 + 3).await;
}

#[tokio::test]
async fn copy_is_independent_of_its_source() {
    contract::copy_is_independent_of_its_source(local().await.store()).await;
}

#[tokio::test]
async fn failed_copy_keeps_nothing() {
    contract::failed_copy_keeps_nothing(local().await.store()).await;
}

/// Publishing never replaces an existing file: a put, a copy or a presigned PUT onto a key that
/// holds an object is refused, and the object stays as it was.
#[tokio::test]
async fn publishing_never_replaces_an_object() {
    let local = local().await;
    let store = local.store();
    let bucket = BucketKind::Users;
    let key = contract::unique_key("no-replace");
    let body = |bytes: &'static [u8]| -> storage_domain::ports::ByteStream {
        Box::pin(futures_util::stream::once(async move {
            Ok(bytes::Bytes::from_static(bytes))
        }))
    };
    store
        .put(bucket, &key, "text/plain", body(b"first"))
        .await
        .unwrap();
    assert!(matches!(
        store.put(bucket, &key, "text/plain", body(b"second")).await,
        Err(storage_domain::ports::BlobError::AlreadyExists)
    ));
    let other = contract::unique_key("no-replace-other");
    store
        .put(bucket, &other, "text/plain", body(b"other"))
        .await
        .unwrap();
    assert!(matches!(
        store.copy(bucket, &other, bucket, &key).await,
        Err(storage_domain::ports::BlobError::AlreadyExists)
    ));
    let put = store
        .presign_put(bucket, &key, "text/plain", None, Duration::from_secs(60))
        .await
        .unwrap();
    let answer = reqwest::Client::new()
        .put(&put.url)
        .header("Content-Type", "text/plain")
        .body("third")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    let read = store.get(bucket, &key, None).await.unwrap();
    let bytes = storage_test_support::bytes_gen::collect(read.body)
        .await
        .unwrap();
    assert_eq!(bytes, b"first");
    assert_eq!(store.head(bucket, &key).await.unwrap().size, 5);
    // No temporary file is left in the object's directory.
    let dir = local
        ._dir
        .path()
        .join("objects/users")
        .join(key.as_str())
        .parent()
        .unwrap()
        .to_path_buf();
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".tmp-")), "{names:?}");
}

#[tokio::test]
async fn presigned_put_then_get() {
    contract::presigned_put_then_get(local().await.store()).await;
}

#[tokio::test]
async fn presigned_urls_refuse_tampering() {
    contract::presigned_urls_refuse_tampering(local().await.store()).await;
}

#[tokio::test]
async fn presigned_urls_expire() {
    contract::presigned_urls_expire(local().await.store()).await;
}

#[tokio::test]
async fn upload_urls_are_bounded() {
    let local = local_with_limit(1024).await;
    contract::upload_urls_are_bounded(local.store(), contract::UnsizedUploads::BoundedBy(1024))
        .await;
}

#[tokio::test]
async fn failed_source_keeps_nothing() {
    contract::failed_source_keeps_nothing(local().await.store()).await;
}

#[tokio::test]
async fn dropped_put_keeps_nothing() {
    let local = local().await;
    contract::dropped_put_keeps_nothing(local.store.clone()).await;
}

// --- the local routes' own answers -----------------------------------------------------------

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A refused URL answers the contract's error JSON: 403 `access_denied`, never a 500.
#[tokio::test]
async fn refusals_are_403_access_denied_in_the_error_shape() {
    let local = local().await;
    let key = contract::unique_key("refusal-shape");
    let put = local
        .store
        .presign_put(
            BucketKind::Users,
            &key,
            "text/plain",
            Some(3),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let forged = put.url.replace("method=PUT", "method=GET");
    for (method, url) in [
        (reqwest::Method::GET, forged.clone()),
        (reqwest::Method::DELETE, put.url.clone()),
        (reqwest::Method::POST, put.url.clone()),
        (
            reqwest::Method::GET,
            format!("{}/blob/users/{}?sig=00", local.base, key),
        ),
        (
            reqwest::Method::GET,
            format!("{}/blob/users/{}", local.base, key),
        ),
        (
            reqwest::Method::GET,
            format!(
                "{}/blob/nobucket/{}?method=GET&expires=1&sig=zz",
                local.base, key
            ),
        ),
    ] {
        let answer = client()
            .request(method.clone(), &url)
            .header("Content-Type", "text/plain")
            .header("X-Request-Id", "rid-refusal")
            .body("abc")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{method} {url}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["status"], "error");
        assert_eq!(body["message"], "access_denied", "{body}");
        assert_eq!(body["request_id"], "rid-refusal");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// The upload limit of [`body_length_is_enforced`]'s server: small, so that a chunked body
/// over it is sent whole before the server answers, and the answer is always read.
const SMALL_LIMIT: u64 = 16 * 1024;

/// The error code of a refused request, after checking the error shape.
async fn refusal(answer: reqwest::Response) -> (u16, String) {
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a refusal in the error shape, got {status}: {text:?}"));
    assert_eq!(body["status"], "error", "{body}");
    (
        status,
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[track_caller]
fn assert_nothing_at(head: Result<storage_domain::ports::BlobMeta, BlobError>, what: &str) {
    match head {
        Err(BlobError::NotFound) => {}
        other => panic!("{what}: nothing may be stored, got {other:?}"),
    }
}

/// A PUT body: its length announced (`Content-Length`), or chunked (no length).
enum PutBody {
    Sized(Vec<u8>),
    Chunked(Vec<Vec<u8>>),
}

/// A PUT of `body` to `url`.
async fn put(url: &str, body: PutBody) -> reqwest::Response {
    let body = match body {
        PutBody::Sized(bytes) => reqwest::Body::from(bytes),
        PutBody::Chunked(chunks) => reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c))),
        )),
    };
    client()
        .put(url)
        .header("Content-Type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// PUTs each of `bodies` to `url`: each is refused with `expected` (status, code), and nothing
/// is stored at `key`.
async fn assert_puts_refused(
    local: &Local,
    url: &str,
    key: &storage_domain::model::ObjectKey,
    bodies: Vec<(&str, PutBody)>,
    expected: (u16, &str),
) {
    for (what, body) in bodies {
        let answer = put(url, body).await;
        assert_eq!(
            refusal(answer).await,
            (expected.0, expected.1.to_owned()),
            "{what}"
        );
        assert_nothing_at(local.store.head(BucketKind::Users, key).await, what);
    }
}

/// The signed length is enforced on the request (a `Content-Length` that differs, or none at
/// all, is refused before any byte is stored), and the upload limit on unsigned lengths, by
/// the announced length or by the bytes of a chunked body; nothing is kept when refused.
#[tokio::test]
async fn body_length_is_enforced() {
    let local = local_with_limit(SMALL_LIMIT).await;
    let signed_put = async |key| {
        local
            .store
            .presign_put(
                BucketKind::Users,
                key,
                "text/plain",
                Some(10),
                Duration::from_secs(60),
            )
            .await
            .unwrap()
    };

    // Signed for 10 bytes: a Content-Length of 12 (12 bytes sent), of 8, and a chunked body
    // (no Content-Length) are refused as not what was signed.
    let refused = contract::unique_key("length-signed");
    let url = signed_put(&refused).await.url;
    let bodies = vec![
        ("12 bytes", PutBody::Sized(b"0123456789ab".to_vec())),
        ("8 bytes", PutBody::Sized(b"01234567".to_vec())),
        (
            "chunked",
            PutBody::Chunked(vec![b"01234".to_vec(), b"56789".to_vec()]),
        ),
    ];
    assert_puts_refused(&local, &url, &refused, bodies, (403, "access_denied")).await;
    // Exactly the signed length is stored (so the refusals above are about the length).
    let exact = contract::unique_key("length-exact");
    let answer = put(
        &signed_put(&exact).await.url,
        PutBody::Sized(b"0123456789".to_vec()),
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        local
            .store
            .head(BucketKind::Users, &exact)
            .await
            .unwrap()
            .size,
        10
    );

    // Unsigned length: over the limit is 413 payload_too_large, by the announced length or by
    // the bytes of a chunked body; exactly the limit is stored.
    let unsigned_put = async |key| {
        local
            .store
            .presign_put(
                BucketKind::Users,
                key,
                "text/plain",
                None,
                Duration::from_secs(60),
            )
            .await
            .unwrap()
            .url
    };
    let limit = usize::try_from(SMALL_LIMIT).unwrap();
    let too_big = contract::unique_key("length-too-big");
    let url = unsigned_put(&too_big).await;
    let bodies = vec![
        ("announced", PutBody::Sized(vec![b'x'; limit + 1])),
        (
            "chunked",
            PutBody::Chunked(vec![vec![b'x'; limit / 2], vec![b'x'; limit / 2 + 1]]),
        ),
    ];
    assert_puts_refused(&local, &url, &too_big, bodies, (413, "payload_too_large")).await;
    let at_limit = contract::unique_key("length-at-limit");
    let answer = put(
        &unsigned_put(&at_limit).await,
        PutBody::Chunked(vec![vec![b'x'; limit / 2], vec![b'x'; limit / 2]]),
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        local
            .store
            .head(BucketKind::Users, &at_limit)
            .await
            .unwrap()
            .size,
        SMALL_LIMIT
    );
}

/// A presigned GET honours `Range` and sends the entity tag; a missing object is 404.
#[tokio::test]
async fn presigned_get_serves_ranges_and_404() {
    let local = local().await;
    let key = contract::unique_key("get-range");
    local
        .store
        .put(
            BucketKind::Companies,
            &key,
            "text/plain",
            Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from_static(
                b"hello world",
            ))])),
        )
        .await
        .unwrap();
    let etag = local
        .store
        .head(BucketKind::Companies, &key)
        .await
        .unwrap()
        .etag
        .expect("the local store gives an entity tag");
    let get = local
        .store
        .presign_get(
            BucketKind::Companies,
            &key,
            &PresignGetOptions::default(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let answer = client()
        .get(&get.url)
        .header("Range", "bytes=6-")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 206);
    assert_eq!(answer.headers()["content-range"], "bytes 6-10/11");
    assert_eq!(answer.headers()["etag"], format!("\"{etag}\"").as_str());
    assert_eq!(answer.bytes().await.unwrap().as_ref(), b"world");
    let answer = client()
        .get(&get.url)
        .header("Range", "bytes=50-")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 416);

    local
        .store
        .delete(BucketKind::Companies, &key)
        .await
        .unwrap();
    let answer = client().get(&get.url).send().await.unwrap();
    assert_eq!(answer.status(), 404);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["message"], "file_not_found");
}
