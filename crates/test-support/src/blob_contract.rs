//! The contract of the [`BlobStore`] port, as test cases any adapter runs.
//!
//! Each case is a public async function over `&dyn BlobStore`; an adapter's test file calls
//! each from its own `#[tokio::test]` (so they run in parallel). Every case uses keys of its
//! own ([`unique_key`]), so cases never collide, even when run twice at once.
//!
//! A failed expectation here is a failed test, hence `expect` (denied in library code).
#![expect(
    clippy::expect_used,
    reason = "test cases: a failed expectation is a failed test"
)]

use std::{io, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{
        BlobError, BlobStore, ByteRange, ByteStream, PresignGetOptions, PresignMethod,
        PresignedRequest,
    },
};
use tokio::sync::Notify;

use crate::bytes_gen::{
    collect, drain_sha256, pattern_range, pattern_sha256, pattern_stream, pattern_stream_then,
};

/// 8 MiB: the usual multipart part size, around which sizes are tested.
pub const MIB8: u64 = 8 * 1024 * 1024;

/// A key no other test uses: `contract/<case>/<uuid>`.
pub fn unique_key(case: &str) -> ObjectKey {
    ObjectKey::from_stored(format!(
        "contract/{case}/{}",
        uuid::Uuid::new_v4().as_simple()
    ))
}

fn seed_of(key: &ObjectKey) -> u64 {
    key.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Puts the pattern body of `size` bytes under a new key; returns the key and its seed.
async fn put_pattern(
    store: &dyn BlobStore,
    bucket: BucketKind,
    case: &str,
    size: u64,
) -> (ObjectKey, u64) {
    let key = unique_key(case);
    let seed = seed_of(&key);
    let outcome = store
        .put(
            bucket,
            &key,
            "application/octet-stream",
            pattern_stream(seed, size),
        )
        .await
        .unwrap_or_else(|e| panic!("put of {size} bytes failed: {e}"));
    assert_eq!(outcome.size, size, "put reports the size it stored");
    (key, seed)
}

async fn assert_not_found(store: &dyn BlobStore, bucket: BucketKind, key: &ObjectKey) {
    match store.head(bucket, key).await {
        Err(BlobError::NotFound) => {}
        other => panic!("head of {key} must be NotFound, got {other:?}"),
    }
}

/// A put of `size` bytes reads back byte for byte (size and SHA-256), and `head` agrees.
pub async fn round_trip(store: &dyn BlobStore, size: u64) {
    let bucket = BucketKind::Users;
    let (key, seed) = put_pattern(store, bucket, &format!("round-trip-{size}"), size).await;

    let meta = store.head(bucket, &key).await.expect("head after put");
    assert_eq!(meta.size, size);

    let read = store.get(bucket, &key, None).await.expect("get after put");
    assert_eq!(read.total_size, size);
    assert_eq!(read.range, None);
    let (got_size, got_sha) = drain_sha256(read.body).await.expect("read the body");
    assert_eq!(got_size, size);
    assert_eq!(
        got_sha,
        pattern_sha256(seed, size),
        "bytes read back differ"
    );

    store.delete(bucket, &key).await.expect("delete");
}

/// Ranged reads: `first-last` (clamped to the end), `first-`, suffix, and the unsatisfiable
/// ones (`RangeNotSatisfiable`, never `Other`).
pub async fn ranged_reads(store: &dyn BlobStore) {
    let bucket = BucketKind::Companies;
    let size = 1000;
    let (key, seed) = put_pattern(store, bucket, "ranges", size).await;

    let cases = [
        (
            ByteRange::FromTo {
                first: 10,
                last: 19,
            },
            (10, 19),
        ),
        (ByteRange::FromTo { first: 0, last: 0 }, (0, 0)),
        (
            ByteRange::FromTo {
                first: 990,
                last: 5000,
            },
            (990, 999),
        ),
        (ByteRange::From { first: 995 }, (995, 999)),
        (ByteRange::From { first: 0 }, (0, 999)),
        (ByteRange::Suffix { len: 7 }, (993, 999)),
        (ByteRange::Suffix { len: 5000 }, (0, 999)),
    ];
    for (range, (first, last)) in cases {
        let read = store
            .get(bucket, &key, Some(range))
            .await
            .unwrap_or_else(|e| panic!("get {range:?} failed: {e}"));
        assert_eq!(read.total_size, size, "{range:?}: total size");
        assert_eq!(read.range, Some((first, last)), "{range:?}: range served");
        let body = collect(read.body).await.expect("read the range");
        assert_eq!(
            body,
            pattern_range(seed, first, last + 1),
            "{range:?}: bytes"
        );
    }

    for range in [
        ByteRange::FromTo {
            first: 1000,
            last: 1005,
        },
        ByteRange::FromTo { first: 5, last: 4 },
        ByteRange::From { first: 1000 },
        ByteRange::Suffix { len: 0 },
    ] {
        match store.get(bucket, &key, Some(range)).await {
            Err(BlobError::RangeNotSatisfiable) => {}
            other => panic!("{range:?} must be RangeNotSatisfiable, got {other:?}"),
        }
    }

    // Any range of an empty object is unsatisfiable.
    let (empty, _) = put_pattern(store, bucket, "ranges-empty", 0).await;
    match store
        .get(bucket, &empty, Some(ByteRange::From { first: 0 }))
        .await
    {
        Err(BlobError::RangeNotSatisfiable) => {}
        other => panic!("a range of an empty object must be RangeNotSatisfiable, got {other:?}"),
    }

    store.delete(bucket, &key).await.expect("delete");
    store.delete(bucket, &empty).await.expect("delete");
}

/// A copy, inside a bucket and across buckets, holds the same bytes; the source stays.
pub async fn copy_copies(store: &dyn BlobStore) {
    let size = 100_000;
    let (source, seed) = put_pattern(store, BucketKind::Users, "copy-source", size).await;
    for to_bucket in [BucketKind::Users, BucketKind::Projects] {
        let target = unique_key("copy-target");
        store
            .copy(BucketKind::Users, &source, to_bucket, &target)
            .await
            .unwrap_or_else(|e| panic!("copy to {to_bucket:?} failed: {e}"));
        let read = store.get(to_bucket, &target, None).await.expect("get copy");
        let (n, sha) = drain_sha256(read.body).await.expect("read copy");
        assert_eq!((n, sha), (size, pattern_sha256(seed, size)));
        store.delete(to_bucket, &target).await.expect("delete copy");
    }
    assert_eq!(
        store
            .head(BucketKind::Users, &source)
            .await
            .expect("source stays")
            .size,
        size
    );

    let missing = unique_key("copy-missing");
    match store
        .copy(
            BucketKind::Users,
            &missing,
            BucketKind::Users,
            &unique_key("copy-none"),
        )
        .await
    {
        Err(BlobError::NotFound) => {}
        other => panic!("copying a missing object must be NotFound, got {other:?}"),
    }
    store
        .delete(BucketKind::Users, &source)
        .await
        .expect("delete");
}

/// A copy of `size` bytes (S3: a multipart copy above the adapter's threshold) holds the same
/// bytes, inside a bucket and across buckets.
pub async fn copy_copies_any_size(store: &dyn BlobStore, size: u64) {
    let (source, seed) = put_pattern(store, BucketKind::Projects, "copy-size-source", size).await;
    for to_bucket in [BucketKind::Projects, BucketKind::Companies] {
        let target = unique_key("copy-size-target");
        store
            .copy(BucketKind::Projects, &source, to_bucket, &target)
            .await
            .unwrap_or_else(|e| panic!("copy of {size} bytes to {to_bucket:?} failed: {e}"));
        assert_eq!(
            store
                .head(to_bucket, &target)
                .await
                .expect("head copy")
                .size,
            size
        );
        let read = store.get(to_bucket, &target, None).await.expect("get copy");
        let (n, sha) = drain_sha256(read.body).await.expect("read copy");
        assert_eq!((n, sha), (size, pattern_sha256(seed, size)), "copied bytes");
        store.delete(to_bucket, &target).await.expect("delete copy");
    }
    store
        .delete(BucketKind::Projects, &source)
        .await
        .expect("delete");
}

/// A copy is sealed from its source: once copied, neither deleting the source nor writing it
/// again through a presigned PUT URL (what a client can still do with an upload URL) changes
/// the copy.
pub async fn copy_is_independent_of_its_source(store: &dyn BlobStore) {
    let bucket = BucketKind::Users;
    let source = unique_key("sealed-source");
    let before = b"reviewed bytes".to_vec();
    let ttl = Duration::from_secs(300);
    let client = http();
    let put_url = store
        .presign_put(
            bucket,
            &source,
            "text/plain",
            Some(before.len() as u64),
            ttl,
        )
        .await
        .expect("presign put");
    let status =
        status_of(request(&client, reqwest::Method::PUT, &put_url).body(before.clone())).await;
    assert!(status.is_success(), "first PUT: {status}");
    let sealed = unique_key("sealed-copy");
    store
        .copy(bucket, &source, bucket, &sealed)
        .await
        .expect("copy");

    store.delete(bucket, &source).await.expect("delete source");
    // Of the signed length, as any PUT to that URL must be.
    let after = b"something else".to_vec();
    let status =
        status_of(request(&client, reqwest::Method::PUT, &put_url).body(after.clone())).await;
    assert!(
        status.is_success(),
        "a PUT to the source's URL again: {status}"
    );

    let read = store
        .get(bucket, &sealed, None)
        .await
        .expect("get the copy");
    assert_eq!(collect(read.body).await.expect("body"), before, "the copy");
    assert_eq!(
        store.head(bucket, &sealed).await.expect("head").size,
        before.len() as u64
    );
    let read = store
        .get(bucket, &source, None)
        .await
        .expect("get the source");
    assert_eq!(collect(read.body).await.expect("body"), after, "the source");
    store.delete(bucket, &source).await.expect("delete");
    store.delete(bucket, &sealed).await.expect("delete");
}

/// A copy that fails (here: of a missing source) keeps nothing at its target. Returns the
/// target, for an adapter to check more (unfinished multipart uploads).
pub async fn failed_copy_keeps_nothing(store: &dyn BlobStore) -> (BucketKind, ObjectKey) {
    let bucket = BucketKind::Companies;
    let target = unique_key("failed-copy");
    match store
        .copy(bucket, &unique_key("failed-copy-missing"), bucket, &target)
        .await
    {
        Err(BlobError::NotFound) => {}
        other => panic!("copying a missing object must be NotFound, got {other:?}"),
    }
    assert_not_found(store, bucket, &target).await;
    (bucket, target)
}

/// `delete` removes the object; deleting it again, or a key never written, succeeds.
pub async fn delete_is_idempotent(store: &dyn BlobStore) {
    let bucket = BucketKind::Projects;
    let (key, _) = put_pattern(store, bucket, "delete", 10).await;
    store.delete(bucket, &key).await.expect("delete");
    assert_not_found(store, bucket, &key).await;
    store.delete(bucket, &key).await.expect("delete again");
    store
        .delete(bucket, &unique_key("delete-never-written"))
        .await
        .expect("delete of a missing key");
}

/// `head` reports the size, the entity tag `put` gave, and the content type; `get` gives the
/// same entity tag. Every adapter gives one (unquoted), and other bytes get another.
pub async fn head_reports_size(store: &dyn BlobStore) {
    let bucket = BucketKind::Users;
    let key = unique_key("head");
    let outcome = store
        .put(
            bucket,
            &key,
            "text/plain; charset=utf-8",
            pattern_stream(1, 4321),
        )
        .await
        .expect("put");
    let etag = outcome.etag.clone().expect("put gives an entity tag");
    assert!(
        !etag.is_empty() && !etag.contains('"'),
        "an unquoted entity tag: {etag:?}"
    );
    let meta = store.head(bucket, &key).await.expect("head");
    assert_eq!(meta.size, 4321);
    assert_eq!(
        meta.etag.as_deref(),
        Some(etag.as_str()),
        "head gives put's entity tag"
    );
    assert_eq!(
        meta.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let read = store.get(bucket, &key, None).await.expect("get");
    assert_eq!(
        read.etag.as_deref(),
        Some(etag.as_str()),
        "get gives put's entity tag"
    );
    drop(read);

    let other = unique_key("head-other");
    let changed = store
        .put(bucket, &other, "text/plain", pattern_stream(2, 4321))
        .await
        .expect("put");
    assert_ne!(
        changed.etag.as_deref(),
        Some(etag.as_str()),
        "other bytes, another entity tag"
    );
    store.delete(bucket, &key).await.expect("delete");
    store.delete(bucket, &other).await.expect("delete");
}

/// `get` and `head` of a missing key are `NotFound` (with or without a range).
pub async fn missing_is_not_found(store: &dyn BlobStore) {
    let key = unique_key("missing");
    for bucket in BucketKind::ALL {
        assert_not_found(store, bucket, &key).await;
        for range in [
            None,
            Some(ByteRange::From { first: 0 }),
            Some(ByteRange::Suffix { len: 3 }),
        ] {
            match store.get(bucket, &key, range).await {
                Err(BlobError::NotFound) => {}
                other => panic!("get {range:?} of a missing key must be NotFound, got {other:?}"),
            }
        }
    }
}

/// `health` answers Ok when the store is up.
pub async fn health_is_ok(store: &dyn BlobStore) {
    store.health().await.expect("health of a running store");
}

fn http() -> reqwest::Client {
    match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(client) => client,
        Err(e) => panic!("cannot build the HTTP client: {e}"),
    }
}

fn request(
    client: &reqwest::Client,
    method: reqwest::Method,
    p: &PresignedRequest,
) -> reqwest::RequestBuilder {
    let mut builder = client.request(method, &p.url);
    for (name, value) in &p.headers {
        builder = builder.header(name, value);
    }
    builder
}

fn assert_expiry(p: &PresignedRequest, ttl: Duration) {
    let now = chrono::Utc::now();
    let slack = chrono::Duration::seconds(2);
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    assert!(
        p.expires_at > now && p.expires_at <= now + ttl + slack,
        "expires_at {} must lie within the TTL asked",
        p.expires_at
    );
}

/// A presigned PUT done by a plain HTTP client stores the object; a presigned GET reads it back
/// with the `Content-Disposition`/`Content-Type` overrides asked for.
pub async fn presigned_put_then_get(store: &dyn BlobStore) {
    let bucket = BucketKind::Projects;
    let key = unique_key("presigned");
    let body = pattern_range(42, 0, 200_000);
    let ttl = Duration::from_secs(300);
    let put = store
        .presign_put(
            bucket,
            &key,
            "application/pdf",
            Some(body.len() as u64),
            ttl,
        )
        .await
        .expect("presign put");
    assert_eq!(put.method, PresignMethod::Put);
    assert_expiry(&put, ttl);
    let client = http();
    let answer = request(&client, reqwest::Method::PUT, &put)
        .body(body.clone())
        .send()
        .await
        .expect("presigned PUT sent");
    assert!(
        answer.status().is_success(),
        "presigned PUT refused: {}",
        answer.status()
    );
    let meta = store
        .head(bucket, &key)
        .await
        .expect("head after presigned PUT");
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(meta.content_type.as_deref(), Some("application/pdf"));

    let options = PresignGetOptions {
        content_disposition: Some("attachment; filename=\"r\u{e9}sum\u{e9} 1.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf".to_owned()),
        content_type: Some("application/x-test".to_owned()),
    };
    let get = store
        .presign_get(bucket, &key, &options, ttl)
        .await
        .expect("presign get");
    assert_eq!(get.method, PresignMethod::Get);
    assert_expiry(&get, ttl);
    let answer = request(&client, reqwest::Method::GET, &get)
        .send()
        .await
        .expect("presigned GET sent");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-test")
    );
    assert_eq!(header("content-disposition"), options.content_disposition);
    let got = answer.bytes().await.expect("presigned GET body");
    assert_eq!(got.as_ref(), body.as_slice());

    // Without overrides, the stored content type comes back.
    let plain = store
        .presign_get(bucket, &key, &PresignGetOptions::default(), ttl)
        .await
        .expect("presign get");
    let answer = request(&client, reqwest::Method::GET, &plain)
        .send()
        .await
        .expect("presigned GET sent");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    store.delete(bucket, &key).await.expect("delete");
}

/// Replaces the object key inside a presigned URL's path (`…/<key>?…` → `…/<key>x?…`).
fn with_altered_key(url: &str, key: &ObjectKey) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let encoded_tail = key.as_str().rsplit('/').next().unwrap_or_default();
    assert!(
        path.ends_with(encoded_tail),
        "URL path {path} must end with the key"
    );
    format!("{path}x?{query}")
}

/// The query parameters that carry a presigned URL's signature: S3's (SigV4) and the local
/// store's (its own routes, HMAC-SHA256).
const SIGNATURE_PARAMETERS: [&str; 2] = ["X-Amz-Signature=", "sig="];

/// Flips one character of the signature parameter's value.
fn with_altered_signature(url: &str) -> String {
    let query_start = url.find('?').unwrap_or(url.len());
    let at = SIGNATURE_PARAMETERS.iter().find_map(|marker| {
        url[query_start..]
            .match_indices(marker)
            .find(|(i, _)| matches!(url.as_bytes()[query_start + i - 1], b'?' | b'&'))
            .map(|(i, _)| query_start + i + marker.len())
    });
    let Some(at) = at else {
        panic!("presigned URL without a signature parameter ({SIGNATURE_PARAMETERS:?}): {url}");
    };
    let mut chars: Vec<char> = url.chars().collect();
    chars[at] = if chars[at] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

async fn status_of(builder: reqwest::RequestBuilder) -> reqwest::StatusCode {
    builder.send().await.expect("request sent").status()
}

/// A presigned URL is refused when its key (path), method, signature or signed headers are
/// altered, and nothing is written by a refused PUT.
pub async fn presigned_urls_refuse_tampering(store: &dyn BlobStore) {
    let bucket = BucketKind::Users;
    let client = http();
    let ttl = Duration::from_secs(300);
    let body = b"tamper test".to_vec();

    let key = unique_key("tamper");
    let put = store
        .presign_put(bucket, &key, "text/plain", Some(body.len() as u64), ttl)
        .await
        .expect("presign put");

    // Altered key: refused, and neither key gets an object.
    let altered = PresignedRequest {
        url: with_altered_key(&put.url, &key),
        ..put.clone()
    };
    let status =
        status_of(request(&client, reqwest::Method::PUT, &altered).body(body.clone())).await;
    assert!(
        status.is_client_error(),
        "PUT to an altered key must be refused, got {status}"
    );
    let altered_key = ObjectKey::from_stored(format!("{}x", key.as_str()));
    assert_not_found(store, bucket, &altered_key).await;

    // Altered signature.
    let forged = PresignedRequest {
        url: with_altered_signature(&put.url),
        ..put.clone()
    };
    let status =
        status_of(request(&client, reqwest::Method::PUT, &forged).body(body.clone())).await;
    assert!(
        status.is_client_error(),
        "PUT with an altered signature must be refused, got {status}"
    );

    // Altered signed header (content type).
    let status = status_of(
        client
            .put(&put.url)
            .header("Content-Type", "text/html")
            .header("Content-Length", body.len().to_string())
            .body(body.clone()),
    )
    .await;
    assert!(
        status.is_client_error(),
        "PUT with another content type must be refused, got {status}"
    );

    // Altered method: a PUT URL does not allow a GET or a DELETE, even with every signed
    // header sent, the signed length's body included (so the method is what is refused).
    for method in [reqwest::Method::DELETE, reqwest::Method::GET] {
        let status = status_of(request(&client, method.clone(), &put).body(body.clone())).await;
        assert_eq!(
            status,
            reqwest::StatusCode::FORBIDDEN,
            "{method} with a PUT URL must be refused"
        );
    }
    assert_not_found(store, bucket, &key).await;

    // The untouched URL works.
    let status = status_of(request(&client, reqwest::Method::PUT, &put).body(body.clone())).await;
    assert!(
        status.is_success(),
        "the untouched presigned PUT must work, got {status}"
    );

    let get = store
        .presign_get(bucket, &key, &PresignGetOptions::default(), ttl)
        .await
        .expect("presign get");
    let status = status_of(client.put(&get.url).body(b"overwrite".to_vec())).await;
    assert!(
        status.is_client_error(),
        "PUT with a GET URL must be refused, got {status}"
    );
    let status = status_of(client.delete(&get.url)).await;
    assert!(
        status.is_client_error(),
        "DELETE with a GET URL must be refused, got {status}"
    );
    let status = status_of(client.get(with_altered_signature(&get.url))).await;
    assert!(
        status.is_client_error(),
        "GET with an altered signature must be refused, got {status}"
    );
    let status = status_of(client.get(with_altered_key(&get.url, &key))).await;
    assert!(
        status.is_client_error(),
        "GET of an altered key must be refused, got {status}"
    );

    // Through all that, the object is intact.
    let read = store.get(bucket, &key, None).await.expect("get");
    assert_eq!(collect(read.body).await.expect("body"), body);
    store.delete(bucket, &key).await.expect("delete");
}

/// A request the store refuses: a 4xx, or the connection closed before the body was sent (a
/// store may answer, and hang up, as soon as it sees the request is wrong).
async fn assert_refused(builder: reqwest::RequestBuilder, what: &str) {
    match builder.send().await {
        Ok(answer) => assert!(
            answer.status().is_client_error(),
            "{what}: {}",
            answer.status()
        ),
        Err(e) => assert!(e.is_request() || e.is_body(), "{what}: {e}"),
    }
}

/// What a store does with a presigned PUT asked without a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsizedUploads {
    /// It refuses to sign one ([`BlobError::LengthRequired`]): S3.
    Refused,
    /// It signs one, and what the URL stores is bounded by this many bytes: the local store,
    /// whose URLs the service serves and counts.
    BoundedBy(u64),
}

/// No presigned PUT stores more than it may: with a signed length, a longer or shorter body is
/// refused (announced honestly, or sent chunked without a length) and nothing is stored; an
/// unsized URL is refused to sign or bounded.
pub async fn upload_urls_are_bounded(store: &dyn BlobStore, unsized_uploads: UnsizedUploads) {
    let bucket = BucketKind::Users;
    let client = http();
    let ttl = Duration::from_secs(300);
    let key = unique_key("bounded");
    let put = store
        .presign_put(bucket, &key, "application/octet-stream", Some(10), ttl)
        .await
        .expect("presign put");
    let chunked = |bytes: Vec<u8>| {
        reqwest::Body::wrap_stream(futures_util::stream::iter(
            bytes
                .chunks(3)
                .map(|c| Ok::<_, io::Error>(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        ))
    };
    for len in [11usize, 9, 1024] {
        let bytes = vec![7u8; len];
        let honest = client
            .put(&put.url)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", len.to_string())
            .body(bytes.clone());
        assert_refused(honest, &format!("{len} bytes announced")).await;
        let without_length = client
            .put(&put.url)
            .header("Content-Type", "application/octet-stream")
            .body(chunked(bytes));
        assert_refused(without_length, &format!("{len} bytes chunked")).await;
        assert_not_found(store, bucket, &key).await;
    }
    let status = status_of(request(&client, reqwest::Method::PUT, &put).body(vec![7u8; 10])).await;
    assert!(status.is_success(), "the signed length: {status}");
    assert_eq!(store.head(bucket, &key).await.expect("head").size, 10);
    store.delete(bucket, &key).await.expect("delete");

    let unsized_key = unique_key("unsized");
    let unsized_url = store
        .presign_put(bucket, &unsized_key, "application/octet-stream", None, ttl)
        .await;
    match (unsized_uploads, unsized_url) {
        (UnsizedUploads::Refused, Err(BlobError::LengthRequired)) => {}
        (UnsizedUploads::BoundedBy(limit), Ok(url)) => {
            let over = usize::try_from(limit + 1).expect("a small limit");
            let put = client
                .put(&url.url)
                .header("Content-Type", "application/octet-stream")
                .body(chunked(vec![1u8; over]));
            assert_refused(put, &format!("{over} bytes unsized")).await;
            assert_not_found(store, bucket, &unsized_key).await;
        }
        (expected, got) => panic!("an unsized upload URL: expected {expected:?}, got {got:?}"),
    }
}

/// A presigned URL is refused once its TTL has passed.
pub async fn presigned_urls_expire(store: &dyn BlobStore) {
    let bucket = BucketKind::Companies;
    let client = http();
    let (key, _) = put_pattern(store, bucket, "expiry", 10).await;
    let ttl = Duration::from_secs(1);
    let get = store
        .presign_get(bucket, &key, &PresignGetOptions::default(), ttl)
        .await
        .expect("presign get");
    let put_key = unique_key("expiry-put");
    let put = store
        .presign_put(bucket, &put_key, "text/plain", Some(4), ttl)
        .await
        .expect("presign put");
    assert_expiry(&get, ttl);
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let status = status_of(client.get(&get.url)).await;
    assert!(
        status.is_client_error(),
        "an expired GET URL must be refused, got {status}"
    );
    let status =
        status_of(request(&client, reqwest::Method::PUT, &put).body(b"late".to_vec())).await;
    assert!(
        status.is_client_error(),
        "an expired PUT URL must be refused, got {status}"
    );
    assert_not_found(store, bucket, &put_key).await;
    store.delete(bucket, &key).await.expect("delete");
}

/// Size after which [`failed_source_keeps_nothing`]'s source fails: several parts in.
pub const FAILING_SOURCE_AFTER: u64 = 3 * MIB8 + 12_345;

/// A put whose source fails after a few MiB returns `Source` with that very error and keeps no
/// object. Returns the bucket and key, for an adapter to check more (multipart uploads).
pub async fn failed_source_keeps_nothing(store: &dyn BlobStore) -> (BucketKind, ObjectKey) {
    let bucket = BucketKind::Projects;
    let key = unique_key("failed-source");
    let injected = io::Error::new(io::ErrorKind::ConnectionAborted, "injected source failure");
    let body = pattern_stream_then(5, FAILING_SOURCE_AFTER, Some(injected));
    match store
        .put(bucket, &key, "application/octet-stream", body)
        .await
    {
        Err(BlobError::Source(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
            assert_eq!(e.to_string(), "injected source failure");
        }
        other => panic!("a failing source must give BlobError::Source, got {other:?}"),
    }
    assert_not_found(store, bucket, &key).await;

    // Same for a source failing before the first part is full (the single-PUT path).
    let small_key = unique_key("failed-source-small");
    let injected = io::Error::other("early failure");
    let body = pattern_stream_then(6, 1_000, Some(injected));
    match store.put(bucket, &small_key, "text/plain", body).await {
        Err(BlobError::Source(e)) => assert_eq!(e.to_string(), "early failure"),
        other => panic!("a failing source must give BlobError::Source, got {other:?}"),
    }
    assert_not_found(store, bucket, &small_key).await;
    (bucket, key)
}

/// A put whose future is dropped mid-stream (after more than a part was sent) keeps no object.
/// Returns the bucket and key, for an adapter to check more (multipart uploads).
pub async fn dropped_put_keeps_nothing(store: Arc<dyn BlobStore>) -> (BucketKind, ObjectKey) {
    dropped_put_keeps_nothing_with(store, async |_, _| {}).await
}

/// [`dropped_put_keeps_nothing`], calling `before_drop` while the put is under way (an adapter
/// checks there that its upload is indeed in progress, so that the test proves something).
pub async fn dropped_put_keeps_nothing_with(
    store: Arc<dyn BlobStore>,
    before_drop: impl AsyncFnOnce(BucketKind, &ObjectKey),
) -> (BucketKind, ObjectKey) {
    let bucket = BucketKind::Users;
    let key = unique_key("dropped-put");
    let sent_enough = Arc::new(Notify::new());
    let signal = sent_enough.clone();
    // 2 parts' worth of bytes, then a stream that never ends.
    let body: ByteStream = Box::pin(
        pattern_stream(9, 2 * MIB8 + 1)
            .chain(stream::once(async move {
                signal.notify_one();
                Ok(Bytes::new())
            }))
            .chain(stream::pending()),
    );
    let put_store = store.clone();
    let put_key = key.clone();
    let put = tokio::spawn(async move {
        put_store
            .put(bucket, &put_key, "application/octet-stream", body)
            .await
    });
    tokio::time::timeout(Duration::from_secs(30), sent_enough.notified())
        .await
        .expect("the put reads its source");
    // Let the parts reach the store, then drop the put.
    tokio::time::sleep(Duration::from_millis(500)).await;
    before_drop(bucket, &key).await;
    assert!(
        !put.is_finished(),
        "the put cannot finish: its source never ends"
    );
    put.abort();
    let _ = put.await;
    assert_not_found(&*store, bucket, &key).await;
    (bucket, key)
}
