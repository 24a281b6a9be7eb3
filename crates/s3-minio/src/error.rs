//! Mapping of rust-s3 failures to the port's [`BlobError`].
//!
//! With rust-s3's `fail-on-err` feature every non-2xx answer comes back as
//! `S3Error::HttpFailWithBody(status, body)`; the status decides the variant. The messages
//! carry the status and the S3 error code only (for the logs), never the body.

use s3::error::S3Error;
use storage_domain::ports::BlobError;

/// Maps any rust-s3 error (404 → `NotFound`, unreachable/timeout → `Unavailable`).
pub(crate) fn map_s3(error: S3Error) -> BlobError {
    match error {
        S3Error::HttpFailWithBody(status, body) => map_status(status, &body),
        S3Error::Reqwest(e) => {
            if e.is_builder() {
                BlobError::Other(format!("cannot build the S3 request: {e}"))
            } else if e.is_timeout() {
                BlobError::Unavailable("S3 request timed out".to_owned())
            } else {
                // Connection refused/reset, DNS, TLS, or a body cut by the network.
                BlobError::Unavailable(format!("S3 request failed: {e}"))
            }
        }
        S3Error::Io(e) => BlobError::Unavailable(format!("S3 I/O failed: {e}")),
        other => BlobError::Other(format!("S3 client error: {other}")),
    }
}

/// Maps an HTTP status the store answered.
pub(crate) fn map_status(status: u16, body: &str) -> BlobError {
    match status {
        404 => BlobError::NotFound,
        416 => BlobError::RangeNotSatisfiable,
        502..=504 => BlobError::Unavailable(format!("S3 answered {status}{}", code_of(body))),
        _ => BlobError::Other(format!("S3 answered {status}{}", code_of(body))),
    }
}

/// The `<Code>` of an S3 XML error body, formatted as ` (Code)`, or nothing.
fn code_of(body: &str) -> String {
    xml_text(body, "Code")
        .filter(|c| c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric()))
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

/// The text of the first `<tag>…</tag>` of a small XML document, entities `&quot;` and
/// `&amp;` decoded.
pub(crate) fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<std::borrow::Cow<'a, str>> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    let raw = &xml[start..start + len];
    if raw.contains('&') {
        Some(raw.replace("&quot;", "\"").replace("&amp;", "&").into())
    } else {
        Some(raw.into())
    }
}

/// An entity tag without its quotes.
pub(crate) fn unquote_etag(raw: &str) -> String {
    raw.trim().trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_port_errors() {
        assert!(matches!(
            map_s3(S3Error::HttpFailWithBody(404, String::new())),
            BlobError::NotFound
        ));
        assert!(matches!(
            map_status(416, ""),
            BlobError::RangeNotSatisfiable
        ));
        assert!(matches!(map_status(503, ""), BlobError::Unavailable(_)));
        let BlobError::Other(msg) = map_status(
            403,
            "<Error><Code>AccessDenied</Code><Message>secret detail</Message></Error>",
        ) else {
            panic!("403 must be Other");
        };
        assert_eq!(msg, "S3 answered 403 (AccessDenied)");
    }

    #[test]
    fn etags_are_read_from_xml_and_unquoted() {
        let xml = "<CompleteMultipartUploadResult><ETag>&quot;abc-3&quot;</ETag></CompleteMultipartUploadResult>";
        let etag = xml_text(xml, "ETag").map(|e| unquote_etag(&e));
        assert_eq!(etag.as_deref(), Some("abc-3"));
        assert_eq!(xml_text(xml, "Missing"), None);
    }
}
