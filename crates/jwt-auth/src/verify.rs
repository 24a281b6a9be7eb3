//! Verifying the caller's token and turning it into the domain's [`Principal`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use storage_domain::StorageError;
use storage_domain::model::{CompanyId, ForwardedCredentials, Principal, UserId};

use crate::config::{ConfigError, JwtConfig};

/// Tokens longer than this are refused (`unauthorized`) before any parsing: a real access token
/// is well under 2 KiB, and a huge one only costs memory and CPU.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Most tokens a verifier remembers as verified (see [`JwtVerifier`]); a full cache is emptied.
pub const VERIFIED_CACHE_ENTRIES: usize = 4096;

/// Longest token the verifier remembers: longer ones are verified on every request.
const CACHED_TOKEN_BYTES: usize = 2048;

/// Verifies access tokens with one pinned algorithm and key.
///
/// Where the token comes from: the configured cookie (`JWT_COOKIE_NAME`) **wins over** the
/// `Authorization: Bearer` header when both are present. Browsers, the seed's main client, send
/// the cookie; the bearer header is for scripts and services. Only the chosen token is verified;
/// the other one is ignored and not forwarded.
///
/// A client sends the same token with every request, and decoding it (base64, JSON, the
/// signature) was the largest part of a request's own CPU time after the database's. So the
/// verifier remembers the tokens it verified (up to [`VERIFIED_CACHE_ENTRIES`] of at most 2 KiB,
/// emptied when full), keyed by the whole token: only the very same bytes, signature
/// included, skip the decoding. A remembered token is still checked against the clock on every
/// request (`exp` and `nbf`, with the same leeway), so it is refused once expired exactly as a
/// fresh one; a token refused is never remembered; a new key means a new verifier, whose memory
/// starts empty.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    cookie_name: String,
    leeway: u64,
    verified: Mutex<HashMap<Box<str>, Verified>>,
}

/// What a verified token gave, and the times that bound its validity.
#[derive(Clone)]
struct Verified {
    user_id: UserId,
    company_id: Option<CompanyId>,
    exp: u64,
    nbf: Option<u64>,
}

impl Verified {
    /// Whether the token is still valid at `now`, as `jsonwebtoken` decides it (an `exp` before
    /// `now - leeway` is expired; an `nbf` after `now + leeway` is not yet valid).
    fn valid_at(&self, now: u64, leeway: u64) -> bool {
        self.exp >= now.saturating_sub(leeway)
            && self.nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway))
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

/// The claims the service reads. `exp`, `nbf`, `iss` and `aud` are checked by `jsonwebtoken`.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    company_id: Option<IdClaim>,
    /// Read again only to remember the token (`jsonwebtoken` has checked them): a token whose
    /// times are not plain integers is verified on every request.
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
}

/// A company id may be written as a string or, by some issuers, as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdClaim {
    Text(String),
    Signed(i64),
    Unsigned(u64),
}

impl IdClaim {
    fn into_string(self) -> String {
        match self {
            IdClaim::Text(s) => s,
            IdClaim::Signed(n) => n.to_string(),
            IdClaim::Unsigned(n) => n.to_string(),
        }
    }
}

impl JwtVerifier {
    /// Builds a verifier for `config`.
    ///
    /// Rules applied to every token: the header's `alg` must be the configured one; `exp` and
    /// `sub` are required; `exp` and `nbf` (when present) are checked with the configured leeway;
    /// `iss` and `aud` are required and checked when configured, and `aud` is ignored when not.
    ///
    /// # Errors
    /// [`ConfigError`] when the key does not fit the algorithm or cannot be parsed.
    pub fn new(config: &JwtConfig) -> Result<Self, ConfigError> {
        config.check_cookie_name()?;
        let key = config.decoding_key()?;
        let mut validation = Validation::new(config.algorithm.to_jsonwebtoken());
        let mut required = vec!["exp", "sub"];
        validation.leeway = config.leeway_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.validate_aud = true;
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            key,
            validation,
            cookie_name: config.cookie_name.clone(),
            leeway: config.leeway_seconds,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The name of the cookie this verifier reads.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// Authenticates a request from its raw `Cookie` and `Authorization` header values.
    ///
    /// The returned [`Principal`] carries, to be forwarded to the project service, a cookie
    /// `<cookie_name>=<token>` built from the verified token, and the raw `Authorization` header
    /// only when it carries that same verified token.
    ///
    /// # Errors
    /// - [`StorageError::MissingToken`] when neither the cookie nor a bearer token is present
    ///   (an empty cookie value or a non-bearer `Authorization` counts as absent);
    /// - [`StorageError::Unauthorized`] for anything wrong with the token found.
    pub fn authenticate(
        &self,
        cookie_header: Option<&str>,
        authorization_header: Option<&str>,
    ) -> Result<Principal, StorageError> {
        let from_cookie = cookie_header.and_then(|h| find_cookie(h, &self.cookie_name));
        let from_bearer = authorization_header.and_then(bearer_token);
        let token = from_cookie
            .or(from_bearer)
            .ok_or(StorageError::MissingToken)?;
        let (user_id, company_id) = self.verify(token)?;
        let credentials = ForwardedCredentials {
            cookie: Some(format!("{}={token}", self.cookie_name)),
            authorization: authorization_header
                .filter(|_| from_bearer == Some(token))
                .map(str::to_owned),
        };
        Ok(Principal::new(user_id, company_id).with_credentials(credentials))
    }

    /// Verifies one token and returns its user and company.
    ///
    /// # Errors
    /// [`StorageError::Unauthorized`] for an oversized, malformed, wrongly signed, expired,
    /// not-yet-valid or incomplete token.
    pub fn verify(&self, token: &str) -> Result<(UserId, Option<CompanyId>), StorageError> {
        self.verify_at(token, unix_now())
    }

    /// [`verify`](Self::verify) with the clock read by the caller (`now`, in Unix seconds) for
    /// a remembered token; a token not remembered is checked by `jsonwebtoken` with its own.
    fn verify_at(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(UserId, Option<CompanyId>), StorageError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(StorageError::Unauthorized);
        }
        if let Some(known) = self.remembered(token) {
            if known.valid_at(now, self.leeway) {
                return Ok((known.user_id, known.company_id));
            }
            self.cache().remove(token);
            return Err(StorageError::Unauthorized);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|_| StorageError::Unauthorized)?;
        let claims = data.claims;
        let user_id = UserId::new(claims.sub).map_err(|_| StorageError::Unauthorized)?;
        let company_id = match claims.company_id {
            Some(raw) => {
                Some(CompanyId::new(raw.into_string()).map_err(|_| StorageError::Unauthorized)?)
            }
            None => None,
        };
        let exp = claims.exp.as_ref().and_then(serde_json::Value::as_u64);
        let nbf = match &claims.nbf {
            None => Some(None),
            Some(raw) => raw.as_u64().map(Some),
        };
        if let (Some(exp), Some(nbf)) = (exp, nbf) {
            self.remember(
                token,
                Verified {
                    user_id: user_id.clone(),
                    company_id: company_id.clone(),
                    exp,
                    nbf,
                },
            );
        }
        Ok((user_id, company_id))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Verified>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remembered(&self, token: &str) -> Option<Verified> {
        self.cache().get(token).cloned()
    }

    /// Remembers a verified token; a full cache is emptied first (hand-written rather than an
    /// LRU crate: a bound is all that matters here, and an emptied cache costs one full
    /// verification per token).
    fn remember(&self, token: &str, verified: Verified) {
        if token.len() > CACHED_TOKEN_BYTES {
            return;
        }
        let mut cache = self.cache();
        if cache.len() >= VERIFIED_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(token.into(), verified);
    }
}

/// The system clock in Unix seconds, as `jsonwebtoken` reads it.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`). The first occurrence wins
/// (browsers list the most specific path first); an empty value counts as absent; one pair of
/// surrounding double quotes is removed (RFC 6265 `cookie-value`).
fn find_cookie<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
        .filter(|v| !v.is_empty())
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

    fn verifier(secret: &str) -> JwtVerifier {
        let mut config = JwtConfig::hs256(secret);
        config.leeway_seconds = 5;
        JwtVerifier::new(&config).unwrap()
    }

    fn token(secret: &str, sub: &str, exp: u64) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({"sub": sub, "exp": exp, "company_id": "acme"}),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    /// The outcome of a verification, comparable.
    fn shown(r: Result<(UserId, Option<CompanyId>), StorageError>) -> Result<String, String> {
        r.map(|ids| format!("{ids:?}"))
            .map_err(|e| format!("{e:?}"))
    }

    fn refused() -> Result<String, String> {
        Err(format!("{:?}", StorageError::Unauthorized))
    }

    #[test]
    fn a_remembered_token_is_refused_once_expired() {
        let v = verifier(SECRET);
        let now = unix_now();
        let exp = now + 100;
        let t = token(SECRET, "alice", exp);
        assert!(v.verify_at(&t, now).is_ok());
        assert_eq!(v.cache().len(), 1, "a verified token is remembered");
        // Still valid up to the leeway after `exp`, as jsonwebtoken decides.
        assert_eq!(shown(v.verify_at(&t, exp + 5)), shown(v.verify_at(&t, now)));
        assert!(shown(v.verify_at(&t, exp + 5)).unwrap().contains("alice"));
        assert_eq!(
            shown(v.verify_at(&t, exp + 6)),
            refused(),
            "a remembered token past exp + leeway must be refused"
        );
        assert_eq!(v.cache().len(), 0, "an expired token is forgotten");
    }

    #[test]
    fn only_the_same_bytes_are_remembered() {
        let v = verifier(SECRET);
        let now = unix_now();
        let t = token(SECRET, "alice", now + 100);
        assert!(v.verify(&t).is_ok());
        // The same claims with another signature: refused, although its payload is remembered.
        let (unsigned, _) = t.rsplit_once('.').unwrap();
        let forged = format!("{unsigned}.{}", "A".repeat(43));
        assert_eq!(shown(v.verify(&forged)), refused());
        // A token signed with another key is refused by this verifier, remembered or not, and
        // a verifier with a new key remembers nothing of the old one's tokens.
        assert_eq!(
            shown(v.verify(&token(
                "another-secret-of-at-least-32-bytes!",
                "alice",
                now + 100
            ))),
            refused()
        );
        assert_eq!(
            shown(verifier("another-secret-of-at-least-32-bytes!").verify(&t)),
            refused()
        );
    }

    #[test]
    fn the_memory_is_bounded() {
        let v = verifier(SECRET);
        let exp = unix_now() + 100;
        for i in 0..VERIFIED_CACHE_ENTRIES + 10 {
            assert!(v.verify(&token(SECRET, &format!("user{i}"), exp)).is_ok());
            assert!(
                v.cache().len() <= VERIFIED_CACHE_ENTRIES,
                "{} tokens remembered, more than {VERIFIED_CACHE_ENTRIES}",
                v.cache().len()
            );
        }
        // Tokens longer than 2 KiB are verified every time, never remembered.
        let long = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({"sub": "alice", "exp": exp, "pad": "x".repeat(CACHED_TOKEN_BYTES)}),
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        v.cache().clear();
        assert!(v.verify(&long).is_ok());
        assert_eq!(v.cache().len(), 0);
    }

    #[test]
    fn finds_the_named_cookie_among_others() {
        assert_eq!(
            find_cookie("a=1; access_token=tok; b=2", "access_token"),
            Some("tok")
        );
        assert_eq!(
            find_cookie("access_token=\"tok\"", "access_token"),
            Some("tok")
        );
        assert_eq!(find_cookie("x_access_token=tok", "access_token"), None);
        assert_eq!(find_cookie("access_token=", "access_token"), None);
        assert_eq!(
            find_cookie("access_token=first; access_token=second", "access_token"),
            Some("first")
        );
    }

    #[test]
    fn reads_only_bearer_authorization() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
