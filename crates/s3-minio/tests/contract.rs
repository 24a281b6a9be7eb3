//! The blob contract, and S3-specific checks, against the test Garage (`TEST_S3_*`, set by
//! `tests/run.sh`).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use s3::{Bucket, Region, creds::Credentials};
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{BlobError, BlobStore, ByteRange},
};
use storage_s3_minio::S3BlobStore;
use storage_test_support::{
    blob_contract::{self as contract, MIB8},
    bytes_gen::{collect, drain_sha256, pattern_range, pattern_sha256, pattern_stream},
    env::require,
    fault_proxy::{Fault, FaultProxy, Rule, Seen},
    s3::{garage_addr, s3_config_from_env, s3_store_from_env},
};

/// The adapter's part size, around which sizes are tested.
const PART: u64 = storage_s3_minio::PART_SIZE as u64;

async fn store() -> Arc<dyn BlobStore> {
    s3_store_from_env().await
}

async fn store_direct() -> Arc<S3BlobStore> {
    s3_store_from_env().await
}

#[tokio::test]
async fn round_trip_0() {
    contract::round_trip(&*store().await, 0).await;
}

#[tokio::test]
async fn round_trip_1() {
    contract::round_trip(&*store().await, 1).await;
}

#[tokio::test]
async fn round_trip_8mib_minus_1() {
    contract::round_trip(&*store().await, MIB8 - 1).await;
}

#[tokio::test]
async fn round_trip_8mib() {
    contract::round_trip(&*store().await, MIB8).await;
}

#[tokio::test]
async fn round_trip_8mib_plus_1() {
    contract::round_trip(&*store().await, MIB8 + 1).await;
}

#[tokio::test]
async fn round_trip_3x8mib_plus_7() {
    contract::round_trip(&*store().await, 3 * MIB8 + 7).await;
}

#[tokio::test]
async fn round_trip_part_minus_1() {
    contract::round_trip(&*store().await, PART - 1).await;
}

#[tokio::test]
async fn round_trip_part() {
    contract::round_trip(&*store().await, PART).await;
}

#[tokio::test]
async fn round_trip_part_plus_1() {
    contract::round_trip(&*store().await, PART + 1).await;
}

#[tokio::test]
async fn ranged_reads() {
    contract::ranged_reads(&*store().await).await;
}

#[tokio::test]
async fn copy_copies() {
    contract::copy_copies(&*store().await).await;
}

#[tokio::test]
async fn delete_is_idempotent() {
    contract::delete_is_idempotent(&*store().await).await;
}

#[tokio::test]
async fn head_reports_size() {
    contract::head_reports_size(&*store().await).await;
}

#[tokio::test]
async fn missing_is_not_found() {
    contract::missing_is_not_found(&*store().await).await;
}

#[tokio::test]
async fn health_is_ok() {
    contract::health_is_ok(&*store().await).await;
}

#[tokio::test]
async fn copy_copies_any_size() {
    contract::copy_copies_any_size(&*store().await, MIB8 + 3).await;
}

#[tokio::test]
async fn copy_is_independent_of_its_source() {
    contract::copy_is_independent_of_its_source(&*store().await).await;
}

#[tokio::test]
async fn failed_copy_keeps_nothing() {
    let (bucket, key) = contract::failed_copy_keeps_nothing(&*store().await).await;
    assert!(uploads_of(bucket, &key).await.is_empty());
}

#[tokio::test]
async fn presigned_put_then_get() {
    contract::presigned_put_then_get(&*store().await).await;
}

#[tokio::test]
async fn presigned_urls_refuse_tampering() {
    contract::presigned_urls_refuse_tampering(&*store().await).await;
}

#[tokio::test]
async fn presigned_urls_expire() {
    contract::presigned_urls_expire(&*store().await).await;
}

#[tokio::test]
async fn upload_urls_are_bounded() {
    contract::upload_urls_are_bounded(&*store().await, contract::UnsizedUploads::Refused).await;
}

// --- S3-specific checks -------------------------------------------------------------------

/// A store that copies part by part above `threshold` bytes, in parts of 5 MiB (S3's
/// smallest): the path of copies above 5 GiB, exercised with small objects.
async fn part_copying_store(threshold: u64) -> Arc<dyn BlobStore> {
    let mut config = s3_config_from_env();
    config.multipart_copy_threshold = threshold;
    config.copy_part_size = storage_s3_minio::MIN_PART_SIZE;
    Arc::new(S3BlobStore::connect(config).await.unwrap())
}

/// Above the threshold the copy goes part by part (three parts here, the last short), and
/// leaves no multipart upload behind.
#[tokio::test]
async fn a_copy_above_the_threshold_goes_part_by_part() {
    let store = part_copying_store(6 * 1024 * 1024).await;
    contract::copy_copies_any_size(&*store, 2 * storage_s3_minio::MIN_PART_SIZE + 7).await;
    contract::copy_is_independent_of_its_source(&*store).await;
    let (bucket, key) = contract::failed_copy_keeps_nothing(&*store).await;
    assert!(uploads_of(bucket, &key).await.is_empty());
}

/// A part copy the store refuses (Garage refuses `UploadPartCopy` from an object small enough
/// to be stored inline, a deterministic failure) fails the copy, which aborts its upload: no
/// object and no multipart upload is left at the target.
#[tokio::test]
async fn a_failed_part_copy_leaves_nothing() {
    let store = part_copying_store(1).await;
    let bucket = BucketKind::Users;
    let source = contract::unique_key("part-copy-small");
    store
        .put(
            bucket,
            &source,
            "text/plain",
            storage_test_support::bytes_gen::pattern_stream(3, 1000),
        )
        .await
        .unwrap();
    let target = contract::unique_key("part-copy-target");
    let copied = store.copy(bucket, &source, bucket, &target).await;
    // Garage's 400 (not a signature problem: that would be a 403).
    assert!(
        matches!(&copied, Err(BlobError::Other(m)) if m.contains("400")),
        "the refused part fails the copy: {copied:?}"
    );
    assert!(matches!(
        store.head(bucket, &target).await,
        Err(BlobError::NotFound)
    ));
    assert!(
        uploads_of(bucket, &target).await.is_empty(),
        "the upload was aborted"
    );
    store.delete(bucket, &source).await.unwrap();
}

/// A raw rust-s3 handle on the test bucket `kind`, to look behind the adapter.
fn raw_bucket(kind: BucketKind) -> Box<Bucket> {
    let config = s3_config_from_env();
    let credentials = Credentials::new(
        Some(&require("TEST_S3_ACCESS_KEY")),
        Some(&require("TEST_S3_SECRET_KEY")),
        None,
        None,
        None,
    )
    .unwrap();
    let region = Region::Custom {
        region: config.region.clone(),
        endpoint: config.endpoint_url().unwrap(),
    };
    let mut bucket = Bucket::new(config.buckets.get(kind), region, credentials).unwrap();
    bucket.set_path_style();
    bucket
}

/// The multipart uploads in progress for `key`.
async fn uploads_of(kind: BucketKind, key: &ObjectKey) -> Vec<String> {
    raw_bucket(kind)
        .list_multiparts_uploads(Some(key.as_str()), None)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|page| page.uploads)
        .filter(|u| u.key == key.as_str())
        .map(|u| u.id)
        .collect()
}

#[tokio::test]
async fn failed_source_leaves_no_multipart_upload() {
    let (bucket, key) = contract::failed_source_keeps_nothing(&*store().await).await;
    // The abort is awaited before `put` returns: nothing may be left, right away.
    assert_eq!(uploads_of(bucket, &key).await, Vec::<String>::new());
}

#[tokio::test]
async fn dropped_put_leaves_no_multipart_upload() {
    let (bucket, key) =
        contract::dropped_put_keeps_nothing_with(store().await, async |bucket, key| {
            assert_eq!(
                uploads_of(bucket, key).await.len(),
                1,
                "a multipart upload is in progress before the drop"
            );
        })
        .await;
    // The abort runs in a task spawned on drop: give it a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = uploads_of(bucket, &key).await;
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "multipart uploads left behind: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sanity check of the helper above: an upload left in progress on purpose is listed.
#[tokio::test]
async fn multipart_listing_sees_uploads_in_progress() {
    let key = contract::unique_key("listing");
    let bucket = raw_bucket(BucketKind::Users);
    let started = bucket
        .initiate_multipart_upload(key.as_str(), "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(
        uploads_of(BucketKind::Users, &key).await,
        vec![started.upload_id.clone()]
    );
    bucket
        .abort_upload(key.as_str(), &started.upload_id)
        .await
        .unwrap();
    assert!(uploads_of(BucketKind::Users, &key).await.is_empty());
}

/// Multipart puts report the entity tag the store then gives on `head`.
#[tokio::test]
async fn multipart_put_reports_the_stored_etag() {
    let store = store().await;
    let key = contract::unique_key("etag");
    let size = 2 * MIB8 + 3;
    let outcome = store
        .put(
            BucketKind::Users,
            &key,
            "application/octet-stream",
            storage_test_support::bytes_gen::pattern_stream(11, size),
        )
        .await
        .unwrap();
    assert_eq!(outcome.size, size);
    let meta = store.head(BucketKind::Users, &key).await.unwrap();
    assert!(outcome.etag.is_some());
    assert_eq!(meta.etag, outcome.etag);
    assert!(!meta.etag.unwrap_or_default().contains('"'));
    store.delete(BucketKind::Users, &key).await.unwrap();
}

async fn within<T>(bound: Duration, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(bound, f).await {
        Ok(out) => out,
        Err(_) => panic!("the call hung for more than {bound:?}"),
    }
}

/// A closed port is `Unavailable` for every call, quickly (no hang, never `NotFound`).
#[tokio::test]
async fn closed_port_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = s3_config_from_env();
    config.endpoint = format!("127.0.0.1:{port}");
    config.secure = false;
    let store = S3BlobStore::build(config.clone()).unwrap();
    let key = contract::unique_key("closed");
    let started = std::time::Instant::now();
    let bounded = Duration::from_secs(5);
    let check = |what: &str, result: Result<(), BlobError>| match result {
        Err(BlobError::Unavailable(_)) => {}
        other => panic!("{what} on a closed port must be Unavailable, got {other:?}"),
    };
    check(
        "head",
        within(bounded, store.head(BucketKind::Users, &key))
            .await
            .map(drop),
    );
    check(
        "get",
        within(bounded, store.get(BucketKind::Users, &key, None))
            .await
            .map(drop),
    );
    check(
        "delete",
        within(bounded, store.delete(BucketKind::Users, &key)).await,
    );
    check("health", within(bounded, store.health()).await);
    let body = storage_test_support::bytes_gen::pattern_stream(1, 100);
    check(
        "put",
        within(
            bounded,
            store.put(BucketKind::Users, &key, "text/plain", body),
        )
        .await
        .map(drop),
    );
    let connect = within(bounded, S3BlobStore::connect(config)).await;
    assert!(
        matches!(
            connect,
            Err(storage_s3_minio::ConnectError::Check {
                source: BlobError::Unavailable(_),
                ..
            })
        ),
        "connect to a closed port: {connect:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

/// A store that accepts connections and never answers is `Unavailable` within the timeouts.
#[tokio::test]
async fn silent_store_is_unavailable_within_the_timeouts() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold connections, never answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = s3_config_from_env();
    config.endpoint = format!("127.0.0.1:{port}");
    config.secure = false;
    config.request_timeout = Duration::from_secs(1);
    config.connect_timeout = Duration::from_secs(1);
    let store = S3BlobStore::build(config).unwrap();
    let key = contract::unique_key("silent");
    let started = std::time::Instant::now();
    let get = tokio::time::timeout(
        Duration::from_secs(10),
        store.get(BucketKind::Users, &key, None),
    )
    .await
    .expect("get must not hang");
    assert!(
        matches!(get, Err(BlobError::Unavailable(_))),
        "get: {get:?}"
    );
    let head = tokio::time::timeout(Duration::from_secs(10), store.head(BucketKind::Users, &key))
        .await
        .expect("head must not hang");
    assert!(
        matches!(head, Err(BlobError::Unavailable(_))),
        "head: {head:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    holder.abort();
}

/// `connect` refuses a missing bucket, naming it, unless asked to create missing buckets; then
/// it creates it (the test key may create buckets: tests/support/garage.sh allows it).
#[tokio::test]
async fn connect_checks_the_buckets() {
    let missing = format!("contract-missing-{}", uuid::Uuid::new_v4().as_simple());
    let mut config = s3_config_from_env();
    config.buckets.projects = missing.clone();
    config.create_missing_buckets = false;
    let err = S3BlobStore::connect(config.clone()).await.unwrap_err();
    assert!(
        err.to_string().contains(&missing),
        "the error names the bucket: {err}"
    );
    assert!(matches!(
        err,
        storage_s3_minio::ConnectError::MissingBucket { .. }
    ));

    config.create_missing_buckets = true;
    let store = S3BlobStore::connect(config.clone())
        .await
        .unwrap_or_else(|e| panic!("connect must create {missing}: {e}"));
    // The bucket exists now, empty, and the store uses it.
    let mut bucket = raw_bucket(BucketKind::Users);
    bucket.name = missing.clone();
    let pages = bucket.list(String::new(), None).await.unwrap();
    assert!(pages.iter().all(|p| p.contents.is_empty()), "{pages:?}");
    let key = contract::unique_key("created-bucket");
    store
        .put(
            BucketKind::Projects,
            &key,
            "text/plain",
            pattern_stream(3, 5),
        )
        .await
        .unwrap();
    assert_eq!(
        bucket.list(String::new(), None).await.unwrap()[0].contents[0].key,
        key.as_str()
    );
    // Found now, without creating.
    config.create_missing_buckets = false;
    S3BlobStore::connect(config).await.unwrap();
    store.delete(BucketKind::Projects, &key).await.unwrap();
    bucket.delete().await.unwrap();
}

// --- part uploads against a store that fails a part ---------------------------------------

/// The adapter over a [`FaultProxy`] in front of the test Garage.
async fn through_proxy() -> (FaultProxy, S3BlobStore) {
    let proxy = FaultProxy::start(garage_addr()).await;
    let mut config = s3_config_from_env();
    config.endpoint = proxy.endpoint();
    let store = S3BlobStore::connect(config).await.unwrap();
    (proxy, store)
}

/// The `UploadPart` requests the proxy saw.
fn part_requests(proxy: &FaultProxy) -> Vec<Seen> {
    proxy
        .seen()
        .into_iter()
        .filter(Seen::is_upload_part)
        .collect()
}

/// The first part the store fails (a 503, or a connection closed without an answer) is sent
/// again: the put succeeds, the object holds exactly the bytes sent, and no multipart upload is
/// left.
#[tokio::test]
async fn a_part_failed_once_is_sent_again_and_the_object_is_whole() {
    for fault in [Fault::Status(503), Fault::HangUp] {
        let (proxy, store) = through_proxy().await;
        proxy.fail(Rule::upload_part(None).times(1), fault);
        let key = contract::unique_key("part-retry");
        let (size, seed) = (2 * PART + 5, 17); // three parts
        let outcome = store
            .put(
                BucketKind::Users,
                &key,
                "application/octet-stream",
                pattern_stream(seed, size),
            )
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: the put failed: {e:?}"));
        assert_eq!(outcome.size, size, "{fault:?}");

        let parts = part_requests(&proxy);
        let failed: Vec<&Seen> = parts.iter().filter(|s| s.failed.is_some()).collect();
        assert_eq!(failed.len(), 1, "{fault:?}: one part failed: {parts:#?}");
        let number = failed[0].part_number();
        assert_eq!(
            parts.iter().filter(|s| s.part_number() == number).count(),
            2,
            "{fault:?}: the failed part {number:?} was sent again: {parts:#?}"
        );
        assert_eq!(parts.len(), 4, "{fault:?}: three parts and one retry");

        // Read back straight from Garage, not through the proxy.
        let direct = store_direct().await;
        let read = direct.get(BucketKind::Users, &key, None).await.unwrap();
        assert_eq!(
            drain_sha256(read.body).await.unwrap(),
            (size, pattern_sha256(seed, size)),
            "{fault:?}: the stored bytes are the bytes sent"
        );
        assert_eq!(
            direct.head(BucketKind::Users, &key).await.unwrap().etag,
            outcome.etag,
            "{fault:?}"
        );
        assert_eq!(
            uploads_of(BucketKind::Users, &key).await,
            Vec::<String>::new()
        );
        direct.delete(BucketKind::Users, &key).await.unwrap();
    }
}

/// A part the store fails every time: the put fails `Unavailable` after the adapter's three
/// attempts at that part, the multipart upload is aborted before `put` returns, and nothing is
/// kept.
#[tokio::test]
async fn a_part_that_keeps_failing_aborts_the_upload_and_keeps_nothing() {
    let (proxy, store) = through_proxy().await;
    proxy.fail(Rule::upload_part(Some(2)), Fault::Status(503));
    let key = contract::unique_key("part-fails");
    let err = store
        .put(
            BucketKind::Users,
            &key,
            "application/octet-stream",
            pattern_stream(5, 3 * PART),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::Unavailable(ref m) if m.contains("503")),
        "{err:?}"
    );
    let parts = part_requests(&proxy);
    let second: Vec<&Seen> = parts
        .iter()
        .filter(|s| s.part_number() == Some(2))
        .collect();
    assert_eq!(second.len(), 3, "three attempts at part 2: {parts:#?}");
    assert!(second.iter().all(|s| s.failed.is_some()));
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.method == "DELETE" && s.query.contains("uploadId=")),
        "an AbortMultipartUpload was sent"
    );
    // Awaited before `put` returned: nothing may be left, right away.
    assert_eq!(
        uploads_of(BucketKind::Users, &key).await,
        Vec::<String>::new()
    );
    match store_direct().await.head(BucketKind::Users, &key).await {
        Err(BlobError::NotFound) => {}
        other => panic!("no object may be kept, got {other:?}"),
    }
}

// --- reads in segments ---------------------------------------------------------------------

/// The smallest segment: reads of small objects go in several segments.
const SEGMENT: u64 = storage_s3_minio::MIN_DOWNLOAD_SEGMENT_BYTES;

/// The test Garage, read in segments of 64 KiB, three in flight, four of read-ahead memory.
fn segmented_config() -> storage_s3_minio::S3Config {
    let mut config = s3_config_from_env();
    config.download_segment_bytes = SEGMENT;
    config.download_parallel_segments = 3;
    config.download_read_ahead_bytes = 4 * SEGMENT;
    config
}

async fn segmented_store() -> Arc<S3BlobStore> {
    Arc::new(S3BlobStore::connect(segmented_config()).await.unwrap())
}

/// Whole reads around the segment size, and over many segments, read back the bytes written.
#[tokio::test]
async fn reads_in_segments_round_trip() {
    let store = segmented_store().await;
    for size in [
        0,
        1,
        SEGMENT - 1,
        SEGMENT,
        SEGMENT + 1,
        3 * SEGMENT + 7,
        2 * PART + 5,
    ] {
        contract::round_trip(&*store, size).await;
    }
    contract::ranged_reads(&*store).await;
}

/// Ranges across segment bounds: the same size, range and bytes as asked; the unsatisfiable
/// ones are `RangeNotSatisfiable`.
#[tokio::test]
async fn ranged_reads_in_segments_cross_segment_bounds() {
    let store = segmented_store().await;
    let bucket = BucketKind::Companies;
    let size = 10 * SEGMENT + 123;
    let seed = 29;
    let key = contract::unique_key("segment-ranges");
    store
        .put(
            bucket,
            &key,
            "application/octet-stream",
            pattern_stream(seed, size),
        )
        .await
        .unwrap();
    let cases = [
        (ByteRange::From { first: 0 }, (0, size - 1)),
        (
            ByteRange::FromTo {
                first: 1,
                last: 3 * SEGMENT,
            },
            (1, 3 * SEGMENT),
        ),
        (
            ByteRange::FromTo {
                first: SEGMENT - 1,
                last: SEGMENT,
            },
            (SEGMENT - 1, SEGMENT),
        ),
        (
            ByteRange::From { first: SEGMENT + 5 },
            (SEGMENT + 5, size - 1),
        ),
        (
            ByteRange::Suffix {
                len: 2 * SEGMENT + 1,
            },
            (size - 2 * SEGMENT - 1, size - 1),
        ),
        (
            ByteRange::FromTo {
                first: 5 * SEGMENT,
                last: size + 1000,
            },
            (5 * SEGMENT, size - 1),
        ),
    ];
    for (range, (first, last)) in cases {
        let read = store
            .get(bucket, &key, Some(range))
            .await
            .unwrap_or_else(|e| panic!("get {range:?}: {e}"));
        assert_eq!(read.total_size, size, "{range:?}");
        assert_eq!(read.range, Some((first, last)), "{range:?}");
        let body = collect(read.body).await.unwrap();
        assert!(
            body == pattern_range(seed, first, last + 1),
            "{range:?}: the bytes differ ({} read, {} expected)",
            body.len(),
            last + 1 - first
        );
    }
    for range in [
        ByteRange::From { first: size },
        ByteRange::FromTo {
            first: size,
            last: size + 10,
        },
    ] {
        match store.get(bucket, &key, Some(range)).await {
            Err(BlobError::RangeNotSatisfiable) => {}
            other => panic!("{range:?} must be RangeNotSatisfiable, got {other:?}"),
        }
    }
    let read = store.get(bucket, &key, None).await.unwrap();
    assert_eq!((read.total_size, read.range), (size, None));
    assert_eq!(
        drain_sha256(read.body).await.unwrap(),
        (size, pattern_sha256(seed, size))
    );
    store.delete(bucket, &key).await.unwrap();
}

/// The reads are cut as configured: a 64 KiB first GET, then segment GETs of 64 KiB (the last
/// short), each sent once.
#[tokio::test]
async fn a_read_goes_as_segment_gets() {
    let proxy = FaultProxy::start(garage_addr()).await;
    let mut config = segmented_config();
    config.endpoint = proxy.endpoint();
    let store = S3BlobStore::connect(config).await.unwrap();
    let key = contract::unique_key("segment-gets");
    let size = 4 * SEGMENT + 10;
    store
        .put(
            BucketKind::Users,
            &key,
            "application/octet-stream",
            pattern_stream(3, size),
        )
        .await
        .unwrap();
    let read = store.get(BucketKind::Users, &key, None).await.unwrap();
    assert_eq!(
        drain_sha256(read.body).await.unwrap(),
        (size, pattern_sha256(3, size))
    );
    let mut ranges: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET")
        .filter_map(|s| s.range)
        .collect();
    let mut expected: Vec<String> = (0..5)
        .map(|k| {
            let first = k * SEGMENT;
            format!("bytes={first}-{}", (first + SEGMENT - 1).min(size - 1))
        })
        .collect();
    ranges.sort();
    expected.sort();
    assert_eq!(ranges, expected);
    store_direct()
        .await
        .delete(BucketKind::Users, &key)
        .await
        .unwrap();
}

/// A segment the store fails ends the read with an error after exactly the bytes before it.
#[tokio::test]
async fn a_failed_segment_ends_the_read_after_the_bytes_before_it() {
    let proxy = FaultProxy::start(garage_addr()).await;
    let mut config = segmented_config();
    config.endpoint = proxy.endpoint();
    let store = S3BlobStore::connect(config).await.unwrap();
    let key = contract::unique_key("segment-fails");
    let size = 12 * SEGMENT;
    store
        .put(
            BucketKind::Users,
            &key,
            "application/octet-stream",
            pattern_stream(8, size),
        )
        .await
        .unwrap();
    proxy.fail(Rule::get_range_from(5 * SEGMENT), Fault::Status(503));
    let mut body = store.get(BucketKind::Users, &key, None).await.unwrap().body;
    let mut got = Vec::new();
    let err = loop {
        match body.next().await {
            Some(Ok(bytes)) => got.extend_from_slice(&bytes),
            Some(Err(e)) => break e,
            None => panic!("the read must fail, it ended after {} bytes", got.len()),
        }
    };
    assert!(err.to_string().contains("503"), "{err}");
    assert!(body.next().await.is_none(), "nothing after the error");
    assert_eq!(got.len() as u64, 5 * SEGMENT);
    assert!(got == pattern_range(8, 0, 5 * SEGMENT));
    store_direct()
        .await
        .delete(BucketKind::Users, &key)
        .await
        .unwrap();
}

/// An object replaced during a read ends the read with an error: no byte of the new object
/// follows bytes of the old one.
#[tokio::test]
async fn an_object_replaced_during_a_read_ends_it_with_an_error() {
    let store = segmented_store().await;
    let key = contract::unique_key("segment-replaced");
    let size = 16 * SEGMENT;
    store
        .put(
            BucketKind::Users,
            &key,
            "application/octet-stream",
            pattern_stream(1, size),
        )
        .await
        .unwrap();
    let mut body = store.get(BucketKind::Users, &key, None).await.unwrap().body;
    let mut got = body.next().await.unwrap().unwrap().to_vec();
    store
        .put(
            BucketKind::Users,
            &key,
            "application/octet-stream",
            pattern_stream(2, size),
        )
        .await
        .unwrap();
    let err = loop {
        match body.next().await {
            Some(Ok(bytes)) => got.extend_from_slice(&bytes),
            Some(Err(e)) => break e,
            None => panic!("the read must fail, it read {} bytes", got.len()),
        }
    };
    assert!(err.to_string().contains("changed"), "{err}");
    assert!(
        got == pattern_range(1, 0, got.len() as u64),
        "only bytes of the first object"
    );
    store.delete(BucketKind::Users, &key).await.unwrap();
}
