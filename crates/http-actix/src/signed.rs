//! Signed blob URLs served by the service itself: every presigned URL of the local store, and
//! on S3 the upload URLs of uploads whose size was not announced.
//!
//! A blob store that cannot serve presigned URLs on its own (a local directory), or cannot
//! bound what its own upload URL stores (S3 without a signed length), gets URLs to
//! `PUT|GET /blob/{bucket}/{key...}` of this service (the domain decides which uploads do). The HTTP layer receives those requests,
//! asks the [`SignedBlobEndpoint`] to verify them (the endpoint owns the URL format and the
//! key), and streams the bytes: a refused or expired URL answers 403 `access_denied`, never a
//! 500. A PUT is also refused (403) once the presigned upload it was signed for was completed
//! or has expired (the use case decides, [`StorageService::check_staged_put`]), and a store
//! that already holds an object under the key refuses to replace it. Once the body is stored,
//! the object is kept only if its upload is still open
//! ([`StorageService::settle_staged_put`]): a body that outlived its reservation (which the
//! janitor may have reclaimed meanwhile) is answered 403 and its object deleted. The adapter stays free of
//! any concrete store: the composition root plugs one in with
//! [`crate::AppState::with_signed_blobs`], or mounts the routes alone with
//! [`crate::configure_signed_blobs`].

use std::sync::Arc;

use async_trait::async_trait;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{BlobError, BlobMeta, BlobRead, ByteRange, ByteStream, PutOutcome},
    service::StorageService,
};

/// The path prefix of the signed blob routes.
pub const SIGNED_BLOB_PREFIX: &str = "/blob";

/// A request made with a signed URL, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedBlobRequest<'a> {
    /// The HTTP method used (any: the endpoint refuses what it did not sign).
    pub method: &'a str,
    /// The `{bucket}` segment of the path.
    pub bucket: &'a str,
    /// The rest of the path after the bucket: the object key.
    pub key: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The `Content-Length` header.
    pub content_length: Option<u64>,
}

/// What a verified signed URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedBlobGrant {
    /// Store the body under `key` with `content_type`; exactly `content_length` bytes when
    /// signed, else at most the service's upload limit.
    Put {
        bucket: BucketKind,
        key: ObjectKey,
        content_type: String,
        content_length: Option<u64>,
    },
    /// Serve `key`, answering with these headers when given.
    Get {
        bucket: BucketKind,
        key: ObjectKey,
        response_content_type: Option<String>,
        response_content_disposition: Option<String>,
    },
}

/// Why a signed request is refused: one human sentence (it goes in the 403 body's `detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRefused(pub String);

/// Verifies signed URLs and moves the bytes they grant.
#[async_trait]
pub trait SignedBlobEndpoint: Send + Sync {
    /// Checks a request against its signature (method, bucket, key, expiry, signed headers).
    ///
    /// # Errors
    /// [`SignatureRefused`] when the URL was altered, has expired, or the request does not
    /// match what was signed.
    fn verify(&self, request: &SignedBlobRequest<'_>) -> Result<SignedBlobGrant, SignatureRefused>;

    /// Streams `body` into the object `key` (as [`storage_domain::ports::BlobStore::put`]).
    async fn put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        body: ByteStream,
    ) -> Result<PutOutcome, BlobError>;

    /// Streams the object, or the range asked for.
    async fn get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError>;

    /// Size, entity tag and content type of the object.
    async fn head(&self, bucket: BucketKind, key: &ObjectKey) -> Result<BlobMeta, BlobError>;
}

/// The signed blob routes' settings.
#[derive(Clone)]
pub struct SignedBlobs {
    pub(crate) endpoint: Arc<dyn SignedBlobEndpoint>,
    /// The largest body a PUT without a signed length may send (`MAX_UPLOAD_BYTES`).
    pub(crate) max_bytes: u64,
    /// Counts the bytes of the transfers (set from the application's telemetry).
    pub(crate) telemetry: Option<Arc<dyn crate::Telemetry>>,
    /// When set, a PUT is allowed only while the upload its staging key was signed for is open
    /// ([`StorageService::check_staged_put`]): a URL writes nothing once its upload was
    /// completed or has expired. The service's own routes always set it.
    pub(crate) uploads: Option<StorageService>,
    /// A PUT body that sends nothing for this long is cut off (`BODY_IDLE_TIMEOUT_SECONDS`).
    pub(crate) body_idle_timeout: std::time::Duration,
}

impl std::fmt::Debug for SignedBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedBlobs")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl SignedBlobs {
    /// The routes of `endpoint` alone (a blob store's tests): any signed PUT is accepted.
    pub fn new(endpoint: Arc<dyn SignedBlobEndpoint>, max_bytes: u64) -> Self {
        Self {
            endpoint,
            max_bytes,
            telemetry: None,
            uploads: None,
            body_idle_timeout: std::time::Duration::from_secs(30),
        }
    }

    /// Cuts off a PUT whose body sends nothing for `idle`.
    #[must_use]
    pub fn with_body_idle_timeout(mut self, idle: std::time::Duration) -> Self {
        self.body_idle_timeout = idle;
        self
    }

    /// Wraps a transfer's body for the telemetry, if any.
    pub(crate) fn metered(
        &self,
        direction: crate::TransferDirection,
        bucket: BucketKind,
        body: ByteStream,
    ) -> ByteStream {
        match &self.telemetry {
            Some(telemetry) => telemetry.transfer(direction, bucket, body),
            None => body,
        }
    }

    /// Checks every PUT against the state of its upload (see [`SignedBlobs::uploads`]).
    #[must_use]
    pub fn checking_uploads(mut self, service: StorageService) -> Self {
        self.uploads = Some(service);
        self
    }
}
