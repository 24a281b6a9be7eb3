//! The review queue (`MetadataStore::list_pending_reviews`): one statement of the query DSL
//! (`storage_diesel_common::reviews`), the versions with their files and the store's time
//! (the `now()` each connection registers). Times are integer microseconds and ids
//! hyphenated lower-case text, which sort as PostgreSQL's do.

use diesel::RunQueryDsl;
use storage_diesel_common::error::TxError;
use storage_diesel_common::reviews::{into_reviews, page_bounds, pending_reviews};
use storage_diesel_common::rows::sql_limit;
use storage_domain::model::DirPath;
use storage_domain::ports::{PendingReview, ReviewCursor};

use super::Conn;

pub(crate) fn list_pending_reviews(
    c: &mut Conn,
    dir: &DirPath,
    after: Option<ReviewCursor>,
    limit: u32,
) -> Result<Vec<PendingReview>, TxError> {
    let (after_at, after_id, upper) = page_bounds(dir, after);
    let rows = pending_reviews(
        dir.bucket().as_str(),
        dir.as_str(),
        &upper,
        after_at,
        after_id,
        sql_limit(limit),
    )
    .load(c)?;
    Ok(into_reviews(rows)?)
}
