//! Server-side copies: one `CopyObject` up to the multipart threshold (5 GiB, the most one
//! `CopyObject` may copy), else a multipart upload whose parts are `UploadPartCopy` ranges of
//! the source.
//!
//! rust-s3 0.38 has no `UploadPartCopy`: each part is sent like the parts of a streamed put, to a
//! presigned URL (`?partNumber=…&uploadId=…`, query-string SigV4, signed by `sign.rs`: rust-s3
//! signs these headers in the wrong order) with the adapter's own HTTP client, with the copy
//! headers signed into the URL (`x-amz-copy-source`,
//! `x-amz-copy-source-range`, and `x-amz-copy-source-if-match` with the source's entity tag, so
//! every part comes from the same object: a source overwritten meanwhile fails the part with
//! 412, reported as [`BlobError::SourceChanged`]). A failure of any part or of the completion
//! aborts the upload before the copy returns, and dropping the copy's future aborts it from a
//! task ([`AbortGuard`]): no object and no unfinished upload is left at the target.

use http::{HeaderMap, HeaderName, HeaderValue};
use s3::serde_types::Part;
use storage_domain::ports::BlobError;
use tokio::task::JoinSet;

use crate::{
    error::{map_s3, map_status, unquote_etag, xml_text},
    put::{AbortGuard, MAX_PARTS, initiate, map_http},
    sign::{Presign, Signer},
    store::Target,
};

/// Parts of one multipart copy copying at the same time (no bytes pass through the service).
const COPY_PARTS_IN_FLIGHT: usize = 4;
/// Lifetime of the presigned URL of one part copy: it is used at once.
const PART_URL_TTL_SECS: u32 = 900;

/// What a multipart copy copies, and where.
pub(crate) struct PartCopy<'a> {
    pub to: &'a Target,
    pub signer: &'a Signer,
    pub to_key: &'a str,
    /// `/<bucket>/<key>`, URL-encoded, as `x-amz-copy-source` wants it.
    pub source: &'a str,
    pub size: u64,
    /// The source's entity tag, which every part requires.
    pub etag: Option<&'a str>,
    pub content_type: &'a str,
    pub part_size: u64,
}

/// The inclusive byte ranges of the parts of an object of `size` bytes, `part_size` each (the
/// last shorter). At least one range, even for an empty object.
pub(crate) fn part_ranges(size: u64, part_size: u64) -> Result<Vec<(u64, u64)>, BlobError> {
    let part_size = part_size.max(1);
    let count = size.div_ceil(part_size).max(1);
    if count > u64::from(MAX_PARTS) {
        return Err(BlobError::Other(format!(
            "object too large to copy: more than {MAX_PARTS} parts of {part_size} bytes"
        )));
    }
    Ok((0..count)
        .map(|i| {
            let first = i * part_size;
            (first, (first + part_size).min(size).saturating_sub(1))
        })
        .collect())
}

/// Copies `copy.source` into `copy.to_key` part by part; aborts the upload on any failure.
pub(crate) async fn multipart_copy(
    http: &reqwest::Client,
    copy: PartCopy<'_>,
) -> Result<(), BlobError> {
    let ranges = part_ranges(copy.size, copy.part_size)?;
    let upload_id = initiate(&copy.to.bucket, copy.to_key, copy.content_type).await?;
    let guard = AbortGuard::new(&copy.to.bucket, copy.to_key, upload_id);
    match copy_parts(http, &copy, guard.upload_id(), ranges).await {
        Ok(()) => {
            guard.disarm();
            Ok(())
        }
        Err(error) => {
            guard.abort().await;
            Err(error)
        }
    }
}

async fn copy_parts(
    http: &reqwest::Client,
    copy: &PartCopy<'_>,
    upload_id: &str,
    ranges: Vec<(u64, u64)>,
) -> Result<(), BlobError> {
    let mut in_flight: JoinSet<Result<Part, BlobError>> = JoinSet::new();
    let mut parts: Vec<Part> = Vec::with_capacity(ranges.len());
    for (index, (first, last)) in ranges.into_iter().enumerate() {
        while in_flight.len() >= COPY_PARTS_IN_FLIGHT {
            if let Some(done) = in_flight.join_next().await {
                parts.push(part_joined(done)?);
            }
        }
        let part_number =
            u32::try_from(index + 1).map_err(|_| BlobError::Other("too many parts".to_owned()))?;
        let headers = copy_headers(copy, first, last)?;
        let url = copy.signer.presign(&Presign {
            method: "PUT",
            bucket_url: &copy.to.url,
            key: copy.to_key,
            expiry_secs: PART_URL_TTL_SECS,
            headers: &headers,
            queries: &[
                ("partNumber", &part_number.to_string()),
                ("uploadId", upload_id),
            ],
        })?;
        let http = http.clone();
        in_flight.spawn(async move { send_part_copy(&http, &url, headers, part_number).await });
    }
    while let Some(done) = in_flight.join_next().await {
        parts.push(part_joined(done)?);
    }
    parts.sort_by_key(|p| p.part_number);
    let response = copy
        .to
        .bucket
        .complete_multipart_upload(copy.to_key, upload_id, parts)
        .await
        .map_err(map_s3)?;
    // A completion can fail after its 200 status line: the body then holds an <Error>.
    match response.as_str() {
        Ok(body) if body.contains("CompleteMultipartUploadResult") => Ok(()),
        Ok(body) => Err(map_status(500, body)),
        Err(_) => Err(BlobError::Other(
            "S3 completion answered a non-UTF-8 body".to_owned(),
        )),
    }
}

/// The signed headers of the part copying bytes `first..=last`.
fn copy_headers(copy: &PartCopy<'_>, first: u64, last: u64) -> Result<HeaderMap, BlobError> {
    let value = |v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| BlobError::Other("copy header is not a valid header value".to_owned()))
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-amz-copy-source"),
        value(copy.source)?,
    );
    headers.insert(
        HeaderName::from_static("x-amz-copy-source-range"),
        value(&format!("bytes={first}-{last}"))?,
    );
    if let Some(etag) = copy.etag {
        headers.insert(
            HeaderName::from_static("x-amz-copy-source-if-match"),
            value(&format!("\"{etag}\""))?,
        );
    }
    Ok(headers)
}

/// Sends one `UploadPartCopy` and reads its part's entity tag.
async fn send_part_copy(
    http: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    part_number: u32,
) -> Result<Part, BlobError> {
    let response = http
        .put(url)
        .headers(headers)
        .body(Vec::new())
        .send()
        .await
        .map_err(map_http)?;
    let status = response.status();
    let body = response.text().await.map_err(map_http)?;
    if status.as_u16() == 412 {
        return Err(BlobError::SourceChanged);
    }
    if !status.is_success() {
        return Err(map_status(status.as_u16(), &body));
    }
    // Like a CopyObject, a part copy can fail after its 200 status line.
    if !body.contains("CopyPartResult") {
        return Err(map_status(500, &body));
    }
    let etag = xml_text(&body, "ETag")
        .map(|e| unquote_etag(&e))
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            BlobError::Other(format!(
                "S3 answered part copy {part_number} without an ETag"
            ))
        })?;
    Ok(Part { part_number, etag })
}

/// A part copy's task ended: its part, or why it failed.
fn part_joined(
    done: Result<Result<Part, BlobError>, tokio::task::JoinError>,
) -> Result<Part, BlobError> {
    done.map_err(|_| BlobError::Other("part copy task failed".to_owned()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_exactly() {
        assert_eq!(part_ranges(10, 4).unwrap(), vec![(0, 3), (4, 7), (8, 9)]);
        assert_eq!(part_ranges(8, 4).unwrap(), vec![(0, 3), (4, 7)]);
        assert_eq!(part_ranges(1, 4).unwrap(), vec![(0, 0)]);
        let gib5 = 5 * 1024 * 1024 * 1024_u64;
        let ranges = part_ranges(gib5 + 1, 256 * 1024 * 1024).unwrap();
        assert_eq!(ranges.len(), 21);
        assert_eq!(ranges.last(), Some(&(gib5, gib5)));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0, "contiguous");
        }
        assert!(part_ranges(10_001, 1).is_err(), "at most 10 000 parts");
    }
}
