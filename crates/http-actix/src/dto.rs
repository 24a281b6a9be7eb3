//! The wire shapes (spec §4): what the API answers and accepts. Domain types never reach the
//! wire directly; object keys are never shown.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use storage_domain::{
    model::{
        AuditEvent, AuditOutcome, BucketKind, CheckoutTicket, FileRecord, FileStatus, Lock,
        Version, VersionStatus,
    },
    ports::{ListEntry, LockedFile, PresignMethod, PresignedRequest},
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

// ---- answers ---------------------------------------------------------------------------------

/// The error body of every error (spec §3).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Always `error`.
    #[schema(example = "error")]
    pub status: String,
    /// The stable error code.
    #[schema(example = "file_locked")]
    pub message: String,
    /// One human sentence.
    pub detail: String,
    /// The request's id (also in the `X-Request-Id` header).
    pub request_id: String,
    /// On `file_locked`: the lock held by someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockDto>,
    /// On `version_conflict`: the file's latest version number, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u32>,
}

/// One of the three buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Users,
    Companies,
    Projects,
}

impl From<BucketKind> for Bucket {
    fn from(b: BucketKind) -> Self {
        match b {
            BucketKind::Users => Bucket::Users,
            BucketKind::Companies => Bucket::Companies,
            BucketKind::Projects => Bucket::Projects,
        }
    }
}

/// A file's status: it follows its latest version, except `archived`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileStatusDto {
    Draft,
    PendingValidation,
    Validated,
    Archived,
}

impl From<FileStatus> for FileStatusDto {
    fn from(s: FileStatus) -> Self {
        match s {
            FileStatus::Draft => FileStatusDto::Draft,
            FileStatus::PendingValidation => FileStatusDto::PendingValidation,
            FileStatus::Validated => FileStatusDto::Validated,
            FileStatus::Archived => FileStatusDto::Archived,
        }
    }
}

/// A version's review status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatusDto {
    Draft,
    PendingValidation,
    Validated,
    Rejected,
}

impl From<VersionStatus> for VersionStatusDto {
    fn from(s: VersionStatus) -> Self {
        match s {
            VersionStatus::Draft => VersionStatusDto::Draft,
            VersionStatus::PendingValidation => VersionStatusDto::PendingValidation,
            VersionStatus::Validated => VersionStatusDto::Validated,
            VersionStatus::Rejected => VersionStatusDto::Rejected,
        }
    }
}

/// A live lock.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LockDto {
    /// The user holding the lock.
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    /// After this instant the lock is free.
    pub expires_at: DateTime<Utc>,
    /// The version the lock was taken on (the checkout ticket).
    pub base_version: u32,
}

impl From<&Lock> for LockDto {
    fn from(l: &Lock) -> Self {
        Self {
            holder: l.holder.to_string(),
            acquired_at: l.acquired_at,
            expires_at: l.expires_at,
            base_version: l.base_version.get(),
        }
    }
}

/// The checkout ticket of a workspace copy made by a checkout: the file it was checked out from
/// and the version it holds. A commit from the copy is `version_conflict` once that file has a
/// newer version, whatever happened to the lock.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckoutDto {
    /// The checked-out file (the commit's target).
    pub file_id: Uuid,
    pub bucket: Bucket,
    pub path: String,
    /// The version the copy was taken from, or last committed as.
    pub version: u32,
}

impl From<&CheckoutTicket> for CheckoutDto {
    fn from(t: &CheckoutTicket) -> Self {
        Self {
            file_id: t.file_id.as_uuid(),
            bucket: t.path.bucket().into(),
            path: t.path.as_str().to_owned(),
            version: t.version.get(),
        }
    }
}

/// A file (spec §4).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileDto {
    pub id: Uuid,
    pub bucket: Bucket,
    /// The logical path, `/<bucket>/<owner_id>/…`.
    #[schema(example = "/projects/5678/docs/spec.pdf")]
    pub path: String,
    /// The last segment of the path.
    pub name: String,
    /// The user who created the file.
    pub owner_id: String,
    /// The latest version number.
    pub version: u32,
    /// The latest validated version number.
    #[schema(required = true)]
    pub validated_version: Option<u32>,
    pub status: FileStatusDto,
    /// The lock holder, or null.
    #[schema(required = true)]
    pub locked_by: Option<String>,
    #[schema(required = true)]
    pub lock: Option<LockDto>,
    /// Free-form tags.
    #[schema(value_type = Object)]
    pub tags: serde_json::Map<String, serde_json::Value>,
    /// The checkout ticket, when the file is a workspace copy made by a checkout; else null.
    #[schema(required = true)]
    pub checkout: Option<CheckoutDto>,
    /// Size of the latest version, in bytes.
    pub size: u64,
    pub content_type: String,
    /// SHA-256 (hex) of the latest version.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&FileRecord> for FileDto {
    fn from(f: &FileRecord) -> Self {
        Self {
            id: f.id.as_uuid(),
            bucket: f.bucket().into(),
            path: f.path.as_str().to_owned(),
            name: f.path.name().to_owned(),
            owner_id: f.created_by.to_string(),
            version: f.version.get(),
            validated_version: f.validated_version.map(|v| v.get()),
            status: f.status.into(),
            locked_by: f.lock.as_ref().map(|l| l.holder.to_string()),
            lock: f.lock.as_ref().map(Into::into),
            tags: f.tags.clone(),
            checkout: f.checkout.as_ref().map(Into::into),
            size: f.size,
            content_type: f.content_type.clone(),
            sha256: f.sha256.clone(),
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// A version (spec §4).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionDto {
    pub id: Uuid,
    pub file_id: Uuid,
    /// 1, 2, 3… with no gap.
    pub number: u32,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub author_id: String,
    #[schema(required = true)]
    pub message: Option<String>,
    pub status: VersionStatusDto,
    #[schema(required = true)]
    pub reviewed_by: Option<String>,
    #[schema(required = true)]
    pub reviewed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub review_comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Version> for VersionDto {
    fn from(v: &Version) -> Self {
        Self {
            id: v.id.as_uuid(),
            file_id: v.file_id.as_uuid(),
            number: v.number.get(),
            size: v.size,
            sha256: v.sha256.clone(),
            content_type: v.content_type.clone(),
            author_id: v.author.to_string(),
            message: v.message.clone(),
            status: v.status.into(),
            reviewed_by: v.reviewed_by.as_ref().map(ToString::to_string),
            reviewed_at: v.reviewed_at,
            review_comment: v.review_comment.clone(),
            created_at: v.created_at,
        }
    }
}

/// `{"status":"ok","file":…}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub file: FileDto,
}

impl FileResponse {
    pub(crate) fn new(file: &FileRecord) -> Self {
        Self {
            status: OK.to_owned(),
            file: file.into(),
        }
    }
}

/// `{"status":"ok","file":…,"version":…}`: a version written or reviewed, and its file after.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileVersionResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub file: FileDto,
    pub version: VersionDto,
}

impl FileVersionResponse {
    pub(crate) fn new(file: &FileRecord, version: &Version) -> Self {
        Self {
            status: OK.to_owned(),
            file: file.into(),
            version: version.into(),
        }
    }
}

/// `GET /versions`: the file and its history, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionsResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub file: FileDto,
    pub versions: Vec<VersionDto>,
}

/// What a listing entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Directory,
}

/// A direct child of a listed directory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListEntryDto {
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub name: String,
    /// The child's path (a directory's ends with `/`).
    pub path: String,
    /// The file's metadata (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileDto>,
}

/// `GET /list`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ListResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub bucket: Bucket,
    pub path: String,
    pub entries: Vec<ListEntryDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl ListResponse {
    pub(crate) fn new(page: &storage_domain::service::ListPage) -> Self {
        let entries = page
            .entries
            .iter()
            .map(|e| match e {
                ListEntry::Directory { name } => ListEntryDto {
                    kind: EntryKind::Directory,
                    name: name.clone(),
                    path: page.dir.child(name, true),
                    file: None,
                },
                ListEntry::File(f) => ListEntryDto {
                    kind: EntryKind::File,
                    name: f.path.name().to_owned(),
                    path: f.path.as_str().to_owned(),
                    file: Some(f.as_ref().into()),
                },
            })
            .collect();
        Self {
            status: OK.to_owned(),
            bucket: page.dir.bucket().into(),
            path: page.dir.as_str().to_owned(),
            entries,
            next_cursor: page.next_cursor.clone(),
        }
    }
}

/// A live lock and its file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LockedFileDto {
    pub file_id: Uuid,
    pub bucket: Bucket,
    pub path: String,
    pub lock: LockDto,
}

impl From<&LockedFile> for LockedFileDto {
    fn from(l: &LockedFile) -> Self {
        Self {
            file_id: l.file_id.as_uuid(),
            bucket: l.path.bucket().into(),
            path: l.path.as_str().to_owned(),
            lock: (&l.lock).into(),
        }
    }
}

/// `POST /lock`: the lock taken or refreshed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LockResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub file_id: Uuid,
    pub bucket: Bucket,
    pub path: String,
    pub lock: LockDto,
}

/// `POST /unlock`: the lock released, or null when the file was not locked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UnlockResponse {
    #[schema(example = "ok")]
    pub status: String,
    #[schema(required = true)]
    pub released: Option<LockDto>,
}

/// `GET /locks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocksResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub locks: Vec<LockedFileDto>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcomeDto {
    Success,
    Denied,
}

/// One audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEventDto {
    pub id: Uuid,
    pub actor: String,
    /// `upload`, `copy`, `checkout`, `commit`, `submit`, `approve`, `reject`, `lock`,
    /// `unlock`, `force_unlock`, `update_tags`, `delete`, `archive`, `unarchive`.
    pub action: String,
    pub bucket: Bucket,
    pub path: String,
    #[schema(required = true)]
    pub file_id: Option<Uuid>,
    #[schema(required = true)]
    pub version: Option<u32>,
    pub outcome: AuditOutcomeDto,
    pub request_id: String,
    #[schema(required = true)]
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&AuditEvent> for AuditEventDto {
    fn from(e: &AuditEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            actor: e.actor.to_string(),
            action: e.action.as_str().to_owned(),
            bucket: e.bucket.into(),
            path: e.path.as_str().to_owned(),
            file_id: e.file_id.map(|f| f.as_uuid()),
            version: e.version.map(|v| v.get()),
            outcome: match e.outcome {
                AuditOutcome::Success => AuditOutcomeDto::Success,
                AuditOutcome::Denied => AuditOutcomeDto::Denied,
            },
            request_id: e.request_id.clone(),
            detail: e.detail.clone(),
            at: e.at,
        }
    }
}

/// `GET /audit`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub events: Vec<AuditEventDto>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// HTTP method of a presigned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Put,
}

impl From<PresignMethod> for HttpMethod {
    fn from(m: PresignMethod) -> Self {
        match m {
            PresignMethod::Get => HttpMethod::Get,
            PresignMethod::Put => HttpMethod::Put,
        }
    }
}

fn header_map(r: &PresignedRequest) -> BTreeMap<String, String> {
    r.headers.iter().cloned().collect()
}

/// `POST /upload/presign`: where and how to PUT the bytes, then call `/upload/complete`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PresignUploadResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub upload_id: Uuid,
    pub url: String,
    /// Always `PUT`.
    pub method: HttpMethod,
    /// Headers to send as they are (they are signed).
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
    /// The largest object `/upload/complete` accepts.
    pub max_bytes: u64,
}

impl PresignUploadResponse {
    pub(crate) fn new(p: &storage_domain::service::PresignedUpload) -> Self {
        Self {
            status: OK.to_owned(),
            upload_id: p.upload_id.as_uuid(),
            url: p.request.url.clone(),
            method: p.request.method.into(),
            headers: header_map(&p.request),
            expires_at: p.request.expires_at,
            max_bytes: p.max_bytes,
        }
    }
}

/// `POST /download/presign`: a URL to GET the version directly.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PresignDownloadResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub url: String,
    /// Always `GET`.
    pub method: HttpMethod,
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
    pub file: FileDto,
    pub version: VersionDto,
}

impl PresignDownloadResponse {
    pub(crate) fn new(p: &storage_domain::service::PresignedDownload) -> Self {
        Self {
            status: OK.to_owned(),
            url: p.request.url.clone(),
            method: p.request.method.into(),
            headers: header_map(&p.request),
            expires_at: p.request.expires_at,
            file: (&p.file).into(),
            version: (&p.version).into(),
        }
    }
}

/// `GET /health` (200 when every dependency is `ok`). A 503 answer is an error body with these
/// two fields added.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: String,
    /// `ok` or `unavailable`.
    pub database: String,
    /// `ok` or `unavailable`.
    pub object_store: String,
}

/// `GET /version`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub service: String,
    pub version: String,
    pub api_version: String,
}

/// `GET /config`: the public settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub buckets: Vec<Bucket>,
    /// `MAX_UPLOAD_BYTES`.
    pub max_upload_bytes: u64,
    /// `PRESIGN_TTL_SECONDS`.
    pub presign_ttl_seconds: u64,
    /// `LOCK_TTL_SECONDS`: a lock's default lifetime.
    pub lock_ttl_seconds: u64,
    /// The longest lock a caller may ask for.
    pub max_lock_ttl_seconds: u64,
    pub api_version: String,
    pub version: String,
}

pub(crate) const OK: &str = "ok";

// ---- requests --------------------------------------------------------------------------------

/// A file: `bucket` and `path` (decoded once, by the query-string parser).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// `users`, `companies` or `projects`.
    pub bucket: String,
    /// `/<bucket>/<owner_id>/…`.
    pub path: String,
}

/// A directory page: `path` ends with `/`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub bucket: String,
    /// A directory, ending with `/` (for `/audit`: a file, or a directory ending with `/`).
    pub path: String,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<u32>,
}

/// `GET /download/proxy`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    pub bucket: String,
    pub path: String,
    /// A number, `latest` (default) or `validated`.
    pub version: Option<String>,
}

/// `bucket` and `path` in a JSON body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct FileRef {
    pub bucket: String,
    pub path: String,
}

/// `PATCH /metadata`: replaces the tags.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TagsRequest {
    pub bucket: String,
    pub path: String,
    #[schema(value_type = Object)]
    pub tags: serde_json::Map<String, serde_json::Value>,
}

/// `POST /upload/presign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PresignUploadRequest {
    pub bucket: String,
    pub path: String,
    /// Default `application/octet-stream`.
    pub content_type: Option<String>,
    /// The size to be uploaded (checked at completion, and signed).
    pub size: Option<u64>,
    /// The SHA-256 (hex) to be uploaded (checked at completion).
    pub sha256: Option<String>,
}

/// `POST /upload/complete`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CompleteUploadRequest {
    pub upload_id: String,
}

/// `POST /download/presign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PresignDownloadRequest {
    pub bucket: String,
    pub path: String,
    /// A number, `latest` (default) or `validated`.
    #[schema(value_type = Option<String>, example = "latest")]
    pub version: Option<serde_json::Value>,
}

/// `POST /copy`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CopyRequest {
    pub source_bucket: String,
    pub source_path: String,
    pub target_bucket: String,
    pub target_path: String,
    /// Add a version to an existing target instead of refusing (default false).
    pub overwrite: Option<bool>,
}

/// `POST /versions/commit`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CommitRequest {
    pub source_bucket: String,
    pub source_path: String,
    pub target_bucket: String,
    pub target_path: String,
    /// Required.
    pub message: Option<String>,
    /// Keep the lock after the commit (default false).
    pub keep_lock: Option<bool>,
}

/// `POST /lock`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LockRequest {
    pub bucket: String,
    pub path: String,
    /// Default `LOCK_TTL_SECONDS`.
    pub ttl_seconds: Option<u64>,
}

/// `POST /unlock`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct UnlockRequest {
    pub bucket: String,
    pub path: String,
    /// Release someone else's lock (needs `validate` or ownership, and a `reason`).
    pub force: Option<bool>,
    pub reason: Option<String>,
}

/// `POST /versions/{version_id}/approve|reject|submit` (the comment is required to reject).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ReviewRequest {
    pub comment: Option<String>,
}

/// The fields of `POST /upload/proxy` (`multipart/form-data`; `file` must come last).
#[derive(Debug, Clone, ToSchema)]
pub struct ProxyUploadForm {
    pub bucket: String,
    pub path: String,
    /// A JSON object, as text.
    pub tags: Option<String>,
    pub message: Option<String>,
    /// `0`: the file must not exist yet; `n`: its latest version must be `n` (409 otherwise).
    pub expected_version: Option<u32>,
    /// Default: the `file` part's `Content-Type`, else `application/octet-stream`.
    pub content_type: Option<String>,
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}
