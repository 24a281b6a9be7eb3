//! Reads: each is one statement of the query DSL (`storage_diesel_common::queries`, prepared
//! and cached on the connection), run on its own without an explicit transaction (see
//! `PgMetadataStore::read`). Reads return live locks only, judged by the store's `now()` read
//! in the same statement.

use diesel::OptionalExtension;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_diesel_common::listing::prefix_upper_bound;
use storage_diesel_common::queries;
use storage_diesel_common::rows::{
    AuditRow, FileLockRow, FileVersionRow, LockedFileRow, ReservationRow, VersionRow, file_record,
    file_with_version, selector_binds, sql_limit, versions_upto,
};
use storage_diesel_common::sql_types::DbId;
use storage_domain::model::{
    AuditEvent, DirPath, FileId, FilePath, FileRecord, UploadId, UploadReservation, Version,
    VersionId, VersionNumber, VersionSelector,
};
use storage_domain::ports::{AuditCursor, AuditScope, LockedFile};

use crate::error::TxError;

type Conn = AsyncPgConnection;

/// The file at `path`, with its live lock (a read: units of work use `writes::lock_file`).
pub(crate) async fn find_file(
    c: &mut Conn,
    path: &FilePath,
) -> Result<Option<FileRecord>, TxError> {
    let row: Option<FileLockRow> = queries::file_by_path(path.bucket().as_str(), path.as_str())
        .get_result(c)
        .await
        .optional()?;
    Ok(row.map(file_record).transpose()?)
}

/// The file with this id, with its live lock (a read, or a re-read after a change).
pub(crate) async fn find_file_by_id(
    c: &mut Conn,
    id: FileId,
) -> Result<Option<FileRecord>, TxError> {
    let row: Option<FileLockRow> = queries::file_by_id(DbId(id.as_uuid()))
        .get_result(c)
        .await
        .optional()?;
    Ok(row.map(file_record).transpose()?)
}

/// A version and its file, in one statement.
pub(crate) async fn find_version(
    c: &mut Conn,
    id: VersionId,
) -> Result<Option<(FileRecord, Version)>, TxError> {
    let row: Option<(VersionRow, FileLockRow)> = queries::version_with_file(DbId(id.as_uuid()))
        .get_result(c)
        .await
        .optional()?;
    Ok(row
        .map(|(v, f)| {
            Ok::<_, storage_domain::ports::RepoError>((file_record(f)?, v.into_version()?))
        })
        .transpose()?)
}

/// The file at `path` with its live lock and the version `selector` picks, in one statement.
pub(crate) async fn find_file_version(
    c: &mut Conn,
    path: &FilePath,
    selector: VersionSelector,
) -> Result<Option<(FileRecord, Option<Version>)>, TxError> {
    let (number, validated) = selector_binds(selector)?;
    let row: Option<FileVersionRow> =
        queries::file_with_version(path.bucket().as_str(), path.as_str(), number, validated)
            .get_result(c)
            .await
            .optional()?;
    Ok(row.map(file_with_version).transpose()?)
}

/// A page of a file's versions, newest first, below `before`: one statement.
pub(crate) async fn list_versions(
    c: &mut Conn,
    file_id: FileId,
    before: Option<VersionNumber>,
    limit: u32,
) -> Result<Vec<Version>, TxError> {
    let rows: Vec<VersionRow> = queries::versions_page(
        DbId(file_id.as_uuid()),
        versions_upto(before)?,
        sql_limit(limit),
    )
    .load(c)
    .await?;
    Ok(rows
        .into_iter()
        .map(VersionRow::into_version)
        .collect::<Result<_, _>>()?)
}

/// Live locks under `dir`, by path: one range of `locks_bucket_path_idx`.
pub(crate) async fn list_locks(
    c: &mut Conn,
    dir: &DirPath,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<LockedFile>, TxError> {
    let upper = prefix_upper_bound(dir.as_str());
    // Every path under `dir` is longer than `dir`, so `> dir` starts at the first of them.
    let after = after.unwrap_or_else(|| dir.as_str().to_owned());
    let rows: Vec<LockedFileRow> = queries::live_locks(
        dir.bucket().as_str(),
        dir.as_str(),
        &upper,
        &after,
        sql_limit(limit),
    )
    .load(c)
    .await?;
    Ok(rows
        .into_iter()
        .map(LockedFileRow::into_locked_file)
        .collect::<Result<_, _>>()?)
}

/// Audit events newest first, keyset on `(at, id)`.
pub(crate) async fn list_audit(
    c: &mut Conn,
    scope: &AuditScope,
    before: Option<AuditCursor>,
    limit: u32,
) -> Result<Vec<AuditEvent>, TxError> {
    let rows: Vec<AuditRow> = storage_diesel_common::audit_page!(scope, before, sql_limit(limit))
        .load(c)
        .await?;
    Ok(rows
        .into_iter()
        .map(AuditRow::into_event)
        .collect::<Result<_, _>>()?)
}

pub(crate) async fn find_reservation(
    c: &mut Conn,
    id: UploadId,
) -> Result<Option<UploadReservation>, TxError> {
    let row: Option<ReservationRow> = queries::reservation_by_id(DbId(id.as_uuid()))
        .get_result(c)
        .await
        .optional()?;
    Ok(row.map(ReservationRow::into_reservation).transpose()?)
}
