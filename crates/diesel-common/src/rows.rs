//! Rows as both backends return them (the schemas share table and column names), and their
//! conversion to the domain's values.
//!
//! A conversion fails with `Internal` ("corrupt stored ...") when a row breaks a rule the domain
//! types guarantee; the schema's CHECK constraints make that a bug, not a user error.

use chrono::{DateTime, Utc};
use diesel::{Queryable, QueryableByName};
use storage_domain::model::{
    AuditAction, AuditEvent, AuditId, AuditOutcome, BucketKind, CheckoutTicket, DeletionId,
    EventType, FileId, FilePath, FileRecord, FileStatus, Lock, ObjectKey, PendingDeletion, Tags,
    UploadId, UploadKind, UploadReservation, UserId, Version, VersionId, VersionNumber,
    VersionSelector, VersionStatus,
};
use storage_domain::ports::{DeliveryState, LockedFile, OutboxEvent, RepoError};
use storage_domain::rules::chain::ChainHead;

use crate::error::corrupt;
use crate::schema::{locks, pending_deletions};
use crate::sql_types::{DbAt, DbDoc, DbId};

/// The columns of a [`LockRow`].
pub const LOCK_COLUMNS: (
    locks::holder,
    locks::acquired_at,
    locks::expires_at,
    locks::base_version,
) = (
    locks::holder,
    locks::acquired_at,
    locks::expires_at,
    locks::base_version,
);

/// The columns of a [`DeletionRow`].
pub const DELETION_COLUMNS: (
    pending_deletions::id,
    pending_deletions::bucket,
    pending_deletions::object_key,
    pending_deletions::attempts,
) = (
    pending_deletions::id,
    pending_deletions::bucket,
    pending_deletions::object_key,
    pending_deletions::attempts,
);

pub fn bucket(raw: &str) -> Result<BucketKind, RepoError> {
    BucketKind::parse(raw).map_err(|_| corrupt("bucket"))
}

pub fn file_path(bucket_raw: &str, path: &str) -> Result<FilePath, RepoError> {
    FilePath::parse(bucket(bucket_raw)?, path).map_err(|_| corrupt("path"))
}

/// A path stored without its bucket column: its first segment names the bucket.
pub fn path_in_its_bucket(path: &str) -> Result<FilePath, RepoError> {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    file_path(first, path)
}

pub fn user(raw: String) -> Result<UserId, RepoError> {
    UserId::new(raw).map_err(|_| corrupt("user id"))
}

pub fn number(raw: i32) -> Result<VersionNumber, RepoError> {
    u32::try_from(raw)
        .ok()
        .and_then(|n| VersionNumber::new(n).ok())
        .ok_or_else(|| corrupt("version number"))
}

/// A version number as an SQL `integer`.
pub fn sql_number(n: VersionNumber) -> Result<i32, RepoError> {
    i32::try_from(n.get()).map_err(|_| RepoError::Internal("version number out of range".into()))
}

/// A size as an SQL `bigint`.
pub fn sql_size(n: u64) -> Result<i64, RepoError> {
    i64::try_from(n).map_err(|_| RepoError::Internal("size out of range".into()))
}

pub fn size(raw: i64) -> Result<u64, RepoError> {
    u64::try_from(raw).map_err(|_| corrupt("size"))
}

/// Seconds of a `Duration`, for `make_interval(secs => ...)`.
pub fn seconds(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

/// A page size as a SQL `LIMIT`.
pub fn sql_limit(limit: u32) -> i64 {
    i64::from(limit)
}

/// The highest version number a page of versions below `before` may hold (`before - 1`, or
/// every number for the first page).
pub fn versions_upto(before: Option<VersionNumber>) -> Result<i32, RepoError> {
    match before {
        None => Ok(i32::MAX),
        Some(n) => Ok(sql_number(n)? - 1),
    }
}

/// The tags as the JSON object the `tags` column holds.
pub fn tags_json(tags: &Tags) -> serde_json::Value {
    serde_json::Value::Object(tags.clone())
}

/// A lock row ([`LOCK_COLUMNS`]).
#[derive(Debug, Queryable)]
pub struct LockRow {
    pub holder: String,
    pub acquired_at: DbAt,
    pub expires_at: DbAt,
    pub base_version: i32,
}

impl LockRow {
    pub fn into_lock(self) -> Result<Lock, RepoError> {
        Ok(Lock {
            holder: user(self.holder)?,
            acquired_at: self.acquired_at.0,
            expires_at: self.expires_at.0,
            base_version: number(self.base_version)?,
        })
    }
}

/// A `files` row (`files::all_columns`).
#[derive(Debug, Queryable)]
pub struct FileRow {
    pub id: DbId,
    pub bucket: String,
    pub path: String,
    pub created_by: String,
    pub version: i32,
    pub validated_version: Option<i32>,
    pub status: String,
    pub tags: DbDoc,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub created_at: DbAt,
    pub updated_at: DbAt,
    pub checkout_file_id: Option<DbId>,
    pub checkout_path: Option<String>,
    pub checkout_version: Option<i32>,
}

/// A file with its lock row as stored, and the store's time when it was read: what
/// [`file_with_lock`] selects.
pub type FileLockRow = (FileRow, Option<LockRow>, DbAt);

impl FileRow {
    /// The file with `lock` (the caller decided it is live).
    pub fn into_record(self, lock: Option<Lock>) -> Result<FileRecord, RepoError> {
        let tags: Tags = match self.tags.0 {
            serde_json::Value::Object(map) => map,
            _ => return Err(corrupt("tags")),
        };
        let checkout = match (
            self.checkout_file_id,
            self.checkout_path,
            self.checkout_version,
        ) {
            (Some(file_id), Some(path), Some(version)) => Some(CheckoutTicket {
                file_id: FileId::from_uuid(file_id.0),
                path: path_in_its_bucket(&path)?,
                version: number(version)?,
            }),
            (None, None, None) => None,
            _ => return Err(corrupt("checkout ticket")),
        };
        Ok(FileRecord {
            id: FileId::from_uuid(self.id.0),
            path: file_path(&self.bucket, &self.path)?,
            created_by: user(self.created_by)?,
            version: number(self.version)?,
            validated_version: self.validated_version.map(number).transpose()?,
            status: FileStatus::from_stored(&self.status).ok_or_else(|| corrupt("file status"))?,
            lock,
            tags,
            checkout,
            size: size(self.size)?,
            content_type: self.content_type,
            sha256: self.sha256,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

/// What a unit of work decides on, read once it holds the file's row lock: the file with its
/// lock as live at the store's time `now`, and the lock row as stored (live or expired: the
/// holder of an expired lock keeps its `base_version` when she takes it again).
#[derive(Debug, Clone)]
pub struct FileState {
    pub file: FileRecord,
    pub stored_lock: Option<Lock>,
    pub now: DateTime<Utc>,
    /// The head of the file's audit chain, read under the row lock (set by `lock_file`).
    pub head: ChainHead,
}

/// A chain head as [`crate::queries::chain_head`] reads it (none: an empty chain).
///
/// # Errors
/// `Internal` for a head without a hash or with a negative `seq`.
pub fn chain_head(row: Option<(Option<i64>, Option<String>)>) -> Result<ChainHead, RepoError> {
    match row {
        None => Ok(ChainHead::default()),
        Some((Some(seq), Some(hash))) => Ok(ChainHead {
            seq: u64::try_from(seq).map_err(|_| corrupt("audit seq"))?,
            hash,
        }),
        Some(_) => Err(corrupt("audit chain head")),
    }
}

/// The state of a file read as [`FileLockRow`].
pub fn file_state((file, lock, now): FileLockRow) -> Result<FileState, RepoError> {
    let stored_lock = lock.map(LockRow::into_lock).transpose()?;
    let now = now.0;
    let live = stored_lock.clone().filter(|l| l.is_live_at(now));
    Ok(FileState {
        file: file.into_record(live)?,
        stored_lock,
        now,
        head: ChainHead::default(),
    })
}

/// The file of a [`FileLockRow`] with its live lock (a read).
pub fn file_record(row: FileLockRow) -> Result<FileRecord, RepoError> {
    file_state(row).map(|s| s.file)
}

/// A file with the version a selector picked ([`crate::queries::file_with_version`]).
pub type FileVersionRow = (FileLockRow, Option<VersionRow>);

/// The file of a [`FileVersionRow`] with its live lock, and the picked version if any.
pub fn file_with_version(
    (file, version): FileVersionRow,
) -> Result<(FileRecord, Option<Version>), RepoError> {
    Ok((
        file_record(file)?,
        version.map(VersionRow::into_version).transpose()?,
    ))
}

/// The binds of [`crate::queries::file_with_version`] for a selector: the number asked for,
/// and whether the validated version is.
pub fn selector_binds(selector: VersionSelector) -> Result<(Option<i32>, bool), RepoError> {
    Ok(match selector {
        VersionSelector::Latest => (None, false),
        VersionSelector::Validated => (None, true),
        VersionSelector::Number(n) => (Some(sql_number(n)?), false),
    })
}

/// The refusal of a review whose conditional update found its version in another status than
/// `from`: the status it is in (`stored`, read under the same row lock) decided by the domain's
/// rule ([`storage_domain::rules::store::decide_review`]).
pub fn review_refusal(stored: &str, from: VersionStatus, to: VersionStatus) -> RepoError {
    match VersionStatus::from_stored(stored) {
        None => corrupt("version status"),
        Some(current) => match storage_domain::rules::store::decide_review(current, from, to) {
            Err(refusal) => refusal,
            Ok(()) => RepoError::Internal("a review matched no version in its status".into()),
        },
    }
}

/// A `versions` row (`versions::all_columns`).
#[derive(Debug, Queryable)]
pub struct VersionRow {
    pub id: DbId,
    pub file_id: DbId,
    pub number: i32,
    pub size: i64,
    pub sha256: String,
    pub content_type: String,
    pub author: String,
    pub message: Option<String>,
    pub status: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DbAt>,
    pub review_comment: Option<String>,
    pub created_at: DbAt,
    pub object_key: String,
    pub restored_from: Option<i32>,
    pub pinned: Option<String>,
}

impl VersionRow {
    pub fn into_version(self) -> Result<Version, RepoError> {
        Ok(Version {
            id: VersionId::from_uuid(self.id.0),
            file_id: FileId::from_uuid(self.file_id.0),
            number: number(self.number)?,
            size: size(self.size)?,
            sha256: self.sha256,
            content_type: self.content_type,
            author: user(self.author)?,
            message: self.message,
            status: VersionStatus::from_stored(&self.status)
                .ok_or_else(|| corrupt("version status"))?,
            reviewed_by: self.reviewed_by.map(user).transpose()?,
            reviewed_at: self.reviewed_at.map(|t| t.0),
            review_comment: self.review_comment,
            created_at: self.created_at.0,
            object_key: ObjectKey::from_stored(self.object_key),
            restored_from: self.restored_from.map(number).transpose()?,
            pinned: self.pinned,
        })
    }
}

/// A `locks` row with its file's id and path (`locks::all_columns`).
#[derive(Debug, Queryable)]
pub struct LockedFileRow {
    pub file_id: DbId,
    pub bucket: String,
    pub path: String,
    pub holder: String,
    pub acquired_at: DbAt,
    pub expires_at: DbAt,
    pub base_version: i32,
}

impl LockedFileRow {
    pub fn into_locked_file(self) -> Result<LockedFile, RepoError> {
        Ok(LockedFile {
            file_id: FileId::from_uuid(self.file_id.0),
            path: file_path(&self.bucket, &self.path)?,
            lock: LockRow {
                holder: self.holder,
                acquired_at: self.acquired_at,
                expires_at: self.expires_at,
                base_version: self.base_version,
            }
            .into_lock()?,
        })
    }
}

/// An `upload_reservations` row (`upload_reservations::all_columns`).
#[derive(Debug, Queryable)]
pub struct ReservationRow {
    pub id: DbId,
    pub kind: String,
    pub bucket: String,
    pub path: String,
    pub created_by: String,
    pub version_id: DbId,
    pub object_key: String,
    pub content_type: String,
    pub expected_size: Option<i64>,
    pub expected_sha256: Option<String>,
    pub max_bytes: i64,
    pub expires_at: DbAt,
    pub created_at: DbAt,
    pub completed_version: Option<DbId>,
    pub completed_at: Option<DbAt>,
}

impl ReservationRow {
    pub fn into_reservation(self) -> Result<UploadReservation, RepoError> {
        Ok(UploadReservation {
            id: UploadId::from_uuid(self.id.0),
            kind: UploadKind::from_stored(&self.kind).ok_or_else(|| corrupt("upload kind"))?,
            path: file_path(&self.bucket, &self.path)?,
            created_by: user(self.created_by)?,
            version_id: VersionId::from_uuid(self.version_id.0),
            object_key: ObjectKey::from_stored(self.object_key),
            content_type: self.content_type,
            expected_size: self.expected_size.map(size).transpose()?,
            expected_sha256: self.expected_sha256,
            max_bytes: size(self.max_bytes)?,
            expires_at: self.expires_at.0,
            created_at: self.created_at.0,
            completed_version: self.completed_version.map(|v| VersionId::from_uuid(v.0)),
        })
    }
}

/// An `audit_events` row (`audit_events::all_columns`).
#[derive(Debug, Queryable)]
pub struct AuditRow {
    pub id: DbId,
    pub actor: String,
    pub action: String,
    pub bucket: String,
    pub path: String,
    pub file_id: Option<DbId>,
    pub version: Option<i32>,
    pub outcome: String,
    pub request_id: String,
    pub detail: Option<String>,
    pub at: DbAt,
    pub repeat_count: i32,
    pub last_repeat_at: Option<DbAt>,
    /// The refusal's counting window (`rules::store::refusal_window`); not part of the event.
    pub refusal_window: Option<i64>,
    pub event_type: Option<String>,
    pub data: Option<String>,
    pub seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl AuditRow {
    pub fn into_event(self) -> Result<AuditEvent, RepoError> {
        Ok(AuditEvent {
            id: AuditId::from_uuid(self.id.0),
            actor: user(self.actor)?,
            action: AuditAction::from_stored(&self.action)
                .ok_or_else(|| corrupt("audit action"))?,
            bucket: bucket(&self.bucket)?,
            path: file_path(&self.bucket, &self.path)?,
            file_id: self.file_id.map(|f| FileId::from_uuid(f.0)),
            version: self.version.map(number).transpose()?,
            outcome: AuditOutcome::from_stored(&self.outcome)
                .ok_or_else(|| corrupt("audit outcome"))?,
            request_id: self.request_id,
            detail: self.detail,
            at: self.at.0,
            repeat_count: u32::try_from(self.repeat_count)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| corrupt("audit repeat count"))?,
            last_repeat_at: self.last_repeat_at.map(|t| t.0),
            event_type: self
                .event_type
                .as_deref()
                .map(|t| EventType::from_stored(t).ok_or_else(|| corrupt("event type")))
                .transpose()?,
            data: self.data,
            seq: self
                .seq
                .map(|s| u64::try_from(s).map_err(|_| corrupt("audit seq")))
                .transpose()?,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

/// An `event_outbox` row (`event_outbox::all_columns`): a queued event's delivery state.
#[derive(Debug, Queryable)]
pub struct OutboxRow {
    pub event_id: DbId,
    /// The event's file and chain position (copied for the claim's order).
    pub file_id: Option<DbId>,
    pub seq: Option<i64>,
    /// `pending` or `dead`.
    pub delivery: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DbAt>,
    pub leased_until: Option<DbAt>,
    pub last_error: Option<String>,
    /// The sinks that acknowledged the event (a JSON array of names).
    pub acked_sinks: Option<String>,
}

impl OutboxRow {
    /// The event with its delivery state (the outbox's view of it).
    pub fn into_outbox(self, event: AuditRow) -> Result<OutboxEvent, RepoError> {
        let state = match self.delivery.as_str() {
            "pending" => DeliveryState::Pending,
            "dead" => DeliveryState::Dead,
            _ => return Err(corrupt("delivery state")),
        };
        if event.id != self.event_id {
            return Err(corrupt("outbox row of another event"));
        }
        let acked: Vec<String> = match self.acked_sinks.as_deref() {
            None => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|_| corrupt("acked sinks"))?,
        };
        Ok(OutboxEvent {
            acked,
            event: event.into_event()?,
            state,
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("attempts"))?,
            next_attempt_at: self.next_attempt_at.map(|t| t.0),
            last_error: self.last_error,
        })
    }
}

/// A queued deletion ([`DELETION_COLUMNS`]); also read by name from the raw statements that
/// return it.
#[derive(Debug, Queryable, QueryableByName)]
#[diesel(table_name = pending_deletions)]
pub struct DeletionRow {
    pub id: DbId,
    pub bucket: String,
    pub object_key: String,
    pub attempts: i32,
}

impl DeletionRow {
    pub fn into_deletion(self) -> Result<PendingDeletion, RepoError> {
        Ok(PendingDeletion {
            id: DeletionId::from_uuid(self.id.0),
            bucket: bucket(&self.bucket)?,
            object_key: ObjectKey::from_stored(self.object_key),
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("attempts"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn number_rejects_zero() {
        assert!(super::number(0).is_err());
        assert_eq!(super::number(3).unwrap().get(), 3);
    }

    #[test]
    fn a_path_stored_alone_names_its_bucket() {
        let p = super::path_in_its_bucket("/projects/p1/a.txt").unwrap();
        assert_eq!(p.bucket(), storage_domain::model::BucketKind::Projects);
        assert!(super::path_in_its_bucket("/nowhere/p1/a.txt").is_err());
        assert!(super::path_in_its_bucket("").is_err());
    }
}
