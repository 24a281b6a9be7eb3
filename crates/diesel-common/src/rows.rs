//! Rows as both backends return them (the schemas share table and column names), and their
//! conversion to the domain's values.
//!
//! A conversion fails with `Internal` ("corrupt stored ...") when a row breaks a rule the domain
//! types guarantee; the schema's CHECK constraints make that a bug, not a user error.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use storage_domain::model::{
    AuditAction, AuditEvent, AuditId, AuditOutcome, BucketKind, CheckoutTicket, DeletionId, FileId,
    FilePath, FileRecord, FileStatus, Lock, ObjectKey, PendingDeletion, Tags, UploadId, UploadKind,
    UploadReservation, UserId, Version, VersionId, VersionNumber, VersionStatus,
};
use storage_domain::ports::{LockedFile, RepoError};
use uuid::Uuid;

use crate::error::corrupt;
use crate::sql_types::{DbJson, DbTime, DbUuid};

/// The columns of a [`FileRow`]: `files f` left-joined with its lock `l` (reads join the live
/// lock only; units of work join the lock row as stored, see [`FileState`]).
pub const FILE_COLUMNS: &str = "f.id, f.bucket, f.path, f.created_by, f.version, \
     f.validated_version, f.status, f.tags, f.size, f.content_type, f.sha256, f.created_at, \
     f.updated_at, f.checkout_file_id, f.checkout_path, f.checkout_version, \
     l.holder AS lock_holder, l.acquired_at AS lock_acquired_at, \
     l.expires_at AS lock_expires_at, l.base_version AS lock_base_version";

/// The `FROM` of a [`FileRow`] read for a unit of work: the lock row as stored, live or
/// expired ([`FileRow::into_state`] tells which).
pub const STORED_FILE_FROM: &str = "files f LEFT JOIN locks l ON l.file_id = f.id";

/// The columns of a [`VersionRow`] (table alias `v`).
pub const VERSION_COLUMNS: &str = "v.id, v.file_id, v.number, v.size, v.sha256, \
     v.content_type, v.author, v.message, v.status, v.reviewed_by, v.reviewed_at, \
     v.review_comment, v.created_at, v.object_key";

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

/// The tags as the JSON object the `tags` column holds.
pub fn tags_json(tags: &Tags) -> serde_json::Value {
    serde_json::Value::Object(tags.clone())
}

/// A live lock read on its own.
#[derive(Debug, QueryableByName)]
pub struct LockRow {
    #[diesel(sql_type = Text)]
    pub holder: String,
    #[diesel(sql_type = DbTime)]
    pub acquired_at: DateTime<Utc>,
    #[diesel(sql_type = DbTime)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub base_version: i32,
}

impl LockRow {
    pub fn into_lock(self) -> Result<Lock, RepoError> {
        Ok(Lock {
            holder: user(self.holder)?,
            acquired_at: self.acquired_at,
            expires_at: self.expires_at,
            base_version: number(self.base_version)?,
        })
    }
}

#[derive(Debug, QueryableByName)]
pub struct FileRow {
    #[diesel(sql_type = DbUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub created_by: String,
    #[diesel(sql_type = Integer)]
    pub version: i32,
    #[diesel(sql_type = Nullable<Integer>)]
    pub validated_version: Option<i32>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = DbJson)]
    pub tags: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub size: i64,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Text)]
    pub sha256: String,
    #[diesel(sql_type = DbTime)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = DbTime)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<DbUuid>)]
    pub checkout_file_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub checkout_path: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub checkout_version: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub lock_holder: Option<String>,
    #[diesel(sql_type = Nullable<DbTime>)]
    pub lock_acquired_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<DbTime>)]
    pub lock_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub lock_base_version: Option<i32>,
}

impl FileRow {
    pub fn into_record(self) -> Result<FileRecord, RepoError> {
        let lock = match (
            self.lock_holder,
            self.lock_acquired_at,
            self.lock_expires_at,
            self.lock_base_version,
        ) {
            (Some(holder), Some(acquired_at), Some(expires_at), Some(base_version)) => Some(
                LockRow {
                    holder,
                    acquired_at,
                    expires_at,
                    base_version,
                }
                .into_lock()?,
            ),
            _ => None,
        };
        let tags: Tags = match self.tags {
            serde_json::Value::Object(map) => map,
            _ => return Err(corrupt("tags")),
        };
        let checkout = match (
            self.checkout_file_id,
            self.checkout_path,
            self.checkout_version,
        ) {
            (Some(file_id), Some(path), Some(version)) => Some(CheckoutTicket {
                file_id: FileId::from_uuid(file_id),
                path: path_in_its_bucket(&path)?,
                version: number(version)?,
            }),
            (None, None, None) => None,
            _ => return Err(corrupt("checkout ticket")),
        };
        Ok(FileRecord {
            id: FileId::from_uuid(self.id),
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
            created_at: self.created_at,
            updated_at: self.updated_at,
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
}

impl FileRow {
    /// The state of a file read with [`STORED_FILE_FROM`] at the store's time `now`.
    pub fn into_state(self, now: DateTime<Utc>) -> Result<FileState, RepoError> {
        let mut file = self.into_record()?;
        let stored_lock = file.lock.take();
        file.lock = stored_lock.clone().filter(|l| l.is_live_at(now));
        Ok(FileState {
            file,
            stored_lock,
            now,
        })
    }
}

#[derive(Debug, QueryableByName)]
pub struct VersionRow {
    #[diesel(sql_type = DbUuid)]
    pub id: Uuid,
    #[diesel(sql_type = DbUuid)]
    pub file_id: Uuid,
    #[diesel(sql_type = Integer)]
    pub number: i32,
    #[diesel(sql_type = BigInt)]
    pub size: i64,
    #[diesel(sql_type = Text)]
    pub sha256: String,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Text)]
    pub author: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub message: Option<String>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub reviewed_by: Option<String>,
    #[diesel(sql_type = Nullable<DbTime>)]
    pub reviewed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub review_comment: Option<String>,
    #[diesel(sql_type = DbTime)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub object_key: String,
}

impl VersionRow {
    pub fn into_version(self) -> Result<Version, RepoError> {
        Ok(Version {
            id: VersionId::from_uuid(self.id),
            file_id: FileId::from_uuid(self.file_id),
            number: number(self.number)?,
            size: size(self.size)?,
            sha256: self.sha256,
            content_type: self.content_type,
            author: user(self.author)?,
            message: self.message,
            status: VersionStatus::from_stored(&self.status)
                .ok_or_else(|| corrupt("version status"))?,
            reviewed_by: self.reviewed_by.map(user).transpose()?,
            reviewed_at: self.reviewed_at,
            review_comment: self.review_comment,
            created_at: self.created_at,
            object_key: ObjectKey::from_stored(self.object_key),
        })
    }
}

#[derive(Debug, QueryableByName)]
pub struct LockedFileRow {
    #[diesel(sql_type = DbUuid)]
    pub file_id: Uuid,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub holder: String,
    #[diesel(sql_type = DbTime)]
    pub acquired_at: DateTime<Utc>,
    #[diesel(sql_type = DbTime)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub base_version: i32,
}

impl LockedFileRow {
    pub fn into_locked_file(self) -> Result<LockedFile, RepoError> {
        Ok(LockedFile {
            file_id: FileId::from_uuid(self.file_id),
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

/// The columns of a [`ReservationRow`].
pub const RESERVATION_COLUMNS: &str = "id, kind, bucket, path, created_by, version_id, \
     object_key, content_type, expected_size, expected_sha256, max_bytes, expires_at, \
     created_at, completed_version";

#[derive(Debug, QueryableByName)]
pub struct ReservationRow {
    #[diesel(sql_type = DbUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub created_by: String,
    #[diesel(sql_type = DbUuid)]
    pub version_id: Uuid,
    #[diesel(sql_type = Text)]
    pub object_key: String,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub expected_size: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub expected_sha256: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub max_bytes: i64,
    #[diesel(sql_type = DbTime)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = DbTime)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<DbUuid>)]
    pub completed_version: Option<Uuid>,
}

impl ReservationRow {
    pub fn into_reservation(self) -> Result<UploadReservation, RepoError> {
        Ok(UploadReservation {
            id: UploadId::from_uuid(self.id),
            kind: UploadKind::from_stored(&self.kind).ok_or_else(|| corrupt("upload kind"))?,
            path: file_path(&self.bucket, &self.path)?,
            created_by: user(self.created_by)?,
            version_id: VersionId::from_uuid(self.version_id),
            object_key: ObjectKey::from_stored(self.object_key),
            content_type: self.content_type,
            expected_size: self.expected_size.map(size).transpose()?,
            expected_sha256: self.expected_sha256,
            max_bytes: size(self.max_bytes)?,
            expires_at: self.expires_at,
            created_at: self.created_at,
            completed_version: self.completed_version.map(VersionId::from_uuid),
        })
    }
}

/// The columns of an [`AuditRow`].
pub const AUDIT_COLUMNS: &str =
    "id, actor, action, bucket, path, file_id, version, outcome, request_id, detail, at";

#[derive(Debug, QueryableByName)]
pub struct AuditRow {
    #[diesel(sql_type = DbUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Nullable<DbUuid>)]
    pub file_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub version: Option<i32>,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Text)]
    pub request_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub detail: Option<String>,
    #[diesel(sql_type = DbTime)]
    pub at: DateTime<Utc>,
}

impl AuditRow {
    pub fn into_event(self) -> Result<AuditEvent, RepoError> {
        Ok(AuditEvent {
            id: AuditId::from_uuid(self.id),
            actor: user(self.actor)?,
            action: AuditAction::from_stored(&self.action)
                .ok_or_else(|| corrupt("audit action"))?,
            bucket: bucket(&self.bucket)?,
            path: file_path(&self.bucket, &self.path)?,
            file_id: self.file_id.map(FileId::from_uuid),
            version: self.version.map(number).transpose()?,
            outcome: AuditOutcome::from_stored(&self.outcome)
                .ok_or_else(|| corrupt("audit outcome"))?,
            request_id: self.request_id,
            detail: self.detail,
            at: self.at,
        })
    }
}

#[derive(Debug, QueryableByName)]
pub struct DeletionRow {
    #[diesel(sql_type = DbUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub object_key: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

impl DeletionRow {
    pub fn into_deletion(self) -> Result<PendingDeletion, RepoError> {
        Ok(PendingDeletion {
            id: DeletionId::from_uuid(self.id),
            bucket: bucket(&self.bucket)?,
            object_key: ObjectKey::from_stored(self.object_key),
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("attempts"))?,
        })
    }
}

/// One path read back alone.
#[derive(Debug, QueryableByName)]
pub struct PathRow {
    #[diesel(sql_type = Text)]
    pub path: String,
}

/// One status read back alone.
#[derive(Debug, QueryableByName)]
pub struct StatusRow {
    #[diesel(sql_type = Text)]
    pub status: String,
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
