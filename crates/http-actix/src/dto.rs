//! The wire shapes (spec §4): what the API answers and accepts. Domain types never reach the
//! wire directly; object keys are never shown.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use storage_domain::{
    model::{
        AuditEvent, AuditOutcome, BucketKind, CheckoutTicket, FileRecord, FileStatus, Lock,
        Version, VersionNumber, VersionStatus,
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
    /// 1, 2, 3…, never reused: a version pruned by the retention rules leaves a gap.
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
    /// The number of the version of the same file whose bytes this version restored
    /// (`POST /versions/{version_id}/restore`); null for every other version.
    #[schema(required = true, example = 2)]
    pub restored_from: Option<u32>,
    /// The label of a pinned version (`POST /versions/{version_id}/pin`), which the retention
    /// rules never prune; null when not pinned.
    #[schema(required = true, example = "release 1.0")]
    pub pinned: Option<String>,
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
            restored_from: v.restored_from.map(VersionNumber::get),
            pinned: v.pinned.clone(),
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
    /// One page of the versions, newest first.
    pub versions: Vec<VersionDto>,
    /// The `cursor` of the next (older) page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
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

/// A version waiting for review, and its file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingReviewDto {
    pub file: FileDto,
    pub version: VersionDto,
}

impl From<&storage_domain::ports::PendingReview> for PendingReviewDto {
    fn from(r: &storage_domain::ports::PendingReview) -> Self {
        Self {
            file: (&r.file).into(),
            version: (&r.version).into(),
        }
    }
}

/// `GET /reviews`: oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewsResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub reviews: Vec<PendingReviewDto>,
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
    /// `unlock`, `force_unlock`, `update_tags`, `delete`, `archive`, `unarchive`, `restore`,
    /// `trash`, `trash_restore`, `purge`, `pin`, `unpin`, `prune` (by `janitor`: a version
    /// removed by the retention rules).
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
    /// When the event happened (for repeated refusals: the first of them).
    pub at: DateTime<Utc>,
    /// How many identical refusals this event stands for: the same actor, action and path
    /// within the fixed window of `AUDIT_DENIED_WINDOW_SECONDS` that holds `at` are counted
    /// here, not listed again. 1 for every other event.
    #[schema(minimum = 1, example = 1)]
    pub repeat_count: u32,
    /// When the last of the repeats happened; `null` until one did.
    #[schema(required = true)]
    pub last_repeat_at: Option<DateTime<Utc>>,
    /// The event published for this change (docs/events.md: `file.created`,
    /// `version.approved`, `lock.forced`, …); `null` for a refusal and for events recorded
    /// before events existed.
    #[schema(required = true, example = "lock.acquired")]
    pub event_type: Option<String>,
    /// The event's place in its file's audit chain (1, 2, …); `null` for a refusal (sealed
    /// alone) and for events recorded before the chain.
    #[schema(required = true, minimum = 1, example = 3)]
    pub seq: Option<u64>,
    /// The hash of the event before it in the chain (`""` for the first, and for a refusal).
    #[schema(required = true)]
    pub prev_hash: Option<String>,
    /// `<key id>:<hex HMAC-SHA256>`, under the audit key, of the event's content and
    /// `prev_hash`: what `storage-server audit verify` checks (docs/events.md); `null` before
    /// the chain.
    #[schema(
        required = true,
        example = "k1:9f2c0d3c6b1e4a5f8e7d6c5b4a3928171605f4e3d2c1b0a9f8e7d6c5b4a39281"
    )]
    pub hash: Option<String>,
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
            repeat_count: e.repeat_count,
            last_repeat_at: e.last_repeat_at,
            event_type: e.event_type.map(|t| t.as_str().to_owned()),
            seq: e.seq,
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
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
    /// The object store's presigned URL, or, for an upload of unannounced size on S3 (and
    /// every upload of the embedded local store), a signed URL to the service itself
    /// (`/blob/...`). The same requests work with either.
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

/// `GET /health/live`, and `GET /health/ready` while the instance drains (503).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProbeResponse {
    /// `ok`, or `draining`.
    #[schema(example = "ok")]
    pub status: String,
}

/// The status of a draining instance's readiness answer.
pub(crate) const DRAINING: &str = "draining";

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
    /// `MAX_OPEN_UPLOADS_PER_USER`: the most presigned uploads a user may hold open (neither
    /// completed nor expired); past it, `POST /upload/presign` answers `429 too_many_requests`.
    pub max_open_uploads_per_user: u32,
    /// `TRASH_RETENTION_DAYS`: how long a file stays in the trash before it is purged.
    pub trash_retention_days: u64,
    /// The retention rules the janitor prunes versions by, per bucket.
    pub retention: RetentionConfig,
    pub api_version: String,
    pub version: String,
}

/// `/config`'s retention settings: each bucket's rule (`VERSION_KEEP_LAST`,
/// `VERSION_KEEP_DAYS`, overridden per bucket by `VERSION_KEEP_LAST_<BUCKET>` and
/// `VERSION_KEEP_DAYS_<BUCKET>`). A version is pruned only when every part that is set lets it
/// go; with both parts null every version is kept.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetentionConfig {
    pub users: RetentionRuleDto,
    pub companies: RetentionRuleDto,
    pub projects: RetentionRuleDto,
}

/// One bucket's retention rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetentionRuleDto {
    /// The newest versions of a file kept, by number; null: unset.
    #[schema(required = true, example = 10, minimum = 1)]
    pub keep_last: Option<u32>,
    /// Versions created less than this many days ago are kept; null: unset.
    #[schema(required = true, example = 90, minimum = 1)]
    pub keep_days: Option<u32>,
}

impl From<storage_domain::rules::retention::RetentionRule> for RetentionRuleDto {
    fn from(r: storage_domain::rules::retention::RetentionRule) -> Self {
        Self {
            keep_last: r.keep_last,
            keep_days: r.keep_days,
        }
    }
}

impl From<&storage_domain::rules::retention::RetentionPolicy> for RetentionConfig {
    fn from(p: &storage_domain::rules::retention::RetentionPolicy) -> Self {
        use storage_domain::model::BucketKind;
        Self {
            users: p.rule_for(BucketKind::Users).into(),
            companies: p.rule_for(BucketKind::Companies).into(),
            projects: p.rule_for(BucketKind::Projects).into(),
        }
    }
}

pub(crate) const OK: &str = "ok";

// ---- requests --------------------------------------------------------------------------------
//
// The request types deserialise leniently (the domain checks every value and answers
// `invalid_request` or `invalid_path` in the contract's words); their documented schemas say
// exactly what the domain accepts, so that a client generated from the document, or a fuzzer
// sending only schema-valid requests, is never refused for the shape of its input.

/// The rules of a file path (spec §1), as a JSON Schema pattern: a bucket, an owner id of
/// `[A-Za-z0-9_-]`, then 1 to 8 segments of 1 to 63 characters, none `.` or `..`, without `/`,
/// `\` or control characters (so at most 1024 bytes in all and 255 per segment, in UTF-8).
pub const FILE_PATH_PATTERN: &str = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}(/(?!\.{1,2}(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}){1,8}$";
/// A directory: the same, with 0 to 8 segments, ending with `/`.
pub const DIR_PATH_PATTERN: &str = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}/((?!\.{1,2}/)[^/\\\x00-\x1f\x7f-\x9f]{1,63}/){0,8}$";
/// A file or a directory.
pub const AUDIT_PATH_PATTERN: &str = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}((/(?!\.{1,2}(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}){1,8}|/((?!\.{1,2}/)[^/\\\x00-\x1f\x7f-\x9f]{1,63}/){0,8})$";
/// Text fields (`message`, `comment`, `reason`): no control character but new lines.
const TEXT_PATTERN: &str = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$";
/// Text that must not be blank (a rejection's comment, a force-unlock's reason).
const NON_BLANK_PATTERN: &str =
    r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x09\x0b-\x1f\x7f-\x9f]*$";
/// `type/subtype`, optionally with parameters.
const CONTENT_TYPE_PATTERN: &str =
    r"^([A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;[ -~]{0,200})?)?$";
/// A version selector in a query string.
const VERSION_PATTERN: &str = r"^([1-9][0-9]{0,8}|latest|validated)$";
/// `MAX_UPLOAD_BYTES` by default (the document shows the defaults of the settings).
const DEFAULT_MAX_UPLOAD: u64 = 5 * 1024 * 1024 * 1024;
/// `LOCK_MAX_TTL_SECONDS` by default.
const DEFAULT_MAX_LOCK_TTL: u64 = 30 * 86_400;

/// A JSON number that is a whole non-negative number (`3`, or `3.0`: JSON Schema counts both as
/// integers), as `u64`.
pub(crate) fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 9_007_199_254_740_992.0)
            .map(|f| f as u64)
    })
}

/// Deserialises an optional whole number written either way (see [`whole_number`]).
fn optional_whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_number(&n)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("{n} is not a whole non-negative number"))),
    }
}

fn text_schema(
    pattern: &str,
    max_length: usize,
    description: &str,
    example: &str,
) -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(Some(max_length))
        .description(Some(description))
        .examples([example])
        .build()
}

fn nullable(schema: utoipa::openapi::Object) -> utoipa::openapi::Schema {
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(schema)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

pub(crate) fn file_path_schema() -> utoipa::openapi::Object {
    text_schema(
        FILE_PATH_PATTERN,
        1024,
        "A file's logical path, `/<bucket>/<owner_id>/<name…>`; its first segment is the \
         request's `bucket`. Normalised to NFC.",
        "/users/alice/notes/todo.txt",
    )
}

/// [`file_path_schema`] with an example of its own: what `/archive` and `/unarchive` name, no
/// other operation's example does. A generator that fills requests from the examples (the
/// consumers' schemathesis run) then never archives the file that the examples of `/lock`,
/// `PATCH /metadata` or the uploads act on.
pub(crate) fn archived_path_schema() -> utoipa::openapi::Object {
    let mut schema = file_path_schema();
    schema.examples = vec!["/users/alice/reports/2025.pdf".into()];
    schema
}

fn comment_schema() -> utoipa::openapi::Schema {
    nullable(text_schema(
        TEXT_PATTERN,
        4096,
        "An optional comment, at most 4096 bytes.",
        "Looks good to me",
    ))
}

fn reject_comment_schema() -> utoipa::openapi::Object {
    text_schema(
        NON_BLANK_PATTERN,
        4096,
        "Why the version is rejected (required, not blank, at most 4096 bytes).",
        "The totals in section 3 do not add up",
    )
}

fn reason_schema() -> utoipa::openapi::Schema {
    nullable(text_schema(
        TEXT_PATTERN,
        4096,
        "Why the lock is forced: required with `force: true`, and then not blank (at most 4096 \
         bytes); ignored otherwise.",
        "Holder is on leave until next month",
    ))
}

fn content_type_schema() -> utoipa::openapi::Schema {
    nullable(text_schema(
        CONTENT_TYPE_PATTERN,
        255,
        "A media type, `type/subtype[; parameters]`; empty or absent: `application/octet-stream`.",
        "text/plain",
    ))
}

fn form_content_type_schema() -> utoipa::openapi::Object {
    text_schema(
        CONTENT_TYPE_PATTERN,
        255,
        "Overrides the `file` part's `Content-Type` (default: that, else \
         `application/octet-stream`).",
        "text/plain",
    )
}

fn sha256_schema() -> utoipa::openapi::Schema {
    nullable(text_schema(
        "^[0-9a-fA-F]{64}$",
        64,
        "The SHA-256 (hex) of the bytes to be uploaded, checked at completion.",
        "9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa",
    ))
}

fn version_query_schema() -> utoipa::openapi::Object {
    text_schema(
        VERSION_PATTERN,
        9,
        "A version number, `latest` (default) or `validated`.",
        "latest",
    )
}

fn version_body_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(i32::MAX)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["latest", "validated"])),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("A version number, `latest` (default) or `validated`."))
            .examples([serde_json::json!("latest")])
            .build(),
    )
}

fn tags_schema(example: bool) -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    let mut b = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Free-form tags: a JSON object of at most 16 KiB, replacing the previous ones.",
        ));
    if example {
        b = b.examples([serde_json::json!({"project": "apollo", "reviewed": true})]);
    }
    b.build()
}

fn tags_body_schema() -> utoipa::openapi::Object {
    tags_schema(true)
}

fn form_tags_schema() -> utoipa::openapi::Object {
    tags_schema(true)
}

/// A file: `bucket` and `path` (decoded once, by the query-string parser).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A file's logical path, `/<bucket>/<owner_id>/<name…>`; its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}(/(?!\.{1,2}(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}){1,8}$",
        max_length = 1024,
        example = "/users/alice/notes/todo.txt"
    )]
    pub path: String,
}

/// `GET /versions`: one page of a file's history.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionsQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A file's logical path, `/<bucket>/<owner_id>/<name…>`; its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}(/(?!\.{1,2}(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}){1,8}$",
        max_length = 1024,
        example = "/users/alice/notes/todo.txt"
    )]
    pub path: String,
    /// The `next_cursor` of the previous page (opaque; only a cursor the service gave for a
    /// versions page is accepted).
    #[param(pattern = r"^[A-Za-z0-9_-]{1,4096}$", example = "dmVyc2lvbnM6MTI")]
    pub cursor: Option<String>,
    /// Versions per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<u32>,
}

/// `GET /list`: one page of a directory.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A directory, `/<bucket>/<owner_id>/…/`, ending with `/`; its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}/((?!\.{1,2}/)[^/\\\x00-\x1f\x7f-\x9f]{1,63}/){0,8}$",
        max_length = 1024,
        example = "/users/alice/notes/"
    )]
    pub path: String,
    /// The `next_cursor` of the previous page (opaque; only a cursor the service gave for the
    /// same kind of listing is accepted).
    #[param(pattern = r"^[A-Za-z0-9_-]{1,4096}$", example = "bGlzdDp0b2RvLnR4dA")]
    pub cursor: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<u32>,
}

/// `GET /locks`: one page of the live locks under a directory.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocksQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A directory, `/<bucket>/<owner_id>/…/`, ending with `/`; its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}/((?!\.{1,2}/)[^/\\\x00-\x1f\x7f-\x9f]{1,63}/){0,8}$",
        max_length = 1024,
        example = "/users/alice/notes/"
    )]
    pub path: String,
    /// The `next_cursor` of the previous page (opaque; only a cursor the service gave for the
    /// same kind of listing is accepted).
    #[param(
        pattern = r"^[A-Za-z0-9_-]{1,4096}$",
        example = "bG9ja3M6L3VzZXJzL2FsaWNlL25vdGVzL3RvZG8udHh0"
    )]
    pub cursor: Option<String>,
    /// Locks per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<u32>,
}

/// `GET /reviews`: one page of the versions waiting for review under a directory.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewsQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "projects")]
    pub bucket: String,
    /// A directory, `/<bucket>/<owner_id>/…/`, ending with `/`; its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}/((?!\.{1,2}/)[^/\\\x00-\x1f\x7f-\x9f]{1,63}/){0,8}$",
        max_length = 1024,
        example = "/projects/5678/docs/"
    )]
    pub path: String,
    /// The `next_cursor` of the previous page (opaque; only a cursor the service gave for
    /// the review queue is accepted).
    #[param(
        pattern = r"^[A-Za-z0-9_-]{1,4096}$",
        example = "cmV2aWV3czoyMDI2LTAxLTE1VDA5OjMwOjAwKzAwOjAwfDAxOTcwZjBlLTRiN2MtN2QyYS05ZDBlLTVjMWYyYTNiNGM1ZA"
    )]
    pub cursor: Option<String>,
    /// Versions per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<u32>,
}

/// `GET /audit`: a file, or a directory's subtree.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A file, or a directory ending with `/` (its subtree); its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}((/(?!\.{1,2}(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}){1,8}|/((?!\.{1,2}/)[^/\\\x00-\x1f\x7f-\x9f]{1,63}/){0,8})$",
        max_length = 1024,
        example = "/users/alice/notes/todo.txt"
    )]
    pub path: String,
    /// The `next_cursor` of the previous page (opaque; only a cursor the service gave for
    /// the audit is accepted).
    #[param(
        pattern = r"^[A-Za-z0-9_-]{1,4096}$",
        example = "YXVkaXQ6MjAyNi0wMS0xNVQwOTozMDowMCswMDowMHwwMTk3MGYwZS00YjdjLTdkMmEtOWQwZS01YzFmMmEzYjRjNWQ"
    )]
    pub cursor: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<u32>,
}

/// `DELETE /delete`: the file to remove.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A file's logical path, `/<bucket>/<owner_id>/<name…>`; its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}(/(?!\.{1,2}(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}){1,8}$",
        max_length = 1024,
        example = "/users/alice/notes/obsolete.txt"
    )]
    pub path: String,
}

/// `GET /download/proxy`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A file's logical path, `/<bucket>/<owner_id>/<name…>`; its first segment is `bucket`.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}(/(?!\.{1,2}(/|$))[^/\\\x00-\x1f\x7f-\x9f]{1,63}){1,8}$",
        max_length = 1024,
        example = "/users/alice/notes/todo.txt"
    )]
    pub path: String,
    #[param(schema_with = version_query_schema, example = "latest")]
    pub version: Option<String>,
}

/// `bucket` and `path` in a JSON body (`/archive`, `/unarchive`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/reports/2025.pdf"}))]
pub struct FileRef {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = archived_path_schema)]
    pub path: String,
}

/// `PATCH /metadata`: replaces the tags.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/notes/todo.txt",
    "tags": {"project": "apollo", "reviewed": true}}))]
pub struct TagsRequest {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub path: String,
    #[schema(schema_with = tags_body_schema)]
    pub tags: serde_json::Map<String, serde_json::Value>,
}

/// `POST /upload/presign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/notes/todo.txt",
    "content_type": "text/plain", "size": 12}))]
pub struct PresignUploadRequest {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub path: String,
    #[schema(schema_with = content_type_schema)]
    pub content_type: Option<String>,
    /// The size to be uploaded in bytes, at most `MAX_UPLOAD_BYTES` (default 5 GiB): the URL is
    /// signed for exactly this length (the store refuses any other), and completion checks it.
    /// Without it, the URL is the service's own (`/blob/...`; on S3 only for uploads of
    /// unannounced size, on the embedded local store always): the service streams the PUT
    /// into the store and refuses it past `MAX_UPLOAD_BYTES`.
    #[serde(default, deserialize_with = "optional_whole")]
    #[schema(maximum = 5_368_709_120_u64, example = 12)]
    pub size: Option<u64>,
    #[schema(schema_with = sha256_schema)]
    pub sha256: Option<String>,
}

/// `POST /upload/complete`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"upload_id": "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d"}))]
pub struct CompleteUploadRequest {
    /// The `upload_id` of `POST /upload/presign`'s answer.
    pub upload_id: Uuid,
}

/// `POST /download/presign`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/notes/todo.txt",
    "version": "latest"}))]
pub struct PresignDownloadRequest {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub path: String,
    #[schema(schema_with = version_body_schema)]
    pub version: Option<serde_json::Value>,
}

/// `POST /copy`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"source_bucket": "projects", "source_path": "/projects/5678/docs/spec.pdf",
    "target_bucket": "users", "target_path": "/users/alice/work/spec.pdf", "overwrite": false}))]
pub struct CopyRequest {
    #[schema(value_type = Bucket)]
    pub source_bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub source_path: String,
    #[schema(value_type = Bucket)]
    pub target_bucket: String,
    /// Not the source itself.
    #[schema(schema_with = file_path_schema)]
    pub target_path: String,
    /// Add a version to an existing target instead of refusing (default false).
    pub overwrite: Option<bool>,
}

/// `POST /versions/commit`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"source_bucket": "users", "source_path": "/users/alice/work/spec.pdf",
    "target_bucket": "projects", "target_path": "/projects/5678/docs/spec.pdf",
    "message": "Figures updated", "keep_lock": true}))]
pub struct CommitRequest {
    #[schema(value_type = Bucket)]
    pub source_bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub source_path: String,
    #[schema(value_type = Bucket)]
    pub target_bucket: String,
    /// Not the source itself.
    #[schema(schema_with = file_path_schema)]
    pub target_path: String,
    /// What changed (required, not blank).
    #[schema(value_type = String, schema_with = reject_comment_schema, required = true)]
    pub message: Option<String>,
    /// Keep the lock after the commit (default false).
    pub keep_lock: Option<bool>,
}

/// `POST /lock`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/notes/todo.txt",
    "ttl_seconds": 3600}))]
pub struct LockRequest {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub path: String,
    /// The lock's lifetime, 1 to `LOCK_MAX_TTL_SECONDS` (default 30 days); default
    /// `LOCK_TTL_SECONDS`.
    #[serde(default, deserialize_with = "optional_whole")]
    #[schema(minimum = 1, maximum = 2_592_000, example = 3600)]
    pub ttl_seconds: Option<u64>,
}

/// `POST /unlock`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/notes/todo.txt"}))]
pub struct UnlockRequest {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub path: String,
    /// Release someone else's lock (needs `validate` or ownership, and a `reason`).
    pub force: Option<bool>,
    #[schema(schema_with = reason_schema)]
    pub reason: Option<String>,
}

/// `POST /versions/{version_id}/approve` and `/submit`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"comment": "Looks good to me"}))]
pub struct ReviewRequest {
    #[schema(schema_with = comment_schema)]
    pub comment: Option<String>,
}

/// `POST /versions/{version_id}/restore`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"message": "Back to the figures of version 2"}))]
pub struct RestoreRequest {
    /// The new version's message; default `restored from version <n>`.
    #[schema(schema_with = message_schema)]
    pub message: Option<String>,
}

/// `POST /versions/{version_id}/pin`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"label": "release 1.0"}))]
pub struct PinRequest {
    /// The pin's label: 1 to 128 characters (trimmed), no control character.
    #[schema(value_type = String, schema_with = label_schema, required = true)]
    pub label: Option<String>,
}

fn label_schema() -> utoipa::openapi::Schema {
    utoipa::openapi::Schema::Object(text_schema(
        LABEL_PATTERN,
        128,
        "1 to 128 characters, not blank, without control characters.",
        "release 1.0",
    ))
}

/// A pin label: no control character, not blank.
const LABEL_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

fn message_schema() -> utoipa::openapi::Schema {
    nullable(text_schema(
        TEXT_PATTERN,
        4096,
        "An optional message, at most 4096 bytes.",
        "Back to the figures of version 2",
    ))
}

/// `POST /versions/{version_id}/reject`: the comment is required.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({"comment": "The totals in section 3 do not add up"}))]
pub struct RejectRequest {
    #[schema(value_type = String, schema_with = reject_comment_schema, required = true)]
    pub comment: Option<String>,
}

/// The fields of `POST /upload/proxy` (`multipart/form-data`, in any order).
#[derive(Debug, Clone, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/notes/todo.txt",
    "message": "First draft", "file": "hello"}))]
pub struct ProxyUploadForm {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = file_path_schema)]
    pub path: String,
    /// Free-form tags, as a JSON object (a part with `Content-Type: application/json`, or
    /// plain text holding the JSON).
    #[schema(schema_with = form_tags_schema, nullable = false)]
    pub tags: Option<serde_json::Map<String, serde_json::Value>>,
    #[schema(schema_with = message_text_schema, nullable = false)]
    pub message: Option<String>,
    /// `0`: the file must not exist yet; `n`: its latest version must be `n` (409 otherwise).
    #[schema(minimum = 0, maximum = 2_147_483_647, example = 0, nullable = false)]
    pub expected_version: Option<u32>,
    #[schema(schema_with = form_content_type_schema, nullable = false)]
    pub content_type: Option<String>,
    /// The bytes, at most `MAX_UPLOAD_BYTES` (default 5 GiB).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

fn message_text_schema() -> utoipa::openapi::Object {
    text_schema(
        TEXT_PATTERN,
        4096,
        "Free text, at most 4096 bytes; blank counts as none.",
        "First draft",
    )
}

// The defaults the schemas show.
const _: () = assert!(DEFAULT_MAX_UPLOAD == 5_368_709_120 && DEFAULT_MAX_LOCK_TTL == 2_592_000);

// ---- trash (issue 16) ------------------------------------------------------------------------

/// `POST /trash`: the file to move to the trash.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"bucket": "users", "path": "/users/alice/drafts/trash-me.txt"}))]
pub struct TrashRequest {
    #[schema(value_type = Bucket)]
    pub bucket: String,
    #[schema(schema_with = trash_path_schema)]
    pub path: String,
}

/// A file path whose example names a file that no other operation's example names: a fuzzer
/// that sends the examples trashes only that one.
fn trash_path_schema() -> utoipa::openapi::Object {
    text_schema(
        FILE_PATH_PATTERN,
        1024,
        "A file's logical path, `/<bucket>/<owner_id>/<name…>`; its first segment is the \
         request's `bucket`. Normalised to NFC.",
        "/users/alice/drafts/trash-me.txt",
    )
}

/// `GET /trash`: one page of the trash under a directory.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrashQuery {
    /// The bucket: the path's first segment.
    #[param(value_type = Bucket, example = "users")]
    pub bucket: String,
    /// A directory, `/<bucket>/<owner_id>/…/`, ending with `/`: the entries whose original
    /// path lies under it, at any depth.
    #[param(
        pattern = r"^/(users|companies|projects)/[A-Za-z0-9_-]{1,64}/((?!\.{1,2}/)[^/\\\x00-\x1f\x7f-\x9f]{1,63}/){0,8}$",
        max_length = 1024,
        example = "/users/alice/drafts/"
    )]
    pub path: String,
    /// The `next_cursor` of the previous page (opaque).
    #[param(
        pattern = r"^[A-Za-z0-9_-]{1,4096}$",
        example = "dHJhc2g6MjAyNi0xMi0wOFQxMDowMDowMCswMDowMHwwMTk3MGYwZS00YjdjLTdkMmEtOWQwZS01YzFmMmEzYjRjNjA"
    )]
    pub cursor: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000, example = 100)]
    pub limit: Option<u32>,
}

/// `DELETE /trash`: the entry to purge now.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurgeQuery {
    /// The entry's `trash_id`.
    #[param(value_type = Uuid, example = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c60")]
    pub trash_id: String,
}

/// What a restore does when the target path holds a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflictDto {
    /// `409 version_conflict` (the default).
    Fail,
    /// Restore as `name (restored).ext`, or `name (restored 2).ext`, … (the first free one).
    Rename,
    /// Move the file at the target path to the trash, then restore.
    Replace,
}

impl From<OnConflictDto> for storage_domain::model::OnConflict {
    fn from(c: OnConflictDto) -> Self {
        match c {
            OnConflictDto::Fail => Self::Fail,
            OnConflictDto::Rename => Self::Rename,
            OnConflictDto::Replace => Self::Replace,
        }
    }
}

/// `POST /trash/restore`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"trash_id": "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5f", "on_conflict": "rename"}))]
pub struct TrashRestoreRequest {
    /// The entry's `trash_id`.
    #[schema(value_type = Uuid)]
    pub trash_id: String,
    /// Where to restore: a file path in the same bucket and owner; default the path it had.
    #[serde(default)]
    #[schema(schema_with = optional_target_schema)]
    pub target_path: Option<String>,
    /// Default `fail`.
    #[serde(default)]
    pub on_conflict: Option<OnConflictDto>,
}

fn optional_target_schema() -> utoipa::openapi::Schema {
    nullable(text_schema(
        FILE_PATH_PATTERN,
        1024,
        "A file path in the trashed file's bucket and owner; default: the path it had.",
        "/users/alice/drafts/restored.txt",
    ))
}

/// A file in the trash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrashEntryDto {
    pub trash_id: Uuid,
    pub file_id: Uuid,
    pub bucket: Bucket,
    /// The path the file had.
    #[schema(example = "/users/alice/drafts/trash-me.txt")]
    pub path: String,
    pub name: String,
    /// Who moved it to the trash, and when.
    pub trashed_by: String,
    pub trashed_at: DateTime<Utc>,
    /// How many versions it holds (all come back with a restore).
    pub versions: u32,
    /// The latest version's number, size, type and hash.
    pub version: u32,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    /// When the janitor purges it (`trashed_at` + `TRASH_RETENTION_DAYS`).
    pub purge_at: DateTime<Utc>,
}

impl From<&storage_domain::service::TrashItem> for TrashEntryDto {
    fn from(item: &storage_domain::service::TrashItem) -> Self {
        let e = &item.entry;
        Self {
            trash_id: e.trash_id.as_uuid(),
            file_id: e.file.id.as_uuid(),
            bucket: e.file.bucket().into(),
            path: e.file.path.as_str().to_owned(),
            name: e.file.path.name().to_owned(),
            trashed_by: e.trashed_by.to_string(),
            trashed_at: e.trashed_at,
            versions: e.versions,
            version: e.file.version.get(),
            size: e.file.size,
            content_type: e.file.content_type.clone(),
            sha256: e.file.sha256.clone(),
            purge_at: item.purge_at,
        }
    }
}

/// `{"status":"ok","entry":…}`: `POST /trash`, `DELETE /trash`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrashEntryResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub entry: TrashEntryDto,
}

impl TrashEntryResponse {
    pub(crate) fn new(item: &storage_domain::service::TrashItem) -> Self {
        Self {
            status: OK.to_owned(),
            entry: item.into(),
        }
    }
}

/// `GET /trash`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrashListResponse {
    #[schema(example = "ok")]
    pub status: String,
    pub bucket: Bucket,
    pub path: String,
    /// Newest first.
    pub entries: Vec<TrashEntryDto>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl TrashListResponse {
    pub(crate) fn new(page: &storage_domain::service::TrashPage) -> Self {
        Self {
            status: OK.to_owned(),
            bucket: page.dir.bucket().into(),
            path: page.dir.as_str().to_owned(),
            entries: page.entries.iter().map(Into::into).collect(),
            next_cursor: page.next_cursor.clone(),
        }
    }
}
