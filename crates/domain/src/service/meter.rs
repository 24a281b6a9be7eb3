//! Counting, hashing and size-limiting a byte stream as it flows to the blob store.

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_core::Stream;
use sha2::{Digest, Sha256};

use crate::ports::ByteStream;

/// What a [`MeteredStream`] saw; shared with the use case that waits for the put.
#[derive(Debug)]
pub struct UploadMeter {
    limit: u64,
    bytes: AtomicU64,
    exceeded: AtomicBool,
    hasher: Mutex<Sha256>,
}

impl UploadMeter {
    /// Bytes seen so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// True once more than the limit was offered; the stream then failed.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Acquire)
    }

    /// The SHA-256 (hex) of everything seen.
    pub fn sha256_hex(&self) -> String {
        let hasher = match self.hasher.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        hex::encode(hasher.finalize())
    }
}

/// Wraps a body: counts and hashes every chunk, and fails with an I/O error as soon as more than
/// `limit` bytes have been offered (the blob store then aborts and keeps nothing).
pub struct MeteredStream {
    inner: ByteStream,
    meter: Arc<UploadMeter>,
}

impl std::fmt::Debug for MeteredStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredStream")
            .field("meter", &self.meter)
            .finish_non_exhaustive()
    }
}

impl MeteredStream {
    pub fn new(inner: ByteStream, limit: u64) -> (Self, Arc<UploadMeter>) {
        let meter = Arc::new(UploadMeter {
            limit,
            bytes: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
            hasher: Mutex::new(Sha256::new()),
        });
        (
            Self {
                inner,
                meter: meter.clone(),
            },
            meter,
        )
    }
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            let meter = &self.meter;
            let total =
                meter.bytes.fetch_add(chunk.len() as u64, Ordering::AcqRel) + chunk.len() as u64;
            if total > meter.limit {
                meter.exceeded.store(true, Ordering::Release);
                return Poll::Ready(Some(Err(std::io::Error::other(format!(
                    "upload larger than {} bytes",
                    meter.limit
                )))));
            }
            match meter.hasher.lock() {
                Ok(mut h) => h.update(chunk),
                Err(poisoned) => poisoned.into_inner().update(chunk),
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, executor::block_on, stream};

    use super::*;

    fn body(chunks: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
        ))
    }

    #[test]
    fn counts_and_hashes() {
        let (mut s, meter) = MeteredStream::new(body(vec![b"hello ", b"world"]), 100);
        block_on(async {
            while let Some(item) = s.next().await {
                item.unwrap();
            }
        });
        assert_eq!(meter.bytes(), 11);
        assert!(!meter.exceeded());
        assert_eq!(
            meter.sha256_hex(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn fails_as_soon_as_the_limit_is_crossed() {
        let (mut s, meter) = MeteredStream::new(body(vec![b"12345", b"67890", b"x", b"never"]), 10);
        block_on(async {
            assert!(s.next().await.unwrap().is_ok());
            assert!(s.next().await.unwrap().is_ok()); // exactly 10 is fine
            assert!(s.next().await.unwrap().is_err()); // 11 is not
        });
        assert!(meter.exceeded());
    }
}
