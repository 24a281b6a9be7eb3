//! Streamed put: one `PUT` under [`PART_SIZE`], else a multipart upload with at most
//! [`MAX_PARTS_IN_FLIGHT`] parts uploading at once.
//!
//! rust-s3's own `put_object_stream` is not used: it runs up to 10 parts of 8 MiB at once,
//! reads an `AsyncRead` (which would hide the source's `io::Error` inside an `S3Error`), and
//! leaves the upload behind when its future is dropped. Here:
//!
//! - memory is bounded by `MAX_PARTS_IN_FLIGHT` parts uploading (each held twice, once here and
//!   once in the request rust-s3 builds) plus the part being read: about 40 MiB of buffers per
//!   put, whatever the size (`storage-bench blob` measured a peak RSS of 66–74 MiB for a process
//!   doing one 1 GiB or 2 GiB put and get, allocator slack included);
//! - rust-s3 signs each part's payload: it hashes every byte with SHA-256 twice and MD5 once,
//!   on the runtime's worker threads (about 3 passes over 8 MiB per part); that is the main cost
//!   of a put next to a direct presigned upload;
//! - a failure of the source, of a part or of the completion aborts the upload before `put`
//!   returns; dropping the future aborts it from a task spawned on the runtime
//!   ([`AbortGuard`]), including an upload whose initiation was still in flight.

use std::io;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use s3::{Bucket, error::S3Error, serde_types::Part};
use storage_domain::ports::{BlobError, ByteStream, PutOutcome};
use tokio::{sync::oneshot, task::JoinSet};

use crate::error::{map_s3, unquote_etag, xml_text};

/// Size of one part of a multipart upload; a body shorter than this goes as one `PUT`.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one multipart upload uploading at the same time.
pub const MAX_PARTS_IN_FLIGHT: usize = 2;
/// S3's limit on the number of parts (so objects are limited to 80 GB with 8 MiB parts).
const MAX_PARTS: u32 = 10_000;

/// Streams `body` into `key`.
pub(crate) async fn put_stream(
    bucket: &Bucket,
    key: &str,
    content_type: &str,
    body: ByteStream,
) -> Result<PutOutcome, BlobError> {
    let mut reader = ChunkReader::new(body);
    let first = reader.next_chunk().await.map_err(BlobError::Source)?;
    if first.len() < PART_SIZE {
        // The whole body fitted in less than one part: one PUT, nothing to abort.
        let response = bucket
            .put_object_with_content_type(key, &first, content_type)
            .await
            .map_err(map_s3)?;
        // rust-s3 answers a PUT with the ETag header as the body.
        let etag = response
            .as_str()
            .ok()
            .map(unquote_etag)
            .filter(|e| !e.is_empty());
        return Ok(PutOutcome {
            size: first.len() as u64,
            etag,
        });
    }

    let upload_id = initiate(bucket, key, content_type).await?;
    let guard = AbortGuard {
        bucket: bucket.clone(),
        key: key.to_owned(),
        upload_id,
        armed: true,
    };
    match upload_parts(
        bucket,
        key,
        &guard.upload_id,
        content_type,
        first,
        &mut reader,
    )
    .await
    {
        Ok(outcome) => {
            guard.disarm();
            Ok(outcome)
        }
        Err(error) => {
            guard.abort().await;
            Err(error)
        }
    }
}

/// Initiates the upload in a task of its own so that, should the caller's future be dropped
/// while the store is answering, the task still learns the upload id and aborts it.
async fn initiate(bucket: &Bucket, key: &str, content_type: &str) -> Result<String, BlobError> {
    let (tx, rx) = oneshot::channel();
    let task_bucket = bucket.clone();
    let task_key = key.to_owned();
    let task_content_type = content_type.to_owned();
    tokio::spawn(async move {
        let result = task_bucket
            .initiate_multipart_upload(&task_key, &task_content_type)
            .await;
        if let Err(Ok(orphan)) = tx.send(result) {
            abort_upload(&task_bucket, &task_key, &orphan.upload_id).await;
        }
    });
    let initiated = rx
        .await
        .map_err(|_| BlobError::Other("multipart initiation task failed".to_owned()))?
        .map_err(map_s3)?;
    Ok(initiated.upload_id)
}

/// Uploads `first` and the rest of `reader` as parts, then completes the upload. On error,
/// the parts still uploading are cancelled when the `JoinSet` drops; the caller aborts.
async fn upload_parts(
    bucket: &Bucket,
    key: &str,
    upload_id: &str,
    content_type: &str,
    first: Vec<u8>,
    reader: &mut ChunkReader,
) -> Result<PutOutcome, BlobError> {
    let mut in_flight: JoinSet<Result<Part, BlobError>> = JoinSet::new();
    let mut parts: Vec<Part> = Vec::new();
    let mut size: u64 = 0;
    let mut part_number: u32 = 0;
    let mut chunk = first;
    loop {
        while in_flight.len() >= MAX_PARTS_IN_FLIGHT {
            if let Some(done) = in_flight.join_next().await {
                parts.push(joined(done)?);
            }
        }
        part_number += 1;
        if part_number > MAX_PARTS {
            return Err(BlobError::Other(format!(
                "object too large: more than {MAX_PARTS} parts of {PART_SIZE} bytes"
            )));
        }
        let last = chunk.len() < PART_SIZE;
        size += chunk.len() as u64;
        let part_bucket = bucket.clone();
        let part_key = key.to_owned();
        let part_upload_id = upload_id.to_owned();
        let part_content_type = content_type.to_owned();
        in_flight.spawn(async move {
            part_bucket
                .put_multipart_chunk(
                    chunk,
                    &part_key,
                    part_number,
                    &part_upload_id,
                    &part_content_type,
                )
                .await
                .map_err(map_s3)
        });
        if last {
            break;
        }
        // The parts in flight keep uploading (they are tasks) while the source is read.
        chunk = reader.next_chunk().await.map_err(BlobError::Source)?;
        while let Some(done) = in_flight.try_join_next() {
            parts.push(joined(done)?);
        }
        if chunk.is_empty() {
            break;
        }
    }
    while let Some(done) = in_flight.join_next().await {
        parts.push(joined(done)?);
    }
    parts.sort_by_key(|p| p.part_number);

    let response = bucket
        .complete_multipart_upload(key, upload_id, parts)
        .await
        .map_err(map_s3)?;
    let etag = response
        .as_str()
        .ok()
        .and_then(|xml| xml_text(xml, "ETag"))
        .map(|e| unquote_etag(&e))
        .filter(|e| !e.is_empty());
    Ok(PutOutcome { size, etag })
}

fn joined(
    done: Result<Result<Part, BlobError>, tokio::task::JoinError>,
) -> Result<Part, BlobError> {
    done.map_err(|_| BlobError::Other("part upload task failed".to_owned()))?
}

/// Aborts a multipart upload; failures are logged (there is no one left to tell).
async fn abort_upload(bucket: &Bucket, key: &str, upload_id: &str) {
    match bucket.abort_upload(key, upload_id).await {
        Ok(()) | Err(S3Error::HttpFailWithBody(404, _)) => {}
        Err(error) => tracing::warn!(
            bucket = %bucket.name,
            key,
            error = %map_s3(error),
            "could not abort a multipart upload; it stays until the bucket's lifecycle removes it"
        ),
    }
}

/// Aborts the multipart upload unless disarmed: awaited on the error path, spawned on the
/// runtime when dropped armed (the put's future was dropped).
struct AbortGuard {
    bucket: Bucket,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortGuard {
    fn disarm(mut self) {
        self.armed = false;
    }

    async fn abort(mut self) {
        self.armed = false;
        abort_upload(&self.bucket, &self.key, &self.upload_id).await;
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let bucket = self.bucket.clone();
        let key = std::mem::take(&mut self.key);
        let upload_id = std::mem::take(&mut self.upload_id);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { abort_upload(&bucket, &key, &upload_id).await });
            }
            Err(_) => tracing::warn!(
                bucket = %bucket.name,
                key,
                "put dropped outside a tokio runtime; its multipart upload cannot be aborted"
            ),
        }
    }
}

/// Cuts a byte stream into chunks of [`PART_SIZE`] bytes (the last one shorter).
struct ChunkReader {
    body: ByteStream,
    leftover: Bytes,
    ended: bool,
}

impl ChunkReader {
    fn new(body: ByteStream) -> Self {
        Self {
            body,
            leftover: Bytes::new(),
            ended: false,
        }
    }

    /// The next chunk: [`PART_SIZE`] bytes, fewer at the end of the stream, empty after it.
    async fn next_chunk(&mut self) -> Result<Vec<u8>, io::Error> {
        let mut chunk = Vec::new();
        loop {
            if !self.leftover.is_empty() {
                let take = (PART_SIZE - chunk.len()).min(self.leftover.len());
                if chunk.capacity() == 0 {
                    // One allocation per part (pages a short body leaves untouched cost nothing).
                    chunk.reserve_exact(PART_SIZE);
                }
                chunk.extend_from_slice(&self.leftover[..take]);
                self.leftover.advance(take);
            }
            if chunk.len() == PART_SIZE || self.ended {
                return Ok(chunk);
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.leftover = bytes,
                Some(Err(error)) => {
                    self.ended = true;
                    return Err(error);
                }
                None => self.ended = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(sizes: &[usize]) -> ByteStream {
        let items: Vec<Result<Bytes, io::Error>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| Ok(Bytes::from(vec![i as u8; *n])))
            .collect();
        Box::pin(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn chunks_are_part_sized_whatever_the_items() {
        let mut r = ChunkReader::new(stream_of(&[3, PART_SIZE, PART_SIZE - 3, 10]));
        let a = r.next_chunk().await.unwrap();
        assert_eq!(a.len(), PART_SIZE);
        assert_eq!(&a[..4], &[0, 0, 0, 1]);
        let b = r.next_chunk().await.unwrap();
        assert_eq!(b.len(), PART_SIZE);
        assert_eq!((b[0], b[2], b[3]), (1, 1, 2));
        assert_eq!(r.next_chunk().await.unwrap(), vec![3u8; 10]);
        assert!(r.next_chunk().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_source_error_is_returned_as_is() {
        let items: Vec<Result<Bytes, io::Error>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "client gone",
            )),
        ];
        let mut r = ChunkReader::new(Box::pin(futures_util::stream::iter(items)));
        let err = r.next_chunk().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
}
