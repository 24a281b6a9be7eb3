//! Checks of the local store the blob contract cannot see: temporary files, the layout on disk,
//! keys refused, reopening. The contract itself runs in `crates/server/tests/local_blob_contract.rs`
//! (its presigned cases need the HTTP routes).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::{io, path::Path, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use secrecy::SecretSlice;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{BlobError, BlobStore, ByteStream},
};
use storage_local_fs::{LocalBlobStore, LocalConfig};
use storage_test_support::{
    blob_contract,
    bytes_gen::{collect, pattern_range, pattern_stream, pattern_stream_then},
};

async fn open(root: &Path) -> LocalBlobStore {
    LocalBlobStore::open(LocalConfig {
        root: root.to_path_buf(),
        public_base_url: "http://127.0.0.1:9".into(),
        presign_secret: SecretSlice::from(vec![42u8; 32]),
        presign_max_ttl: Duration::from_secs(3600),
    })
    .await
    .unwrap()
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn temps_under(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.rsplit('/').next().unwrap().starts_with(".tmp-"))
        .collect()
}

#[tokio::test]
async fn open_creates_the_bucket_directories_and_health_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let store = open(&root).await;
    for bucket in ["users", "companies", "projects"] {
        assert!(root.join(bucket).is_dir(), "{bucket}");
    }
    store.health().await.unwrap();
    std::fs::remove_dir(root.join("companies")).unwrap();
    assert!(matches!(
        store.health().await,
        Err(BlobError::Unavailable(_))
    ));
}

#[tokio::test]
async fn layout_is_bucket_then_key_with_a_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let key = ObjectKey::from_stored("5678/0190abc");
    let outcome = store
        .put(
            BucketKind::Projects,
            &key,
            "application/pdf",
            pattern_stream(3, 1000),
        )
        .await
        .unwrap();
    assert_eq!(
        files_under(dir.path()),
        vec!["projects/5678/0190abc", "projects/5678/0190abc.meta"]
    );
    let on_disk = std::fs::read(dir.path().join("projects/5678/0190abc")).unwrap();
    assert_eq!(on_disk, pattern_range(3, 0, 1000));
    // The entity tag is the SHA-256 of the bytes.
    use sha2::Digest;
    assert_eq!(
        outcome.etag.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&on_disk)).as_str())
    );
}

#[tokio::test]
async fn a_failing_source_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (bucket, key) = blob_contract::failed_source_keeps_nothing(&store).await;
    assert!(matches!(
        store.head(bucket, &key).await,
        Err(BlobError::NotFound)
    ));
    assert_eq!(temps_under(dir.path()), Vec::<String>::new());
    assert_eq!(
        files_under(dir.path()),
        Vec::<String>::new(),
        "nothing at all is left"
    );
}

#[tokio::test]
async fn a_dropped_put_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(open(dir.path()).await);
    let root = dir.path().to_path_buf();
    blob_contract::dropped_put_keeps_nothing_with(store, async |_, _| {
        // The put is under way: its temporary file exists (so the check below proves something).
        assert_eq!(temps_under(&root).len(), 1, "{:?}", files_under(&root));
    })
    .await;
    // The guard hands the unlink to the blocking pool: give it a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !temps_under(dir.path()).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "temporary files left: {:?}",
            temps_under(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stale_temporary_files_are_swept_on_open_and_fresh_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    let owner = dir.path().join("users/alice");
    std::fs::create_dir_all(&owner).unwrap();
    let stale = owner.join(".tmp-stale");
    let fresh = owner.join(".tmp-fresh");
    std::fs::write(&stale, b"x").unwrap();
    std::fs::write(&fresh, b"x").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    drop(open(dir.path()).await);
    assert!(!stale.exists());
    assert!(fresh.exists());
}

/// The local store's refusal of a key: `Other`, saying so (never `NotFound`, which would mean
/// the key was looked up).
#[track_caller]
fn assert_key_refused(what: &str, result: Result<(), BlobError>) {
    match result {
        Err(BlobError::Other(message)) if message.starts_with("key refused by the local store") => {
        }
        other => panic!("{what}: the key must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn keys_that_could_escape_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let store = open(&root).await;
    for raw in [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a\\b",
        "a//b",
        "a/b.meta",
        "",
    ] {
        let key = ObjectKey::from_stored(raw);
        let put = store
            .put(BucketKind::Users, &key, "text/plain", pattern_stream(1, 10))
            .await;
        assert_key_refused(&format!("put {raw:?}"), put.map(drop));
        assert_key_refused(
            &format!("head {raw:?}"),
            store.head(BucketKind::Users, &key).await.map(drop),
        );
        assert_key_refused(
            &format!("get {raw:?}"),
            store.get(BucketKind::Users, &key, None).await.map(drop),
        );
        assert_key_refused(
            &format!("presign_put {raw:?}"),
            store
                .presign_put(
                    BucketKind::Users,
                    &key,
                    "text/plain",
                    None,
                    Duration::from_secs(5),
                )
                .await
                .map(drop),
        );
    }
    assert_eq!(files_under(dir.path()), Vec::<String>::new());
}

#[tokio::test]
async fn objects_survive_a_reopen_and_copies_are_independent_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = ObjectKey::from_stored("alice/one");
    let copy = ObjectKey::from_stored("bob/two");
    {
        let store = open(dir.path()).await;
        store
            .put(
                BucketKind::Users,
                &key,
                "text/plain",
                Box::pin(stream::iter([Ok(Bytes::from_static(b"hello"))])),
            )
            .await
            .unwrap();
        store
            .copy(BucketKind::Users, &key, BucketKind::Companies, &copy)
            .await
            .unwrap();
    }
    let store = open(dir.path()).await;
    let meta = store.head(BucketKind::Companies, &copy).await.unwrap();
    assert_eq!(meta.size, 5);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(dir.path().join("users/alice/one")).unwrap();
    let b = std::fs::metadata(dir.path().join("companies/bob/two")).unwrap();
    assert_ne!(a.ino(), b.ino(), "a copy is not a hard link");
    assert_eq!(a.nlink(), 1);
    store.delete(BucketKind::Users, &key).await.unwrap();
    let read = store.get(BucketKind::Companies, &copy, None).await.unwrap();
    assert_eq!(collect(read.body).await.unwrap(), b"hello");
}

#[tokio::test]
async fn reads_come_in_bounded_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let key = ObjectKey::from_stored("u/big");
    let size = 3 * 1024 * 1024 + 5;
    store
        .put(BucketKind::Users, &key, "x/y", pattern_stream(8, size))
        .await
        .unwrap();
    let mut body: ByteStream = store.get(BucketKind::Users, &key, None).await.unwrap().body;
    let (mut total, mut largest) = (0u64, 0usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len() as u64;
        largest = largest.max(chunk.len());
    }
    assert_eq!(total, size);
    assert!(largest <= storage_local_fs::READ_CHUNK, "{largest}");
}

#[tokio::test]
async fn a_source_error_after_the_last_byte_still_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let key = ObjectKey::from_stored("u/late");
    let body = pattern_stream_then(1, 10, Some(io::Error::other("late")));
    assert!(matches!(
        store.put(BucketKind::Users, &key, "x/y", body).await,
        Err(BlobError::Source(_))
    ));
    assert_eq!(files_under(dir.path()), Vec::<String>::new());
}
