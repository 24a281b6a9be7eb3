#![doc = include_str!("../README.md")]

pub mod keys;
pub mod presign;
mod store;
mod write;

pub use presign::{Grant, Refusal, SecretError, SignedRequest, UrlSigner};
pub use store::{LocalBlobStore, LocalConfig, OpenError, READ_CHUNK, STALE_TEMP_AGE};
