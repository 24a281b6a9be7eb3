//! Writing an object: stream to a temporary file in the object's directory, fsync it, then
//! publish it under its key without ever replacing an existing object (a hard link, which
//! fails when the name exists: atomic, and refused rather than overwritten), then its sidecar,
//! and fsync the directory. A temporary file is removed when the source fails, and by a drop
//! guard when the future is dropped midway.

use std::{
    io,
    path::{Path, PathBuf},
};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use storage_domain::ports::{BlobError, ByteStream, PutOutcome};
use tokio::io::AsyncWriteExt;

use crate::keys::{ObjectPaths, TEMP_PREFIX};

/// Bytes gathered before each write to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// What the sidecar file of an object records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sidecar {
    pub size: u64,
    pub content_type: String,
    /// SHA-256 of the bytes, hex: the object's entity tag.
    pub etag: String,
}

/// A temporary file removed on drop unless it was published.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// A fresh name in `dir` (`.tmp-<uuid>`; keys never start with `.`).
    pub(crate) fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().as_simple())),
            armed: true,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file now (the error path of a put).
    async fn remove(mut self) {
        self.armed = false;
        if let Err(e) = tokio::fs::remove_file(&self.path).await
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a temporary file");
        }
    }

    /// Renames the file to `to` (atomic, replaces `to`); the guard is then disarmed.
    async fn publish(mut self, to: &Path) -> io::Result<()> {
        tokio::fs::rename(&self.path, to).await?;
        self.armed = false;
        Ok(())
    }

    /// Gives the file the name `to` unless that name exists (`AlreadyExists`, and the temporary
    /// file is removed): a hard link is created atomically or not at all, then the temporary
    /// name is removed.
    async fn publish_new(self, to: &Path) -> io::Result<()> {
        if let Err(e) = tokio::fs::hard_link(&self.path, to).await {
            self.remove().await;
            return Err(e);
        }
        self.remove().await;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let path = std::mem::take(&mut self.path);
        // No blocking in async code: hand the unlink to the blocking pool when a runtime runs.
        let remove = move || {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a temporary file");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(remove);
            }
            Err(_) => remove(),
        }
    }
}

/// Maps an I/O error of the store to the port's error.
pub(crate) fn io_error(e: &io::Error) -> BlobError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => BlobError::NotFound,
        io::ErrorKind::StorageFull
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::PermissionDenied
        | io::ErrorKind::QuotaExceeded
        | io::ErrorKind::TimedOut => BlobError::Unavailable(format!("local store: {e}")),
        _ => BlobError::Other(format!("local store: {e}")),
    }
}

/// Maps an I/O error met while writing (a missing directory there is not a missing object).
fn write_error(e: &io::Error) -> BlobError {
    match io_error(e) {
        BlobError::NotFound => BlobError::Other(format!("local store: {e}")),
        other => other,
    }
}

/// Flushes a directory's entries (a rename or a new entry in it) to disk.
pub(crate) async fn sync_dir(dir: &Path) -> io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

/// Creates `dir` and its missing parents below `top` (which must exist), fsyncing each parent
/// that got a new entry.
async fn ensure_dir(dir: &Path, top: &Path) -> io::Result<()> {
    if tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    // The directories to create, deepest first.
    let mut missing = Vec::new();
    let mut current = dir;
    while current != top && !tokio::fs::try_exists(current).await.unwrap_or(false) {
        missing.push(current.to_path_buf());
        match current.parent() {
            Some(parent) => current = parent,
            None => break,
        }
    }
    for created in missing.iter().rev() {
        match tokio::fs::create_dir(created).await {
            Ok(()) => {}
            // Another put made it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        if let Some(parent) = created.parent() {
            sync_dir(parent).await?;
        }
    }
    Ok(())
}

/// Streams `body` into the object at `paths`, atomically. Keeps nothing when `body` fails
/// (returned as [`BlobError::Source`]) or when the future is dropped.
pub(crate) async fn write_object(
    paths: &ObjectPaths,
    content_type: &str,
    mut body: ByteStream,
) -> Result<PutOutcome, BlobError> {
    ensure_dir(&paths.dir, &paths.bucket_dir)
        .await
        .map_err(|e| write_error(&e))?;
    let temp = TempFile::in_dir(&paths.dir);
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp.path())
        .await
        .map_err(|e| write_error(&e))?;
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(source) => {
                drop(out);
                temp.remove().await;
                return Err(BlobError::Source(source));
            }
        };
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if let Err(e) = out.write_all(&chunk).await {
            drop(out);
            temp.remove().await;
            return Err(write_error(&e));
        }
    }
    let finish = async {
        out.flush().await?;
        out.get_ref().sync_all().await
    };
    if let Err(e) = finish.await {
        temp.remove().await;
        return Err(write_error(&e));
    }
    let sidecar = Sidecar {
        size,
        content_type: content_type.to_owned(),
        etag: hex::encode(hasher.finalize()),
    };
    // The object first, never over an existing one; then its sidecar (a reader in between
    // finds no sidecar: no entity tag, the default content type).
    temp.publish_new(&paths.object).await.map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            BlobError::AlreadyExists
        } else {
            write_error(&e)
        }
    })?;
    write_sidecar(paths, &sidecar).await?;
    sync_dir(&paths.dir).await.map_err(|e| write_error(&e))?;
    Ok(PutOutcome {
        size,
        etag: Some(sidecar.etag),
    })
}

async fn write_sidecar(paths: &ObjectPaths, sidecar: &Sidecar) -> Result<(), BlobError> {
    let bytes = serde_json::to_vec(sidecar)
        .map_err(|e| BlobError::Other(format!("local store: sidecar: {e}")))?;
    let temp = TempFile::in_dir(&paths.dir);
    let write = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp.path())
            .await?;
        file.write_all(&bytes).await?;
        file.sync_all().await
    };
    if let Err(e) = write.await {
        temp.remove().await;
        return Err(write_error(&e));
    }
    temp.publish(&paths.meta).await.map_err(|e| write_error(&e))
}

/// Reads the sidecar of an object of `size` bytes; `None` when missing, unreadable or stale
/// (another size).
pub(crate) async fn read_sidecar(path: &Path, size: u64) -> Option<Sidecar> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let sidecar: Sidecar = serde_json::from_slice(&bytes).ok()?;
    (sidecar.size == size).then_some(sidecar)
}
