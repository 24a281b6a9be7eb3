//! The metadata store port: files, versions, locks, reservations, the audit trail and the
//! deletion queue.
//!
//! Every mutating method is one **unit of work**: its change and its audit event commit together
//! or not at all, and the decision it embodies (who gets a lock, which number a version gets,
//! which of two reviews wins) is made by the store atomically, so that it holds across many
//! service instances sharing one store (spec §6). A store MUST finish or roll back a unit of
//! work even when the future calling it is dropped.
//!
//! Every unit of work that changes a file, or decides on its lock, first holds that file's row
//! lock, and decides on the file and lock rows *as committed at that moment* (never on a read
//! made before it waited for the row), with the decision functions of
//! [`crate::rules::store`]; every change of a lock holds the file's row lock too. So a write and
//! a lock change on one file are ordered, and each sees the other.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::{
    AuditDraft, AuditEvent, AuditId, BucketKind, DeletionId, DirPath, FileId, FilePath, FileRecord,
    Lock, ObjectKey, OnConflict, PendingDeletion, Tags, TrashEntry, TrashId, UploadId,
    UploadReservation, UserId, Version, VersionId, VersionNumber, VersionSelector, VersionStatus,
};
use crate::ports::events::{DeliveryState, OutboxEvent, Settlement};

/// Failures and refusals of the metadata store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RepoError {
    #[error("file not found")]
    FileNotFound,
    #[error("version not found")]
    VersionNotFound,
    /// The reservation does not exist, has expired, or was abandoned.
    #[error("upload reservation not found")]
    UploadNotFound,
    /// The reservation was already completed, as this version.
    #[error("upload already completed")]
    UploadAlreadyCompleted { version_id: VersionId },
    /// Someone else holds a live lock.
    #[error("file locked")]
    FileLocked(Lock),
    /// The file is not at the version the write expected.
    #[error("version conflict: {detail}")]
    VersionConflict {
        current: Option<VersionNumber>,
        detail: String,
        /// The failed expectation came from an `If-Match` header ([`Expectation::precondition`]).
        precondition: bool,
    },
    /// The change is not allowed in the current state (e.g. reviewing a validated version,
    /// writing to an archived file, committing without holding the lock).
    #[error("invalid transition: {0}")]
    InvalidTransition(String),
    /// The user already holds `limit` open presigned uploads (not completed, not expired), the
    /// most a reservation may be added to ([`check_open_uploads`](crate::rules::store::check_open_uploads)).
    #[error("too many open uploads: {open} of at most {limit}")]
    TooManyOpenUploads { open: u64, limit: u32 },
    /// The store could not be reached, timed out, or its pool is exhausted.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a constraint the domain should have prevented, corrupt data).
    #[error("metadata store error: {0}")]
    Internal(String),
}

/// What a write expects of the file at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// `None`: the path must hold no file yet. `Some(n)`: the latest version must be `n`.
    pub latest: Option<VersionNumber>,
    /// The expectation came from an `If-Match` header (its failure is reported as such).
    pub precondition: bool,
}

/// How a new version relates to the file's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// An upload or a copy: creates the file or adds a version to it.
    ///
    /// Refused with [`RepoError::FileLocked`] when another user holds a live lock, with
    /// [`RepoError::VersionConflict`] when `expected` does not hold, and with
    /// [`RepoError::VersionConflict`] when the file exists and `overwrite` is false. When the
    /// author holds the lock (live, or expired and taken by nobody since), the lock's
    /// `base_version` moves to the new version.
    Upsert {
        expected: Option<Expectation>,
        overwrite: bool,
    },
    /// A commit from a workspace copy `source` (`/versions/commit`): the file must exist and
    /// [`check_commit`](crate::rules::store::check_commit) must pass with the source's checkout
    /// ticket, read in the same unit of work: a ticket taken on this file must still name its
    /// latest version ([`RepoError::VersionConflict`]), the author must hold its live lock
    /// ([`RepoError::InvalidTransition`] if nobody does, [`RepoError::FileLocked`] if someone
    /// else does), and without such a ticket the latest version must be the lock's
    /// `base_version` ([`RepoError::VersionConflict`]). The lock is released unless
    /// `keep_lock`, in which case its `base_version` moves to the new version; the source's
    /// ticket moves to the new version either way.
    Commit { keep_lock: bool, source: FileId },
    /// A restore (`/versions/{id}/restore`): version `from` of `file` becomes its next version.
    /// As `Upsert` with `overwrite`, but the path must still hold `file`
    /// ([`RepoError::FileNotFound`] when it holds nothing, or another file since a delete); the
    /// new version records `from` as its `restored_from`.
    Restore {
        file: FileId,
        from: VersionNumber,
        expected: Option<Expectation>,
    },
}

impl WriteMode {
    /// The version a new version written in this mode restores, if any.
    pub const fn restored_from(self) -> Option<VersionNumber> {
        match self {
            WriteMode::Restore { from, .. } => Some(from),
            WriteMode::Upsert { .. } | WriteMode::Commit { .. } => None,
        }
    }
}

/// Locks another file for the author in the same unit of work (the checkout of `/copy`), and
/// records the checkout ticket on the new version's file (the workspace copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Checkout {
    pub file_id: FileId,
    /// The checked-out file's path, kept in the ticket.
    pub path: FilePath,
    /// The version that was copied; it becomes the lock's `base_version` and the ticket's
    /// version.
    pub base_version: VersionNumber,
    pub ttl: Duration,
    pub audit: AuditDraft,
}

/// Records a new version whose object is already in the blob store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    /// The reservation of `object_key`; it must be open and unexpired, and is completed.
    pub reservation: UploadId,
    /// The presigned upload this version completes (its object was sealed into `object_key`):
    /// it must be open and unexpired too, is completed as this version, and its object (the
    /// staging copy its URL can still write until the reservation expires) is queued for
    /// deletion not before the reservation's `expires_at`.
    pub completes: Option<UploadId>,
    pub path: FilePath,
    /// The id the file gets if the path holds no file yet.
    pub new_file_id: FileId,
    pub version_id: VersionId,
    pub object_key: ObjectKey,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub author: UserId,
    pub message: Option<String>,
    /// `Draft` for uploads and copies, `PendingValidation` for commits.
    pub status: VersionStatus,
    /// Replaces the file's tags when given.
    pub tags: Option<Tags>,
    pub mode: WriteMode,
    pub checkout: Option<Checkout>,
    /// Recorded with the file id and version number the store decided.
    pub audit: AuditDraft,
}

/// Takes or refreshes a lock.
#[derive(Debug, Clone, PartialEq)]
pub struct AcquireLock {
    pub file_id: FileId,
    pub holder: UserId,
    pub ttl: Duration,
    pub audit: AuditDraft,
}

/// Releases a lock.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseLock {
    pub file_id: FileId,
    pub actor: UserId,
    /// Release a lock held by someone else (the use case has checked the right to).
    pub force: bool,
    /// The store records it as `force_unlock` when it released another user's lock, and as
    /// `unlock` when the actor released their own, whatever the draft's action says.
    pub audit: AuditDraft,
}

/// Moves a version from one review status to another (submit, approve, reject).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewTransition {
    pub version_id: VersionId,
    /// The transition happens only if the version is in this status at the time of the write;
    /// otherwise [`RepoError::InvalidTransition`]. Of two concurrent transitions from the same
    /// status exactly one succeeds.
    pub from: VersionStatus,
    pub to: VersionStatus,
    /// Recorded as the reviewer (approve, reject); `None` for a submission.
    pub reviewer: Option<UserId>,
    pub comment: Option<String>,
    pub audit: AuditDraft,
}

/// Replaces a file's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct SetTags {
    pub file_id: FileId,
    pub actor: UserId,
    pub tags: Tags,
    pub audit: AuditDraft,
}

/// Archives a file, or brings it back.
#[derive(Debug, Clone, PartialEq)]
pub struct SetArchived {
    pub file_id: FileId,
    pub actor: UserId,
    pub archived: bool,
    pub audit: AuditDraft,
}

/// Deletes a file, its versions and its lock.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteFile {
    pub file_id: FileId,
    pub actor: UserId,
    pub audit: AuditDraft,
}

/// Moves a file, its versions and tags to the trash ([`MetadataStore::trash_file`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TrashFile {
    pub file_id: FileId,
    /// The entry's id.
    pub trash_id: TrashId,
    pub actor: UserId,
    pub audit: AuditDraft,
}

/// Brings a file back from the trash ([`MetadataStore::restore_trash`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreTrash {
    pub trash_id: TrashId,
    /// Where to restore (the same bucket and owner as the entry's path; the use case checked);
    /// `None`: the path the file had.
    pub target: Option<FilePath>,
    pub on_conflict: OnConflict,
    pub actor: UserId,
    /// The id of the occupant's trash entry, used when `on_conflict` is `replace`.
    pub replaced_trash_id: TrashId,
    /// The restore's event; the store records it on the path the file is restored to.
    pub audit: AuditDraft,
    /// The event of the occupant's trashing (`replace`); recorded on the target path.
    pub replace_audit: AuditDraft,
}

/// Deletes a trash entry, its file and versions, and queues their objects for deletion
/// ([`MetadataStore::purge_trash`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeTrash {
    pub trash_id: TrashId,
    /// The janitor's purge: only if the entry is due by this retention at the store's time
    /// ([`purge_due`](crate::rules::trash::purge_due)); `None`: now, whatever its age.
    pub due_after: Option<Duration>,
    pub audit: AuditDraft,
}

/// Keyset position in a trash listing (newest first): the last entry sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrashCursor {
    pub trashed_at: DateTime<Utc>,
    pub trash_id: TrashId,
}

/// Pins a version with a label, or unpins it (`label: None`).
#[derive(Debug, Clone, PartialEq)]
pub struct SetPin {
    pub version_id: VersionId,
    pub actor: UserId,
    pub label: Option<String>,
    /// Recorded with the file id and the version's number.
    pub audit: AuditDraft,
}

/// Prunes one file's versions under a retention rule (the janitor).
#[derive(Debug, Clone, PartialEq)]
pub struct PruneVersions {
    pub file_id: FileId,
    pub rule: RetentionRule,
    /// The ids of the `prune` audit events, one per pruned version: at most this many versions
    /// are pruned by one unit of work (the rest at the next one).
    pub audit_ids: Vec<AuditId>,
    /// The audit events' actor and request id.
    pub actor: UserId,
    pub request_id: String,
}

/// An entry of a directory listing.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEntry {
    /// A sub-directory (some file lies under it), by name without slashes.
    Directory {
        name: String,
    },
    File(Box<FileRecord>),
}

impl ListEntry {
    /// The entry's name, the key of the listing's order and cursor.
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Directory { name } => name,
            ListEntry::File(file) => file.path.name(),
        }
    }
}

/// A live lock and the file it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct LockedFile {
    pub file_id: FileId,
    pub path: FilePath,
    pub lock: Lock,
}

/// A version waiting for review (`pending_validation`) and its file.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReview {
    pub file: FileRecord,
    pub version: Version,
}

/// Keyset position in the review queue (oldest first): the last version sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewCursor {
    pub created_at: DateTime<Utc>,
    pub version_id: VersionId,
}

/// Which audit events to list.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditScope {
    File(FilePath),
    Directory(DirPath),
}

/// Keyset position in the audit trail (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    pub at: DateTime<Utc>,
    pub id: AuditId,
}

pub use crate::rules::file_status_following;
use crate::rules::retention::RetentionRule;

/// Files, versions, locks, reservations, audit trail and deletion queue.
///
/// Error contract, for every method:
/// - MUST return [`RepoError::Unavailable`] when the store cannot be reached, times out or has
///   no free connection within its wait timeout; never hang;
/// - MUST NOT leak a backend type or message into any other variant;
/// - the refusals each method documents are decided atomically by the store.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Checks the store answers.
    async fn health(&self) -> Result<(), RepoError>;

    // ---- reads -------------------------------------------------------------------------

    /// The file at `path`, with its live lock.
    async fn find_file(&self, path: &FilePath) -> Result<Option<FileRecord>, RepoError>;

    /// The file with this id, with its live lock.
    async fn find_file_by_id(&self, id: FileId) -> Result<Option<FileRecord>, RepoError>;

    /// A version and the file it belongs to.
    async fn find_version(&self, id: VersionId)
    -> Result<Option<(FileRecord, Version)>, RepoError>;

    /// The file at `path` with its live lock and, in the same read, the version `selector`
    /// picks: `None` when the path holds no file, `Some((file, None))` when the file has no
    /// such version (no validated version, or no version of that number).
    async fn find_file_version(
        &self,
        path: &FilePath,
        selector: VersionSelector,
    ) -> Result<Option<(FileRecord, Option<Version>)>, RepoError>;

    /// Versions of a file, newest first (by number, descending), numbered strictly below
    /// `before` when given, at most `limit`: one statement, a keyset on the version number, so
    /// a version committed between two pages sorts above every cursor and is never repeated.
    async fn list_versions(
        &self,
        file_id: FileId,
        before: Option<VersionNumber>,
        limit: u32,
    ) -> Result<Vec<Version>, RepoError>;

    /// The direct children of `dir` whose name sorts strictly after `after` (byte order of the
    /// UTF-8 names), sorted by name, at most `limit`. Sub-directories and files share one
    /// order; a sub-directory appears once, however many files lie under it. The cost is
    /// proportional to `limit`, not to the size of the bucket.
    async fn list_children(
        &self,
        dir: &DirPath,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<ListEntry>, RepoError>;

    /// Live locks on files under `dir` (at any depth) whose path sorts after `after`, by path,
    /// at most `limit`.
    async fn list_locks(
        &self,
        dir: &DirPath,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<LockedFile>, RepoError>;

    /// The versions `pending_validation` of files under `dir` (at any depth), oldest first by
    /// `(created_at, id)`, strictly after `after`, at most `limit`; each with its file (and
    /// the file's live lock).
    async fn list_pending_reviews(
        &self,
        dir: &DirPath,
        after: Option<ReviewCursor>,
        limit: u32,
    ) -> Result<Vec<PendingReview>, RepoError>;

    /// Audit events of a file or a directory's subtree, newest first, strictly before
    /// `before`, at most `limit`. Events outlive the files they mention.
    async fn list_audit(
        &self,
        scope: &AuditScope,
        before: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError>;

    /// A reservation, completed or not, unless it was abandoned or reclaimed.
    async fn find_reservation(&self, id: UploadId) -> Result<Option<UploadReservation>, RepoError>;

    // ---- units of work ---------------------------------------------------------------------

    /// Stores a new open reservation. With `max_open`, the reservation's author may hold at most
    /// that many open presigned uploads (not completed, unexpired by the store's clock), this
    /// one included: the count and the insert are one unit of work, serialised per user, so
    /// that concurrent reservations cannot pass the cap together.
    ///
    /// - [`RepoError::TooManyOpenUploads`] past the cap, as
    ///   [`check_open_uploads`](crate::rules::store::check_open_uploads) decides.
    async fn create_reservation(
        &self,
        reservation: &UploadReservation,
        max_open: Option<u32>,
    ) -> Result<(), RepoError>;

    /// Pushes back the expiry of an open reservation (a long proxy upload's heartbeat).
    ///
    /// - MUST return [`RepoError::UploadNotFound`] if it is no longer open.
    async fn extend_reservation(
        &self,
        id: UploadId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// Drops an open reservation and queues its object for deletion; returns the queued entry.
    /// Dropping an unknown or completed reservation is a no-op returning `None`. Meant for
    /// proxy uploads and copies, whose object only the service writes: a presigned
    /// reservation's URL can still write its object, so it is never abandoned, it expires.
    async fn abandon_reservation(&self, id: UploadId)
    -> Result<Option<PendingDeletion>, RepoError>;

    /// Records a new version (creating the file when needed), completes its reservation (and
    /// the upload it `completes`), applies the checkout if any, and writes the audit events, in
    /// one unit of work. Every decision is taken on the rows as committed once the unit of work
    /// holds the file's row lock, with the functions of [`crate::rules::store`]. When two files
    /// are row-locked, the workspace copy is locked first (a checkout's target, a commit's
    /// source).
    ///
    /// - [`RepoError::UploadNotFound`]: a reservation is not open or has expired;
    /// - [`RepoError::UploadAlreadyCompleted`]: the upload it completes (or its reservation)
    ///   was completed before, as that version (idempotency);
    /// - [`RepoError::FileLocked`], [`RepoError::VersionConflict`],
    ///   [`RepoError::InvalidTransition`]: as [`WriteMode`] documents; also
    ///   [`RepoError::InvalidTransition`] when the file is archived, and
    ///   [`RepoError::FileLocked`] when the checkout's file is locked by someone else;
    /// - [`RepoError::FileNotFound`]: a commit to a missing file or from a missing source, or
    ///   a checkout of a missing file.
    async fn commit_version(&self, cmd: NewVersion) -> Result<(FileRecord, Version), RepoError>;

    /// Takes the lock for `holder`, or refreshes it when `holder` already holds it, as
    /// [`decide_lock`](crate::rules::store::decide_lock) decides on the lock row as committed
    /// once the file's row is locked: the holder keeps `acquired_at` while her lock is live,
    /// and `base_version` even after it expired if nobody took it since; a new holder's
    /// `base_version` is the file's latest version. Expiry is computed from the store's clock;
    /// an expired lock is free.
    ///
    /// - [`RepoError::FileLocked`] with the other holder's lock;
    /// - [`RepoError::InvalidTransition`] when the file is archived;
    /// - [`RepoError::FileNotFound`].
    async fn acquire_lock(&self, cmd: AcquireLock) -> Result<Lock, RepoError>;

    /// Releases the live lock, as [`decide_unlock`](crate::rules::store::decide_unlock)
    /// decides. Returns the released lock, or `None` when there was no live lock: then nothing
    /// is deleted (an expired lock stays with its holder, whoever asks, forced or not) and no
    /// audit event is written.
    ///
    /// - [`RepoError::FileLocked`] when another user holds it and `force` is false;
    /// - [`RepoError::FileNotFound`].
    async fn release_lock(&self, cmd: ReleaseLock) -> Result<Option<Lock>, RepoError>;

    /// Applies a review transition; on `Validated` raises the file's `validated_version`; when
    /// the version is the latest and the file is not archived, the file's status follows
    /// ([`file_status_following`]). Returns the file and version after the change.
    ///
    /// - [`RepoError::InvalidTransition`] when the version is not in `from` at the time of the
    ///   write (of two concurrent decisions exactly one wins);
    /// - [`RepoError::VersionNotFound`].
    async fn review_version(
        &self,
        cmd: ReviewTransition,
    ) -> Result<(FileRecord, Version), RepoError>;

    /// Replaces the tags.
    ///
    /// - [`RepoError::FileLocked`] when another user holds a live lock;
    /// - [`RepoError::InvalidTransition`] when the file is archived;
    /// - [`RepoError::FileNotFound`].
    async fn set_tags(&self, cmd: SetTags) -> Result<FileRecord, RepoError>;

    /// Archives the file (status `archived`) or restores the status that follows its latest
    /// version.
    ///
    /// - [`RepoError::InvalidTransition`] when it already is in the asked state;
    /// - [`RepoError::FileLocked`] when another user holds a live lock;
    /// - [`RepoError::FileNotFound`].
    async fn set_archived(&self, cmd: SetArchived) -> Result<FileRecord, RepoError>;

    /// Deletes the file's rows and queues every object of its versions for deletion; returns
    /// the queued entries. The audit trail stays.
    ///
    /// - [`RepoError::FileLocked`] when another user holds a live lock;
    /// - [`RepoError::FileNotFound`].
    async fn delete_file(&self, cmd: DeleteFile) -> Result<Vec<PendingDeletion>, RepoError>;

    /// Sets or clears the version's pin label (`label: None` unpins; pinning a pinned version
    /// replaces its label), as [`check_set_pin`](crate::rules::retention::check_set_pin)
    /// decides under the file's row lock; audited. Returns the file and the version after the
    /// change.
    ///
    /// - [`RepoError::FileLocked`] when another user holds a live lock;
    /// - [`RepoError::InvalidTransition`] when the file is archived;
    /// - [`RepoError::VersionNotFound`].
    async fn set_pin(&self, cmd: SetPin) -> Result<(FileRecord, Version), RepoError>;

    /// Records a refusal (an event with the outcome `denied`) at its own time: when the store
    /// holds an event of the same actor, action and path in the same fixed window
    /// ([`refusal_window`](crate::rules::store::refusal_window) of `window`), that event's
    /// `repeat_count` is raised and its `last_repeat_at` set; otherwise the event is appended.
    /// One statement (an upsert on a unique index), so identical refusals never wait on one
    /// another beyond it, and a burst of them adds one row per window (two when it straddles a
    /// boundary). The store seals the event (its chain setting's
    /// [`AuditChain::seal`](crate::rules::chain::AuditChain::seal)).
    async fn record_refusal(&self, event: &AuditEvent, window: Duration) -> Result<(), RepoError>;

    // ---- trash -----------------------------------------------------------------------------

    /// Moves the file, every version and its tags out of the namespace into a trash entry
    /// (its lock is dropped), as [`check_can_trash`](crate::rules::trash::check_can_trash)
    /// decides under the file's row lock; its path is free at once. Returns the entry.
    ///
    /// - [`RepoError::FileLocked`] when another user holds a live lock;
    /// - [`RepoError::FileNotFound`].
    async fn trash_file(&self, cmd: TrashFile) -> Result<TrashEntry, RepoError>;

    /// Trash entries whose original path lies under `dir` (at any depth), newest first by
    /// `(trashed_at, trash_id)`, strictly after `after`, at most `limit`.
    async fn list_trash(
        &self,
        dir: &DirPath,
        after: Option<TrashCursor>,
        limit: u32,
    ) -> Result<Vec<TrashEntry>, RepoError>;

    /// A trash entry.
    async fn find_trash(&self, id: TrashId) -> Result<Option<TrashEntry>, RepoError>;

    /// The trash entries due for purging by `retention` at the store's time, oldest first,
    /// at most `limit` (the janitor then purges each with [`PurgeTrash::due_after`]).
    async fn due_trash(
        &self,
        retention: Duration,
        limit: u32,
    ) -> Result<Vec<TrashEntry>, RepoError>;

    /// Moves the entry's file and versions back into the namespace at the target path (or the
    /// one it had), as [`decide_restore_target`](crate::rules::trash::decide_restore_target)
    /// decides on the target under its row lock: a free path is taken; `rename` tries
    /// [`restored_name`](crate::rules::trash::restored_name)s until one is free; `replace`
    /// trashes the occupant first (refused like [`MetadataStore::trash_file`]). Returns the
    /// restored file.
    ///
    /// - [`RepoError::FileNotFound`] when the entry does not exist (purged, restored);
    /// - [`RepoError::VersionConflict`] when the path holds a file and `on_conflict` is `fail`;
    /// - [`RepoError::FileLocked`] when `replace` meets an occupant another user has locked.
    async fn restore_trash(&self, cmd: RestoreTrash) -> Result<FileRecord, RepoError>;

    /// Deletes the entry with its file and versions, queues every object for deletion and
    /// records the audit event (on the entry's path); returns the queued objects. With
    /// `due_after`, only an entry due at the store's time: of several janitors, one purges it.
    ///
    /// - [`RepoError::FileNotFound`] when the entry does not exist, or is not due.
    async fn purge_trash(&self, cmd: PurgeTrash) -> Result<Vec<PendingDeletion>, RepoError>;

    // ---- janitor ---------------------------------------------------------------------------

    /// Moves open reservations that expired before now into the deletion queue, and forgets
    /// completed ones older than `keep_completed`. At most `limit` of each. Safe to run on
    /// several instances at once. Returns how many were queued.
    async fn expire_reservations(
        &self,
        keep_completed: Duration,
        limit: u32,
    ) -> Result<u64, RepoError>;

    /// Ids of files of `bucket` that `rule` may prune versions of (more versions than
    /// [`RetentionRule::prunable_above`]), by id, strictly after `after`, at most `limit`. A
    /// coarse filter: [`prune_versions`](MetadataStore::prune_versions) decides.
    async fn retention_candidates(
        &self,
        bucket: BucketKind,
        rule: RetentionRule,
        after: Option<FileId>,
        limit: u32,
    ) -> Result<Vec<FileId>, RepoError>;

    /// Removes the versions of one file that `rule` prunes, as
    /// [`versions_to_prune`](crate::rules::retention::versions_to_prune) decides on the file's
    /// versions and the checkout tickets naming it, read under the file's row lock at the unit
    /// of work's time (at most `audit_ids.len()` of them, the oldest first); queues their
    /// objects for deletion and audits each as `prune`. Returns the numbers pruned, ascending
    /// (none for a missing file). Safe on several instances at once: a version is removed, and
    /// its object queued, by one unit of work only.
    async fn prune_versions(&self, cmd: PruneVersions) -> Result<Vec<VersionNumber>, RepoError>;

    /// Claims up to `limit` queued deletions that are due (queued without a `not_before`, or
    /// whose `not_before` has passed) and that no other janitor holds, for `lease`; each claim
    /// counts an attempt.
    async fn claim_deletions(
        &self,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingDeletion>, RepoError>;

    /// Removes a deletion from the queue once its object is gone.
    async fn forget_deletion(&self, id: DeletionId) -> Result<(), RepoError>;

    /// Queues objects for deletion (an object written for a version that could not be
    /// recorded), due at once, or not before `not_before` (a store may still finish a write it
    /// was asked for after the service gave up on it). A deferred entry is not claimed before.
    async fn queue_deletions(
        &self,
        objects: &[(BucketKind, ObjectKey)],
        not_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<PendingDeletion>, RepoError>;

    // ---- the audit chain and the outbox (issue 17) -------------------------------------------

    /// Chained audit events (those with a `seq`), of `bucket` when given, in `(file_id, seq)`
    /// order, strictly after `after`, at most `limit`: the walk of `audit verify`.
    async fn audit_chain(
        &self,
        bucket: Option<BucketKind>,
        after: Option<(FileId, u64)>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError>;

    /// Audit events outside every chain (refusals, events recorded before the chain), of
    /// `bucket` when given, by id, strictly after `after`, at most `limit`.
    async fn audit_unchained(
        &self,
        bucket: Option<BucketKind>,
        after: Option<AuditId>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, RepoError>;

    /// Claims up to `limit` pending events for `lease`, as runs: for each file whose first
    /// pending event (in its chain) is due by the store's clock and not leased, that event and
    /// the file's following pending events in chain order (up to the first one leased
    /// elsewhere). The runs share `limit` in turns (every run's first event, then every run's
    /// second, …), the files whose first event has waited longest first. Each claimed event
    /// counts an attempt. Safe on several instances at once: while any event of a file is
    /// claimed, no other claim returns an event of that file (so a file's events go out in
    /// order, from one dispatcher at a time).
    async fn claim_events(
        &self,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, RepoError>;

    /// Records the outcomes of a dispatch pass (delivered, retried, dead, or released
    /// unattempted) in one unit of work, and ends their claims' lease. A delivered event leaves
    /// the outbox (no state of it is kept: `list_events` no longer shows it).
    async fn settle_events(&self, outcomes: Vec<(AuditId, Settlement)>) -> Result<(), RepoError>;

    /// Records the outcome of one delivery attempt ([`settle_events`](Self::settle_events)).
    async fn settle_event(&self, id: AuditId, settlement: Settlement) -> Result<(), RepoError> {
        self.settle_events(vec![(id, settlement)]).await
    }

    /// Queued events in `state`, oldest first, at most `limit` (dead letters for `events list`).
    async fn list_events(
        &self,
        state: DeliveryState,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, RepoError>;

    /// Puts dead events back in the queue (those ids, or every dead event for `None`): pending,
    /// due at once, attempts reset. Returns how many.
    async fn retry_events(&self, ids: Option<Vec<AuditId>>) -> Result<u64, RepoError>;
}
