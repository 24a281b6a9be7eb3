//! The review queue's statement, in the query DSL over [`crate::schema`], run by both adapters:
//! the versions `pending_validation` of the files under a directory, oldest first, each with
//! its file, the file's lock row and the store's time ([`crate::rows::FileLockRow`] after the
//! version), so that the lock's liveness is judged by the store's clock in the same statement.

use diesel::dsl::auto_type;
use diesel::prelude::*;
use storage_domain::model::VersionStatus;

use storage_domain::model::DirPath;
use storage_domain::ports::{PendingReview, RepoError, ReviewCursor};

use crate::listing::prefix_upper_bound;
use crate::queries::{FileColumns, LockColumns, VersionColumns, store_now};
use crate::rows::{FileLockRow, LOCK_COLUMNS, VersionRow, file_record};
use crate::schema::{files, locks, versions};
use crate::sql_types::{DbAt, DbId};

/// The stored form of the status the queue lists.
const PENDING: &str = VersionStatus::PendingValidation.as_str();

/// Versions `pending_validation` of the files of `bucket` whose path lies in `[low, upper)`,
/// strictly after `(after_at, after_id)` in `(created_at, id)` order, oldest first, at most
/// `limit`; with [`crate::rows::FileLockRow`]. [`page_bounds`] gives the bounds.
#[auto_type]
pub fn pending_reviews<'a>(
    bucket: &'a str,
    low: &'a str,
    upper: &'a str,
    after_at: DbAt,
    after_id: DbId,
    limit: i64,
) -> _ {
    let now: store_now = store_now();
    let version: VersionColumns = versions::all_columns;
    let file: FileColumns = files::all_columns;
    let lock: LockColumns = LOCK_COLUMNS;
    let at: DbAt = after_at.clone();
    let pending: &'static str = PENDING;
    versions::table
        .inner_join(files::table.left_join(locks::table))
        .filter(files::bucket.eq(bucket))
        .filter(files::path.ge(low))
        .filter(files::path.lt(upper))
        .filter(versions::status.eq(pending))
        .filter(
            versions::created_at.gt(at).or(versions::created_at
                .eq(after_at)
                .and(versions::id.gt(after_id))),
        )
        .order((versions::created_at, versions::id))
        .limit(limit)
        .select((version, (file, lock.nullable(), now)))
}

/// Where a page of the queue under `dir` starts: after `after`, or before every version (the
/// Unix epoch and the nil id: no version the service writes is that old); and the end of the
/// directory's path range.
pub fn page_bounds(dir: &DirPath, after: Option<ReviewCursor>) -> (DbAt, DbId, String) {
    let (at, id) = after.map_or_else(
        || (chrono::DateTime::UNIX_EPOCH, uuid::Uuid::nil()),
        |a| (a.created_at, a.version_id.as_uuid()),
    );
    (DbAt(at), DbId(id), prefix_upper_bound(dir.as_str()))
}

/// The rows of [`pending_reviews`] as the port's values.
///
/// # Errors
/// `Internal` for a row that breaks a rule of the domain's types.
pub fn into_reviews(rows: Vec<(VersionRow, FileLockRow)>) -> Result<Vec<PendingReview>, RepoError> {
    rows.into_iter()
        .map(|(version, file)| {
            Ok(PendingReview {
                file: file_record(file)?,
                version: version.into_version()?,
            })
        })
        .collect()
}
