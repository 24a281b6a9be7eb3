//! A proxy upload's `file` held aside until the fields it needs have arrived (a multipart body
//! may send `file` before `bucket` and `path`: generated clients send fields alphabetically).
//!
//! The first [`MEMORY_BYTES`] stay in memory; beyond, the bytes go to a temporary file (mode
//! 0600, in the configured directory). The size limit is enforced as the bytes arrive. The file
//! is removed when the spool, or the stream read from it, is dropped: on success, on refusal, on
//! a client that disconnects, on any error.

use std::{io, path::Path};

use actix_multipart::Field;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, stream};
use storage_domain::{StorageError, ports::ByteStream};
use tempfile::TempPath;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// Bytes kept in memory before the spool moves to a file.
pub(crate) const MEMORY_BYTES: usize = 256 * 1024;

/// Removes the temporary file when dropped, off the async worker thread.
#[derive(Debug)]
struct Removal(Option<TempPath>);

impl Drop for Removal {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn_blocking(move || drop(path));
                }
                Err(_) => drop(path),
            }
        }
    }
}

/// A received `file` part.
#[derive(Debug, Default)]
pub(crate) struct Spool {
    head: BytesMut,
    file: Option<(tokio::fs::File, Removal)>,
    len: u64,
}

/// Why a part could not be spooled.
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// Over the limit: the bytes received so far are dropped.
    TooLarge { limit: u64 },
    /// The client's body failed (disconnect, malformed multipart).
    Body(String),
    /// The temporary file could not be written.
    Disk(io::Error),
}

impl From<SpoolError> for StorageError {
    fn from(e: SpoolError) -> Self {
        match e {
            SpoolError::TooLarge { limit } => StorageError::PayloadTooLarge { limit },
            SpoolError::Body(detail) => StorageError::InvalidRequest(detail),
            SpoolError::Disk(e) => StorageError::Internal {
                cause: format!("spooling an upload to a temporary file failed: {e}"),
            },
        }
    }
}

impl Spool {
    /// Reads `field` to its end, at most `limit` bytes. With `keep: false` the bytes are only
    /// counted (a caller who may not upload anyway).
    pub(crate) async fn receive(
        field: &mut Field,
        limit: u64,
        dir: &Path,
        keep: bool,
    ) -> Result<Self, SpoolError> {
        let mut spool = Spool::default();
        while let Some(chunk) = field.next().await {
            let chunk =
                chunk.map_err(|e| SpoolError::Body(format!("reading the upload failed: {e}")))?;
            if spool.len + chunk.len() as u64 > limit {
                return Err(SpoolError::TooLarge { limit });
            }
            if keep {
                spool.push(chunk, dir).await.map_err(SpoolError::Disk)?;
            } else {
                spool.len += chunk.len() as u64;
            }
        }
        Ok(spool)
    }

    /// Appends `chunk` (to memory first, then to a temporary file in `dir`).
    pub(crate) async fn push(&mut self, chunk: Bytes, dir: &Path) -> io::Result<()> {
        self.len += chunk.len() as u64;
        if self.file.is_none() && self.head.len() + chunk.len() <= MEMORY_BYTES {
            self.head.extend_from_slice(&chunk);
            return Ok(());
        }
        if self.file.is_none() {
            let dir = dir.to_owned();
            let (file, path) = tokio::task::spawn_blocking(move || {
                tempfile::Builder::new()
                    .prefix("storage-upload-")
                    .suffix(".part")
                    .tempfile_in(dir)
                    .map(tempfile::NamedTempFile::into_parts)
            })
            .await
            .map_err(io::Error::other)??;
            self.file = Some((tokio::fs::File::from_std(file), Removal(Some(path))));
        }
        if let Some((file, _)) = &mut self.file {
            file.write_all(&chunk).await?;
        }
        Ok(())
    }

    /// The number of bytes received.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The bytes, in order; the temporary file goes when the stream is dropped.
    pub(crate) async fn into_stream(self) -> io::Result<ByteStream> {
        let head = stream::iter((!self.head.is_empty()).then(|| Ok(self.head.freeze())));
        let Some((mut file, removal)) = self.file else {
            return Ok(Box::pin(head));
        };
        file.flush().await?;
        file.rewind().await?;
        let tail = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
        Ok(Box::pin(head.chain(tail).map(move |item| {
            // The removal lives as long as the stream.
            let _ = &removal;
            item
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_deletes_the_file_without_a_runtime() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let (_, path) = file.into_parts();
        let shown = path.to_path_buf();
        assert!(shown.exists());
        drop(Removal(Some(path)));
        assert!(!shown.exists());
    }
}
