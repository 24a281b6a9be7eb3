//! Rows as PostgreSQL returns them, and their conversion to the domain's values.
//!
//! A conversion fails with `Internal` ("corrupt stored ...") when a row breaks a rule the domain
//! types guarantee; the schema's CHECK constraints make that a bug, not a user error.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use storage_domain::model::{
    AuditAction, AuditEvent, AuditId, AuditOutcome, BucketKind, DeletionId, FileId, FilePath,
    FileRecord, FileStatus, Lock, ObjectKey, PendingDeletion, Tags, UploadId, UploadKind,
    UploadReservation, UserId, Version, VersionId, VersionNumber, VersionStatus,
};
use storage_domain::ports::{LockedFile, RepoError};
use uuid::Uuid;

use crate::error::corrupt;

/// The columns of a [`FileRow`]: `files f` left-joined with its live lock `l`.
pub(crate) const FILE_COLUMNS: &str = "f.id, f.bucket, f.path, f.created_by, f.version, \
     f.validated_version, f.status, f.tags, f.size, f.content_type, f.sha256, f.created_at, \
     f.updated_at, l.holder AS lock_holder, l.acquired_at AS lock_acquired_at, \
     l.expires_at AS lock_expires_at, l.base_version AS lock_base_version";

/// The `FROM` of a [`FileRow`]: only a live lock joins.
pub(crate) const FILE_FROM: &str =
    "files f LEFT JOIN locks l ON l.file_id = f.id AND l.expires_at > now()";

/// The columns of a [`VersionRow`] (table alias `v`).
pub(crate) const VERSION_COLUMNS: &str = "v.id, v.file_id, v.number, v.size, v.sha256, \
     v.content_type, v.author, v.message, v.status, v.reviewed_by, v.reviewed_at, \
     v.review_comment, v.created_at, v.object_key";

pub(crate) fn bucket(raw: &str) -> Result<BucketKind, RepoError> {
    BucketKind::parse(raw).map_err(|_| corrupt("bucket"))
}

pub(crate) fn file_path(bucket_raw: &str, path: &str) -> Result<FilePath, RepoError> {
    FilePath::parse(bucket(bucket_raw)?, path).map_err(|_| corrupt("path"))
}

pub(crate) fn user(raw: String) -> Result<UserId, RepoError> {
    UserId::new(raw).map_err(|_| corrupt("user id"))
}

pub(crate) fn number(raw: i32) -> Result<VersionNumber, RepoError> {
    u32::try_from(raw)
        .ok()
        .and_then(|n| VersionNumber::new(n).ok())
        .ok_or_else(|| corrupt("version number"))
}

/// A version number as PostgreSQL's `integer`.
pub(crate) fn sql_number(n: VersionNumber) -> Result<i32, RepoError> {
    i32::try_from(n.get()).map_err(|_| RepoError::Internal("version number out of range".into()))
}

/// A size as PostgreSQL's `bigint`.
pub(crate) fn sql_size(n: u64) -> Result<i64, RepoError> {
    i64::try_from(n).map_err(|_| RepoError::Internal("size out of range".into()))
}

fn size(raw: i64) -> Result<u64, RepoError> {
    u64::try_from(raw).map_err(|_| corrupt("size"))
}

/// Seconds of a `Duration`, for `make_interval(secs => ...)`.
pub(crate) fn seconds(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

/// A live lock read on its own.
#[derive(Debug, QueryableByName)]
pub(crate) struct LockRow {
    #[diesel(sql_type = Text)]
    pub holder: String,
    #[diesel(sql_type = Timestamptz)]
    pub acquired_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub base_version: i32,
}

impl LockRow {
    pub(crate) fn into_lock(self) -> Result<Lock, RepoError> {
        Ok(Lock {
            holder: user(self.holder)?,
            acquired_at: self.acquired_at,
            expires_at: self.expires_at,
            base_version: number(self.base_version)?,
        })
    }
}

#[derive(Debug, QueryableByName)]
pub(crate) struct FileRow {
    #[diesel(sql_type = SqlUuid)]
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
    #[diesel(sql_type = Jsonb)]
    pub tags: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub size: i64,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Text)]
    pub sha256: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub lock_holder: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub lock_acquired_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub lock_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub lock_base_version: Option<i32>,
}

impl FileRow {
    pub(crate) fn into_record(self) -> Result<FileRecord, RepoError> {
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
        Ok(FileRecord {
            id: FileId::from_uuid(self.id),
            path: file_path(&self.bucket, &self.path)?,
            created_by: user(self.created_by)?,
            version: number(self.version)?,
            validated_version: self.validated_version.map(number).transpose()?,
            status: FileStatus::from_stored(&self.status).ok_or_else(|| corrupt("file status"))?,
            lock,
            tags,
            size: size(self.size)?,
            content_type: self.content_type,
            sha256: self.sha256,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Debug, QueryableByName)]
pub(crate) struct VersionRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
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
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub reviewed_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub review_comment: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub object_key: String,
}

impl VersionRow {
    pub(crate) fn into_version(self) -> Result<Version, RepoError> {
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
pub(crate) struct LockedFileRow {
    #[diesel(sql_type = SqlUuid)]
    pub file_id: Uuid,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub holder: String,
    #[diesel(sql_type = Timestamptz)]
    pub acquired_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Integer)]
    pub base_version: i32,
}

impl LockedFileRow {
    pub(crate) fn into_locked_file(self) -> Result<LockedFile, RepoError> {
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
pub(crate) const RESERVATION_COLUMNS: &str = "id, kind, bucket, path, created_by, version_id, \
     object_key, content_type, expected_size, expected_sha256, max_bytes, expires_at, \
     created_at, completed_version";

#[derive(Debug, QueryableByName)]
pub(crate) struct ReservationRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Text)]
    pub created_by: String,
    #[diesel(sql_type = SqlUuid)]
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
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub completed_version: Option<Uuid>,
}

impl ReservationRow {
    pub(crate) fn into_reservation(self) -> Result<UploadReservation, RepoError> {
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
pub(crate) const AUDIT_COLUMNS: &str =
    "id, actor, action, bucket, path, file_id, version, outcome, request_id, detail, at";

#[derive(Debug, QueryableByName)]
pub(crate) struct AuditRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub actor: String,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub path: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub file_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub version: Option<i32>,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Text)]
    pub request_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub detail: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
}

impl AuditRow {
    pub(crate) fn into_event(self) -> Result<AuditEvent, RepoError> {
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
pub(crate) struct DeletionRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub bucket: String,
    #[diesel(sql_type = Text)]
    pub object_key: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

impl DeletionRow {
    pub(crate) fn into_deletion(self) -> Result<PendingDeletion, RepoError> {
        Ok(PendingDeletion {
            id: DeletionId::from_uuid(self.id),
            bucket: bucket(&self.bucket)?,
            object_key: ObjectKey::from_stored(self.object_key),
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("attempts"))?,
        })
    }
}
