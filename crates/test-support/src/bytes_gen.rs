//! Deterministic pseudo-random bodies, generated on the fly so a test never holds a large
//! source in memory, and their SHA-256 computed the same way.

use std::io;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use sha2::{Digest, Sha256};
use storage_domain::ports::ByteStream;

/// Size of the items the generated streams yield: odd on purpose, so that items never line up
/// with an adapter's part boundaries.
pub const ITEM_SIZE: usize = 1_000_003;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The bytes `[start, end)` of the body named by `seed`.
pub fn pattern_range(seed: u64, start: u64, end: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((end - start) as usize);
    let mut pos = start;
    while pos < end {
        let word = splitmix64(seed ^ (pos / 8).wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let bytes = word.to_le_bytes();
        let from = (pos % 8) as usize;
        let take = (8 - from).min((end - pos) as usize);
        out.extend_from_slice(&bytes[from..from + take]);
        pos += take as u64;
    }
    out
}

/// The body of `size` bytes named by `seed`, as a stream of [`ITEM_SIZE`] items.
pub fn pattern_stream(seed: u64, size: u64) -> ByteStream {
    pattern_stream_then(seed, size, None)
}

/// The first `size` bytes of the body named by `seed`, then `error` if given.
pub fn pattern_stream_then(seed: u64, size: u64, error: Option<io::Error>) -> ByteStream {
    let items = stream::unfold(0u64, move |pos| async move {
        if pos >= size {
            return None;
        }
        let end = (pos + ITEM_SIZE as u64).min(size);
        Some((Ok(Bytes::from(pattern_range(seed, pos, end))), end))
    });
    let tail = stream::iter(error.map(Err));
    Box::pin(items.chain(tail))
}

/// SHA-256 (hex) of the body of `size` bytes named by `seed`.
pub fn pattern_sha256(seed: u64, size: u64) -> String {
    let mut hasher = Sha256::new();
    let mut pos = 0;
    while pos < size {
        let end = (pos + ITEM_SIZE as u64).min(size);
        hasher.update(pattern_range(seed, pos, end));
        pos = end;
    }
    hex::encode(hasher.finalize())
}

/// Reads a stream to its end: `(size, sha256 hex)`, or the first error.
pub async fn drain_sha256(mut body: ByteStream) -> Result<(u64, String), io::Error> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(item) = body.next().await {
        let bytes = item?;
        size += bytes.len() as u64;
        hasher.update(&bytes);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Reads a stream into memory (small bodies only).
pub async fn collect(mut body: ByteStream) -> Result<Vec<u8>, io::Error> {
    let mut out = Vec::new();
    while let Some(item) = body.next().await {
        out.extend_from_slice(&item?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_slices_of_the_whole() {
        let whole = pattern_range(7, 0, 100);
        assert_eq!(pattern_range(7, 13, 59), whole[13..59]);
        assert_ne!(pattern_range(8, 0, 100), whole);
    }

    #[tokio::test]
    async fn stream_and_hash_agree() {
        let size = 2 * ITEM_SIZE as u64 + 5;
        let (n, sha) = drain_sha256(pattern_stream(3, size)).await.unwrap();
        assert_eq!(n, size);
        assert_eq!(sha, pattern_sha256(3, size));
        let mut hasher = Sha256::new();
        hasher.update(pattern_range(3, 0, size));
        assert_eq!(sha, hex::encode(hasher.finalize()));
    }
}
