//! The review queue (`MetadataStore::list_pending_reviews`): one statement of the query DSL
//! (`storage_diesel_common::reviews`), the versions with their files and the store's time
//! (the `now()` each connection registers). Times are integer microseconds and ids
//! hyphenated lower-case text, which sort as PostgreSQL's do.

use diesel::RunQueryDsl;
use storage_diesel_common::error::TxError;
use storage_diesel_common::listing::prefix_upper_bound;
use storage_diesel_common::reviews::{first_page, pending_reviews};
use storage_diesel_common::rows::{FileLockRow, VersionRow, file_record, sql_limit};
use storage_diesel_common::sql_types::{DbAt, DbId};
use storage_domain::model::DirPath;
use storage_domain::ports::{PendingReview, ReviewCursor};

use super::Conn;

pub(crate) fn list_pending_reviews(
    c: &mut Conn,
    dir: &DirPath,
    after: Option<ReviewCursor>,
    limit: u32,
) -> Result<Vec<PendingReview>, TxError> {
    let (after_at, after_id) = after.map_or_else(first_page, |a| {
        (DbAt(a.created_at), DbId(a.version_id.as_uuid()))
    });
    let upper = prefix_upper_bound(dir.as_str());
    let rows: Vec<(VersionRow, FileLockRow)> = pending_reviews(
        dir.bucket().as_str(),
        dir.as_str(),
        &upper,
        after_at,
        after_id,
        sql_limit(limit),
    )
    .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(version, file)| {
            Ok::<_, storage_domain::ports::RepoError>(PendingReview {
                file: file_record(file)?,
                version: version.into_version()?,
            })
        })
        .collect::<Result<_, _>>()?)
}
