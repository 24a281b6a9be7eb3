//! The review queue (`MetadataStore::list_pending_reviews`): one statement of the query DSL
//! (`storage_diesel_common::reviews`), the versions with their files and the store's time.

use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_diesel_common::reviews::{into_reviews, page_bounds, pending_reviews};
use storage_diesel_common::rows::sql_limit;
use storage_domain::model::DirPath;
use storage_domain::ports::{PendingReview, ReviewCursor};

use crate::error::TxError;

pub(crate) async fn list_pending_reviews(
    c: &mut AsyncPgConnection,
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
    .load(c)
    .await?;
    Ok(into_reviews(rows)?)
}
