//! Streamed put: one `PUT` under [`PART_SIZE`], else a multipart upload with at most
//! [`MAX_PARTS_IN_FLIGHT`] parts uploading at once.
//!
//! rust-s3's own `put_object_stream` is not used: it runs up to 10 parts of 8 MiB at once,
//! reads an `AsyncRead` (which would hide the source's `io::Error` inside an `S3Error`), and
//! leaves the upload behind when its future is dropped. Here:
//!
//! - each part goes to a presigned `UploadPart` URL (query-string SigV4, payload
//!   `UNSIGNED-PAYLOAD`) with the adapter's own HTTP client, its bytes handed over without a
//!   copy. rust-s3's `put_multipart_chunk` signs the payload instead: it hashes every byte with
//!   SHA-256 twice and MD5 once and copies the part into its request, which made a proxied
//!   upload run at ~0.56x a direct presigned upload on a 2-core machine (`storage-bench
//!   proxy`). The content is still covered end to end: the service hashes the stream itself
//!   (SHA-256 of the version) and the transport is the store's TLS when `MINIO_SECURE`;
//! - memory is bounded for the whole store, not per put: every put draws its part buffers
//!   from one [`PartBudget`] (`UPLOAD_BUFFER_BYTES`, buffers of [`PART_SIZE`] reused from put to
//!   put). A put waits (bounded, `UPLOAD_BUFFER_WAIT_SECONDS`) for one buffer before it reads
//!   its first byte, and answers [`BlobError::Busy`] having read nothing when none came free;
//!   that buffer stays its own until its last byte, so it never waits mid-body. While spare
//!   buffers exist it takes up to [`MAX_PARTS_IN_FLIGHT`] more, to read the next part while
//!   parts upload (one reading + two uploading: 15 MiB at most);
//! - a failure of the source, of a part or of the completion aborts the upload before `put`
//!   returns; dropping the future aborts it from a task spawned on the runtime
//!   ([`AbortGuard`]), including an upload whose initiation was still in flight.

use std::{
    io,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use http::HeaderMap;
use s3::{Bucket, error::S3Error, serde_types::Part};
use storage_domain::ports::{BlobError, ByteStream, PutOutcome};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, oneshot},
    task::JoinSet,
};

use crate::{
    error::{map_s3, map_status, unquote_etag, xml_text},
    sign::{Presign, Signer},
    store::Target,
};

/// Size of one part of a multipart upload (S3's smallest part), and so of one buffer of the
/// upload budget; a body shorter than this goes as one `PUT`.
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts of one multipart upload uploading at the same time.
pub const MAX_PARTS_IN_FLIGHT: usize = 2;
/// S3's limit on the number of parts.
pub(crate) const MAX_PARTS: u32 = 10_000;
/// The largest object a streamed put stores: [`MAX_PARTS`] parts of [`PART_SIZE`] (48.8 GiB).
pub const MAX_PUT_BYTES: u64 = MAX_PARTS as u64 * PART_SIZE as u64;
/// Lifetime of the presigned URL of one part: it is used at once.
const PART_URL_TTL_SECS: u32 = 900;

/// The memory every put of one store shares for its parts: buffers of [`PART_SIZE`], each
/// behind a permit, allocated when first needed and reused afterwards.
#[derive(Debug, Clone)]
pub(crate) struct PartBudget {
    permits: Arc<Semaphore>,
    /// Buffers no put holds now (at most one per permit).
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Longest wait for a put's first buffer.
    wait: Duration,
}

impl PartBudget {
    /// `bytes / PART_SIZE` buffers (at least one); a put waits `wait` at most for its first.
    pub(crate) fn new(bytes: u64, wait: Duration) -> Self {
        let buffers = usize::try_from(bytes / PART_SIZE as u64)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(buffers)),
            free: Arc::new(Mutex::new(Vec::new())),
            wait,
        }
    }

    fn buffer(&self, permit: OwnedSemaphorePermit) -> PartBuffer {
        let data = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        PartBuffer {
            data,
            free: Arc::clone(&self.free),
            _permit: permit,
        }
    }

    /// The buffer a put holds from its first byte to its last: waits (fairly, first come first
    /// served) at most `wait`.
    async fn first(&self) -> Result<PartBuffer, BlobError> {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| BlobError::Busy {
                waited: self.wait,
                retry_after: self.wait,
            })?
            .map_err(|_| BlobError::Other("the upload buffers were closed".into()))?;
        Ok(self.buffer(permit))
    }

    /// One more buffer, when one is free now (never before a put that waits for its first).
    fn spare(&self) -> Option<PartBuffer> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .ok()
            .map(|permit| self.buffer(permit))
    }

    /// Buffers free now (neither held by a put nor waited for).
    #[cfg(test)]
    fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// One part's memory: a buffer and the permit that lets it exist. Dropped, the buffer goes
/// back to the budget's free list and the permit to its semaphore.
#[derive(Debug)]
struct PartBuffer {
    data: Vec<u8>,
    free: Arc<Mutex<Vec<Vec<u8>>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for PartBuffer {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        if data.capacity() >= PART_SIZE {
            self.free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(data);
        }
    }
}

impl PartBuffer {
    /// The part's bytes, to send without a copy; [`Self::restore`] takes the buffer back.
    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.data))
    }

    /// Takes back the memory of `sent` once nothing else holds it (else it is simply freed).
    fn restore(&mut self, sent: Bytes) {
        if let Ok(unique) = sent.try_into_mut() {
            let mut data = Vec::from(unique);
            data.clear();
            self.data = data;
        }
    }
}

/// How parts are sent: this thread's client, and the time limit of one part's request.
#[derive(Debug, Clone)]
pub(crate) struct PartSender {
    pub(crate) http: reqwest::Client,
    pub(crate) timeout: Duration,
}

/// Streams `body` into `key`, with part buffers from `budget`.
pub(crate) async fn put_stream(
    target: &Target,
    signer: &Signer,
    sender: &PartSender,
    budget: &PartBudget,
    key: &str,
    content_type: &str,
    body: ByteStream,
) -> Result<PutOutcome, BlobError> {
    let bucket = &target.bucket;
    // Memory first: nothing of the body is read before a buffer is ours.
    let mut buffer = budget.first().await?;
    let mut reader = ChunkReader::new(body);
    reader
        .fill(&mut buffer.data)
        .await
        .map_err(BlobError::Source)?;
    if buffer.data.len() < PART_SIZE {
        // The whole body fitted in less than one part: one PUT, nothing to abort.
        let response = bucket
            .put_object_with_content_type(key, &buffer.data, content_type)
            .await
            .map_err(map_s3)?;
        // rust-s3 answers a PUT with the ETag header as the body.
        let etag = response
            .as_str()
            .ok()
            .map(unquote_etag)
            .filter(|e| !e.is_empty());
        return Ok(PutOutcome {
            size: buffer.data.len() as u64,
            etag,
        });
    }

    let upload_id = initiate(bucket, key, content_type).await?;
    let guard = AbortGuard::new(bucket, key, upload_id);
    let parts = Parts {
        target,
        signer,
        sender,
        key,
        upload_id: guard.upload_id(),
        budget,
    };
    match parts.upload(buffer, &mut reader).await {
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
pub(crate) async fn initiate(
    bucket: &Bucket,
    key: &str,
    content_type: &str,
) -> Result<String, BlobError> {
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

/// What a multipart put's parts need.
struct Parts<'a> {
    target: &'a Target,
    signer: &'a Signer,
    sender: &'a PartSender,
    key: &'a str,
    upload_id: &'a str,
    budget: &'a PartBudget,
}

/// A part uploaded, and the buffer it was sent from (back to be filled again).
type Sent = (Result<Part, BlobError>, PartBuffer);

impl Parts<'_> {
    /// Uploads `first` (a full part) and the rest of `reader` as parts, then completes the
    /// upload. On error, the parts still uploading are cancelled when the `JoinSet` drops; the
    /// caller aborts.
    async fn upload(
        &self,
        first: PartBuffer,
        reader: &mut ChunkReader,
    ) -> Result<PutOutcome, BlobError> {
        let mut in_flight: JoinSet<Sent> = JoinSet::new();
        let mut parts: Vec<Part> = Vec::new();
        // A buffer of this put not in use (at most one is kept: a spare goes back at once).
        let mut idle: Option<PartBuffer> = None;
        let mut size: u64 = 0;
        let mut part_number: u32 = 0;
        let mut buffer = first;
        loop {
            while in_flight.len() >= MAX_PARTS_IN_FLIGHT {
                if let Some(done) = in_flight.join_next().await {
                    keep(joined(done, &mut parts)?, &mut idle);
                }
            }
            part_number += 1;
            if part_number > MAX_PARTS {
                return Err(BlobError::Other(format!(
                    "object too large: more than {MAX_PARTS} parts of {PART_SIZE} bytes"
                )));
            }
            let last = buffer.data.len() < PART_SIZE;
            size += buffer.data.len() as u64;
            let url = self.signer.presign(&Presign {
                method: "PUT",
                bucket_url: &self.target.url,
                key: self.key,
                expiry_secs: PART_URL_TTL_SECS,
                headers: &HeaderMap::new(),
                queries: &[
                    ("partNumber", &part_number.to_string()),
                    ("uploadId", self.upload_id),
                ],
            })?;
            let sender = self.sender.clone();
            in_flight.spawn(async move {
                let body = buffer.take();
                let sent = send_part(&sender, &url, body.clone(), part_number).await;
                buffer.restore(body);
                (sent, buffer)
            });
            if last {
                break;
            }
            // The next part's buffer: one of this put's own back from a part uploaded, else a
            // spare one, else the first of its parts uploading to finish. The parts in flight
            // keep uploading (they are tasks) while the source is read.
            while let Some(done) = in_flight.try_join_next() {
                keep(joined(done, &mut parts)?, &mut idle);
            }
            buffer = match idle.take().or_else(|| self.budget.spare()) {
                Some(buffer) => buffer,
                None => match in_flight.join_next().await {
                    Some(done) => joined(done, &mut parts)?,
                    None => return Err(BlobError::Other("a put lost its buffers".into())),
                },
            };
            reader
                .fill(&mut buffer.data)
                .await
                .map_err(BlobError::Source)?;
            if buffer.data.is_empty() {
                break;
            }
        }
        drop(idle);
        while let Some(done) = in_flight.join_next().await {
            drop(joined(done, &mut parts)?);
        }
        parts.sort_by_key(|p| p.part_number);

        let response = self
            .target
            .bucket
            .complete_multipart_upload(self.key, self.upload_id, parts)
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
}

/// Keeps one buffer back from a part uploaded; another one goes back to the budget at once.
fn keep(buffer: PartBuffer, idle: &mut Option<PartBuffer>) {
    if idle.is_none() {
        *idle = Some(buffer);
    }
}

/// Attempts at one part: a store answering 5xx or dropping the connection gets two more tries
/// (an `UploadPart` is idempotent: the same number replaces the part). Garage's SQLite
/// metadata engine answers 503 ("database is locked") now and then under load.
const PART_ATTEMPTS: u32 = 3;

/// Sends one part (retrying transient failures) and reads its ETag.
async fn send_part(
    sender: &PartSender,
    url: &str,
    body: Bytes,
    part_number: u32,
) -> Result<Part, BlobError> {
    let mut attempt = 1;
    loop {
        let result = sender
            .http
            .put(url)
            .timeout(sender.timeout)
            .body(body.clone())
            .send()
            .await;
        let retry = match &result {
            Ok(response) => response.status().is_server_error(),
            Err(e) => e.is_connect() || (e.is_request() && !e.is_timeout()),
        };
        if retry && attempt < PART_ATTEMPTS {
            tokio::time::sleep(std::time::Duration::from_millis(
                100 * u64::from(attempt * attempt),
            ))
            .await;
            attempt += 1;
            continue;
        }
        let response = result.map_err(map_http)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(map_status(status.as_u16(), &body));
        }
        let etag = response
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(unquote_etag)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                BlobError::Other(format!("S3 answered part {part_number} without an ETag"))
            })?;
        return Ok(Part { part_number, etag });
    }
}

/// Maps a failure of the adapter's own HTTP clients (part uploads and copies, streamed reads).
pub(crate) fn map_http(e: reqwest::Error) -> BlobError {
    if e.is_builder() {
        BlobError::Other(format!("cannot build the S3 request: {e}"))
    } else if e.is_timeout() {
        BlobError::Unavailable("S3 request timed out".to_owned())
    } else {
        BlobError::Unavailable(format!("S3 request failed: {e}"))
    }
}

/// A part's task ended: its part recorded in `parts`, its buffer returned.
fn joined(
    done: Result<Sent, tokio::task::JoinError>,
    parts: &mut Vec<Part>,
) -> Result<PartBuffer, BlobError> {
    let (sent, buffer) =
        done.map_err(|_| BlobError::Other("part upload task failed".to_owned()))?;
    parts.push(sent?);
    Ok(buffer)
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

/// Aborts every multipart upload still open on exactly `key` (a store without
/// ListMultipartUploads is taken to keep none).
pub(crate) async fn abort_unfinished_uploads(bucket: &Bucket, key: &str) -> Result<(), BlobError> {
    let pages = match bucket.list_multiparts_uploads(Some(key), None).await {
        Ok(pages) => pages,
        Err(S3Error::HttpFailWithBody(404 | 501, _)) => return Ok(()),
        Err(e) => return Err(map_s3(e)),
    };
    for upload in pages.iter().flat_map(|p| &p.uploads) {
        if upload.key != key {
            continue;
        }
        match bucket.abort_upload(key, &upload.id).await {
            Ok(()) | Err(S3Error::HttpFailWithBody(404, _)) => {}
            Err(e) => return Err(map_s3(e)),
        }
    }
    Ok(())
}

/// Aborts the multipart upload unless disarmed: awaited on the error path, spawned on the
/// runtime when dropped armed (the put's future was dropped).
pub(crate) struct AbortGuard {
    bucket: Bucket,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortGuard {
    pub(crate) fn new(bucket: &Bucket, key: &str, upload_id: String) -> Self {
        Self {
            bucket: bucket.clone(),
            key: key.to_owned(),
            upload_id,
            armed: true,
        }
    }

    pub(crate) fn upload_id(&self) -> &str {
        &self.upload_id
    }

    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    pub(crate) async fn abort(mut self) {
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

    /// Fills `chunk` (emptied first) with the next [`PART_SIZE`] bytes, fewer at the end of
    /// the stream, none after it. The buffer's memory is reserved once and then reused.
    async fn fill(&mut self, chunk: &mut Vec<u8>) -> Result<(), io::Error> {
        chunk.clear();
        loop {
            if !self.leftover.is_empty() {
                let take = (PART_SIZE - chunk.len()).min(self.leftover.len());
                if chunk.capacity() < PART_SIZE {
                    // Pages a short body leaves untouched cost nothing.
                    chunk.reserve_exact(PART_SIZE - chunk.len());
                }
                chunk.extend_from_slice(&self.leftover[..take]);
                self.leftover.advance(take);
            }
            if chunk.len() == PART_SIZE || self.ended {
                return Ok(());
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

    /// The next chunk in a buffer of its own (tests).
    #[cfg(test)]
    async fn next_chunk(&mut self) -> Result<Vec<u8>, io::Error> {
        let mut chunk = Vec::new();
        self.fill(&mut chunk).await?;
        Ok(chunk)
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

    #[tokio::test(start_paused = true)]
    async fn the_budget_lends_a_first_buffer_fairly_and_refuses_after_its_wait() {
        let budget = PartBudget::new(2 * PART_SIZE as u64, Duration::from_secs(3));
        let a = budget.first().await.unwrap();
        let b = budget.first().await.unwrap();
        assert_eq!(budget.available(), 0);
        assert!(budget.spare().is_none());
        // A third waits, then is refused having waited the whole wait.
        let started = tokio::time::Instant::now();
        let refused = budget.first().await.unwrap_err();
        assert!(
            matches!(refused, BlobError::Busy { waited, .. } if waited == Duration::from_secs(3))
        );
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        // One waiting gets the buffer a finished put gives back, before any spare taker.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.first().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        drop(a);
        assert!(budget.spare().is_none(), "a waiter comes first");
        waiting.await.unwrap().unwrap();
        drop(b);
        assert_eq!(budget.available(), 2);
    }

    #[tokio::test]
    async fn buffers_are_reused_from_put_to_put() {
        let budget = PartBudget::new(PART_SIZE as u64, Duration::from_secs(1));
        let mut buffer = budget.first().await.unwrap();
        let mut reader = ChunkReader::new(stream_of(&[PART_SIZE]));
        reader.fill(&mut buffer.data).await.unwrap();
        let address = buffer.data.as_ptr();
        let sent = buffer.take();
        buffer.restore(sent);
        assert_eq!(
            buffer.data.as_ptr(),
            address,
            "the sent part's memory came back"
        );
        drop(buffer);
        let again = budget.first().await.unwrap();
        assert_eq!(
            again.data.as_ptr(),
            address,
            "the next put fills the same memory"
        );
        assert!(again.data.capacity() >= PART_SIZE);
    }
}
