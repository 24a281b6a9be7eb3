//! Verifying the caller's token and turning it into the domain's [`Principal`].

use std::fmt;

use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use storage_domain::StorageError;
use storage_domain::model::{CompanyId, ForwardedCredentials, Principal, UserId};

use crate::config::{ConfigError, JwtConfig};

/// Tokens longer than this are refused (`unauthorized`) before any parsing: a real access token
/// is well under 2 KiB, and a huge one only costs memory and CPU.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Verifies access tokens with one pinned algorithm and key.
///
/// Where the token comes from: the configured cookie (`JWT_COOKIE_NAME`) **wins over** the
/// `Authorization: Bearer` header when both are present. Browsers, the seed's main client, send
/// the cookie; the bearer header is for scripts and services. Only the chosen token is verified;
/// the other one is ignored and not forwarded.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    cookie_name: String,
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
        if token.len() > MAX_TOKEN_BYTES {
            return Err(StorageError::Unauthorized);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|_| StorageError::Unauthorized)?;
        let user_id = UserId::new(data.claims.sub).map_err(|_| StorageError::Unauthorized)?;
        let company_id = match data.claims.company_id {
            Some(raw) => {
                Some(CompanyId::new(raw.into_string()).map_err(|_| StorageError::Unauthorized)?)
            }
            None => None,
        };
        Ok((user_id, company_id))
    }
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
