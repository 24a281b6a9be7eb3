//! Files, versions, locks, upload reservations and audit events (spec §4).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    AuditId, BucketKind, DeletionId, FileId, FilePath, ObjectKey, UploadId, UserId, VersionId,
    VersionNumber,
};

/// A JSON object of free-form tags.
pub type Tags = serde_json::Map<String, serde_json::Value>;

/// A file's status; it follows its latest version, except `archived` (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Draft,
    PendingValidation,
    Validated,
    /// Kept read-only: no new version, tag change or lock is accepted.
    Archived,
}

impl FileStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            FileStatus::Draft => "draft",
            FileStatus::PendingValidation => "pending_validation",
            FileStatus::Validated => "validated",
            FileStatus::Archived => "archived",
        }
    }

    /// Parses the stored form.
    pub fn from_stored(raw: &str) -> Option<Self> {
        Some(match raw {
            "draft" => FileStatus::Draft,
            "pending_validation" => FileStatus::PendingValidation,
            "validated" => FileStatus::Validated,
            "archived" => FileStatus::Archived,
            _ => return None,
        })
    }
}

/// A version's review status (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    Draft,
    PendingValidation,
    Validated,
    Rejected,
}

impl VersionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::PendingValidation => "pending_validation",
            VersionStatus::Validated => "validated",
            VersionStatus::Rejected => "rejected",
        }
    }

    /// Parses the stored form.
    pub fn from_stored(raw: &str) -> Option<Self> {
        Some(match raw {
            "draft" => VersionStatus::Draft,
            "pending_validation" => VersionStatus::PendingValidation,
            "validated" => VersionStatus::Validated,
            "rejected" => VersionStatus::Rejected,
            _ => return None,
        })
    }
}

/// A lock on a file (spec §4): who holds it, since when, until when, and the version it was
/// taken on (the checkout ticket's `base_version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub holder: UserId,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub base_version: VersionNumber,
}

impl Lock {
    /// Whether the lock is still held at `now` (the expiry instant itself is free).
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

/// The checkout ticket of a workspace copy: the file it was checked out from and the version
/// it holds. It lives with the workspace copy, not with the lock, so nothing that happens to the
/// lock (expiry, someone else taking it, an unlock) can lose or move it: a commit from the copy
/// is refused as stale once the source has a newer version, whoever made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutTicket {
    /// The file checked out (the commit's target).
    pub file_id: FileId,
    /// Its path when it was checked out.
    pub path: FilePath,
    /// The version the copy was taken from, or committed as since.
    pub version: VersionNumber,
}

/// A file: one logical path and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub id: FileId,
    pub path: FilePath,
    /// The user who created the file (the contract's `owner_id`).
    pub created_by: UserId,
    /// The latest version number.
    pub version: VersionNumber,
    pub validated_version: Option<VersionNumber>,
    pub status: FileStatus,
    /// The live lock, if any. Stores return only unexpired locks here.
    pub lock: Option<Lock>,
    pub tags: Tags,
    /// The checkout ticket, when the file is a workspace copy made by a checkout.
    pub checkout: Option<CheckoutTicket>,
    /// Size, type and hash of the latest version.
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FileRecord {
    pub fn bucket(&self) -> BucketKind {
        self.path.bucket()
    }

    /// The live lock held by someone other than `user`, if any.
    pub fn lock_held_by_other(&self, user: &UserId) -> Option<&Lock> {
        self.lock.as_ref().filter(|l| &l.holder != user)
    }
}

/// One version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: VersionId,
    pub file_id: FileId,
    pub number: VersionNumber,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub author: UserId,
    pub message: Option<String>,
    pub status: VersionStatus,
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub review_comment: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Where the bytes are. Internal: never shown to clients.
    pub object_key: ObjectKey,
    /// The version of the same file whose bytes this version restored (`/versions/{id}/restore`).
    pub restored_from: Option<VersionNumber>,
    /// The label of a pinned version (`/versions/{id}/pin`): kept whatever the retention rules
    /// say. `None` when not pinned.
    pub pinned: Option<String>,
}

/// Which version a read asks for (`version=` of the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    Latest,
    Validated,
    Number(VersionNumber),
}

impl VersionSelector {
    /// Parses `latest` (also the default for an absent value), `validated` or a number.
    ///
    /// # Errors
    /// [`crate::StorageError::InvalidRequest`] for anything else.
    pub fn parse(raw: Option<&str>) -> Result<Self, crate::StorageError> {
        match raw.map(str::trim) {
            None | Some("") | Some("latest") => Ok(VersionSelector::Latest),
            Some("validated") => Ok(VersionSelector::Validated),
            Some(n) => n
                .parse::<u32>()
                .map_err(|_| {
                    crate::StorageError::invalid(
                        "version must be a number, 'latest' or 'validated'",
                    )
                })
                .and_then(VersionNumber::new)
                .map(VersionSelector::Number),
        }
    }
}

/// How an upload reservation came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadKind {
    /// `POST /upload/presign`: the client PUTs to a presigned URL, then completes.
    Presigned,
    /// `POST /upload/proxy`: the service streams the body itself.
    Proxy,
    /// A server-side copy (`/copy`, `/versions/commit`) writing a new object.
    Copy,
}

impl UploadKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            UploadKind::Presigned => "presigned",
            UploadKind::Proxy => "proxy",
            UploadKind::Copy => "copy",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        Some(match raw {
            "presigned" => UploadKind::Presigned,
            "proxy" => UploadKind::Proxy,
            "copy" => UploadKind::Copy,
            _ => return None,
        })
    }
}

/// A reserved object key that no version points to yet. Until it is completed, the janitor
/// removes its object once `expires_at` has passed, so nothing outlives a crash or an abandoned
/// upload (spec §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReservation {
    pub id: UploadId,
    pub kind: UploadKind,
    pub path: FilePath,
    pub created_by: UserId,
    /// The version id the object will become; the object key is derived from it.
    pub version_id: VersionId,
    pub object_key: ObjectKey,
    pub content_type: String,
    /// Size announced by the client, checked at completion.
    pub expected_size: Option<u64>,
    /// SHA-256 (hex) announced by the client, checked at completion.
    pub expected_sha256: Option<String>,
    pub max_bytes: u64,
    /// After this instant the reservation can no longer be completed and the janitor reclaims
    /// its object.
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Set once completed: the version it became.
    pub completed_version: Option<VersionId>,
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Upload,
    Copy,
    Checkout,
    Commit,
    Submit,
    Approve,
    Reject,
    Lock,
    Unlock,
    ForceUnlock,
    UpdateTags,
    Delete,
    Archive,
    Unarchive,
    Restore,
    /// `POST /trash`, and a file trashed by a restore that replaces it.
    Trash,
    /// `POST /trash/restore`.
    TrashRestore,
    /// `DELETE /trash`, or the janitor once the retention has passed.
    Purge,
    Pin,
    Unpin,
    /// A version removed by the janitor under the retention rules.
    Prune,
}

impl AuditAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Upload => "upload",
            AuditAction::Copy => "copy",
            AuditAction::Checkout => "checkout",
            AuditAction::Commit => "commit",
            AuditAction::Submit => "submit",
            AuditAction::Approve => "approve",
            AuditAction::Reject => "reject",
            AuditAction::Lock => "lock",
            AuditAction::Unlock => "unlock",
            AuditAction::ForceUnlock => "force_unlock",
            AuditAction::UpdateTags => "update_tags",
            AuditAction::Delete => "delete",
            AuditAction::Archive => "archive",
            AuditAction::Unarchive => "unarchive",
            AuditAction::Restore => "restore",
            AuditAction::Trash => "trash",
            AuditAction::TrashRestore => "trash_restore",
            AuditAction::Purge => "purge",
            AuditAction::Pin => "pin",
            AuditAction::Unpin => "unpin",
            AuditAction::Prune => "prune",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        [
            AuditAction::Upload,
            AuditAction::Copy,
            AuditAction::Checkout,
            AuditAction::Commit,
            AuditAction::Submit,
            AuditAction::Approve,
            AuditAction::Reject,
            AuditAction::Lock,
            AuditAction::Unlock,
            AuditAction::ForceUnlock,
            AuditAction::UpdateTags,
            AuditAction::Delete,
            AuditAction::Archive,
            AuditAction::Unarchive,
            AuditAction::Restore,
            AuditAction::Trash,
            AuditAction::TrashRestore,
            AuditAction::Purge,
            AuditAction::Pin,
            AuditAction::Unpin,
            AuditAction::Prune,
        ]
        .into_iter()
        .find(|a| a.as_str() == raw)
    }
}

/// How the recorded attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The change was made (written in the same transaction as the change).
    Success,
    /// The caller was refused (written on its own, after the refusal).
    Denied,
}

impl AuditOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Denied => "denied",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "success" => Some(AuditOutcome::Success),
            "denied" => Some(AuditOutcome::Denied),
            _ => None,
        }
    }
}

/// One entry of the audit trail (spec §4). The trail outlives the files it mentions.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: AuditId,
    pub actor: UserId,
    pub action: AuditAction,
    pub bucket: BucketKind,
    pub path: FilePath,
    pub file_id: Option<FileId>,
    pub version: Option<VersionNumber>,
    pub outcome: AuditOutcome,
    pub request_id: String,
    /// Free text: a force-unlock's reason, a review comment, a denial's cause.
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
    /// How many identical refusals this event stands for (1 for every other event): a refusal
    /// repeated by the same actor, for the same action on the same path, within the window of
    /// the first (`AUDIT_DENIED_WINDOW_SECONDS`) is counted here instead of written again.
    pub repeat_count: u32,
    /// When the last of those repeats happened (`None` until one does).
    pub last_repeat_at: Option<DateTime<Utc>>,
    /// The event published for this change ([`crate::rules::events::event_type`]); `None` for
    /// refusals and for events recorded before events existed.
    pub event_type: Option<EventType>,
    /// The change's details, a JSON object as stored (the exact text is hashed and published
    /// as the event's `data`).
    pub data: Option<String>,
    /// The event's place in its file's audit chain (1, 2, …); `None` for refusals, which are
    /// sealed one by one, and for events recorded before the chain
    /// ([`crate::rules::chain`]).
    pub seq: Option<u64>,
    /// The hash of the previous event of the chain (`""` for the first, and for a refusal).
    pub prev_hash: Option<String>,
    /// The event's hash, `<key id>:<hex HMAC>` ([`crate::rules::chain::AuditKey::event_hash`]);
    /// `None` before the chain (or with the chain off).
    pub hash: Option<String>,
}

/// The types of the events published for audited changes (docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "file.created")]
    FileCreated,
    #[serde(rename = "version.created")]
    VersionCreated,
    #[serde(rename = "version.submitted")]
    VersionSubmitted,
    #[serde(rename = "version.approved")]
    VersionApproved,
    #[serde(rename = "version.rejected")]
    VersionRejected,
    #[serde(rename = "version.restored")]
    VersionRestored,
    #[serde(rename = "lock.acquired")]
    LockAcquired,
    #[serde(rename = "lock.released")]
    LockReleased,
    #[serde(rename = "lock.forced")]
    LockForced,
    #[serde(rename = "file.tags_changed")]
    FileTagsChanged,
    #[serde(rename = "file.archived")]
    FileArchived,
    #[serde(rename = "file.unarchived")]
    FileUnarchived,
    #[serde(rename = "file.deleted")]
    FileDeleted,
    #[serde(rename = "upload.completed")]
    UploadCompleted,
    #[serde(rename = "file.trashed")]
    FileTrashed,
    #[serde(rename = "file.restored")]
    FileRestored,
    #[serde(rename = "file.purged")]
    FilePurged,
    #[serde(rename = "version.pinned")]
    VersionPinned,
    #[serde(rename = "version.unpinned")]
    VersionUnpinned,
    #[serde(rename = "version.pruned")]
    VersionPruned,
}

impl EventType {
    /// Every type, in the order docs/events.md lists them.
    pub const ALL: [EventType; 20] = [
        EventType::FileCreated,
        EventType::VersionCreated,
        EventType::VersionSubmitted,
        EventType::VersionApproved,
        EventType::VersionRejected,
        EventType::VersionRestored,
        EventType::LockAcquired,
        EventType::LockReleased,
        EventType::LockForced,
        EventType::FileTagsChanged,
        EventType::FileArchived,
        EventType::FileUnarchived,
        EventType::FileDeleted,
        EventType::UploadCompleted,
        EventType::FileTrashed,
        EventType::FileRestored,
        EventType::FilePurged,
        EventType::VersionPinned,
        EventType::VersionUnpinned,
        EventType::VersionPruned,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::FileCreated => "file.created",
            EventType::VersionCreated => "version.created",
            EventType::VersionSubmitted => "version.submitted",
            EventType::VersionApproved => "version.approved",
            EventType::VersionRejected => "version.rejected",
            EventType::VersionRestored => "version.restored",
            EventType::LockAcquired => "lock.acquired",
            EventType::LockReleased => "lock.released",
            EventType::LockForced => "lock.forced",
            EventType::FileTagsChanged => "file.tags_changed",
            EventType::FileArchived => "file.archived",
            EventType::FileUnarchived => "file.unarchived",
            EventType::FileDeleted => "file.deleted",
            EventType::UploadCompleted => "upload.completed",
            EventType::FileTrashed => "file.trashed",
            EventType::FileRestored => "file.restored",
            EventType::FilePurged => "file.purged",
            EventType::VersionPinned => "version.pinned",
            EventType::VersionUnpinned => "version.unpinned",
            EventType::VersionPruned => "version.pruned",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// The part of an audit event a use case knows before the store has made the change; the store
/// fills in the file id and version it decided on, and the time from its own clock.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    pub id: AuditId,
    pub actor: UserId,
    pub action: AuditAction,
    pub path: FilePath,
    pub request_id: String,
    pub detail: Option<String>,
}

impl AuditDraft {
    /// Completes the draft with what the store decided.
    pub fn complete(
        self,
        file_id: Option<FileId>,
        version: Option<VersionNumber>,
        outcome: AuditOutcome,
        at: DateTime<Utc>,
    ) -> AuditEvent {
        AuditEvent {
            id: self.id,
            actor: self.actor,
            action: self.action,
            bucket: self.path.bucket(),
            path: self.path,
            file_id,
            version,
            outcome,
            request_id: self.request_id,
            detail: self.detail,
            at,
            repeat_count: 1,
            last_repeat_at: None,
            event_type: None,
            data: None,
            seq: None,
            prev_hash: None,
            hash: None,
        }
    }
}

/// An object whose deletion is owed: left by a delete whose object removal failed, or by an
/// upload reservation that expired. The janitor retries until the store confirms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeletion {
    pub id: DeletionId,
    pub bucket: BucketKind,
    pub object_key: ObjectKey,
    pub attempts: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_round_trip() {
        for s in [
            FileStatus::Draft,
            FileStatus::PendingValidation,
            FileStatus::Validated,
            FileStatus::Archived,
        ] {
            assert_eq!(FileStatus::from_stored(s.as_str()), Some(s));
        }
        for s in [
            VersionStatus::Draft,
            VersionStatus::PendingValidation,
            VersionStatus::Validated,
            VersionStatus::Rejected,
        ] {
            assert_eq!(VersionStatus::from_stored(s.as_str()), Some(s));
        }
        for k in [UploadKind::Presigned, UploadKind::Proxy, UploadKind::Copy] {
            assert_eq!(UploadKind::from_stored(k.as_str()), Some(k));
        }
        assert_eq!(
            AuditAction::from_stored("force_unlock"),
            Some(AuditAction::ForceUnlock)
        );
        assert_eq!(AuditAction::from_stored("nope"), None);
    }

    #[test]
    fn version_selector_parses_the_three_forms() {
        assert_eq!(
            VersionSelector::parse(None).unwrap(),
            VersionSelector::Latest
        );
        assert_eq!(
            VersionSelector::parse(Some("latest")).unwrap(),
            VersionSelector::Latest
        );
        assert_eq!(
            VersionSelector::parse(Some("validated")).unwrap(),
            VersionSelector::Validated
        );
        assert_eq!(
            VersionSelector::parse(Some("3")).unwrap(),
            VersionSelector::Number(VersionNumber::new(3).unwrap())
        );
        assert!(VersionSelector::parse(Some("0")).is_err());
        assert!(VersionSelector::parse(Some("-1")).is_err());
        assert!(VersionSelector::parse(Some("v2")).is_err());
    }
}

/// A file in the trash: the file as it was when trashed (its id, path, tags and latest
/// version), who trashed it and when, and how many versions it took along.
#[derive(Debug, Clone, PartialEq)]
pub struct TrashEntry {
    pub trash_id: super::TrashId,
    /// The file as it was (`path` is the path it had; `lock` is always `None`).
    pub file: FileRecord,
    pub versions: u32,
    pub trashed_by: UserId,
    pub trashed_at: DateTime<Utc>,
}

/// What a restore from the trash does when the target path holds a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Refuse (`version_conflict`).
    #[default]
    Fail,
    /// Restore under the first free name `name (restored).ext`, `name (restored 2).ext`, …
    Rename,
    /// Trash the occupant, then restore.
    Replace,
}

impl OnConflict {
    pub const fn as_str(self) -> &'static str {
        match self {
            OnConflict::Fail => "fail",
            OnConflict::Rename => "rename",
            OnConflict::Replace => "replace",
        }
    }
}
