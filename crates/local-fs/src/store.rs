//! [`LocalBlobStore`]: the [`BlobStore`] port on a directory tree.

use std::{
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice};
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{
        BlobError, BlobMeta, BlobRead, BlobStore, ByteRange, ByteStream, PresignGetOptions,
        PresignedRequest, PutOutcome,
    },
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{
    keys::{self, ObjectPaths, TEMP_PREFIX},
    presign::{Grant, Refusal, SecretError, SignedRequest, UrlSigner},
    write::{io_error, read_sidecar, sync_dir, write_object},
};

/// Size of the chunks a read yields.
pub const READ_CHUNK: usize = 64 * 1024;
/// Temporary files older than this are left-overs of a crash, removed by [`LocalBlobStore::open`].
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Settings of the local store.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The directory holding one sub-directory per bucket (created when missing).
    pub root: PathBuf,
    /// The base of presigned URLs: the service's public address (`PUBLIC_BASE_URL`).
    pub public_base_url: String,
    /// The HMAC key of presigned URLs (at least 32 bytes).
    pub presign_secret: SecretSlice<u8>,
    /// Longest lifetime of a presigned URL (capped at 7 days).
    pub presign_max_ttl: Duration,
}

/// Why the store could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create or use the directory {path}: {source}")]
    Directory { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Objects as files under `<root>/<bucket>/<key>`, with a `<key>.meta` sidecar holding the
/// content type and the entity tag (the SHA-256 of the bytes). Writes are atomic (temporary file
/// in the same directory, fsync, rename, fsync of the directory); presigned URLs are HMAC-signed
/// URLs to the service's own `/blob/...` routes (see [`crate::presign`]).
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    signer: UrlSigner,
}

impl LocalBlobStore {
    /// Creates the root and bucket directories when missing, and removes temporary files left
    /// by a crash (older than [`STALE_TEMP_AGE`]).
    ///
    /// # Errors
    /// [`OpenError`]: a directory that cannot be created or is not a directory, or a secret
    /// too short.
    pub async fn open(config: LocalConfig) -> Result<Self, OpenError> {
        let signer = UrlSigner::new(
            config.presign_secret.expose_secret(),
            &config.public_base_url,
            config.presign_max_ttl,
        )?;
        let dir_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Directory { path, source }
        };
        tokio::fs::create_dir_all(&config.root)
            .await
            .map_err(dir_error(&config.root))?;
        for bucket in BucketKind::ALL {
            let dir = keys::bucket_dir(&config.root, bucket);
            match tokio::fs::create_dir(&dir).await {
                Ok(()) => sync_dir(&config.root).await.map_err(dir_error(&dir))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let meta = tokio::fs::metadata(&dir).await.map_err(dir_error(&dir))?;
                    if !meta.is_dir() {
                        return Err(OpenError::Directory {
                            path: dir,
                            source: io::Error::other("exists and is not a directory"),
                        });
                    }
                }
                Err(e) => return Err(dir_error(&dir)(e)),
            }
        }
        let root = config.root.clone();
        let swept = tokio::task::spawn_blocking(move || sweep_stale_temps(&root, STALE_TEMP_AGE))
            .await
            .unwrap_or(0);
        if swept > 0 {
            tracing::info!(swept, root = %config.root.display(), "removed temporary files left by a crash");
        }
        Ok(Self {
            root: config.root,
            signer,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The signer of this store's URLs.
    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    /// Checks a request made with one of this store's presigned URLs, now.
    ///
    /// # Errors
    /// The [`Refusal`] that applies.
    pub fn verify(&self, request: &SignedRequest<'_>) -> Result<Grant, Refusal> {
        self.signer.verify(request, chrono::Utc::now())
    }

    fn paths(&self, bucket: BucketKind, key: &ObjectKey) -> Result<ObjectPaths, BlobError> {
        keys::object_paths(&self.root, bucket, key)
            .map_err(|e| BlobError::Other(format!("key refused by the local store: {e}")))
    }

    /// Opens an object for reading: the file, its size and its sidecar.
    async fn open_object(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
    ) -> Result<(tokio::fs::File, u64, ObjectPaths), BlobError> {
        let paths = self.paths(bucket, key)?;
        let file = tokio::fs::File::open(&paths.object)
            .await
            .map_err(|e| io_error(&e))?;
        let meta = file.metadata().await.map_err(|e| io_error(&e))?;
        if !meta.is_file() {
            return Err(BlobError::NotFound);
        }
        Ok((file, meta.len(), paths))
    }
}

/// Removes `.tmp-*` files older than `age` under `root`; returns how many.
fn sweep_stale_temps(root: &Path, age: Duration) -> usize {
    let mut removed = 0;
    let mut stack = vec![root.to_path_buf()];
    let now = SystemTime::now();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let stale = entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age));
            if stale && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// The bytes `first..=last` of `file`, in chunks of [`READ_CHUNK`].
async fn stream_range(
    mut file: tokio::fs::File,
    first: u64,
    last: u64,
) -> Result<ByteStream, BlobError> {
    if first > 0 {
        file.seek(io::SeekFrom::Start(first))
            .await
            .map_err(|e| io_error(&e))?;
    }
    let reader = file.take(last - first + 1);
    Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
        reader, READ_CHUNK,
    )))
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        body: ByteStream,
    ) -> Result<PutOutcome, BlobError> {
        let paths = self.paths(bucket, key)?;
        write_object(&paths, content_type, body).await
    }

    async fn get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError> {
        let (file, size, paths) = self.open_object(bucket, key).await?;
        let served = match range {
            None => None,
            Some(range) => Some(range.resolve(size).ok_or(BlobError::RangeNotSatisfiable)?),
        };
        let etag = read_sidecar(&paths.meta, size).await.map(|s| s.etag);
        let body = match served {
            Some((first, last)) => stream_range(file, first, last).await?,
            None if size == 0 => Box::pin(futures_util::stream::empty()),
            None => stream_range(file, 0, size - 1).await?,
        };
        Ok(BlobRead {
            total_size: size,
            range: served,
            etag,
            body,
        })
    }

    async fn head(&self, bucket: BucketKind, key: &ObjectKey) -> Result<BlobMeta, BlobError> {
        let paths = self.paths(bucket, key)?;
        let meta = tokio::fs::metadata(&paths.object)
            .await
            .map_err(|e| io_error(&e))?;
        if !meta.is_file() {
            return Err(BlobError::NotFound);
        }
        let sidecar = read_sidecar(&paths.meta, meta.len()).await;
        Ok(BlobMeta {
            size: meta.len(),
            etag: sidecar.as_ref().map(|s| s.etag.clone()),
            content_type: sidecar.map(|s| s.content_type),
        })
    }

    async fn copy(
        &self,
        from_bucket: BucketKind,
        from: &ObjectKey,
        to_bucket: BucketKind,
        to: &ObjectKey,
    ) -> Result<(), BlobError> {
        // Bytes are copied (no hard link, no reflink): the two objects are independent files.
        let (file, size, paths) = self.open_object(from_bucket, from).await?;
        let content_type = read_sidecar(&paths.meta, size)
            .await
            .map_or_else(|| "application/octet-stream".to_owned(), |s| s.content_type);
        let target = self.paths(to_bucket, to)?;
        let body: ByteStream = Box::pin(tokio_util::io::ReaderStream::with_capacity(
            file.take(size),
            READ_CHUNK,
        ));
        let outcome = write_object(&target, &content_type, body)
            .await
            .map_err(|e| match e {
                // A read error of the source is the store's, not a caller's stream.
                BlobError::Source(e) => io_error(&e),
                other => other,
            })?;
        if outcome.size != size {
            // The source changed under us (objects are written once, so this is a fault).
            let _ = self.delete(to_bucket, to).await;
            return Err(BlobError::Other(format!(
                "local store: copied {} bytes of a {size}-byte object",
                outcome.size
            )));
        }
        Ok(())
    }

    async fn delete(&self, bucket: BucketKind, key: &ObjectKey) -> Result<(), BlobError> {
        let paths = self.paths(bucket, key)?;
        let mut removed = false;
        for path in [&paths.object, &paths.meta] {
            match tokio::fs::remove_file(path).await {
                Ok(()) => removed = true,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) => {}
                Err(e) => return Err(io_error(&e)),
            }
        }
        if removed {
            sync_dir(&paths.dir).await.map_err(|e| io_error(&e))?;
        }
        Ok(())
    }

    async fn presign_put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        content_length: Option<u64>,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        self.paths(bucket, key)?;
        Ok(self.signer.sign_put(
            bucket,
            key,
            content_type,
            content_length,
            ttl,
            chrono::Utc::now(),
        ))
    }

    async fn presign_get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        options: &PresignGetOptions,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        self.paths(bucket, key)?;
        Ok(self
            .signer
            .sign_get(bucket, key, options, ttl, chrono::Utc::now()))
    }

    async fn health(&self) -> Result<(), BlobError> {
        for bucket in BucketKind::ALL {
            let dir = keys::bucket_dir(&self.root, bucket);
            match tokio::fs::metadata(&dir).await {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(BlobError::Unavailable(format!(
                        "local store: {} is not a directory",
                        dir.display()
                    )));
                }
                Err(e) => {
                    return Err(BlobError::Unavailable(format!(
                        "local store: {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
        Ok(())
    }
}
