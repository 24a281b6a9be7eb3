//! The review queue's statement, in the query DSL over [`crate::schema`], run by both adapters:
//! the versions `pending_validation` of the files under a directory, oldest first, each with
//! its file, the file's lock row and the store's time ([`crate::rows::FileLockRow`] after the
//! version), so that the lock's liveness is judged by the store's clock in the same statement.

use diesel::dsl::auto_type;
use diesel::prelude::*;
use storage_domain::model::VersionStatus;

use crate::queries::store_now;
use crate::rows::LOCK_COLUMNS;
use crate::schema::{files, locks, versions};
use crate::sql_types::{DbAt, DbId};

type FileColumns = <files::table as Table>::AllColumns;
type VersionColumns = <versions::table as Table>::AllColumns;
type LockColumns = (
    locks::holder,
    locks::acquired_at,
    locks::expires_at,
    locks::base_version,
);

/// The stored form of the status the queue lists.
const PENDING: &str = VersionStatus::PendingValidation.as_str();

/// Versions `pending_validation` of the files of `bucket` whose path lies in `[low, upper)`,
/// strictly after `(after_at, after_id)` in `(created_at, id)` order, oldest first, at most
/// `limit`; with [`crate::rows::FileLockRow`]. The first page starts after the Unix epoch and
/// the nil id ([`first_page`]): no version the service writes is that old.
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

/// The position before every version: the first page's "after".
pub fn first_page() -> (DbAt, DbId) {
    (DbAt(chrono::DateTime::UNIX_EPOCH), DbId(uuid::Uuid::nil()))
}
