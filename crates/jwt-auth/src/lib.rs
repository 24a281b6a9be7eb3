//! JWT authentication for storage-service (spec §2).
//!
//! - [`JwtVerifier`] checks the caller's token (from the cookie or the bearer header) with one
//!   algorithm pinned by configuration and produces the domain's
//!   [`Principal`](storage_domain::model::Principal).
//! - [`JwtSigner`] mints tokens for local development and tests.
//!
//! Configuration comes from `JWT_*` variables ([`JwtConfig::from_lookup`],
//! [`SignerConfig::from_lookup`]) or is built in code.
//!
//! The crypto backend is `jsonwebtoken`'s `rust_crypto` feature (enabled in the workspace);
//! without a backend `jsonwebtoken` 11 panics at the first verification.

mod config;
mod sign;
mod verify;

pub use config::{
    ConfigError, DEFAULT_COOKIE_NAME, DEFAULT_LEEWAY_SECONDS, JwtAlgorithm, JwtConfig,
    SignerConfig, SigningKey, VerificationKey,
};
pub use sign::{JwtSigner, SignError};
pub use verify::{JwtVerifier, MAX_TOKEN_BYTES};
