//! [`MeteredBlobs`]: the object-store port, timed per operation and outcome; and the body
//! wrapper that counts a transfer's bytes.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use metrics::Counter;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{
        BlobError, BlobMeta, BlobRead, BlobStore, ByteRange, ByteStream, PresignGetOptions,
        PresignedRequest, PutOutcome,
    },
};

use crate::{Metrics, TransferGuard, names};

/// A [`BlobStore`] that records the duration and outcome of every call of the store it wraps
/// in `storage_object_store_call_duration_seconds{operation, outcome}`. A `put` is timed until
/// its last byte is stored, a `get` until the store's answer head (the body streams after).
pub struct MeteredBlobs {
    inner: Arc<dyn BlobStore>,
    metrics: Metrics,
}

impl std::fmt::Debug for MeteredBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredBlobs").finish_non_exhaustive()
    }
}

impl MeteredBlobs {
    pub fn new(inner: Arc<dyn BlobStore>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn record<T>(&self, operation: &'static str, result: &Result<T, BlobError>, started: Instant) {
        self.metrics.record_call(
            names::OBJECT_STORE_CALL_DURATION,
            operation,
            outcome(result),
            started.elapsed(),
        );
    }
}

/// The outcome label of an object-store call.
fn outcome<T>(result: &Result<T, BlobError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(BlobError::NotFound) => "not_found",
        Err(
            BlobError::RangeNotSatisfiable | BlobError::AlreadyExists | BlobError::LengthRequired,
        ) => "refused",
        Err(BlobError::Busy { .. }) => "busy",
        Err(BlobError::SourceChanged) => "source_changed",
        Err(BlobError::Source(_)) => "source_failed",
        Err(BlobError::Unavailable(_)) => "unavailable",
        Err(BlobError::Other(_)) => "error",
    }
}

/// The delegating methods: each times the wrapped store's call and records it under the
/// method's name.
macro_rules! metered {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        #[async_trait]
        impl BlobStore for MeteredBlobs {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, BlobError> {
                    let started = Instant::now();
                    let result = self.inner.$name($($arg),*).await;
                    self.record(stringify!($name), &result, started);
                    result
                }
            )*
        }
    };
}

metered! {
    put(bucket: BucketKind, key: &ObjectKey, content_type: &str, body: ByteStream) -> PutOutcome;
    get(bucket: BucketKind, key: &ObjectKey, range: Option<ByteRange>) -> BlobRead;
    head(bucket: BucketKind, key: &ObjectKey) -> BlobMeta;
    copy(from_bucket: BucketKind, from: &ObjectKey, to_bucket: BucketKind, to: &ObjectKey) -> ();
    delete(bucket: BucketKind, key: &ObjectKey) -> ();
    presign_put(
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        content_length: Option<u64>,
        ttl: Duration
    ) -> PresignedRequest;
    presign_get(
        bucket: BucketKind,
        key: &ObjectKey,
        options: &PresignGetOptions,
        ttl: Duration
    ) -> PresignedRequest;
    health() -> ();
}

/// A transfer's body: counts the bytes that pass, and keeps the transfer counted in flight
/// until it is dropped.
pub(crate) struct MeteredBody {
    inner: ByteStream,
    bytes: Counter,
    _in_flight: TransferGuard,
}

impl MeteredBody {
    pub(crate) fn new(inner: ByteStream, bytes: Counter, in_flight: TransferGuard) -> Self {
        Self {
            inner,
            bytes,
            _in_flight: in_flight,
        }
    }
}

impl Stream for MeteredBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.bytes.increment(chunk.len() as u64);
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
