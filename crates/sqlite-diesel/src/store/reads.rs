//! Reads: one WAL snapshot each (see `SqliteMetadataStore::run`). Reads return live locks only:
//! a lock is live when its `expires_at` is after the store's `now`.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::sqlite::Sqlite;
use diesel::{OptionalExtension, RunQueryDsl};
use storage_diesel_common::error::TxError;
use storage_diesel_common::listing::prefix_upper_bound;
use storage_diesel_common::rows::{
    AUDIT_COLUMNS, AuditRow, FILE_COLUMNS, FileRow, LockedFileRow, RESERVATION_COLUMNS,
    ReservationRow, VERSION_COLUMNS, VersionRow, sql_limit, sql_number,
};
use storage_diesel_common::sql_types::{DbTime, DbUuid};
use storage_domain::model::{
    AuditEvent, DirPath, FileId, FilePath, FileRecord, UploadId, UploadReservation, Version,
    VersionId, VersionNumber,
};
use storage_domain::ports::{AuditCursor, AuditScope, LockedFile};

use super::Conn;

/// The `FROM` of a [`FileRow`]: only a live lock joins; `?1` is the store's `now`.
pub(crate) const FILE_FROM: &str =
    "files f LEFT JOIN locks l ON l.file_id = f.id AND l.expires_at > ?1";

/// The file at `path`, with its live lock.
pub(crate) fn file_by_path(
    c: &mut Conn,
    now: DateTime<Utc>,
    path: &FilePath,
) -> Result<Option<FileRecord>, TxError> {
    let row: Option<FileRow> = diesel::sql_query(format!(
        "SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.bucket = ?2 AND f.path = ?3"
    ))
    .bind::<DbTime, _>(now)
    .bind::<Text, _>(path.bucket().as_str())
    .bind::<Text, _>(path.as_str())
    .get_result(c)
    .optional()?;
    Ok(row.map(FileRow::into_record).transpose()?)
}

/// The file with this id, with its live lock.
pub(crate) fn file_by_id(
    c: &mut Conn,
    now: DateTime<Utc>,
    id: FileId,
) -> Result<Option<FileRecord>, TxError> {
    let row: Option<FileRow> = diesel::sql_query(format!(
        "SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.id = ?2"
    ))
    .bind::<DbTime, _>(now)
    .bind::<DbUuid, _>(id.as_uuid())
    .get_result(c)
    .optional()?;
    Ok(row.map(FileRow::into_record).transpose()?)
}

pub(crate) fn version_by_id(c: &mut Conn, id: VersionId) -> Result<Option<Version>, TxError> {
    let row: Option<VersionRow> = diesel::sql_query(format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.id = ?1"
    ))
    .bind::<DbUuid, _>(id.as_uuid())
    .get_result(c)
    .optional()?;
    Ok(row.map(VersionRow::into_version).transpose()?)
}

pub(crate) fn find_file(
    c: &mut Conn,
    now: DateTime<Utc>,
    path: FilePath,
) -> Result<Option<FileRecord>, TxError> {
    file_by_path(c, now, &path)
}

pub(crate) fn find_file_by_id(
    c: &mut Conn,
    now: DateTime<Utc>,
    id: FileId,
) -> Result<Option<FileRecord>, TxError> {
    file_by_id(c, now, id)
}

pub(crate) fn find_version(
    c: &mut Conn,
    now: DateTime<Utc>,
    id: VersionId,
) -> Result<Option<(FileRecord, Version)>, TxError> {
    let Some(version) = version_by_id(c, id)? else {
        return Ok(None);
    };
    Ok(file_by_id(c, now, version.file_id)?.map(|file| (file, version)))
}

pub(crate) fn find_version_by_number(
    c: &mut Conn,
    _: DateTime<Utc>,
    (file_id, number): (FileId, VersionNumber),
) -> Result<Option<Version>, TxError> {
    let row: Option<VersionRow> = diesel::sql_query(format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.file_id = ?1 AND v.number = ?2"
    ))
    .bind::<DbUuid, _>(file_id.as_uuid())
    .bind::<Integer, _>(sql_number(number)?)
    .get_result(c)
    .optional()?;
    Ok(row.map(VersionRow::into_version).transpose()?)
}

pub(crate) fn list_versions(
    c: &mut Conn,
    _: DateTime<Utc>,
    file_id: FileId,
) -> Result<Vec<Version>, TxError> {
    let rows: Vec<VersionRow> = diesel::sql_query(format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.file_id = ?1 ORDER BY v.number DESC"
    ))
    .bind::<DbUuid, _>(file_id.as_uuid())
    .load(c)?;
    Ok(rows
        .into_iter()
        .map(VersionRow::into_version)
        .collect::<Result<_, _>>()?)
}

/// Live locks under `dir`, by path: one range of `locks_bucket_path_idx`.
pub(crate) fn list_locks(
    c: &mut Conn,
    now: DateTime<Utc>,
    (dir, after, limit): (DirPath, Option<String>, u32),
) -> Result<Vec<LockedFile>, TxError> {
    let upper = prefix_upper_bound(dir.as_str());
    // Every path under `dir` is longer than `dir`, so `> dir` starts at the first of them.
    let after = after.unwrap_or_else(|| dir.as_str().to_owned());
    let rows: Vec<LockedFileRow> = diesel::sql_query(
        "SELECT l.file_id, l.bucket, l.path, l.holder, l.acquired_at, l.expires_at, \
         l.base_version FROM locks l \
         WHERE l.bucket = ?1 AND l.path >= ?2 AND l.path < ?3 AND l.path > ?4 \
           AND l.expires_at > ?5 \
         ORDER BY l.path LIMIT ?6",
    )
    .bind::<Text, _>(dir.bucket().as_str())
    .bind::<Text, _>(dir.as_str())
    .bind::<Text, _>(upper)
    .bind::<Text, _>(after)
    .bind::<DbTime, _>(now)
    .bind::<BigInt, _>(sql_limit(limit))
    .load(c)?;
    Ok(rows
        .into_iter()
        .map(LockedFileRow::into_locked_file)
        .collect::<Result<_, _>>()?)
}

/// Audit events newest first, keyset on `(at, id)`.
pub(crate) fn list_audit(
    c: &mut Conn,
    _: DateTime<Utc>,
    (scope, before, limit): (AuditScope, Option<AuditCursor>, u32),
) -> Result<Vec<AuditEvent>, TxError> {
    let (bucket, low, high) = match &scope {
        AuditScope::File(path) => (path.bucket(), path.as_str().to_owned(), None),
        AuditScope::Directory(dir) => (
            dir.bucket(),
            dir.as_str().to_owned(),
            Some(prefix_upper_bound(dir.as_str())),
        ),
    };
    let scope_sql = if high.is_some() {
        "path >= ?2 AND path < ?3"
    } else {
        "path = ?2"
    };
    let next = if high.is_some() { 4 } else { 3 };
    let cursor_sql = if before.is_some() {
        format!(
            " AND (at < ?{next} OR (at = ?{next} AND id < ?{}))",
            next + 1
        )
    } else {
        String::new()
    };
    let limit_at = if before.is_some() { next + 2 } else { next };
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE bucket = ?1 AND {scope_sql}\
         {cursor_sql} ORDER BY at DESC, id DESC LIMIT ?{limit_at}"
    );
    let mut query = diesel::sql_query(sql)
        .into_boxed::<Sqlite>()
        .bind::<Text, _>(bucket.as_str())
        .bind::<Text, _>(low);
    if let Some(high) = high {
        query = query.bind::<Text, _>(high);
    }
    if let Some(cursor) = before {
        query = query
            .bind::<DbTime, _>(cursor.at)
            .bind::<DbUuid, _>(cursor.id.as_uuid());
    }
    let rows: Vec<AuditRow> = query.bind::<BigInt, _>(sql_limit(limit)).load(c)?;
    Ok(rows
        .into_iter()
        .map(AuditRow::into_event)
        .collect::<Result<_, _>>()?)
}

pub(crate) fn find_reservation(
    c: &mut Conn,
    _: DateTime<Utc>,
    id: UploadId,
) -> Result<Option<UploadReservation>, TxError> {
    let row: Option<ReservationRow> = diesel::sql_query(format!(
        "SELECT {RESERVATION_COLUMNS} FROM upload_reservations WHERE id = ?1"
    ))
    .bind::<DbUuid, _>(id.as_uuid())
    .get_result(c)
    .optional()?;
    Ok(row.map(ReservationRow::into_reservation).transpose()?)
}
