//! S3/MinIO blob-store adapter (rust-s3, tokio backend).
//!
//! [`S3BlobStore`] implements the domain's [`BlobStore`](storage_domain::ports::BlobStore)
//! port against any S3-compatible server (MinIO, Garage, AWS) with path-style addressing by
//! default:
//!
//! - puts stream: bodies under [`PART_SIZE`] go as one `PUT`; larger ones as a multipart upload
//!   with at most [`MAX_PARTS_IN_FLIGHT`] parts uploading at once, aborted on any failure and
//!   when the future is dropped; every put draws its part buffers from one budget of the store
//!   (`UPLOAD_BUFFER_BYTES`), so memory does not grow with the number of puts;
//! - presigned PUTs sign the announced length: without one, the store refuses to sign
//!   ([`BlobError::LengthRequired`](storage_domain::ports::BlobError::LengthRequired));
//! - gets stream, bounded by a timeout on the response headers and an *idle* timeout on the
//!   body (no total deadline, so a long download is never cut); a read longer than one segment
//!   (`DOWNLOAD_SEGMENT_BYTES`) goes as consecutive ranged GETs, up to
//!   `DOWNLOAD_PARALLEL_SEGMENTS` in flight, yielded in order, their read-ahead memory drawn
//!   from one budget of the store (`DOWNLOAD_READ_AHEAD_BYTES`; see `segments.rs`);
//! - copies are server-side: one `CopyObject` up to 5 GiB, above that a multipart upload of
//!   `UploadPartCopy` parts, aborted on any failure (see `copy.rs`);
//! - every other call is bounded by the configured request timeout.

mod config;
mod copy;
mod error;
mod put;
mod segments;
mod sign;
mod store;
mod stream;

pub use config::{
    BucketNames, DEFAULT_COPY_PART_SIZE, DEFAULT_DOWNLOAD_PARALLEL_SEGMENTS,
    DEFAULT_DOWNLOAD_READ_AHEAD_BYTES, DEFAULT_DOWNLOAD_SEGMENT_BYTES, DEFAULT_UPLOAD_BUFFER_BYTES,
    DEFAULT_UPLOAD_BUFFER_WAIT, MAX_DOWNLOAD_PARALLEL_SEGMENTS, MAX_DOWNLOAD_SEGMENT_BYTES,
    MAX_SINGLE_COPY, MIN_DOWNLOAD_SEGMENT_BYTES, MIN_PART_SIZE, S3Config, S3ConfigError,
};
pub use put::{MAX_PARTS_IN_FLIGHT, MAX_PUT_BYTES, PART_SIZE};
pub use store::{ConnectError, S3BlobStore};
