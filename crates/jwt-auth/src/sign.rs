//! Minting tokens: for local development (`storage-server token`) and tests. In production the
//! identity provider signs the tokens; this service only verifies them.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use crate::config::{ConfigError, SignerConfig};

/// Signs tokens with one algorithm and key.
pub struct JwtSigner {
    key: EncodingKey,
    header: Header,
    issuer: Option<String>,
    audience: Option<String>,
}

impl fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSigner")
            .field("algorithm", &self.header.alg)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims of a minted token.
#[derive(Debug, Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    company_id: Option<&'a str>,
    iat: u64,
    nbf: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The requested claims are unusable (empty subject, zero lifetime, ...).
    #[error("invalid token claims: {0}")]
    InvalidClaims(String),
    /// The signing itself failed.
    #[error("could not sign the token: {0}")]
    Signing(String),
}

impl JwtSigner {
    /// Builds a signer for `config`.
    ///
    /// # Errors
    /// [`ConfigError`] when the key does not fit the algorithm or cannot be parsed.
    pub fn new(config: &SignerConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            key: config.encoding_key()?,
            header: Header::new(config.algorithm.to_jsonwebtoken()),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// Mints a token for user `sub` (and `company_id` when given) valid from now for `ttl`,
    /// with `iss`/`aud` from the configuration when set.
    ///
    /// # Errors
    /// [`SignError::InvalidClaims`] for an empty `sub` or `company_id` or a lifetime under one
    /// second; [`SignError::Signing`] when the key cannot sign.
    pub fn mint_token(
        &self,
        sub: &str,
        company_id: Option<&str>,
        ttl: Duration,
    ) -> Result<String, SignError> {
        if sub.trim().is_empty() {
            return Err(SignError::InvalidClaims("the subject is empty".into()));
        }
        if company_id.is_some_and(|c| c.trim().is_empty()) {
            return Err(SignError::InvalidClaims("the company id is empty".into()));
        }
        if ttl.as_secs() == 0 {
            return Err(SignError::InvalidClaims(
                "the lifetime must be at least one second".into(),
            ));
        }
        let now = jsonwebtoken::get_current_timestamp();
        let claims = MintedClaims {
            sub,
            company_id,
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl.as_secs()),
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims with this signer's algorithm and key (tests use it to build
    /// tokens with unusual claims).
    ///
    /// # Errors
    /// [`SignError::Signing`] when the claims cannot be serialised or the key cannot sign.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, SignError> {
        jsonwebtoken::encode(&self.header, claims, &self.key)
            .map_err(|e| SignError::Signing(e.to_string()))
    }
}
