//! Configuration of the verifier and the signer, and how it is read from `JWT_*` variables.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretString};

/// The name of the cookie that carries the token when `JWT_COOKIE_NAME` is not set (the seed's).
pub const DEFAULT_COOKIE_NAME: &str = "access_token";

/// The clock skew tolerated on `exp` and `nbf` when `JWT_LEEWAY_SECONDS` is not set.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;

/// The algorithms the service accepts. Exactly one is pinned by configuration; the token's own
/// `alg` header never chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret (`JWT_SECRET`).
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, verified with an RSA public key.
    Rs256,
    /// ECDSA on P-256 with SHA-256, verified with an EC public key.
    Es256,
    /// Ed25519, verified with an Ed25519 public key.
    EdDsa,
}

impl JwtAlgorithm {
    /// Parses the value of `JWT_ALGORITHM` (case-insensitive: `HS256`, `RS256`, `ES256`, `EdDSA`).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "HS256" => Some(Self::Hs256),
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EDDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// The name used in a token's `alg` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// True for the algorithms that verify with a public key.
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, Self::Hs256)
    }

    pub(crate) const fn to_jsonwebtoken(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What verifies a token's signature.
#[derive(Clone)]
pub enum VerificationKey {
    /// The HS256 shared secret.
    Secret(SecretString),
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY` for RSA).
    PublicPem(String),
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("VerificationKey::Secret(<redacted>)"),
            Self::PublicPem(_) => f.write_str("VerificationKey::PublicPem(..)"),
        }
    }
}

/// What signs a token (local tokens and tests only: in production the identity provider signs).
#[derive(Clone)]
pub enum SigningKey {
    /// The HS256 shared secret.
    Secret(SecretString),
    /// A PEM private key (PKCS#8 `PRIVATE KEY`, or `RSA PRIVATE KEY` for RSA).
    PrivatePem(SecretString),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("SigningKey::Secret(<redacted>)"),
            Self::PrivatePem(_) => f.write_str("SigningKey::PrivatePem(<redacted>)"),
        }
    }
}

/// How tokens are verified (spec §2).
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The one accepted algorithm.
    pub algorithm: JwtAlgorithm,
    /// The secret (HS256) or public key (the others).
    pub key: VerificationKey,
    /// When set, the token's `iss` must be present and equal to it.
    pub issuer: Option<String>,
    /// When set, the token's `aud` must be present and contain it. When not set, `aud` is
    /// neither required nor checked.
    pub audience: Option<String>,
    /// The cookie that carries the token.
    pub cookie_name: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
}

impl JwtConfig {
    /// An HS256 configuration with the default cookie name and leeway and no `iss`/`aud` check.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            key: VerificationKey::Secret(SecretString::from(secret.into())),
            issuer: None,
            audience: None,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }

    /// An asymmetric configuration (RS256, ES256 or EdDSA) from a PEM public key, with the
    /// default cookie name and leeway and no `iss`/`aud` check.
    pub fn public_key(algorithm: JwtAlgorithm, pem: impl Into<String>) -> Self {
        Self {
            algorithm,
            key: VerificationKey::PublicPem(pem.into()),
            issuer: None,
            audience: None,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        }
    }

    /// Reads the configuration from `JWT_*` variables through `lookup` (for example
    /// `|name| std::env::var(name).ok()`). Empty values count as unset.
    ///
    /// - `JWT_ALGORITHM`: `HS256`, `RS256`, `ES256` or `EdDSA`. When unset: HS256 if only
    ///   `JWT_SECRET` is set; the public key's own type if only a public key is set.
    /// - `JWT_SECRET`: the HS256 secret.
    /// - `JWT_PUBLIC_KEY`: a PEM public key (literal `\n` sequences are accepted for newlines), or
    ///   `JWT_PUBLIC_KEY_FILE`: the path of a PEM file.
    /// - `JWT_ISSUER`, `JWT_AUDIENCE`: checked when set.
    /// - `JWT_COOKIE_NAME` (default `access_token`), `JWT_LEEWAY_SECONDS` (default 60).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is missing or invalid.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let secret = get("JWT_SECRET");
        let public = read_pem(&get, "JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE")?;
        let algorithm = match get("JWT_ALGORITHM") {
            Some(raw) => Some(
                JwtAlgorithm::parse(&raw).ok_or_else(|| ConfigError::Invalid {
                    var: "JWT_ALGORITHM",
                    reason: format!("'{raw}' is not one of HS256, RS256, ES256, EdDSA"),
                })?,
            ),
            None => None,
        };
        let (algorithm, key) = match (algorithm, secret, public) {
            (Some(JwtAlgorithm::Hs256) | None, Some(secret), None) => (
                JwtAlgorithm::Hs256,
                VerificationKey::Secret(SecretString::from(secret)),
            ),
            (Some(JwtAlgorithm::Hs256), Some(secret), Some(_)) => (
                JwtAlgorithm::Hs256,
                VerificationKey::Secret(SecretString::from(secret)),
            ),
            (Some(JwtAlgorithm::Hs256), None, _) => {
                return Err(ConfigError::Missing {
                    var: "JWT_SECRET",
                    hint: "JWT_ALGORITHM is HS256, which needs a shared secret",
                });
            }
            (Some(alg), _, Some(pem)) => (alg, VerificationKey::PublicPem(pem)),
            (Some(_), _, None) => {
                return Err(ConfigError::Missing {
                    var: "JWT_PUBLIC_KEY",
                    hint: "an asymmetric JWT_ALGORITHM needs a PEM public key (or JWT_PUBLIC_KEY_FILE)",
                });
            }
            (None, None, Some(pem)) => (infer_public(&pem)?, VerificationKey::PublicPem(pem)),
            (None, Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    var: "JWT_ALGORITHM",
                    reason: "both JWT_SECRET and JWT_PUBLIC_KEY are set: JWT_ALGORITHM must say which to use".into(),
                });
            }
            (None, None, None) => {
                return Err(ConfigError::Missing {
                    var: "JWT_SECRET",
                    hint: "set JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256, ES256, EdDSA)",
                });
            }
        };
        let cookie_name = get("JWT_COOKIE_NAME").unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned());
        let leeway_seconds = match get("JWT_LEEWAY_SECONDS") {
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
                var: "JWT_LEEWAY_SECONDS",
                reason: format!("'{raw}' is not a number of seconds"),
            })?,
            None => DEFAULT_LEEWAY_SECONDS,
        };
        let config = Self {
            algorithm,
            key,
            issuer: get("JWT_ISSUER"),
            audience: get("JWT_AUDIENCE"),
            cookie_name,
            leeway_seconds,
        };
        config.check_cookie_name()?;
        Ok(config)
    }

    pub(crate) fn check_cookie_name(&self) -> Result<(), ConfigError> {
        let ok = !self.cookie_name.is_empty()
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                var: "JWT_COOKIE_NAME",
                reason: format!("'{}' is not a valid cookie name", self.cookie_name),
            })
        }
    }

    pub(crate) fn decoding_key(&self) -> Result<DecodingKey, ConfigError> {
        let bad_key = |e: jsonwebtoken::errors::Error| ConfigError::Invalid {
            var: "JWT_PUBLIC_KEY",
            reason: format!("not a PEM public key for {}: {e}", self.algorithm),
        };
        match (&self.key, self.algorithm) {
            (VerificationKey::Secret(secret), JwtAlgorithm::Hs256) => {
                let secret = secret.expose_secret();
                if secret.is_empty() {
                    return Err(ConfigError::Invalid {
                        var: "JWT_SECRET",
                        reason: "it is empty".into(),
                    });
                }
                Ok(DecodingKey::from_secret(secret.as_bytes()))
            }
            (VerificationKey::PublicPem(pem), JwtAlgorithm::Rs256) => {
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(bad_key)
            }
            (VerificationKey::PublicPem(pem), JwtAlgorithm::Es256) => {
                DecodingKey::from_ec_pem(pem.as_bytes()).map_err(bad_key)
            }
            (VerificationKey::PublicPem(pem), JwtAlgorithm::EdDsa) => {
                DecodingKey::from_ed_pem(pem.as_bytes()).map_err(bad_key)
            }
            (VerificationKey::Secret(_), alg) => Err(ConfigError::Invalid {
                var: "JWT_ALGORITHM",
                reason: format!("{alg} needs a public key, not a shared secret"),
            }),
            (VerificationKey::PublicPem(_), alg) => Err(ConfigError::Invalid {
                var: "JWT_ALGORITHM",
                reason: format!("{alg} needs a shared secret, not a public key"),
            }),
        }
    }
}

/// How local tokens are signed (the `token` subcommand and tests).
#[derive(Debug, Clone)]
pub struct SignerConfig {
    /// The algorithm written in the `alg` header.
    pub algorithm: JwtAlgorithm,
    /// The secret (HS256) or private key (the others).
    pub key: SigningKey,
    /// Written as `iss` when set.
    pub issuer: Option<String>,
    /// Written as `aud` when set.
    pub audience: Option<String>,
}

impl SignerConfig {
    /// An HS256 signer configuration without `iss`/`aud`.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            key: SigningKey::Secret(SecretString::from(secret.into())),
            issuer: None,
            audience: None,
        }
    }

    /// An asymmetric signer configuration from a PEM private key, without `iss`/`aud`.
    pub fn private_key(algorithm: JwtAlgorithm, pem: impl Into<String>) -> Self {
        Self {
            algorithm,
            key: SigningKey::PrivatePem(SecretString::from(pem.into())),
            issuer: None,
            audience: None,
        }
    }

    /// Reads the signer's configuration from the same variables as [`JwtConfig::from_lookup`],
    /// with `JWT_PRIVATE_KEY` / `JWT_PRIVATE_KEY_FILE` instead of the public key.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is missing or invalid.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let algorithm = match get("JWT_ALGORITHM") {
            Some(raw) => JwtAlgorithm::parse(&raw).ok_or_else(|| ConfigError::Invalid {
                var: "JWT_ALGORITHM",
                reason: format!("'{raw}' is not one of HS256, RS256, ES256, EdDSA"),
            })?,
            None => JwtAlgorithm::Hs256,
        };
        let key = if algorithm.is_asymmetric() {
            let pem = read_pem(&get, "JWT_PRIVATE_KEY", "JWT_PRIVATE_KEY_FILE")?.ok_or(
                ConfigError::Missing {
                    var: "JWT_PRIVATE_KEY",
                    hint: "an asymmetric JWT_ALGORITHM needs a PEM private key to sign (or JWT_PRIVATE_KEY_FILE)",
                },
            )?;
            SigningKey::PrivatePem(SecretString::from(pem))
        } else {
            let secret = get("JWT_SECRET").ok_or(ConfigError::Missing {
                var: "JWT_SECRET",
                hint: "HS256 tokens are signed with JWT_SECRET",
            })?;
            SigningKey::Secret(SecretString::from(secret))
        };
        Ok(Self {
            algorithm,
            key,
            issuer: get("JWT_ISSUER"),
            audience: get("JWT_AUDIENCE"),
        })
    }

    pub(crate) fn encoding_key(&self) -> Result<EncodingKey, ConfigError> {
        let bad_key = |e: jsonwebtoken::errors::Error| ConfigError::Invalid {
            var: "JWT_PRIVATE_KEY",
            reason: format!("not a PEM private key for {}: {e}", self.algorithm),
        };
        match (&self.key, self.algorithm) {
            (SigningKey::Secret(secret), JwtAlgorithm::Hs256) => {
                let secret = secret.expose_secret();
                if secret.is_empty() {
                    return Err(ConfigError::Invalid {
                        var: "JWT_SECRET",
                        reason: "it is empty".into(),
                    });
                }
                Ok(EncodingKey::from_secret(secret.as_bytes()))
            }
            (SigningKey::PrivatePem(pem), JwtAlgorithm::Rs256) => {
                EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(bad_key)
            }
            (SigningKey::PrivatePem(pem), JwtAlgorithm::Es256) => {
                EncodingKey::from_ec_pem(pem.expose_secret().as_bytes()).map_err(bad_key)
            }
            (SigningKey::PrivatePem(pem), JwtAlgorithm::EdDsa) => {
                EncodingKey::from_ed_pem(pem.expose_secret().as_bytes()).map_err(bad_key)
            }
            (SigningKey::Secret(_), alg) => Err(ConfigError::Invalid {
                var: "JWT_ALGORITHM",
                reason: format!("{alg} needs a private key, not a shared secret"),
            }),
            (SigningKey::PrivatePem(_), alg) => Err(ConfigError::Invalid {
                var: "JWT_ALGORITHM",
                reason: format!("{alg} needs a shared secret, not a private key"),
            }),
        }
    }
}

/// Why a configuration was refused. The text names the variable and never shows a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set: {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Reads a PEM given inline (`var`) or as a file path (`file_var`).
fn read_pem(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    file_var: &'static str,
) -> Result<Option<String>, ConfigError> {
    if let Some(inline) = get(var) {
        return Ok(Some(inline.replace("\\n", "\n")));
    }
    match get(file_var) {
        Some(path) => {
            std::fs::read_to_string(path.trim())
                .map(Some)
                .map_err(|e| ConfigError::Invalid {
                    var: file_var,
                    reason: format!("cannot read '{path}': {e}"),
                })
        }
        None => Ok(None),
    }
}

/// The algorithm a PEM public key is for, from the key's own type.
fn infer_public(pem: &str) -> Result<JwtAlgorithm, ConfigError> {
    let bytes = pem.as_bytes();
    if DecodingKey::from_rsa_pem(bytes).is_ok() {
        Ok(JwtAlgorithm::Rs256)
    } else if DecodingKey::from_ec_pem(bytes).is_ok() {
        Ok(JwtAlgorithm::Es256)
    } else if DecodingKey::from_ed_pem(bytes).is_ok() {
        Ok(JwtAlgorithm::EdDsa)
    } else {
        Err(ConfigError::Invalid {
            var: "JWT_PUBLIC_KEY",
            reason: "not a PEM RSA, EC or Ed25519 public key".into(),
        })
    }
}
