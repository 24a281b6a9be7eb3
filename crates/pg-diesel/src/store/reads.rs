//! Reads: one snapshot each (see `PgMetadataStore::read`). Reads return live locks only.

use diesel::OptionalExtension;
use diesel::sql_types::{BigInt, Integer, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_domain::model::{
    AuditEvent, DirPath, FileId, FilePath, FileRecord, UploadId, UploadReservation, Version,
    VersionId, VersionNumber,
};
use storage_domain::ports::{AuditCursor, AuditScope, LockedFile};

use storage_diesel_common::listing::prefix_upper_bound;

use super::Work;
use crate::error::TxError;
use crate::rows::{
    AUDIT_COLUMNS, AuditRow, FILE_COLUMNS, FILE_FROM, FileRow, LockedFileRow, RESERVATION_COLUMNS,
    ReservationRow, VERSION_COLUMNS, VersionRow, sql_limit, sql_number,
};

type Conn = AsyncPgConnection;

/// The file at `path`, with its live lock (a read: units of work use `writes::lock_file`).
pub(crate) async fn file_by_path(
    c: &mut Conn,
    path: &FilePath,
) -> Result<Option<FileRecord>, TxError> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.bucket = $1 AND f.path = $2");
    let row: Option<FileRow> = diesel::sql_query(sql)
        .bind::<Text, _>(path.bucket().as_str())
        .bind::<Text, _>(path.as_str())
        .get_result(c)
        .await
        .optional()?;
    Ok(row.map(FileRow::into_record).transpose()?)
}

/// The file with this id, with its live lock (a read, or a re-read after a change).
pub(crate) async fn file_by_id(c: &mut Conn, id: FileId) -> Result<Option<FileRecord>, TxError> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.id = $1");
    let row: Option<FileRow> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id.as_uuid())
        .get_result(c)
        .await
        .optional()?;
    Ok(row.map(FileRow::into_record).transpose()?)
}

pub(crate) async fn version_by_id(c: &mut Conn, id: VersionId) -> Result<Option<Version>, TxError> {
    let row: Option<VersionRow> = diesel::sql_query(format!(
        "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.id = $1"
    ))
    .bind::<SqlUuid, _>(id.as_uuid())
    .get_result(c)
    .await
    .optional()?;
    Ok(row.map(VersionRow::into_version).transpose()?)
}

pub(crate) fn find_file(c: &mut Conn, path: FilePath) -> Work<'_, Option<FileRecord>> {
    Box::pin(async move { file_by_path(c, &path).await })
}

pub(crate) fn find_file_by_id(c: &mut Conn, id: FileId) -> Work<'_, Option<FileRecord>> {
    Box::pin(async move { file_by_id(c, id).await })
}

pub(crate) fn find_version(c: &mut Conn, id: VersionId) -> Work<'_, Option<(FileRecord, Version)>> {
    Box::pin(async move {
        let Some(version) = version_by_id(c, id).await? else {
            return Ok(None);
        };
        Ok(file_by_id(c, version.file_id)
            .await?
            .map(|file| (file, version)))
    })
}

pub(crate) fn find_version_by_number(
    c: &mut Conn,
    (file_id, number): (FileId, VersionNumber),
) -> Work<'_, Option<Version>> {
    Box::pin(async move {
        let row: Option<VersionRow> = diesel::sql_query(format!(
            "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.file_id = $1 AND v.number = $2"
        ))
        .bind::<SqlUuid, _>(file_id.as_uuid())
        .bind::<Integer, _>(sql_number(number)?)
        .get_result(c)
        .await
        .optional()?;
        Ok(row.map(VersionRow::into_version).transpose()?)
    })
}

pub(crate) fn list_versions(c: &mut Conn, file_id: FileId) -> Work<'_, Vec<Version>> {
    Box::pin(async move {
        let rows: Vec<VersionRow> = diesel::sql_query(format!(
            "SELECT {VERSION_COLUMNS} FROM versions v WHERE v.file_id = $1 ORDER BY v.number DESC"
        ))
        .bind::<SqlUuid, _>(file_id.as_uuid())
        .load(c)
        .await?;
        Ok(rows
            .into_iter()
            .map(VersionRow::into_version)
            .collect::<Result<_, _>>()?)
    })
}

/// Live locks under `dir`, by path: one range of `locks_bucket_path_idx`.
pub(crate) fn list_locks(
    c: &mut Conn,
    (dir, after, limit): (DirPath, Option<String>, u32),
) -> Work<'_, Vec<LockedFile>> {
    Box::pin(async move {
        let upper = prefix_upper_bound(dir.as_str());
        // Every path under `dir` is longer than `dir`, so `> dir` starts at the first of them.
        let after = after.unwrap_or_else(|| dir.as_str().to_owned());
        let rows: Vec<LockedFileRow> = diesel::sql_query(
            "SELECT l.file_id, l.bucket, l.path, l.holder, l.acquired_at, l.expires_at, \
             l.base_version FROM locks l \
             WHERE l.bucket = $1 AND l.path >= $2 AND l.path < $3 AND l.path > $4 \
               AND l.expires_at > now() \
             ORDER BY l.path LIMIT $5",
        )
        .bind::<Text, _>(dir.bucket().as_str())
        .bind::<Text, _>(dir.as_str())
        .bind::<Text, _>(upper)
        .bind::<Text, _>(after)
        .bind::<BigInt, _>(sql_limit(limit))
        .load(c)
        .await?;
        Ok(rows
            .into_iter()
            .map(LockedFileRow::into_locked_file)
            .collect::<Result<_, _>>()?)
    })
}

/// Audit events newest first, keyset on `(at, id)`.
pub(crate) fn list_audit(
    c: &mut Conn,
    (scope, before, limit): (AuditScope, Option<AuditCursor>, u32),
) -> Work<'_, Vec<AuditEvent>> {
    Box::pin(async move {
        let (bucket, low, high) = match &scope {
            AuditScope::File(path) => (path.bucket(), path.as_str().to_owned(), None),
            AuditScope::Directory(dir) => (
                dir.bucket(),
                dir.as_str().to_owned(),
                Some(prefix_upper_bound(dir.as_str())),
            ),
        };
        let scope_sql = if high.is_some() {
            "path >= $2 AND path < $3"
        } else {
            "path = $2"
        };
        let next = if high.is_some() { 4 } else { 3 };
        let cursor_sql = if before.is_some() {
            format!(" AND (at, id) < (${}, ${})", next, next + 1)
        } else {
            String::new()
        };
        let limit_at = if before.is_some() { next + 2 } else { next };
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE bucket = $1 AND {scope_sql}\
             {cursor_sql} ORDER BY at DESC, id DESC LIMIT ${limit_at}"
        );
        let mut query = diesel::sql_query(sql)
            .into_boxed()
            .bind::<Text, _>(bucket.as_str())
            .bind::<Text, _>(low);
        if let Some(high) = high {
            query = query.bind::<Text, _>(high);
        }
        if let Some(cursor) = before {
            query = query
                .bind::<Timestamptz, _>(cursor.at)
                .bind::<SqlUuid, _>(cursor.id.as_uuid());
        }
        let rows: Vec<AuditRow> = query.bind::<BigInt, _>(sql_limit(limit)).load(c).await?;
        Ok(rows
            .into_iter()
            .map(AuditRow::into_event)
            .collect::<Result<_, _>>()?)
    })
}

pub(crate) fn find_reservation(c: &mut Conn, id: UploadId) -> Work<'_, Option<UploadReservation>> {
    Box::pin(async move {
        let row: Option<ReservationRow> = diesel::sql_query(format!(
            "SELECT {RESERVATION_COLUMNS} FROM upload_reservations WHERE id = $1"
        ))
        .bind::<SqlUuid, _>(id.as_uuid())
        .get_result(c)
        .await
        .optional()?;
        Ok(row.map(ReservationRow::into_reservation).transpose()?)
    })
}
