//! The blob contract against the local-directory store, each test on its own temp directory.
//!
//! The presigned cases use a plain HTTP client against the URLs: a real HTTP server serves the
//! local routes for each test, with the very code the service uses (the HTTP adapter's signed
//! blob routes over the server's `LocalSignedBlobs`).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, dev::ServerHandle};
use secrecy::SecretSlice;
use storage_domain::{
    model::BucketKind,
    ports::{BlobStore, PresignGetOptions},
};
use storage_http_actix::{SignedBlobs, configure_signed_blobs};
use storage_local_fs::{LocalBlobStore, LocalConfig};
use storage_server::local_blobs::LocalSignedBlobs;
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
    let blobs = SignedBlobs::new(Arc::new(LocalSignedBlobs(store.clone())), MAX_BYTES);
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

/// The signed length is enforced on the bytes actually sent, and the upload limit on unsigned
/// lengths; nothing is kept either way.
#[tokio::test]
async fn body_length_is_enforced() {
    let local = local().await;
    let key = contract::unique_key("length");
    // Signed for 10 bytes, the request announces 10 but the body is chunked and longer/shorter:
    // reqwest sets Content-Length from the body, so send a stream (chunked, no length): the
    // signed Content-Length is then missing, which is refused.
    let put = local
        .store
        .presign_put(
            BucketKind::Users,
            &key,
            "text/plain",
            Some(10),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
        bytes::Bytes::from_static(b"0123456789ab"),
    )]));
    let answer = client()
        .put(&put.url)
        .header("Content-Type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        403,
        "no Content-Length: the signed length is missing"
    );

    // Unsigned length: over the upload limit is 413, by the announced length or the bytes.
    let unsigned = local
        .store
        .presign_put(
            BucketKind::Users,
            &key,
            "text/plain",
            None,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let too_big = vec![b'x'; usize::try_from(MAX_BYTES).unwrap() + 1];
    let answer = client()
        .put(&unsigned.url)
        .header("Content-Type", "text/plain")
        .body(too_big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["message"], "payload_too_large");
    let chunks = too_big
        .chunks(1 << 20)
        .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
        .collect::<Vec<_>>();
    let answer = client()
        .put(&unsigned.url)
        .header("Content-Type", "text/plain")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The server may answer 413 before the client has sent everything (or close the
    // connection): either way nothing is stored.
    if let Ok(answer) = answer {
        assert_eq!(answer.status(), 413);
    }
    assert!(local.store.head(BucketKind::Users, &key).await.is_err());
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
    assert!(answer.headers().contains_key("etag"));
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
