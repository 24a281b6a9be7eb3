//! Uploads (presigned, completed, proxied) and downloads (presigned, proxied).

use std::io;

use actix_multipart::{Field, Multipart};
use actix_web::{
    HttpRequest, HttpResponse,
    body::SizedStream,
    http::{StatusCode, header},
    web::{self, Bytes, Query},
};
use futures_util::{
    StreamExt,
    future::{Either, select},
    pin_mut,
};
use storage_domain::{
    StorageError,
    model::{FilePath, Tags, UploadId, VersionNumber, VersionSelector},
    ports::{ByteStream, Expectation},
    service::{self, DownloadRequest, ProxyUpload, content_disposition},
};

use super::{State, ok};
use crate::{
    body::JsonBody,
    context::Caller,
    dto::{
        CompleteUploadRequest, DownloadQuery, FileVersionResponse, PresignDownloadRequest,
        PresignDownloadResponse, PresignUploadRequest, PresignUploadResponse, ProxyUploadForm,
    },
    error::{ApiError, Failure},
    openapi::Errors,
    range::{etag_of, if_range_allows, none_match_hits, parse_range},
};

/// Chunks buffered between the multipart reader and the blob store: memory stays bounded by
/// this many chunks whatever the upload's size.
const CHANNEL_CHUNKS: usize = 4;
/// Most non-file fields accepted before `file`.
const MAX_FORM_FIELDS: usize = 32;
/// The header of the file's version, on downloads.
const X_FILE_VERSION: &str = "x-file-version";

fn invalid(detail: impl Into<String>) -> StorageError {
    StorageError::InvalidRequest(detail.into())
}

/// Reserves an upload and answers a URL to PUT the bytes to; then call `/upload/complete`.
/// The URL writes a staging object of this upload only, never a version: what it writes after
/// the completion changes no version.
#[utoipa::path(
    post, path = "/upload/presign", tag = "uploads", request_body = PresignUploadRequest,
    responses((status = 200, description = "Where and how to PUT the bytes", body = PresignUploadResponse), Errors)
)]
pub(crate) async fn presign_upload(
    caller: Caller,
    state: State,
    body: JsonBody<PresignUploadRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let run = async {
        let req = service::PresignUploadRequest {
            path: FilePath::parse_request(&body.bucket, &body.path)?,
            content_type: body.content_type,
            size: body.size,
            sha256: body.sha256,
        };
        let presigned = state.service().presign_upload(&caller.0, req).await?;
        Ok::<_, StorageError>(ok(PresignUploadResponse::new(&presigned)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Seals the uploaded object (a server-side copy under a key no URL names), checks that copy
/// (exists, size, SHA-256 when announced) and records it as a new version. Idempotent:
/// completing again answers the same version.
#[utoipa::path(
    post, path = "/upload/complete", tag = "uploads", request_body = CompleteUploadRequest,
    responses((status = 200, description = "The file and its new version", body = FileVersionResponse), Errors)
)]
pub(crate) async fn complete_upload(
    caller: Caller,
    state: State,
    body: JsonBody<CompleteUploadRequest>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let upload_id = UploadId::parse(&body.0.upload_id)?;
        let done = state
            .service()
            .complete_upload(&caller.0, upload_id)
            .await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&done.file, &done.version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// The text fields of a proxy upload, read before `file`.
#[derive(Debug, Default)]
struct Form {
    bucket: Option<String>,
    path: Option<String>,
    tags: Option<String>,
    message: Option<String>,
    expected_version: Option<String>,
    content_type: Option<String>,
}

impl Form {
    fn set(&mut self, name: &str, value: String) -> Result<(), StorageError> {
        let slot = match name {
            "bucket" => &mut self.bucket,
            "path" => &mut self.path,
            "tags" => &mut self.tags,
            "message" => &mut self.message,
            "expected_version" => &mut self.expected_version,
            "content_type" => &mut self.content_type,
            // Unknown fields are read (within the limit) and ignored.
            _ => return Ok(()),
        };
        if slot.replace(value).is_some() {
            return Err(invalid(format!("the field '{name}' is given twice")));
        }
        Ok(())
    }
}

/// `If-Match: <n>` (or `"<n>"`): the file's latest version must be `n`; `0`: it must not exist.
fn if_match(req: &HttpRequest) -> Result<Option<Expectation>, StorageError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    let raw = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let latest = expected_latest(raw)
        .map_err(|_| invalid("If-Match must be a version number (0: the file must not exist)"))?;
    Ok(Some(Expectation {
        latest,
        precondition: true,
    }))
}

fn expected_latest(raw: &str) -> Result<Option<VersionNumber>, StorageError> {
    let n: u32 = raw
        .trim()
        .parse()
        .map_err(|_| invalid("expected_version must be a version number"))?;
    if n == 0 {
        Ok(None)
    } else {
        VersionNumber::new(n).map(Some)
    }
}

/// Reads a text field of at most `budget` bytes.
async fn read_text(
    field: &mut Field,
    budget: usize,
    limit: usize,
    request_id: &str,
) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                invalid(format!("malformed multipart body: {e}")),
                request_id,
            )
        })?;
        if buf.len() + chunk.len() > budget {
            return Err(ApiError::from_failure(
                Failure::BodyTooLarge { limit },
                request_id,
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf)
        .map_err(|_| ApiError::new(invalid("form fields must be UTF-8 text"), request_id))
}

/// Pumps the (non-`Send`) multipart field into the channel the use case reads from. Ends when
/// the field ends, fails, or the use case stops reading.
async fn pump(mut field: Field, tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>) {
    while let Some(chunk) = field.next().await {
        let item = chunk.map_err(|e| io::Error::other(format!("reading the upload failed: {e}")));
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
}

/// Streams a file to the object store without holding it in memory, and records it as a new
/// version. `multipart/form-data` with `bucket` and `path` (and optionally `tags`, `message`,
/// `expected_version`, `content_type`) **before** `file`. Over `MAX_UPLOAD_BYTES`: 413 as soon
/// as the limit is crossed, nothing kept. `If-Match: <n>` makes it conditional (412 when it
/// fails); so does `expected_version` (409).
#[utoipa::path(
    post, path = "/upload/proxy", tag = "uploads",
    params(("If-Match" = Option<String>, Header, description = "The version number the file must be at (0: must not exist)")),
    request_body(content = ProxyUploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The file and its new version", body = FileVersionResponse),
        (status = 412, description = "`version_conflict`: the `If-Match` precondition failed", body = crate::dto::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::dto::ErrorBody),
        Errors
    )
)]
pub(crate) async fn upload_proxy(
    caller: Caller,
    state: State,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request_id = caller.0.request_id.clone();
    let header_expectation = if_match(&req).map_err(|e| caller.fail(e))?;
    let limit = state.config().form_fields_limit_bytes;
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut form = Form::default();
    let mut used = 0;
    let mut fields = 0;
    let file = loop {
        let mut field = match multipart.next().await {
            None => return Err(caller.fail(invalid("the multipart body has no 'file' field"))),
            Some(Err(e)) => {
                return Err(caller.fail(invalid(format!("malformed multipart body: {e}"))));
            }
            Some(Ok(field)) => field,
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            break field;
        }
        fields += 1;
        if fields > MAX_FORM_FIELDS {
            return Err(caller.fail(invalid("too many form fields")));
        }
        let value = read_text(&mut field, limit - used, limit, &request_id).await?;
        used += value.len();
        form.set(&name, value).map_err(|e| caller.fail(e))?;
    };

    let run = async {
        let (Some(bucket), Some(path)) = (&form.bucket, &form.path) else {
            return Err(invalid("'bucket' and 'path' must come before 'file'"));
        };
        let path = FilePath::parse_request(bucket, path)?;
        let field_expectation = form
            .expected_version
            .as_deref()
            .map(expected_latest)
            .transpose()?
            .map(|latest| Expectation {
                latest,
                precondition: false,
            });
        let expected = match (header_expectation, field_expectation) {
            (Some(h), Some(f)) if h.latest != f.latest => {
                return Err(invalid("If-Match and expected_version disagree"));
            }
            (Some(h), _) => Some(h),
            (None, f) => f,
        };
        let tags = form
            .tags
            .as_deref()
            .map(|t| {
                serde_json::from_str::<Tags>(t).map_err(|_| invalid("tags must be a JSON object"))
            })
            .transpose()?;
        let content_type = form
            .content_type
            .clone()
            .or_else(|| file.content_type().map(ToString::to_string));
        let upload = ProxyUpload {
            path,
            content_type,
            tags,
            message: form.message.clone(),
            expected,
            declared_size: None,
        };

        let (tx, mut rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
        let body: ByteStream = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let use_case = state.service().upload_proxy(&caller.0, upload, body);
        let pumping = pump(file, tx);
        pin_mut!(use_case, pumping);
        // Both run in this task: the pump feeds the channel while the use case drains it. When
        // the use case ends first (done, or refused: 413, 403, …) the pump is dropped at once.
        let done = match select(use_case, pumping).await {
            Either::Left((result, _)) => result,
            Either::Right(((), use_case)) => use_case.await,
        }?;
        Ok(ok(FileVersionResponse::new(&done.file, &done.version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// A `version` given as a number or a string.
fn version_text(raw: Option<&serde_json::Value>) -> Result<Option<String>, StorageError> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid("version must be a number, 'latest' or 'validated'")),
    }
}

/// A URL to GET a version directly from the object store.
#[utoipa::path(
    post, path = "/download/presign", tag = "downloads", request_body = PresignDownloadRequest,
    responses((status = 200, description = "Where to GET the bytes", body = PresignDownloadResponse), Errors)
)]
pub(crate) async fn presign_download(
    caller: Caller,
    state: State,
    body: JsonBody<PresignDownloadRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let run = async {
        let path = FilePath::parse_request(&body.bucket, &body.path)?;
        let selector = VersionSelector::parse(version_text(body.version.as_ref())?.as_deref())?;
        let presigned = state
            .service()
            .presign_download(&caller.0, path, selector)
            .await?;
        Ok::<_, StorageError>(ok(PresignDownloadResponse::new(&presigned)))
    };
    run.await.map_err(|e| caller.fail(e))
}

fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Streams a version. A single `Range` (`bytes=a-b`, `a-`, `-n`) answers 206 with
/// `Content-Range`; several ranges or a malformed one are ignored (200, whole file). Sends
/// `ETag` (the quoted SHA-256), `Content-Length`, `Content-Type`, a safe `Content-Disposition`,
/// `Accept-Ranges`, `Last-Modified` and `X-File-Version`; `If-None-Match` answers 304 and
/// `If-Range` is honoured.
#[utoipa::path(
    get, path = "/download/proxy", tag = "downloads",
    params(
        DownloadQuery,
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held"),
        ("If-Range" = Option<String>, Header, description = "Send the range only if the ETag still matches"),
    ),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 416, description = "`invalid_request`: the range lies outside the file (`Content-Range: bytes */<size>`)", body = crate::dto::ErrorBody),
        Errors
    )
)]
pub(crate) async fn download_proxy(
    caller: Caller,
    state: State,
    req: HttpRequest,
    q: Query<DownloadQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let path = FilePath::parse_request(&q.bucket, &q.path)?;
        let selector = VersionSelector::parse(q.version.as_deref())?;
        let range = header_text(&req, header::RANGE).and_then(parse_range);
        let service = state.service();
        let mut download = service
            .download(
                &caller.0,
                DownloadRequest {
                    path: path.clone(),
                    version: selector,
                    range,
                },
            )
            .await?;
        let etag = etag_of(&download.version.sha256);
        if header_text(&req, header::IF_NONE_MATCH).is_some_and(|inm| none_match_hits(inm, &etag)) {
            return Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, etag))
                .finish());
        }
        let stale_range = header_text(&req, header::IF_RANGE)
            .is_some_and(|if_range| !if_range_allows(if_range, &etag));
        if range.is_some() && stale_range {
            // The client's copy is another version: send this one whole.
            download = service
                .download(
                    &caller.0,
                    DownloadRequest {
                        path,
                        version: VersionSelector::Number(download.version.number),
                        range: None,
                    },
                )
                .await?;
        }
        let read = download.read;
        let version = download.version;
        let mut res = match read.range {
            Some((first, last)) => {
                let mut res = HttpResponse::build(StatusCode::PARTIAL_CONTENT);
                res.insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {first}-{last}/{}", read.total_size),
                ));
                res
            }
            None => HttpResponse::Ok(),
        };
        let length = read
            .range
            .map_or(read.total_size, |(first, last)| last - first + 1);
        res.insert_header((header::ETAG, etag))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .insert_header((header::CONTENT_TYPE, version.content_type.clone()))
            .insert_header((
                header::CONTENT_DISPOSITION,
                content_disposition(download.file.path.name()),
            ))
            .insert_header((
                header::LAST_MODIFIED,
                version
                    .created_at
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            ))
            .insert_header((header::CACHE_CONTROL, "private"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((X_FILE_VERSION, version.number.get().to_string()));
        Ok::<_, StorageError>(res.body(SizedStream::new(length, read.body)))
    };
    run.await.map_err(|e| caller.fail(e))
}
