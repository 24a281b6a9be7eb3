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
    service::{
        self, CompleteForm, DownloadRequest, ProxyUpload, TransferPermit, UploadResult,
        content_disposition,
    },
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
    idle::IdleBody,
    openapi::Errors,
    range::{etag_of, if_range_allows, none_match_hits, parse_range},
    spool::Spool,
    telemetry::TransferDirection,
};

/// Chunks buffered between the multipart reader and the blob store: memory stays bounded by
/// this many chunks whatever the upload's size.
const CHANNEL_CHUNKS: usize = 4;
/// Most non-file fields accepted.
const MAX_FORM_FIELDS: usize = 32;
/// The header of the file's version, on downloads.
const X_FILE_VERSION: &str = "x-file-version";

fn invalid(detail: impl Into<String>) -> StorageError {
    StorageError::InvalidRequest(detail.into())
}

/// Reserves an upload and answers a URL to PUT the bytes to; then call `/upload/complete`.
/// The URL writes a staging object of this upload only, never a version: what it writes after
/// the completion changes no version. A user holds at most `MAX_OPEN_UPLOADS_PER_USER`
/// presigned uploads open (neither completed nor expired); past it, 429 with `Retry-After`.
#[utoipa::path(
    post, path = "/upload/presign", operation_id = "presign_upload", tag = "uploads", request_body = PresignUploadRequest,
    responses(
        (status = 200, description = "Where and how to PUT the bytes", body = PresignUploadResponse),
        (status = 429, description = "`too_many_requests`: the caller holds `MAX_OPEN_UPLOADS_PER_USER` presigned uploads open (neither completed nor expired); nothing was reserved. Complete one, or send it again after `Retry-After` seconds", body = crate::dto::ErrorBody, headers(
            ("Retry-After" = u32, description = "Seconds to wait before sending the request again"),
        )),
        Errors
    )
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
    post, path = "/upload/complete", operation_id = "complete_upload", tag = "uploads", request_body = CompleteUploadRequest,
    responses((status = 200, description = "The file and its new version", body = FileVersionResponse), Errors)
)]
pub(crate) async fn complete_upload(
    caller: Caller,
    state: State,
    body: JsonBody<CompleteUploadRequest>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let upload_id = UploadId::from_uuid(body.0.upload_id);
        let done = state
            .service()
            .complete_upload(&caller.0, upload_id)
            .await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&done.file, &done.version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// The text fields of a proxy upload.
#[derive(Debug, Default)]
struct Form {
    bucket: Option<String>,
    path: Option<String>,
    tags: Option<String>,
    message: Option<String>,
    expected_version: Option<String>,
    content_type: Option<String>,
    /// The `Content-Type` of the `file` part.
    file_type: Option<String>,
}

impl Form {
    /// The upload these fields describe (the file part's type in `file_type`); `None` while
    /// `bucket` or `path` is missing.
    fn upload_with_file_type(
        &self,
        header: Option<Expectation>,
    ) -> Result<Option<ProxyUpload>, StorageError> {
        let (Some(bucket), Some(path)) = (&self.bucket, &self.path) else {
            return Ok(None);
        };
        let path = FilePath::parse_request(bucket, path)?;
        let field_expectation = self
            .expected_version
            .as_deref()
            .map(expected_latest)
            .transpose()?
            .map(|latest| Expectation {
                latest,
                precondition: false,
            });
        let expected = match (header, field_expectation) {
            // Both cannot hold: the precondition fails, whatever the file's version.
            (Some(h), Some(f)) if h.latest != f.latest => {
                return Err(StorageError::VersionConflict {
                    detail: "If-Match and expected_version name different versions: they \
                             cannot both hold"
                        .into(),
                    current: None,
                    precondition: true,
                });
            }
            (Some(h), _) => Some(h),
            (None, f) => f,
        };
        let tags = self
            .tags
            .as_deref()
            .map(|t| {
                serde_json::from_str::<Tags>(t).map_err(|_| invalid("tags must be a JSON object"))
            })
            .transpose()?;
        Ok(Some(ProxyUpload {
            path,
            content_type: self.content_type.clone().or_else(|| self.file_type.clone()),
            tags,
            message: self.message.clone(),
            expected,
            declared_size: None,
        }))
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), StorageError> {
        let slot = match name {
            "bucket" => &mut self.bucket,
            "path" => &mut self.path,
            "tags" => &mut self.tags,
            "message" => &mut self.message,
            "expected_version" => &mut self.expected_version,
            "content_type" => &mut self.content_type,
            // The form is exactly what the document says: a misspelt field is not silently lost.
            _ => {
                return Err(invalid(format!(
                    "unknown field '{}': the form takes bucket, path, file, tags, message, \
                     expected_version and content_type",
                    name.chars()
                        .filter(|c| !c.is_control())
                        .take(64)
                        .collect::<String>()
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(invalid(format!("the field '{name}' is given twice")));
        }
        Ok(())
    }
}

/// `If-Match: <n>` (or `"<n>"`): the file's latest version must be `n`; `0`: it must not exist.
pub(super) fn if_match(req: &HttpRequest) -> Result<Option<Expectation>, StorageError> {
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
    let raw = raw.trim();
    // A whole number written as a decimal (`3.0`) is that number, as in JSON Schema.
    let raw = raw.strip_suffix(".0").unwrap_or(raw);
    let n: u32 = raw
        .parse()
        .map_err(|_| invalid("expected_version must be a version number"))?;
    if n == 0 {
        Ok(None)
    } else {
        VersionNumber::new(n).map(Some)
    }
}

/// Why a text field could not be read.
enum FieldError {
    /// The multipart body is malformed, or the client's body failed (gone, idle too long).
    Body(String),
    /// The text fields are over their limit.
    TooLarge {
        limit: usize,
    },
    NotText,
}

impl FieldError {
    fn into_api(self, request_id: &str) -> ApiError {
        match self {
            FieldError::Body(detail) => ApiError::new(invalid(detail), request_id),
            FieldError::TooLarge { limit } => {
                ApiError::from_failure(Failure::BodyTooLarge { limit }, request_id)
            }
            FieldError::NotText => {
                ApiError::new(invalid("form fields must be UTF-8 text"), request_id)
            }
        }
    }
}

/// The room left for the text fields of a form.
struct FieldBudget {
    /// Bytes of text fields read so far.
    used: usize,
    /// Text fields read so far.
    fields: usize,
    /// `form_fields_limit_bytes`.
    limit: usize,
}

impl FieldBudget {
    /// Reads one more text field, within the budget.
    async fn read(&mut self, field: &mut Field) -> Result<String, FieldError> {
        self.fields += 1;
        if self.fields > MAX_FORM_FIELDS {
            return Err(FieldError::Body("too many form fields".into()));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| FieldError::Body(multipart_failure(&e)))?;
            if self.used + buf.len() + chunk.len() > self.limit {
                return Err(FieldError::TooLarge { limit: self.limit });
            }
            buf.extend_from_slice(&chunk);
        }
        self.used += buf.len();
        String::from_utf8(buf).map_err(|_| FieldError::NotText)
    }
}

/// The sentence for a multipart body that could not be read (an idle body says so).
fn multipart_failure(e: &actix_multipart::MultipartError) -> String {
    match e {
        actix_multipart::MultipartError::Payload(actix_web::error::PayloadError::Io(io))
            if io.kind() == io::ErrorKind::TimedOut =>
        {
            io.to_string()
        }
        other => format!("malformed multipart body: {other}"),
    }
}

/// Streams a file to the object store without holding it in memory, and records it as a new
/// version. `multipart/form-data` with `bucket`, `path` and `file` (and optionally `tags`,
/// `message`, `expected_version`, `content_type`), in any order. When `bucket` and `path` come
/// before `file`, the file is stored as it arrives, and the fields that follow it are read
/// before the version is recorded; when `file` comes first, it is held aside (in memory up to
/// 256 KiB, then in a temporary file under `UPLOAD_SPOOL_DIR`) until the form is complete.
/// Either way access is checked before anything becomes visible, and the bytes of a caller who
/// may not upload are dropped at once. Over `MAX_UPLOAD_BYTES`: 413 as soon as the limit is
/// crossed, nothing kept. A body that sends nothing for `BODY_IDLE_TIMEOUT_SECONDS` is cut
/// off, nothing kept. Past `MAX_CONCURRENT_UPLOADS` (or per user): 429 with `Retry-After`,
/// before any byte is read. `If-Match: <n>` makes it conditional (412 when it fails); so does
/// `expected_version` (409).
#[utoipa::path(
    post, path = "/upload/proxy", operation_id = "upload_proxy", tag = "uploads",
    params(("If-Match" = Option<String>, Header, pattern = "^[0-9]{1,9}$", description = "The version number the file must be at (0: must not exist)", example = "0")),
    request_body(content = ProxyUploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The file and its new version", body = FileVersionResponse),
        (status = 412, description = "`version_conflict`: the `If-Match` precondition failed", body = crate::dto::ErrorBody),
        (status = 413, description = "`payload_too_large`", body = crate::dto::ErrorBody),
        (status = 429, description = "`too_many_requests`: this instance runs as many proxy uploads as it may (in all, or for this user), or has no upload buffer free; nothing was read. Send it again after `Retry-After` seconds", body = crate::dto::ErrorBody, headers(
            ("Retry-After" = u32, description = "Seconds to wait before sending the request again"),
        )),
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
    // A slot first: past the caps nothing of the body is read.
    let permit = state
        .service()
        .admit_upload(&caller.0)
        .map_err(|e| caller.fail(e))?;
    let max_bytes = state.service().settings().max_upload_bytes;
    let dir = state.config().spool_dir.clone();
    let payload = IdleBody::new(payload, state.config().body_idle_timeout);
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut form = Form::default();
    let mut budget = FieldBudget {
        used: 0,
        fields: 0,
        limit: state.config().form_fields_limit_bytes,
    };
    let mut spooled: Option<Spool> = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| caller.fail(invalid(multipart_failure(&e))))?;
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            let value = budget
                .read(&mut field)
                .await
                .map_err(|e| e.into_api(&request_id))?;
            form.set(&name, value).map_err(|e| caller.fail(e))?;
            continue;
        }
        if spooled.is_some() {
            return Err(caller.fail(invalid("the field 'file' is given twice")));
        }
        form.file_type = field.content_type().map(ToString::to_string);
        if let Some(upload) = form
            .upload_with_file_type(header_expectation)
            .map_err(|e| caller.fail(e))?
        {
            // `bucket` and `path` are known: store the file as it arrives.
            let rest = Rest {
                multipart,
                form,
                budget,
                header: header_expectation,
            };
            let (done, late_failure) =
                stream_through(&caller, &state, permit, upload, field, rest).await;
            if let Some(failure) = late_failure {
                return Err(failure.into_api(&request_id));
            }
            let done = done.map_err(|e| caller.fail(e))?;
            return Ok(ok(FileVersionResponse::new(&done.file, &done.version)));
        }
        // Held aside; a caller who may not act (another site's page) keeps nothing.
        let keep = caller.0.untrusted_origin.is_none();
        let spool = Spool::receive(&mut field, max_bytes, &dir, keep)
            .await
            .map_err(|e| caller.fail(e.into()))?;
        spooled = Some(spool);
    }
    let Some(spool) = spooled else {
        return Err(caller.fail(invalid("the multipart body has no 'file' field")));
    };
    let run = async {
        let Some(mut upload) = form.upload_with_file_type(header_expectation)? else {
            return Err(invalid(
                "the multipart body needs the fields 'bucket' and 'path'",
            ));
        };
        upload.declared_size = Some(spool.len());
        let body = spool
            .into_stream()
            .await
            .map_err(|e| StorageError::Internal {
                cause: format!("reading a spooled upload back failed: {e}"),
            })?;
        let body = state.metered(TransferDirection::Upload, upload.path.bucket(), body);
        let done = state
            .service()
            .upload_proxy(&caller.0, permit, upload, body, None)
            .await?;
        Ok(ok(FileVersionResponse::new(&done.file, &done.version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// What follows a file streamed as it arrived: the rest of the body, and the form so far.
struct Rest {
    multipart: Multipart,
    form: Form,
    budget: FieldBudget,
    header: Option<Expectation>,
}

/// Pumps the (non-`Send`) multipart field into the channel the use case reads from, then reads
/// the fields that follow the file and resolves the complete form (`complete`), and only then
/// ends the stream: the use case records nothing before the whole body was read. A field that
/// cannot be read (unknown, repeated, over the limit, a malformed or idle body) refuses the form;
/// its exact answer is kept in `failure` for the client.
async fn pump(
    mut file: Field,
    mut rest: Rest,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
    complete: tokio::sync::oneshot::Sender<Result<ProxyUpload, StorageError>>,
    failure: &mut Option<FieldError>,
) {
    while let Some(chunk) = file.next().await {
        let item = chunk.map_err(|e| io::Error::other(multipart_failure(&e)));
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
    drop(file);
    let form = read_rest(&mut rest).await.and_then(|()| {
        match rest.form.upload_with_file_type(rest.header) {
            Ok(Some(upload)) => Ok(upload),
            Ok(None) => Err(FieldError::Body("the form lost its bucket or path".into())),
            Err(e) => Err(FieldError::Body(e.to_string())),
        }
    });
    let _ = complete.send(form.map_err(|e| {
        let refusal = match &e {
            FieldError::Body(detail) => invalid(detail.clone()),
            FieldError::TooLarge { limit } => invalid(format!(
                "the form's fields are larger than the limit of {limit} bytes"
            )),
            FieldError::NotText => invalid("form fields must be UTF-8 text"),
        };
        *failure = Some(e);
        refusal
    }));
    // Dropping `tx` ends the stream.
}

/// Reads the fields after the file into the form.
async fn read_rest(rest: &mut Rest) -> Result<(), FieldError> {
    while let Some(field) = rest.multipart.next().await {
        let mut field = field.map_err(|e| FieldError::Body(multipart_failure(&e)))?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            return Err(FieldError::Body("the field 'file' is given twice".into()));
        }
        let value = rest.budget.read(&mut field).await?;
        rest.form
            .set(&name, value)
            .map_err(|e| FieldError::Body(e.to_string()))?;
    }
    Ok(())
}

/// Runs the use case on `file` as it arrives, then on the rest of the form (see [`pump`]).
/// Returns the use case's answer and, when the form itself was refused, why.
async fn stream_through(
    caller: &Caller,
    state: &State,
    permit: TransferPermit,
    upload: ProxyUpload,
    file: Field,
    rest: Rest,
) -> (Result<UploadResult, StorageError>, Option<FieldError>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let body: ByteStream = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let body = state.metered(TransferDirection::Upload, upload.path.bucket(), body);
    let (complete_tx, complete_rx) = tokio::sync::oneshot::channel();
    let complete: CompleteForm = Box::pin(async move {
        complete_rx
            .await
            .unwrap_or_else(|_| Err(invalid("the body ended before the form was complete")))
    });
    let use_case = state
        .service()
        .upload_proxy(&caller.0, permit, upload, body, Some(complete));
    // A refused caller never gets this far with any byte: the use case refuses first.
    let mut failure = None;
    let done = {
        let pumping = pump(file, rest, tx, complete_tx, &mut failure);
        pin_mut!(use_case, pumping);
        // Both run in this task: the pump feeds the channel while the use case drains it.
        // When the use case ends first (done, or refused: 413, 403, …) the pump is dropped.
        match select(use_case, pumping).await {
            Either::Left((result, _)) => result,
            Either::Right(((), use_case)) => use_case.await,
        }
    };
    // The form's own refusal is the answer only when the upload failed.
    let failure = if done.is_err() { failure } else { None };
    (done, failure)
}

/// A `version` given as a number or a string.
fn version_text(raw: Option<&serde_json::Value>) -> Result<Option<String>, StorageError> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => crate::dto::whole_number(n)
            .map(|n| Some(n.to_string()))
            .ok_or_else(|| invalid("version must be a number, 'latest' or 'validated'")),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid("version must be a number, 'latest' or 'validated'")),
    }
}

/// A URL to GET a version directly from the object store.
#[utoipa::path(
    post, path = "/download/presign", operation_id = "presign_download", tag = "downloads", request_body = PresignDownloadRequest,
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
    get, path = "/download/proxy", operation_id = "download_proxy", tag = "downloads",
    params(
        DownloadQuery,
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n` (anything else is ignored: the whole file is sent)", example = "bytes=0-1023"),
        ("If-None-Match" = Option<String>, Header, description = "ETags already held", example = "\"9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa\""),
        ("If-Range" = Option<String>, Header, description = "Send the range only if the ETag still matches", example = "\"9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa\""),
    ),
    responses(
        (status = 200, description = "The whole file. Its `Content-Type` is the version's own (shown here as `application/octet-stream`)", content_type = "application/octet-stream", headers(
            ("ETag" = String, description = "The quoted SHA-256 of the version"),
            ("Content-Disposition" = String, description = "`attachment` with the file's name (RFC 6266 `filename*`)"),
            ("Content-Length" = u64, description = "The size in bytes"),
            ("Accept-Ranges" = String, description = "`bytes`"),
            ("Last-Modified" = String, description = "When the version was made"),
            ("X-File-Version" = u32, description = "The version number sent"),
        )),
        (status = 206, description = "The range asked for, with the version's own `Content-Type`", content_type = "application/octet-stream", headers(
            ("Content-Range" = String, description = "`bytes <first>-<last>/<size>`"),
            ("ETag" = String, description = "The quoted SHA-256 of the version"),
            ("Content-Disposition" = String, description = "`attachment` with the file's name (RFC 6266 `filename*`)"),
            ("Content-Length" = u64, description = "The size of the range in bytes"),
            ("X-File-Version" = u32, description = "The version number sent"),
        )),
        (status = 304, description = "Not modified (`If-None-Match`)", headers(
            ("ETag" = String, description = "The quoted SHA-256 of the version"),
        )),
        (status = 416, description = "`invalid_request`: the range lies outside the file (`Content-Range: bytes */<size>`)", body = crate::dto::ErrorBody),
        (status = 429, description = "`too_many_requests`: this instance runs as many proxy downloads as it may (in all, or for this user). Send it again after `Retry-After` seconds", body = crate::dto::ErrorBody, headers(
            ("Retry-After" = u32, description = "Seconds to wait before sending the request again"),
        )),
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
            // The client's copy is another version: send this one whole (the first read, and
            // its slot, go first).
            let number = download.version.number;
            drop(download);
            download = service
                .download(
                    &caller.0,
                    DownloadRequest {
                        path,
                        version: VersionSelector::Number(number),
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
        let body = state.metered(
            TransferDirection::Download,
            download.file.path.bucket(),
            read.body,
        );
        Ok::<_, StorageError>(res.body(SizedStream::new(length, body)))
    };
    run.await.map_err(|e| caller.fail(e))
}
