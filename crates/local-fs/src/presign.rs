//! Presigned URLs of the local store, served by the service itself.
//!
//! A URL is `{base}/blob/{bucket}/{key}?method=PUT&expires=<unix>&ct=<type>&len=<n>&sig=<hex>`
//! (a GET URL has `response-content-type` / `response-content-disposition` instead of `ct` and
//! `len`). `sig` is the hex HMAC-SHA256, under the store's secret, of a canonical string naming
//! every field: a version tag, the method, the bucket, the key, the expiry, then each optional
//! field as `name=<byte length>:<value>` or `name-` when absent, one per line. So no field can be
//! moved into another, added, dropped or altered without the signature failing.
//!
//! Verification ([`UrlSigner::verify`]) refuses, in this order: a malformed query (unknown or
//! repeated parameter, missing field), a signature that does not match (compared in constant
//! time), an expired URL, a request whose method is not the signed one, and a PUT whose
//! `Content-Type` (or `Content-Length`, when signed) differs from the signed value.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{PresignGetOptions, PresignMethod, PresignedRequest, ServiceUploadUrls},
};

use crate::keys::check_key;

type HmacSha256 = Hmac<Sha256>;

/// The path prefix of the routes that serve signed URLs.
pub const ROUTE_PREFIX: &str = "/blob";
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest lifetime of a URL (as S3's SigV4: 7 days).
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const VERSION_TAG: &str = "storage-service local presign v1";
/// What [`UrlSigner::derived`] signs under its parent secret to make the URLs' key.
const DERIVATION_LABEL: &str = "storage-service upload URL key v1";
const P_METHOD: &str = "method";
const P_EXPIRES: &str = "expires";
const P_CONTENT_TYPE: &str = "ct";
const P_LENGTH: &str = "len";
const P_RESPONSE_TYPE: &str = "response-content-type";
const P_RESPONSE_DISPOSITION: &str = "response-content-disposition";
const P_SIGNATURE: &str = "sig";

/// Why a signing secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the presign secret must be at least {MIN_SECRET_BYTES} bytes long")]
    TooShort,
}

/// Signs and verifies the local store's URLs.
#[derive(Clone)]
pub struct UrlSigner {
    /// The HMAC keyed with the secret, cloned for each signature.
    keyed: HmacSha256,
    base_url: String,
    max_ttl: Duration,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("base_url", &self.base_url)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

/// A request made with a signed URL, as the HTTP layer received it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method used (`GET`, `PUT`, or anything else, which is refused).
    pub method: &'a str,
    /// The bucket segment of the path.
    pub bucket: &'a str,
    /// The rest of the path: the object key.
    pub key: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// The request's `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The request's `Content-Length` header.
    pub content_length: Option<u64>,
}

/// What a verified URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Store the request's body under `key`, with this content type; exactly `content_length`
    /// bytes when it was signed.
    Put {
        bucket: BucketKind,
        key: ObjectKey,
        content_type: String,
        content_length: Option<u64>,
    },
    /// Serve `key`, answering with these headers when given.
    Get {
        bucket: BucketKind,
        key: ObjectKey,
        response_content_type: Option<String>,
        response_content_disposition: Option<String>,
    },
}

/// Why a request made with a signed URL is refused (the HTTP layer answers 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the signed URL is malformed: {0}")]
    Malformed(&'static str),
    #[error("the URL's signature does not match the request")]
    BadSignature,
    #[error("the signed URL has expired")]
    Expired,
    #[error("this URL is signed for another HTTP method")]
    WrongMethod,
    #[error("the Content-Type header differs from the one the URL was signed with")]
    ContentType,
    #[error("the Content-Length header differs from the one the URL was signed with")]
    ContentLength,
}

/// The query fields of a signed URL.
#[derive(Debug, Default)]
struct Fields {
    method: Option<String>,
    expires: Option<String>,
    content_type: Option<String>,
    length: Option<String>,
    response_type: Option<String>,
    response_disposition: Option<String>,
    signature: Option<String>,
}

impl Fields {
    fn parse(query: &str) -> Result<Self, Refusal> {
        let mut fields = Fields::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                P_METHOD => &mut fields.method,
                P_EXPIRES => &mut fields.expires,
                P_CONTENT_TYPE => &mut fields.content_type,
                P_LENGTH => &mut fields.length,
                P_RESPONSE_TYPE => &mut fields.response_type,
                P_RESPONSE_DISPOSITION => &mut fields.response_disposition,
                P_SIGNATURE => &mut fields.signature,
                _ => return Err(Refusal::Malformed("unknown query parameter")),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(Refusal::Malformed("repeated query parameter"));
            }
        }
        Ok(fields)
    }
}

/// The canonical string signed: every field, named, length-prefixed.
fn canonical(
    method: &str,
    bucket: &str,
    key: &str,
    expires: &str,
    optional: &[(&str, Option<&str>)],
) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str(VERSION_TAG);
    out.push('\n');
    for (name, value) in [
        (P_METHOD, method),
        ("bucket", bucket),
        ("key", key),
        (P_EXPIRES, expires),
    ] {
        push_field(&mut out, name, Some(value));
    }
    for (name, value) in optional {
        push_field(&mut out, name, *value);
    }
    out.into_bytes()
}

fn push_field(out: &mut String, name: &str, value: Option<&str>) {
    use std::fmt::Write as _;
    match value {
        Some(v) => {
            let _ = writeln!(out, "{name}={}:{v}", v.len());
        }
        None => {
            let _ = writeln!(out, "{name}-");
        }
    }
}

impl UrlSigner {
    /// A signer for URLs under `base_url` (e.g. `http://127.0.0.1:5000`; a trailing `/` is
    /// dropped), valid at most `max_ttl` (capped at [`MAX_TTL`]).
    ///
    /// # Errors
    /// [`SecretError::TooShort`] for a secret under [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8], base_url: &str, max_ttl: Duration) -> Result<Self, SecretError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort);
        }
        let keyed = HmacSha256::new_from_slice(secret).map_err(|_| SecretError::TooShort)?;
        Ok(Self {
            keyed,
            base_url: base_url.trim_end_matches('/').to_owned(),
            max_ttl: max_ttl.min(MAX_TTL),
        })
    }

    /// A signer whose key is derived from another secret of the deployment (`parent`, e.g. the
    /// object store's secret key, which every instance shares): HMAC-SHA256 of a fixed label
    /// under `parent`, so the URLs' key is not `parent` itself and changes with it.
    ///
    /// # Errors
    /// [`SecretError::TooShort`] for an empty `parent`.
    pub fn derived(parent: &[u8], base_url: &str, max_ttl: Duration) -> Result<Self, SecretError> {
        if parent.is_empty() {
            return Err(SecretError::TooShort);
        }
        let mut mac = HmacSha256::new_from_slice(parent).map_err(|_| SecretError::TooShort)?;
        mac.update(DERIVATION_LABEL.as_bytes());
        Self::new(&mac.finalize().into_bytes(), base_url, max_ttl)
    }

    /// The base of the URLs.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    fn expiry(&self, ttl: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
        let secs = ttl.min(self.max_ttl).as_secs().max(1);
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        DateTime::from_timestamp(now.timestamp().saturating_add(secs), 0).unwrap_or(now)
    }

    fn url(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        method: &str,
        expires: DateTime<Utc>,
        optional: &[(&str, Option<&str>)],
    ) -> String {
        let expires = expires.timestamp().to_string();
        let mut mac = self.mac();
        mac.update(&canonical(
            method,
            bucket.as_str(),
            key.as_str(),
            &expires,
            optional,
        ));
        let signature = hex::encode(mac.finalize().into_bytes());
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair(P_METHOD, method);
        query.append_pair(P_EXPIRES, &expires);
        for (name, value) in optional {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        query.append_pair(P_SIGNATURE, &signature);
        format!(
            "{}{ROUTE_PREFIX}/{}/{}?{}",
            self.base_url,
            bucket.as_str(),
            key.as_str(),
            query.finish()
        )
    }

    /// A URL to PUT `key`, valid for `ttl` from `now`; `content_type` (and `content_length`
    /// when given) are signed and must be sent as headers.
    pub fn sign_put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        content_length: Option<u64>,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> PresignedRequest {
        let expires_at = self.expiry(ttl, now);
        let length = content_length.map(|n| n.to_string());
        let url = self.url(
            bucket,
            key,
            "PUT",
            expires_at,
            &[
                (P_CONTENT_TYPE, Some(content_type)),
                (P_LENGTH, length.as_deref()),
                (P_RESPONSE_TYPE, None),
                (P_RESPONSE_DISPOSITION, None),
            ],
        );
        let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
        if let Some(length) = length {
            headers.push(("Content-Length".to_owned(), length));
        }
        PresignedRequest {
            method: PresignMethod::Put,
            url,
            headers,
            expires_at,
        }
    }

    /// A URL to GET `key`, valid for `ttl` from `now`, answering with the overrides of
    /// `options`.
    pub fn sign_get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        options: &PresignGetOptions,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> PresignedRequest {
        let expires_at = self.expiry(ttl, now);
        let url = self.url(
            bucket,
            key,
            "GET",
            expires_at,
            &[
                (P_CONTENT_TYPE, None),
                (P_LENGTH, None),
                (P_RESPONSE_TYPE, options.content_type.as_deref()),
                (
                    P_RESPONSE_DISPOSITION,
                    options.content_disposition.as_deref(),
                ),
            ],
        );
        PresignedRequest {
            method: PresignMethod::Get,
            url,
            headers: Vec::new(),
            expires_at,
        }
    }

    /// Checks a request made with a signed URL at time `now`.
    ///
    /// # Errors
    /// The [`Refusal`] that applies (see the module's documentation for the order).
    pub fn verify(
        &self,
        request: &SignedRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Grant, Refusal> {
        let fields = Fields::parse(request.query)?;
        let (Some(method), Some(expires), Some(signature)) =
            (&fields.method, &fields.expires, &fields.signature)
        else {
            return Err(Refusal::Malformed("method, expires and sig are required"));
        };
        let signature =
            hex::decode(signature).map_err(|_| Refusal::Malformed("sig must be hexadecimal"))?;
        let mut mac = self.mac();
        mac.update(&canonical(
            method,
            request.bucket,
            request.key,
            expires,
            &[
                (P_CONTENT_TYPE, fields.content_type.as_deref()),
                (P_LENGTH, fields.length.as_deref()),
                (P_RESPONSE_TYPE, fields.response_type.as_deref()),
                (
                    P_RESPONSE_DISPOSITION,
                    fields.response_disposition.as_deref(),
                ),
            ],
        ));
        // Constant-time comparison.
        mac.verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;

        // From here on every field is the one this store signed.
        let expires: i64 = expires
            .parse()
            .map_err(|_| Refusal::Malformed("expires must be a number"))?;
        if now.timestamp() > expires {
            return Err(Refusal::Expired);
        }
        if !request.method.eq_ignore_ascii_case(method) {
            return Err(Refusal::WrongMethod);
        }
        let bucket =
            BucketKind::parse(request.bucket).map_err(|_| Refusal::Malformed("unknown bucket"))?;
        check_key(request.key).map_err(|_| Refusal::Malformed("invalid key"))?;
        let key = ObjectKey::from_stored(request.key);
        match method.as_str() {
            "PUT" => {
                let content_type = fields
                    .content_type
                    .ok_or(Refusal::Malformed("a PUT URL signs its content type"))?;
                if request.content_type != Some(content_type.as_str()) {
                    return Err(Refusal::ContentType);
                }
                let content_length = fields
                    .length
                    .map(|n| n.parse::<u64>())
                    .transpose()
                    .map_err(|_| Refusal::Malformed("len must be a number"))?;
                if let Some(signed) = content_length
                    && request.content_length != Some(signed)
                {
                    return Err(Refusal::ContentLength);
                }
                Ok(Grant::Put {
                    bucket,
                    key,
                    content_type,
                    content_length,
                })
            }
            "GET" => Ok(Grant::Get {
                bucket,
                key,
                response_content_type: fields.response_type,
                response_content_disposition: fields.response_disposition,
            }),
            _ => Err(Refusal::Malformed("unknown signed method")),
        }
    }
}

/// The service's own upload URLs (on S3, for uploads of unannounced size) are this store's
/// URLs, served by the same `/blob` routes.
impl ServiceUploadUrls for UrlSigner {
    fn sign_put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        content_length: Option<u64>,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> PresignedRequest {
        UrlSigner::sign_put(self, bucket, key, content_type, content_length, ttl, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn signer() -> UrlSigner {
        UrlSigner::new(SECRET, "http://127.0.0.1:5000/", Duration::from_secs(3600)).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn key() -> ObjectKey {
        ObjectKey::from_stored("5678/0190abcdef")
    }

    /// Splits a URL into (bucket, key, query) as the HTTP layer would.
    fn parts(url: &str) -> (String, String, String) {
        let rest = url.strip_prefix("http://127.0.0.1:5000/blob/").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        let (bucket, key) = path.split_once('/').unwrap();
        (bucket.to_owned(), key.to_owned(), query.to_owned())
    }

    fn request<'a>(
        method: &'a str,
        parts: &'a (String, String, String),
        content_type: Option<&'a str>,
        content_length: Option<u64>,
    ) -> SignedRequest<'a> {
        SignedRequest {
            method,
            bucket: &parts.0,
            key: &parts.1,
            query: &parts.2,
            content_type,
            content_length,
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            UrlSigner::new(b"short", "http://x", Duration::from_secs(1)).unwrap_err(),
            SecretError::TooShort
        );
    }

    #[test]
    fn a_put_url_verifies_with_its_headers() {
        let p = signer().sign_put(
            BucketKind::Projects,
            &key(),
            "application/pdf",
            Some(12),
            Duration::from_secs(900),
            now(),
        );
        assert_eq!(p.method, PresignMethod::Put);
        assert_eq!(p.expires_at.timestamp(), 1_800_000_900);
        assert!(p.url.starts_with("http://127.0.0.1:5000/blob/projects/5678/0190abcdef?method=PUT&expires=1800000900&ct=application%2Fpdf&len=12&sig="), "{}", p.url);
        assert_eq!(
            p.headers,
            vec![
                ("Content-Type".to_owned(), "application/pdf".to_owned()),
                ("Content-Length".to_owned(), "12".to_owned())
            ]
        );
        let parts = parts(&p.url);
        let grant = signer()
            .verify(
                &request("PUT", &parts, Some("application/pdf"), Some(12)),
                now(),
            )
            .unwrap();
        assert_eq!(
            grant,
            Grant::Put {
                bucket: BucketKind::Projects,
                key: key(),
                content_type: "application/pdf".into(),
                content_length: Some(12)
            }
        );
        // Valid up to and including its expiry second.
        let at_expiry = p.expires_at;
        assert!(
            signer()
                .verify(
                    &request("PUT", &parts, Some("application/pdf"), Some(12)),
                    at_expiry
                )
                .is_ok()
        );
        let after = at_expiry + chrono::Duration::seconds(1);
        assert_eq!(
            signer().verify(
                &request("PUT", &parts, Some("application/pdf"), Some(12)),
                after
            ),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn every_altered_component_is_refused() {
        let s = signer();
        let p = s.sign_put(
            BucketKind::Users,
            &key(),
            "text/plain",
            Some(5),
            Duration::from_secs(60),
            now(),
        );
        let good = parts(&p.url);
        let check =
            |parts: (String, String, String), method: &str, ct: Option<&str>, len: Option<u64>| {
                s.verify(&request(method, &parts, ct, len), now())
            };
        assert!(check(good.clone(), "PUT", Some("text/plain"), Some(5)).is_ok());

        let mut other_bucket = good.clone();
        other_bucket.0 = "companies".into();
        assert_eq!(
            check(other_bucket, "PUT", Some("text/plain"), Some(5)),
            Err(Refusal::BadSignature)
        );
        let mut other_key = good.clone();
        other_key.1.push('x');
        assert_eq!(
            check(other_key, "PUT", Some("text/plain"), Some(5)),
            Err(Refusal::BadSignature)
        );
        for (from, to) in [
            ("method=PUT", "method=GET"),
            ("ct=text%2Fplain", "ct=text%2Fhtml"),
            ("len=5", "len=6"),
            ("len=5&", ""),
        ] {
            let mut altered = good.clone();
            assert!(altered.2.contains(from), "{from} in {}", altered.2);
            altered.2 = altered.2.replacen(from, to, 1);
            assert_eq!(
                check(altered, "PUT", Some("text/plain"), Some(5)),
                Err(Refusal::BadSignature),
                "{from} -> {to}"
            );
        }
        let mut later = good.clone();
        let expires = p.expires_at.timestamp();
        later.2 = later.2.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3600),
        );
        assert_eq!(
            check(later, "PUT", Some("text/plain"), Some(5)),
            Err(Refusal::BadSignature)
        );
        // A flipped signature character.
        let mut forged = good.clone();
        let at = forged.2.find("sig=").unwrap() + 4;
        let flipped = if &forged.2[at..=at] == "0" { "1" } else { "0" };
        forged.2.replace_range(at..=at, flipped);
        assert_eq!(
            check(forged, "PUT", Some("text/plain"), Some(5)),
            Err(Refusal::BadSignature)
        );
        // Added or repeated parameters.
        let mut added = good.clone();
        added.2.push_str("&response-content-type=text%2Fhtml");
        assert_eq!(
            check(added, "PUT", Some("text/plain"), Some(5)),
            Err(Refusal::BadSignature)
        );
        let mut repeated = good.clone();
        repeated.2.push_str("&ct=text%2Fhtml");
        assert!(matches!(
            check(repeated, "PUT", Some("text/plain"), Some(5)),
            Err(Refusal::Malformed(_))
        ));
        let mut unknown = good.clone();
        unknown.2.push_str("&x=1");
        assert!(matches!(
            check(unknown, "PUT", Some("text/plain"), Some(5)),
            Err(Refusal::Malformed(_))
        ));
        // Wrong method, headers.
        for method in ["GET", "DELETE", "POST", "HEAD"] {
            assert_eq!(
                check(good.clone(), method, Some("text/plain"), Some(5)),
                Err(Refusal::WrongMethod)
            );
        }
        assert_eq!(
            check(good.clone(), "PUT", Some("text/html"), Some(5)),
            Err(Refusal::ContentType)
        );
        assert_eq!(
            check(good.clone(), "PUT", None, Some(5)),
            Err(Refusal::ContentType)
        );
        assert_eq!(
            check(good.clone(), "PUT", Some("text/plain"), Some(6)),
            Err(Refusal::ContentLength)
        );
        assert_eq!(
            check(good.clone(), "PUT", Some("text/plain"), None),
            Err(Refusal::ContentLength)
        );
        // Another secret.
        let other =
            UrlSigner::new(&[7; 32], "http://127.0.0.1:5000", Duration::from_secs(60)).unwrap();
        assert_eq!(
            other.verify(&request("PUT", &good, Some("text/plain"), Some(5)), now()),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn a_get_url_carries_its_response_headers() {
        let s = signer();
        let options = PresignGetOptions {
            content_disposition: Some(
                "attachment; filename=\"a b.pdf\"; filename*=UTF-8''a%20b.pdf".into(),
            ),
            content_type: Some("application/pdf".into()),
        };
        let p = s.sign_get(
            BucketKind::Companies,
            &key(),
            &options,
            Duration::from_secs(60),
            now(),
        );
        assert_eq!(p.method, PresignMethod::Get);
        assert!(p.headers.is_empty());
        let good = parts(&p.url);
        let grant = s.verify(&request("GET", &good, None, None), now()).unwrap();
        assert_eq!(
            grant,
            Grant::Get {
                bucket: BucketKind::Companies,
                key: key(),
                response_content_type: options.content_type.clone(),
                response_content_disposition: options.content_disposition.clone(),
            }
        );
        assert_eq!(
            s.verify(&request("PUT", &good, Some("application/pdf"), None), now()),
            Err(Refusal::WrongMethod)
        );
        let mut dropped = good.clone();
        let at = dropped.2.find("&response-content-disposition=").unwrap();
        let end = dropped.2.find("&sig=").unwrap();
        dropped.2.replace_range(at..end, "");
        assert_eq!(
            s.verify(&request("GET", &dropped, None, None), now()),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn a_derived_key_is_neither_its_parent_nor_another_parents() {
        let derived = UrlSigner::derived(b"minioadmin", "http://127.0.0.1:5000", MAX_TTL).unwrap();
        let again = UrlSigner::derived(b"minioadmin", "http://127.0.0.1:5000", MAX_TTL).unwrap();
        let p = derived.sign_put(
            BucketKind::Users,
            &key(),
            "text/plain",
            None,
            Duration::from_secs(60),
            now(),
        );
        let parts = parts(&p.url);
        let put = request("PUT", &parts, Some("text/plain"), Some(3));
        assert!(again.verify(&put, now()).is_ok(), "same parent, same key");
        let other = UrlSigner::derived(b"minioadmin2", "http://127.0.0.1:5000", MAX_TTL).unwrap();
        assert_eq!(other.verify(&put, now()), Err(Refusal::BadSignature));
        // The parent itself, used as a key, does not verify a derived URL.
        let derived = UrlSigner::derived(SECRET, "http://127.0.0.1:5000", MAX_TTL).unwrap();
        let p = derived.sign_put(
            BucketKind::Users,
            &key(),
            "text/plain",
            None,
            Duration::from_secs(60),
            now(),
        );
        let parts = self::parts(&p.url);
        let put = request("PUT", &parts, Some("text/plain"), Some(3));
        assert!(derived.verify(&put, now()).is_ok());
        let parent = UrlSigner::new(SECRET, "http://127.0.0.1:5000", MAX_TTL).unwrap();
        assert_eq!(parent.verify(&put, now()), Err(Refusal::BadSignature));
        assert_eq!(
            UrlSigner::derived(b"", "http://x", MAX_TTL).unwrap_err(),
            SecretError::TooShort
        );
    }

    #[test]
    fn the_ttl_is_capped() {
        let s = UrlSigner::new(SECRET, "http://h", Duration::from_secs(600)).unwrap();
        let p = s.sign_get(
            BucketKind::Users,
            &key(),
            &PresignGetOptions::default(),
            Duration::from_secs(86_400),
            now(),
        );
        assert_eq!(p.expires_at, now() + chrono::Duration::seconds(600));
        let p = s.sign_get(
            BucketKind::Users,
            &key(),
            &PresignGetOptions::default(),
            Duration::ZERO,
            now(),
        );
        assert_eq!(p.expires_at, now() + chrono::Duration::seconds(1));
    }
}
