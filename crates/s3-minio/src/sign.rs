//! Presigned PUT URLs that sign headers rust-s3 0.38 signs wrongly.
//!
//! rust-s3 builds the canonical headers of a signature by sorting whole `name:value` lines, so
//! when one signed header's name is a prefix of another's (`x-amz-copy-source` and
//! `x-amz-copy-source-range`), `:` sorts after `-` and the lines come out of SigV4's order
//! (by name): the store computes another signature and answers 403. An `UploadPartCopy` must
//! sign both. Here the URL and its query are built by rust-s3's own public functions, exactly
//! as its `presign_put` does, and only the canonical headers are ordered by name before the
//! string to sign is hashed and signed (rust-s3's `string_to_sign` and `signing_key`).

use std::collections::HashMap;

use hmac::Mac;
use http::{HeaderMap, HeaderValue, header::HOST};
use s3::{Bucket, signing};
use storage_domain::ports::BlobError;

use crate::error::map_s3;

/// A URL to `PUT` `key` with `queries` added, whose signature covers `headers` (sent as they
/// are by the caller) and the host, valid `expiry_secs`.
pub(crate) async fn presign_put_signing(
    bucket: &Bucket,
    key: &str,
    expiry_secs: u32,
    headers: &HeaderMap,
    queries: &HashMap<String, String>,
) -> Result<String, BlobError> {
    let now = time::OffsetDateTime::now_utc();
    let region = bucket.region();
    let access_key = bucket
        .access_key()
        .await
        .map_err(map_s3)?
        .unwrap_or_default();
    let secret_key = bucket
        .secret_key()
        .await
        .map_err(map_s3)?
        .unwrap_or_default();
    let token = match bucket.security_token().await.map_err(map_s3)? {
        Some(token) => Some(token),
        None => bucket.session_token().await.map_err(map_s3)?,
    };
    let unsigned = format!(
        "{}/{}{}{}",
        bucket.url(),
        signing::uri_encode(key, false),
        signing::authorization_query_params_no_sig(
            &access_key,
            &now,
            &region,
            expiry_secs,
            Some(headers),
            token.as_ref(),
        )
        .map_err(map_s3)?,
        signing::flatten_queries(Some(queries)).map_err(map_s3)?,
    );
    let url = url::Url::parse(&unsigned)
        .map_err(|e| BlobError::Other(format!("cannot build the S3 URL: {e}")))?;
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(BlobError::Other("the S3 URL has no host".to_owned())),
    };
    let mut signed = headers.clone();
    signed.insert(
        HOST,
        HeaderValue::from_str(&host)
            .map_err(|_| BlobError::Other("the S3 host is not a header value".to_owned()))?,
    );
    let canonical_request = format!(
        "PUT\n{}\n{}\n{}\n\n{}\nUNSIGNED-PAYLOAD",
        signing::canonical_uri_string(&url),
        signing::canonical_query_string(&url),
        canonical_headers(&signed)?,
        signing::signed_header_string(&signed),
    );
    let string_to_sign =
        signing::string_to_sign(&now, &region, &canonical_request).map_err(map_s3)?;
    let key = signing::signing_key(&now, &secret_key, &region, "s3").map_err(map_s3)?;
    let mut mac = signing::HmacSha256::new_from_slice(&key)
        .map_err(|_| BlobError::Other("cannot key the S3 signature".to_owned()))?;
    mac.update(string_to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    Ok(format!("{unsigned}&X-Amz-Signature={signature}"))
}

/// SigV4's canonical headers: lower-case names in name order, trimmed values, one per line.
fn canonical_headers(headers: &HeaderMap) -> Result<String, BlobError> {
    let mut lines = headers
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|v| (name.as_str().to_ascii_lowercase(), v.trim().to_owned()))
                .map_err(|_| BlobError::Other("a signed header is not text".to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(lines
        .into_iter()
        .map(|(name, value)| format!("{name}:{value}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;

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
        headers.insert(HOST, HeaderValue::from_static("h:1"));
        assert_eq!(
            canonical_headers(&headers).unwrap(),
            "host:h:1\nx-amz-copy-source:/b/k\nx-amz-copy-source-range:bytes=0-9"
        );
        // What rust-s3 0.38 makes of the same headers (the reason for this module).
        assert_eq!(
            signing::canonical_header_string(&headers).unwrap(),
            "host:h:1\nx-amz-copy-source-range:bytes=0-9\nx-amz-copy-source:/b/k"
        );
    }
}
