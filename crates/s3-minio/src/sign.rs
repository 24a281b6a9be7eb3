//! Presigned URLs (query-string SigV4), signed by the adapter itself with the day's signing key
//! derived once.
//!
//! rust-s3 0.38's `presign_get`/`presign_put` redo per URL what only changes once a day or never:
//! they read the credentials through async locks, build and parse the URL twice, and derive the
//! signing key (four HMACs over the secret, the date, the region and the service) on every call.
//! A [`Signer`] holds the credentials and region of the store as plain values and keeps the
//! day's key, already keyed into an HMAC, for as long as the UTC date stays the same; a URL then
//! costs one parse, one SHA-256 of the canonical request and one HMAC. The URL, its query and the
//! canonical URI and query are built by rust-s3's own public functions (`signing::…`), exactly as
//! its presign calls build them, so the URLs are byte for byte the ones rust-s3 signs (a test
//! below compares them, and one checks AWS's published example).
//!
//! The canonical headers are ordered here by name, as SigV4 wants: rust-s3 sorts whole
//! `name:value` lines, so when one signed header's name is a prefix of another's
//! (`x-amz-copy-source` and `x-amz-copy-source-range`, both signed by an `UploadPartCopy`) `:`
//! sorts after `-`, the lines come out of order and the store answers 403.

use std::{fmt, sync::Mutex};

use hmac::Mac;
use http::HeaderMap;
use s3::{Region, signing};
use secrecy::{ExposeSecret, SecretString};
use storage_domain::ports::BlobError;
use time::{Date, OffsetDateTime};

use crate::error::map_s3;

/// The service every URL is signed for.
const SERVICE: &str = "s3";

/// What one presigned URL is for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Presign<'a> {
    /// `GET` or `PUT`.
    pub method: &'static str,
    /// The bucket's URL (`http://host:port/bucket` path-style), without a trailing slash.
    pub bucket_url: &'a str,
    pub key: &'a str,
    pub expiry_secs: u32,
    /// Headers the request must send as they are, covered by the signature (the host always is).
    pub headers: &'a HeaderMap,
    /// Query parameters added to the URL and signed (`response-content-type`, `partNumber`, …).
    pub queries: &'a [(&'a str, &'a str)],
}

/// Signs presigned URLs for one store's credentials and region.
pub(crate) struct Signer {
    access_key: String,
    secret_key: SecretString,
    region: Region,
    /// The signing key of the date it was derived for, keyed into an HMAC (cloned per URL).
    day_key: Mutex<Option<(Date, signing::HmacSha256)>>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("region", &self.region.to_string())
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub(crate) fn new(access_key: &str, secret_key: SecretString, region: Region) -> Self {
        Self {
            access_key: access_key.to_owned(),
            secret_key,
            region,
            day_key: Mutex::new(None),
        }
    }

    /// A URL for `request`, signed now, valid `request.expiry_secs`.
    pub(crate) fn presign(&self, request: &Presign<'_>) -> Result<String, BlobError> {
        self.presign_at(request, OffsetDateTime::now_utc())
    }

    /// A URL for `request`, signed at `now` (UTC).
    pub(crate) fn presign_at(
        &self,
        request: &Presign<'_>,
        now: OffsetDateTime,
    ) -> Result<String, BlobError> {
        let mut unsigned = format!(
            "{}/{}{}",
            request.bucket_url,
            // As rust-s3: the key's leading `/` is the one after the bucket.
            signing::uri_encode(request.key.strip_prefix('/').unwrap_or(request.key), false),
            signing::authorization_query_params_no_sig(
                &self.access_key,
                &now,
                &self.region,
                request.expiry_secs,
                Some(request.headers),
                None,
            )
            .map_err(map_s3)?,
        );
        for (name, value) in request.queries {
            unsigned.push('&');
            unsigned.push_str(&signing::uri_encode(name, true));
            unsigned.push('=');
            unsigned.push_str(&signing::uri_encode(value, true));
        }
        let url = url::Url::parse(&unsigned)
            .map_err(|e| BlobError::Other(format!("cannot build the S3 URL: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(BlobError::Other("the S3 URL has no host".to_owned())),
        };
        let (canonical_headers, signed_headers) = canonical_headers(request.headers, &host)?;
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n\n{signed_headers}\nUNSIGNED-PAYLOAD",
            request.method,
            signing::canonical_uri_string(&url),
            signing::canonical_query_string(&url),
        );
        let string_to_sign =
            signing::string_to_sign(&now, &self.region, &canonical_request).map_err(map_s3)?;
        let mut mac = self.day_key(&now)?;
        mac.update(string_to_sign.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        Ok(format!("{url}&X-Amz-Signature={signature}"))
    }

    /// The signing key of `now`'s UTC date, keyed into an HMAC: derived on the first URL of the
    /// day, cloned after that.
    fn day_key(&self, now: &OffsetDateTime) -> Result<signing::HmacSha256, BlobError> {
        let date = now.date();
        let mut day_key = self
            .day_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((day, mac)) = day_key.as_ref()
            && *day == date
        {
            return Ok(mac.clone());
        }
        let key = signing::signing_key(now, self.secret_key.expose_secret(), &self.region, SERVICE)
            .map_err(map_s3)?;
        let mac = signing::HmacSha256::new_from_slice(&key)
            .map_err(|_| BlobError::Other("cannot key the S3 signature".to_owned()))?;
        *day_key = Some((date, mac.clone()));
        Ok(mac)
    }
}

/// SigV4's canonical headers (lower-case names in name order, trimmed values, one per line) of
/// `headers` and the host, and the signed header list (`host;…`).
fn canonical_headers(headers: &HeaderMap, host: &str) -> Result<(String, String), BlobError> {
    let mut lines = Vec::with_capacity(headers.len() + 1);
    lines.push(("host".to_owned(), host.trim()));
    for (name, value) in headers {
        let value = value
            .to_str()
            .map_err(|_| BlobError::Other("a signed header is not text".to_owned()))?;
        lines.push((name.as_str().to_ascii_lowercase(), value.trim()));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical = lines
        .iter()
        .map(|(name, value)| format!("{name}:{value}"))
        .collect::<Vec<_>>()
        .join("\n");
    let signed = lines
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    Ok((canonical, signed))
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue, header::CONTENT_TYPE};
    use s3::{Bucket, creds::Credentials};

    use super::*;

    /// May `day`, 2013, `second` past midnight UTC.
    fn utc(day: u8, second: u8) -> OffsetDateTime {
        Date::from_calendar_date(2013, time::Month::May, day)
            .unwrap()
            .with_hms(0, 0, second)
            .unwrap()
            .assume_utc()
    }

    const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn signer(region: &str, endpoint: &str) -> Signer {
        Signer::new(
            ACCESS,
            SecretString::from(SECRET),
            Region::Custom {
                region: region.to_owned(),
                endpoint: endpoint.to_owned(),
            },
        )
    }

    /// AWS's example of a presigned GET ("Authenticating Requests: Using Query Parameters",
    /// Amazon S3 API reference), with its published signature.
    const AWS_EXAMPLE: &str = "https://examplebucket.s3.amazonaws.com/test.txt\
        ?X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    /// The example's request signed at `at`.
    fn example_at(signer: &Signer, at: OffsetDateTime) -> String {
        signer
            .presign_at(
                &Presign {
                    method: "GET",
                    bucket_url: "https://examplebucket.s3.amazonaws.com",
                    key: "test.txt",
                    expiry_secs: 86_400,
                    headers: &HeaderMap::new(),
                    queries: &[],
                },
                at,
            )
            .unwrap()
    }

    fn aws_example(signer: &Signer) -> String {
        example_at(signer, utc(24, 0))
    }

    #[test]
    fn the_aws_example_signs_as_published() {
        let signer = signer("us-east-1", "https://s3.amazonaws.com");
        assert_eq!(aws_example(&signer), AWS_EXAMPLE);
    }

    #[test]
    fn the_cached_key_is_the_day_s_key() {
        let signer = signer("us-east-1", "https://s3.amazonaws.com");
        assert_eq!(aws_example(&signer), AWS_EXAMPLE, "derived");
        assert_eq!(aws_example(&signer), AWS_EXAMPLE, "cached");
        // Another day caches another key; the example's day then derives its own again.
        let at = utc(25, 1);
        assert_eq!(
            example_at(&signer, at),
            example_at(&self::signer("us-east-1", "https://s3.amazonaws.com"), at),
            "the next day signs with a fresh key"
        );
        assert_eq!(aws_example(&signer), AWS_EXAMPLE, "the day changed back");
    }

    /// The query pairs of `url`, sorted, with the signature apart.
    fn parts(url: &str) -> (String, Vec<(String, String)>, String) {
        let url = url::Url::parse(url).unwrap();
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let signature = pairs
            .iter()
            .position(|(k, _)| k == "X-Amz-Signature")
            .map(|i| pairs.remove(i).1)
            .unwrap();
        pairs.sort();
        (
            format!("{}{}", &url[..url::Position::AfterPort], url.path()),
            pairs,
            signature,
        )
    }

    /// What rust-s3 signs and what the signer signs for the same request, at the same second.
    async fn both(
        rust_s3: impl AsyncFn(&Bucket) -> String,
        ours: &Presign<'_>,
        signer: &Signer,
        bucket: &Bucket,
    ) -> (String, String) {
        loop {
            let before = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
            let theirs = rust_s3(bucket).await;
            let mine = signer.presign_at(ours, before).unwrap();
            if OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() == before {
                return (theirs, mine);
            }
        }
    }

    #[tokio::test]
    async fn urls_are_those_rust_s3_signs() {
        let endpoint = "http://127.0.0.1:3900";
        let signer = signer("garage", endpoint);
        let mut bucket = Bucket::new(
            "users-bucket",
            Region::Custom {
                region: "garage".to_owned(),
                endpoint: endpoint.to_owned(),
            },
            Credentials::new(Some(ACCESS), Some(SECRET), None, None, None).unwrap(),
        )
        .unwrap();
        bucket.set_path_style();
        let bucket_url = bucket.url();
        let key = "users/ab/cd/0193 name é+x.bin";

        // A GET with one response override: the whole URL is the same.
        let (theirs, mine) = both(
            async |b: &Bucket| {
                let queries = std::collections::HashMap::from([(
                    "response-content-disposition".to_owned(),
                    "attachment; filename=\"a b.txt\"".to_owned(),
                )]);
                b.presign_get(key, 900, Some(queries)).await.unwrap()
            },
            &Presign {
                method: "GET",
                bucket_url: &bucket_url,
                key,
                expiry_secs: 900,
                headers: &HeaderMap::new(),
                queries: &[(
                    "response-content-disposition",
                    "attachment; filename=\"a b.txt\"",
                )],
            },
            &signer,
            &bucket,
        )
        .await;
        assert_eq!(mine, theirs);

        // A GET with two: rust-s3 orders them as its HashMap does, so compare the pairs.
        let (theirs, mine) = both(
            async |b: &Bucket| {
                let queries = std::collections::HashMap::from([
                    ("response-content-type".to_owned(), "text/plain".to_owned()),
                    (
                        "response-content-disposition".to_owned(),
                        "inline".to_owned(),
                    ),
                ]);
                b.presign_get(key, 60, Some(queries)).await.unwrap()
            },
            &Presign {
                method: "GET",
                bucket_url: &bucket_url,
                key,
                expiry_secs: 60,
                headers: &HeaderMap::new(),
                queries: &[
                    ("response-content-type", "text/plain"),
                    ("response-content-disposition", "inline"),
                ],
            },
            &signer,
            &bucket,
        )
        .await;
        assert_eq!(parts(&mine), parts(&theirs));

        // A PUT signing its type and length (the upload presign).
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(1234_u64));
        let signed = headers.clone();
        let (theirs, mine) = both(
            async |b: &Bucket| {
                b.presign_put(key, 3600, Some(signed.clone()), None)
                    .await
                    .unwrap()
            },
            &Presign {
                method: "PUT",
                bucket_url: &bucket_url,
                key,
                expiry_secs: 3600,
                headers: &headers,
                queries: &[],
            },
            &signer,
            &bucket,
        )
        .await;
        assert_eq!(mine, theirs);
    }

    #[test]
    fn headers_are_ordered_by_name_not_by_line() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("x-amz-copy-source-range"),
            HeaderValue::from_static("bytes=0-9"),
        );
        headers.insert(
            HeaderName::from_static("x-amz-copy-source"),
            HeaderValue::from_static(" /b/k "),
        );
        assert_eq!(
            canonical_headers(&headers, "h:1").unwrap(),
            (
                "host:h:1\nx-amz-copy-source:/b/k\nx-amz-copy-source-range:bytes=0-9".to_owned(),
                "host;x-amz-copy-source;x-amz-copy-source-range".to_owned()
            )
        );
        // What rust-s3 0.38 makes of the same headers (the reason for ordering them here).
        headers.insert(http::header::HOST, HeaderValue::from_static("h:1"));
        assert_eq!(
            signing::canonical_header_string(&headers).unwrap(),
            "host:h:1\nx-amz-copy-source-range:bytes=0-9\nx-amz-copy-source:/b/k"
        );
    }
}
