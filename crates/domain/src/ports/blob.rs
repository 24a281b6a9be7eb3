//! The blob store port: where the bytes of versions live (S3/MinIO, a local directory, …).

use std::{fmt, pin::Pin, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_core::Stream;

use crate::model::{BucketKind, ObjectKey};

/// A stream of bytes going into or coming out of the blob store. An `Err` item ends the stream:
/// on a put, the store must abort and keep nothing.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>>;

/// A byte range of a read, inclusive at both ends, as HTTP `Range` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (`last` is clamped to the object's end by the store).
    FromTo { first: u64, last: u64 },
    /// `bytes=first-`.
    From { first: u64 },
    /// `bytes=-n`: the last `n` bytes.
    Suffix { len: u64 },
}

impl ByteRange {
    /// Resolves the range against an object of `size` bytes into `(first, last)` inclusive.
    /// `None` when the range is not satisfiable (HTTP 416).
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        let (first, last) = match self {
            ByteRange::FromTo { first, last } => (first, last.min(size - 1)),
            ByteRange::From { first } => (first, size - 1),
            ByteRange::Suffix { len } => {
                if len == 0 {
                    return None;
                }
                (size.saturating_sub(len), size - 1)
            }
        };
        (first <= last && first < size).then_some((first, last))
    }
}

/// What a finished put reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub size: u64,
    /// The store's entity tag, unquoted, when it gives one.
    pub etag: Option<String>,
}

/// What `head` reports of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub size: u64,
    pub etag: Option<String>,
    pub content_type: Option<String>,
}

/// A streamed read.
pub struct BlobRead {
    /// Size of the whole object.
    pub total_size: u64,
    /// The bytes served, inclusive, when a range was asked for.
    pub range: Option<(u64, u64)>,
    pub etag: Option<String>,
    pub body: ByteStream,
}

impl fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobRead")
            .field("total_size", &self.total_size)
            .field("range", &self.range)
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// HTTP method of a presigned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignMethod {
    Get,
    Put,
}

/// A request the client can make directly against the store, without the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: PresignMethod,
    pub url: String,
    /// Headers the client must send as they are (they are part of the signature).
    pub headers: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// Options of a presigned GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresignGetOptions {
    /// `Content-Disposition` the store should answer with.
    pub content_disposition: Option<String>,
    /// `Content-Type` the store should answer with.
    pub content_type: Option<String>,
}

/// Failures of the blob store, free of any transport type.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The object does not exist.
    #[error("object not found")]
    NotFound,
    /// The range asked for lies outside the object.
    #[error("range not satisfiable")]
    RangeNotSatisfiable,
    /// The stream given to `put` failed; nothing was kept. The source error is returned as is so
    /// the caller can tell its own failures (size limit, client gone) from the store's.
    #[error("source stream failed: {0}")]
    Source(std::io::Error),
    /// The store could not be reached or timed out.
    #[error("object store unreachable: {0}")]
    Unavailable(String),
    /// The key already holds an object, and this store refuses to replace it (a put or a copy
    /// never replaces an object where the store can refuse it).
    #[error("an object already exists under this key")]
    AlreadyExists,
    /// The source of a copy changed while it was copied part by part; nothing was kept.
    #[error("the source object changed during the copy")]
    SourceChanged,
    /// No upload buffer of the store's memory budget came free within its bounded wait: the
    /// put read nothing from its body and kept nothing. Worth trying again after `retry_after`.
    #[error("no upload buffer free within {waited:?}")]
    Busy {
        waited: Duration,
        retry_after: Duration,
    },
    /// A presigned PUT without a length was asked of a store that cannot bound what such a URL
    /// writes: the caller must announce the size.
    #[error("this store signs upload URLs for an announced length only")]
    LengthRequired,
    /// Anything else the store answered (refused credentials, 5xx, malformed answer).
    #[error("object store error: {0}")]
    Other(String),
}

/// Where the bytes of versions live.
///
/// Keys are opaque and generated by the service ([`ObjectKey`]); the store maps a
/// [`BucketKind`] to its own container (an S3 bucket, a directory).
///
/// Sealed versions: the service signs PUT URLs ([`presign_put`](Self::presign_put)) only for
/// staging keys ([`ObjectKey::staging`]), and writes a version's key itself, once, with
/// [`put`](Self::put) or [`copy`](Self::copy) to a fresh key that no URL names. So no URL a
/// client ever received can write the bytes of a version: a completed presigned upload is a
/// copy of its staging object, and a later PUT to its URL lands in staging only.
///
/// Error contract, for every method:
/// - MUST return [`BlobError::NotFound`] when the object does not exist (never `Other`);
/// - MUST return [`BlobError::Unavailable`] when the store cannot be reached or times out;
/// - MUST NOT hang: every call is bounded by the adapter's timeouts (a long streamed read is
///   bounded by an idle timeout, not a total one).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Streams `body` into a new object. Memory stays bounded whatever the size.
    ///
    /// - MUST keep nothing (no object, no multipart upload) when `body` yields an error
    ///   (returned as [`BlobError::Source`]) or when the returned future is dropped;
    /// - MAY refuse a key that already holds an object ([`BlobError::AlreadyExists`], the
    ///   local store does; S3 cannot refuse: the service never puts to a used key);
    /// - MAY wait, for a bounded time, for memory of its own budget before reading the first
    ///   byte of `body`, and then answer [`BlobError::Busy`] having read nothing: memory does
    ///   not grow with the number of puts running at once.
    async fn put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        body: ByteStream,
    ) -> Result<PutOutcome, BlobError>;

    /// Streams an object, or the part `range` names.
    ///
    /// - MUST return [`BlobError::RangeNotSatisfiable`] for a range outside the object.
    async fn get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError>;

    /// Size and entity tag of an object.
    async fn head(&self, bucket: BucketKind, key: &ObjectKey) -> Result<BlobMeta, BlobError>;

    /// Copies an object inside the store, without the bytes passing through the service, into
    /// a new object `to`, of any size the store holds (S3: one `CopyObject` up to 5 GiB, a
    /// multipart copy of `UploadPartCopy` parts above).
    ///
    /// - the copy is independent of its source: a later write of the source (a PUT to the
    ///   source's presigned URL, a delete) leaves it unchanged;
    /// - MUST return [`BlobError::NotFound`] when the source does not exist, and
    ///   [`BlobError::SourceChanged`] when it changed while it was copied part by part;
    /// - MUST keep nothing at `to` (no object, no unfinished multipart upload) when it fails.
    ///   A copy the store may still finish after the call timed out is the caller's to delete
    ///   again later (the service queues a deferred deletion);
    /// - MAY refuse a `to` that already holds an object ([`BlobError::AlreadyExists`]).
    async fn copy(
        &self,
        from_bucket: BucketKind,
        from: &ObjectKey,
        to_bucket: BucketKind,
        to: &ObjectKey,
    ) -> Result<(), BlobError>;

    /// Deletes an object. Deleting a missing object succeeds (idempotent).
    async fn delete(&self, bucket: BucketKind, key: &ObjectKey) -> Result<(), BlobError>;

    /// A URL to PUT the object directly, valid for `ttl`. `content_type` is signed, and so is
    /// `content_length` when given. The URL can write `key` and nothing else, as many times as
    /// the store lets it until it expires: the service asks only for staging keys.
    ///
    /// - MUST bound what the URL can store: exactly `content_length` bytes when given; without
    ///   it, at most the service's upload limit by a means of the store's own (the local store's
    ///   URLs are served by the service, which counts), or refuse with
    ///   [`BlobError::LengthRequired`] (an S3 presigned PUT cannot bound an unsigned length;
    ///   the service then signs a URL to itself instead, see [`ServiceUploadUrls`]).
    async fn presign_put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        content_length: Option<u64>,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError>;

    /// A URL to GET the object directly, valid for `ttl`.
    async fn presign_get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        options: &PresignGetOptions,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError>;

    /// Checks the store answers and its containers exist.
    async fn health(&self) -> Result<(), BlobError>;
}

/// Upload URLs to the service itself (`PUT {PUBLIC_BASE_URL}/blob/{bucket}/{key}`): signed by
/// the service, served by it, and streamed by it into the blob store while it counts the bytes
/// against the upload limit. The service asks for one when a store's own URLs cannot bound an
/// upload whose size was not announced (its `presign_put` answered
/// [`BlobError::LengthRequired`]); the PUT writes the same staging key a store's URL would, and
/// is refused once the upload was completed or has expired.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait ServiceUploadUrls: Send + Sync {
    /// A URL to PUT `key` of `bucket`, valid for `ttl` from `now`; `content_type` (and
    /// `content_length`, when given) are signed and must be sent as the headers returned.
    fn sign_put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        content_length: Option<u64>,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> PresignedRequest;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(
            ByteRange::FromTo { first: 0, last: 9 }.resolve(100),
            Some((0, 9))
        );
        assert_eq!(
            ByteRange::FromTo {
                first: 90,
                last: 200
            }
            .resolve(100),
            Some((90, 99))
        );
        assert_eq!(
            ByteRange::FromTo {
                first: 100,
                last: 200
            }
            .resolve(100),
            None
        );
        assert_eq!(ByteRange::FromTo { first: 5, last: 4 }.resolve(100), None);
        assert_eq!(ByteRange::From { first: 99 }.resolve(100), Some((99, 99)));
        assert_eq!(ByteRange::Suffix { len: 10 }.resolve(100), Some((90, 99)));
        assert_eq!(ByteRange::Suffix { len: 1000 }.resolve(100), Some((0, 99)));
        assert_eq!(ByteRange::Suffix { len: 0 }.resolve(100), None);
        assert_eq!(ByteRange::From { first: 0 }.resolve(0), None);
    }
}
