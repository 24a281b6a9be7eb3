//! The use cases of every operation of the contract (spec §5), written once against the ports.
//!
//! [`StorageService`] holds one implementation of each port behind an `Arc<dyn …>`; the
//! composition root picks them from configuration. Every use case checks its input and the
//! caller's access **before** any lookup (an unauthorised caller learns nothing about
//! existence), then lets the metadata store decide atomically.

mod copy;
pub mod events;
mod files;
mod janitor;
mod limits;
mod locks;
mod meter;
mod pagination;
mod pins;
mod review;
mod reviews;
mod transfer;
mod trash;

use std::{sync::Arc, time::Duration};

use crate::error::StorageError;
use crate::model::{
    AuditAction, AuditDraft, AuditId, AuditOutcome, BucketKind, FileId, FilePath, FileRecord,
    ObjectKey, OwnerId, PendingDeletion, RequestContext, Tags, UploadId, UploadKind,
    UploadReservation, Version, VersionId, VersionSelector,
};
use crate::ports::{
    AccessCheck, AccessDecision, BlobError, BlobStore, Clock, IdGenerator, MetadataStore,
    ProjectAccess, ProjectAccessError, RepoError, ServiceUploadUrls,
};
use crate::rules::{LockTtl, Operation, Requirement, owns, requirement};

pub use copy::{CommitRequest, CopyRequest, RestoreRequest};
pub use files::{AuditPage, ListPage, VersionsPage};
pub use janitor::JanitorReport;
pub use limits::{TransferKind, TransferLimits, TransferPermit, transfer_refusal};
pub use locks::LockPage;
pub use meter::{MeteredStream, UploadMeter};
pub use pagination::{Limit, decode_cursor, encode_cursor};
pub use reviews::ReviewPage;
pub use transfer::{
    CompleteForm, Download, DownloadRequest, PresignUploadRequest, PresignedDownload,
    PresignedUpload, ProxyUpload, UploadResult, content_disposition,
};
pub use trash::{JANITOR_ACTOR, TrashItem, TrashPage, TrashRestoreRequest};

/// Tunables of the use cases (spec §7 names their variables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// `MAX_UPLOAD_BYTES`: the largest upload accepted.
    pub max_upload_bytes: u64,
    /// `PRESIGN_TTL_SECONDS`: lifetime of presigned URLs.
    pub presign_ttl: Duration,
    /// How long after its URL expired a presigned upload may still be completed; its object is
    /// reclaimed by the janitor after that.
    pub upload_grace: Duration,
    /// Lifetime of the reservation of a proxy upload or copy in progress; renewed while bytes
    /// flow, so a crashed instance's leftovers are reclaimed soon after.
    pub transfer_lease: Duration,
    /// `LOCK_TTL_SECONDS` and the longest lock a caller may ask for.
    pub lock_ttl: LockTtl,
    /// `ALLOW_SELF_APPROVAL`.
    pub allow_self_approval: bool,
    /// How long a completed upload stays completable again (idempotency window).
    pub keep_completed_uploads: Duration,
    /// Caps on the proxy transfers running at once on this instance.
    pub transfer_limits: TransferLimits,
    /// `MAX_OPEN_UPLOADS_PER_USER`: the most presigned uploads one user may hold open (not
    /// completed, not expired) at once, across every instance (the store counts them).
    pub max_open_uploads_per_user: u32,
    /// `AUDIT_DENIED_WINDOW_SECONDS`: identical refusals (same actor, action and path) within
    /// this window of the first are recorded once, with a count. Zero records each.
    pub audit_denied_window: Duration,
    /// `TRASH_RETENTION_DAYS`: how long a trashed file stays in the trash before the janitor
    /// purges it.
    pub trash_retention: Duration,
    /// `VERSION_KEEP_LAST`, `VERSION_KEEP_DAYS` and their per-bucket settings: the versions the
    /// janitor prunes. Keeps every version by default.
    pub retention: crate::rules::retention::RetentionPolicy,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            max_upload_bytes: 5 * 1024 * 1024 * 1024,
            presign_ttl: Duration::from_secs(900),
            upload_grace: Duration::from_secs(3600),
            transfer_lease: Duration::from_secs(300),
            lock_ttl: LockTtl {
                default: Duration::from_secs(86_400),
                max: Duration::from_secs(30 * 86_400),
            },
            allow_self_approval: false,
            keep_completed_uploads: Duration::from_secs(7 * 86_400),
            transfer_limits: TransferLimits::default(),
            max_open_uploads_per_user: 100,
            audit_denied_window: Duration::from_secs(60),
            trash_retention: Duration::from_secs(30 * 86_400),
            retention: crate::rules::retention::RetentionPolicy::default(),
        }
    }
}

/// The ports a [`StorageService`] runs on.
#[derive(Clone)]
pub struct Ports {
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub projects: Arc<dyn ProjectAccess>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    /// Upload URLs to the service itself, for uploads of unannounced size on a store whose own
    /// URLs cannot bound them (S3). `None`: such a presign is refused (`size` required).
    pub upload_urls: Option<Arc<dyn ServiceUploadUrls>>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// The use cases of storage-service.
#[derive(Debug, Clone)]
pub struct StorageService {
    ports: Ports,
    settings: ServiceSettings,
    /// This instance's count of the transfers running (shared by every clone).
    transfers: Arc<limits::TransferGate>,
}

/// One access need of a use case: an operation on an owner's subtree of a bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Need<'a> {
    pub op: Operation,
    pub bucket: BucketKind,
    pub owner: &'a OwnerId,
    pub file_id: Option<FileId>,
    /// The file concerned, when the need is on one (refusals of changes are audited on it).
    pub path: Option<&'a FilePath>,
}

impl<'a> Need<'a> {
    pub(crate) fn on(op: Operation, path: &'a FilePath) -> Self {
        Self {
            op,
            bucket: path.bucket(),
            owner: path.owner(),
            file_id: None,
            path: Some(path),
        }
    }
}

impl StorageService {
    pub fn new(ports: Ports, settings: ServiceSettings) -> Self {
        let transfers = limits::TransferGate::new(settings.transfer_limits);
        Self {
            ports,
            settings,
            transfers,
        }
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// The same use cases over another metadata store, sharing everything else with this
    /// service (settings, ports, and this instance's count of running transfers): the server
    /// gives each HTTP worker thread a database pool of its own.
    #[must_use]
    pub fn with_metadata(&self, metadata: Arc<dyn MetadataStore>) -> Self {
        let mut ports = self.ports.clone();
        ports.metadata = metadata;
        Self {
            ports,
            settings: self.settings.clone(),
            transfers: Arc::clone(&self.transfers),
        }
    }

    /// Checks that the caller may do every need, before anything is read. A request from an
    /// untrusted origin is refused whatever the caller may do. A refused change (an operation
    /// that would be audited had it succeeded) is recorded in the audit trail with the outcome
    /// `denied`, best effort: the refusal stands even if the record fails. Identical refusals
    /// within `AUDIT_DENIED_WINDOW_SECONDS` are counted on one event, so a caller repeating a
    /// refused request cannot flood the trail.
    pub(crate) async fn authorize(
        &self,
        ctx: &RequestContext,
        needs: &[Need<'_>],
    ) -> Result<(), StorageError> {
        let result = match &ctx.untrusted_origin {
            Some(reason) => Err(StorageError::denied(reason.clone())),
            None => self.check_access(ctx, needs).await,
        };
        if let Err(StorageError::AccessDenied(detail)) = &result
            && let Some((action, path)) = needs
                .iter()
                .find_map(|n| Some((n.op.audit_action()?, n.path?)))
        {
            // The store seals it (with its chain setting, `AuditChain::seal`).
            let event = self
                .audit_draft(ctx, action, path, Some(detail.clone()))
                .complete(None, None, AuditOutcome::Denied, self.ports.clock.now());
            // The refusal is what matters; the store may well be down.
            let _ = self
                .ports
                .metadata
                .record_refusal(&event, self.settings.audit_denied_window)
                .await;
        }
        result
    }

    /// Local checks first (no network for a caller refused by its own token); then one
    /// project-service call for the remaining checks (a batch when there are several).
    async fn check_access(
        &self,
        ctx: &RequestContext,
        needs: &[Need<'_>],
    ) -> Result<(), StorageError> {
        let mut checks: Vec<AccessCheck> = Vec::new();
        for need in needs {
            match requirement(need.op, need.bucket) {
                Requirement::BucketOwner => {
                    if !owns(&ctx.principal, need.bucket, need.owner) {
                        return Err(StorageError::denied(format!(
                            "you have no access to /{}/{}/",
                            need.bucket, need.owner
                        )));
                    }
                }
                Requirement::Project(action) => {
                    let check = AccessCheck {
                        project_id: need.owner.clone(),
                        action,
                        file_id: need.file_id,
                    };
                    if !checks.contains(&check) {
                        checks.push(check);
                    }
                }
            }
        }
        let decisions = match checks.as_slice() {
            [] => return Ok(()),
            [one] => vec![self.ports.projects.check(&ctx.principal, one).await],
            many => match self.ports.projects.check_batch(&ctx.principal, many).await {
                Ok(decisions) if decisions.len() == many.len() => {
                    decisions.into_iter().map(Ok).collect()
                }
                Ok(_) => vec![Err(ProjectAccessError::Malformed(
                    "batch answer does not match the checks".into(),
                ))],
                Err(e) => vec![Err(e)],
            },
        };
        for (check, decision) in checks.iter().zip(decisions) {
            match decision.map_err(project_unavailable)? {
                AccessDecision::Allowed { .. } => {}
                AccessDecision::Denied { reason } => {
                    return Err(StorageError::denied(format!(
                        "the project service denies '{}' on project {}{}",
                        check.action.as_str(),
                        check.project_id,
                        denial_reason(reason.as_deref())
                    )));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn audit_draft(
        &self,
        ctx: &RequestContext,
        action: AuditAction,
        path: &FilePath,
        detail: Option<String>,
    ) -> AuditDraft {
        AuditDraft {
            id: AuditId::from_uuid(self.ports.ids.new_id()),
            actor: ctx.user().clone(),
            action,
            path: path.clone(),
            request_id: ctx.request_id.clone(),
            detail,
        }
    }

    /// The file at `path`, or `file_not_found`.
    pub(crate) async fn existing_file(&self, path: &FilePath) -> Result<FileRecord, StorageError> {
        self.ports
            .metadata
            .find_file(path)
            .await?
            .ok_or(StorageError::FileNotFound)
    }

    /// The file at `path` with the version `selector` picks, in one read of the store, or
    /// `file_not_found` / `version_not_found`.
    pub(crate) async fn file_version(
        &self,
        path: &FilePath,
        selector: VersionSelector,
    ) -> Result<(FileRecord, Version), StorageError> {
        match self
            .ports
            .metadata
            .find_file_version(path, selector)
            .await?
        {
            None => Err(StorageError::FileNotFound),
            Some((file, Some(version))) => Ok((file, version)),
            Some((file, None)) if selector == VersionSelector::Latest => Err(
                StorageError::internal(format!("file {} lost its latest version", file.id)),
            ),
            Some((_, None)) => Err(StorageError::VersionNotFound),
        }
    }

    /// A new reservation for an object that will become a version of `path`.
    pub(crate) fn new_reservation(
        &self,
        ctx: &RequestContext,
        kind: UploadKind,
        path: &FilePath,
        content_type: String,
        lifetime: Duration,
    ) -> UploadReservation {
        let now = self.ports.clock.now();
        let version_id = VersionId::from_uuid(self.ports.ids.new_id());
        UploadReservation {
            id: UploadId::from_uuid(self.ports.ids.new_id()),
            kind,
            path: path.clone(),
            created_by: ctx.user().clone(),
            version_id,
            object_key: ObjectKey::for_version(path.owner(), version_id),
            content_type,
            expected_size: None,
            expected_sha256: None,
            max_bytes: self.settings.max_upload_bytes,
            expires_at: now + chrono_duration(lifetime),
            created_at: now,
            completed_version: None,
        }
    }

    /// Gives up a reservation whose object may exist: queue the object, try to delete it now,
    /// and forget the queue entry when that worked. Failures are left to the janitor, which
    /// retries queued deletions and reclaims expired reservations. A store may still finish a
    /// write it was asked for after the service gave up (a copy or a part that timed out on
    /// this side): the key is queued once more, not before the transfer lease has passed, so
    /// such a late object is not left untracked.
    ///
    /// It returns once the reservation is dropped (see [`Self::abandon_reservation`]), so the
    /// error the caller then answers never finds it still open.
    pub(crate) async fn discard_reservation(&self, reservation: &UploadReservation) {
        if let Ok(Some(pending)) = self.abandon_reservation(reservation.id).await
            && self
                .ports
                .blobs
                .delete(pending.bucket, &pending.object_key)
                .await
                .is_ok()
        {
            let _ = self.ports.metadata.forget_deletion(pending.id).await;
        }
        let later = self.ports.clock.now() + chrono_duration(self.settings.transfer_lease);
        let object = [(reservation.path.bucket(), reservation.object_key.clone())];
        // When this fails too, the reservation (if it could not be abandoned) still expires.
        let _ = self
            .ports
            .metadata
            .queue_deletions(&object, Some(later))
            .await;
    }

    /// Drops a reservation. A store that is unavailable (a pool or connection timeout under
    /// load, a conflict to retry) is asked again, [`ABANDON_ATTEMPTS`] times in all with a pause
    /// of [`ABANDON_RETRY_PAUSE`] doubling between them; any other answer is final. When the
    /// store stays unavailable, the reservation is left to expire (at most one transfer lease
    /// later) and the janitor reclaims it and its object then.
    async fn abandon_reservation(
        &self,
        id: UploadId,
    ) -> Result<Option<PendingDeletion>, RepoError> {
        let mut pause = ABANDON_RETRY_PAUSE;
        for _ in 1..ABANDON_ATTEMPTS {
            match self.ports.metadata.abandon_reservation(id).await {
                Err(RepoError::Unavailable(_)) => {
                    self.ports.clock.sleep(pause).await;
                    pause *= 2;
                }
                answer => return answer,
            }
        }
        self.ports.metadata.abandon_reservation(id).await
    }

    pub(crate) fn new_file_id(&self) -> FileId {
        FileId::from_uuid(self.ports.ids.new_id())
    }
}

/// How many times a transfer given up asks an unavailable metadata store to drop its
/// reservation before leaving it to expire.
const ABANDON_ATTEMPTS: u32 = 3;

/// The pause before the first retry of a reservation's abandon (doubled before the next).
const ABANDON_RETRY_PAUSE: Duration = Duration::from_millis(100);

pub(crate) fn chrono_duration(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// The words of a refusal past `MAX_OPEN_UPLOADS_PER_USER`.
pub(crate) fn open_uploads_detail(open: u64, limit: u32) -> String {
    format!(
        "you have {open} presigned uploads open, the most one user may hold (at most {limit}); \
         complete them or let them expire, then try again"
    )
}

fn project_unavailable(e: ProjectAccessError) -> StorageError {
    // Only "not configured" says something the caller may read (how to configure it); every
    // other cause is a fault whose details stay in the logs.
    let hint = match &e {
        ProjectAccessError::NotConfigured(how) => Some(how.clone()),
        _ => None,
    };
    StorageError::ProjectServiceUnavailable {
        cause: e.to_string(),
        hint,
    }
}

/// The project service's reason for a denial, when it gave a short printable one.
fn denial_reason(reason: Option<&str>) -> String {
    match reason.map(str::trim) {
        Some(r) if !r.is_empty() && r.len() <= 200 && r.chars().all(|c| !c.is_control()) => {
            format!(": {r}")
        }
        _ => String::new(),
    }
}

impl From<RepoError> for StorageError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::FileNotFound => StorageError::FileNotFound,
            RepoError::VersionNotFound => StorageError::VersionNotFound,
            RepoError::UploadNotFound => StorageError::UploadNotFound,
            RepoError::UploadAlreadyCompleted { version_id } => {
                StorageError::internal(format!("upload already completed as {version_id}"))
            }
            RepoError::FileLocked(lock) => StorageError::FileLocked(Box::new(lock)),
            RepoError::VersionConflict {
                current,
                detail,
                precondition,
            } => StorageError::VersionConflict {
                detail,
                current,
                precondition,
            },
            RepoError::InvalidTransition(detail) => StorageError::InvalidTransition(detail),
            RepoError::TooManyOpenUploads { open, limit } => StorageError::TooManyRequests {
                detail: open_uploads_detail(open, limit),
                retry_after: TransferLimits::default().retry_after,
            },
            RepoError::Unavailable(cause) => StorageError::DatabaseUnavailable { cause },
            RepoError::Internal(cause) => StorageError::Internal { cause },
        }
    }
}

impl From<BlobError> for StorageError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Unavailable(cause) => StorageError::ObjectStoreUnavailable { cause },
            BlobError::NotFound => StorageError::internal("object missing from the blob store"),
            BlobError::Busy { retry_after, .. } => StorageError::TooManyRequests {
                detail: format!(
                    "every upload buffer of this instance is in use; try again in {} s",
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            },
            BlobError::LengthRequired => StorageError::invalid(
                "size is required: upload URLs of this object store are signed for an \
                 announced length, so that no URL can store more than that",
            ),
            other => StorageError::internal(other.to_string()),
        }
    }
}

/// Checks a content type: `type/subtype[; params]`, printable ASCII, at most 255 bytes. Blank
/// means `application/octet-stream`.
pub(crate) fn content_type_or_default(raw: Option<&str>) -> Result<String, StorageError> {
    let raw = raw.map(str::trim).unwrap_or_default();
    if raw.is_empty() {
        return Ok("application/octet-stream".to_owned());
    }
    let essence = raw.split(';').next().unwrap_or_default().trim();
    let valid_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let well_formed = raw.len() <= 255
        && raw.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(t, s)| valid_token(t) && valid_token(s));
    if !well_formed {
        return Err(StorageError::invalid(
            "content_type must look like 'type/subtype'",
        ));
    }
    Ok(raw.to_owned())
}

/// Largest tags object accepted, serialised.
pub const MAX_TAGS_BYTES: usize = 16 * 1024;
/// Most keys of the tags object.
pub const MAX_TAG_KEYS: usize = 64;
/// Longest tag key (and key of a nested object), in bytes.
pub const MAX_TAG_KEY_BYTES: usize = 128;
/// Deepest nesting of the tags: the tags object is level 1, an object or array in a tag's
/// value level 2, and so on.
pub const MAX_TAG_DEPTH: usize = 8;
/// Most JSON values in the tags, at every level (the tags object itself included).
pub const MAX_TAG_VALUES: usize = 1024;
/// Largest commit message or review comment accepted.
pub const MAX_TEXT_BYTES: usize = 4096;

/// A character refused in free text (messages, comments, reasons, tag string values): every
/// control character (`Cc`: C0, DEL, C1, NUL included) except the line feed.
fn refused_in_text(c: char) -> bool {
    c.is_control() && c != '\n'
}

/// Checks a tags object before it reaches any store: at most [`MAX_TAG_KEYS`] keys of 1 to
/// [`MAX_TAG_KEY_BYTES`] bytes without control characters (nested objects' keys alike); string
/// values without control characters other than the line feed; at most [`MAX_TAG_DEPTH`] levels
/// and [`MAX_TAG_VALUES`] values; at most [`MAX_TAGS_BYTES`] serialised. Both stores then hold
/// and answer the same tags (PostgreSQL's `jsonb` refuses NUL; SQLite would keep it).
pub(crate) fn check_tags(tags: &Tags) -> Result<(), StorageError> {
    let size = serde_json::to_vec(tags)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_TAGS_BYTES {
        return Err(StorageError::invalid(format!(
            "tags must be at most {MAX_TAGS_BYTES} bytes"
        )));
    }
    if tags.len() > MAX_TAG_KEYS {
        return Err(StorageError::invalid(format!(
            "tags may have at most {MAX_TAG_KEYS} keys"
        )));
    }
    let mut values = 1;
    check_tag_object(tags, 1, &mut values)
}

fn check_tag_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() || key.len() > MAX_TAG_KEY_BYTES || key.chars().any(char::is_control) {
        return Err(StorageError::invalid(format!(
            "tag keys must be 1 to {MAX_TAG_KEY_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

fn check_tag_object(
    object: &serde_json::Map<String, serde_json::Value>,
    depth: usize,
    values: &mut usize,
) -> Result<(), StorageError> {
    for (key, value) in object {
        check_tag_key(key)?;
        check_tag_value(value, depth + 1, values)?;
    }
    Ok(())
}

fn check_tag_value(
    value: &serde_json::Value,
    depth: usize,
    values: &mut usize,
) -> Result<(), StorageError> {
    use serde_json::Value;
    *values += 1;
    if *values > MAX_TAG_VALUES {
        return Err(StorageError::invalid(format!(
            "tags may hold at most {MAX_TAG_VALUES} values"
        )));
    }
    let nested = matches!(value, Value::Array(_) | Value::Object(_));
    if nested && depth > MAX_TAG_DEPTH {
        return Err(StorageError::invalid(format!(
            "tags may nest at most {MAX_TAG_DEPTH} levels deep"
        )));
    }
    match value {
        Value::String(text) if text.chars().any(refused_in_text) => Err(StorageError::invalid(
            "tag values must not hold control characters (other than the line feed)",
        )),
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_tag_value(item, depth + 1, values)),
        Value::Object(object) => check_tag_object(object, depth, values),
        _ => Ok(()),
    }
}

/// Checks a free text (message, comment, reason): trimmed, at most [`MAX_TEXT_BYTES`], no
/// control character but the line feed. Blank is `None`.
pub(crate) fn check_text(field: &str, text: Option<&str>) -> Result<Option<String>, StorageError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.len() > MAX_TEXT_BYTES || t.chars().any(refused_in_text) => {
            Err(StorageError::invalid(format!(
                "{field} must be at most {MAX_TEXT_BYTES} bytes of text without control \
                 characters (other than the line feed)"
            )))
        }
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// Checks a hex SHA-256 and returns it in lower case.
pub(crate) fn check_sha256(raw: &str) -> Result<String, StorageError> {
    let s = raw.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StorageError::invalid(
            "sha256 must be 64 hexadecimal characters",
        ));
    }
    Ok(s)
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod checks {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            content_type_or_default(None).unwrap(),
            "application/octet-stream"
        );
        assert_eq!(
            content_type_or_default(Some(" ")).unwrap(),
            "application/octet-stream"
        );
        assert_eq!(
            content_type_or_default(Some("application/pdf")).unwrap(),
            "application/pdf"
        );
        assert_eq!(
            content_type_or_default(Some("text/plain; charset=utf-8")).unwrap(),
            "text/plain; charset=utf-8"
        );
        for bad in [
            "pdf",
            "text/",
            "/plain",
            "text/pl ain",
            "text/plain\r\nX: y",
            "t\u{e9}xt/a",
        ] {
            assert!(content_type_or_default(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sha256_and_texts() {
        let h = "A".repeat(64);
        assert_eq!(check_sha256(&h).unwrap(), "a".repeat(64));
        assert!(check_sha256("abc").is_err());
        assert!(check_sha256(&"g".repeat(64)).is_err());
        assert_eq!(check_text("message", Some("  ")).unwrap(), None);
        assert_eq!(
            check_text("message", Some(" hi\nthere "))
                .unwrap()
                .as_deref(),
            Some("hi\nthere")
        );
        assert!(check_text("message", Some("a\u{0}b")).is_err());
        assert!(check_text("message", Some(&"x".repeat(MAX_TEXT_BYTES + 1))).is_err());
        let mut tags = Tags::new();
        tags.insert(
            "k".into(),
            serde_json::Value::String("v".repeat(MAX_TAGS_BYTES)),
        );
        assert!(check_tags(&tags).is_err());
    }
}
