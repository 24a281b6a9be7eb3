//! The review queue: versions `pending_validation` under a directory, oldest first, each with
//! its file (and the file's live lock). Two statements in one snapshot: the page of versions
//! (keyset on `(created_at, id)`), then their files.

use std::collections::HashMap;

use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_diesel_common::listing::prefix_upper_bound;
use storage_domain::model::{DirPath, VersionStatus};
use storage_domain::ports::{PendingReview, ReviewCursor};

use super::Work;
use crate::rows::{FILE_COLUMNS, FILE_FROM, FileRow, VERSION_COLUMNS, VersionRow, sql_limit};

type Conn = AsyncPgConnection;

pub(crate) fn list_pending_reviews(
    c: &mut Conn,
    (dir, after, limit): (DirPath, Option<ReviewCursor>, u32),
) -> Work<'_, Vec<PendingReview>> {
    Box::pin(async move {
        let keyset = if after.is_some() {
            " AND (v.created_at, v.id) > ($5, $6) ORDER BY v.created_at, v.id LIMIT $7"
        } else {
            " ORDER BY v.created_at, v.id LIMIT $5"
        };
        let mut query = diesel::sql_query(format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN files f ON f.id = v.file_id \
             WHERE f.bucket = $1 AND f.path >= $2 AND f.path < $3 AND v.status = $4{keyset}"
        ))
        .into_boxed()
        .bind::<Text, _>(dir.bucket().as_str())
        .bind::<Text, _>(dir.as_str())
        .bind::<Text, _>(prefix_upper_bound(dir.as_str()))
        .bind::<Text, _>(VersionStatus::PendingValidation.as_str());
        if let Some(after) = after {
            query = query
                .bind::<Timestamptz, _>(after.created_at)
                .bind::<SqlUuid, _>(after.version_id.as_uuid());
        }
        let rows: Vec<VersionRow> = query.bind::<BigInt, _>(sql_limit(limit)).load(c).await?;
        let versions = rows
            .into_iter()
            .map(VersionRow::into_version)
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<uuid::Uuid> = versions.iter().map(|v| v.file_id.as_uuid()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut files = HashMap::with_capacity(ids.len());
        if !ids.is_empty() {
            let rows: Vec<FileRow> = diesel::sql_query(format!(
                "SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.id = ANY($1)"
            ))
            .bind::<Array<SqlUuid>, _>(&ids)
            .load(c)
            .await?;
            for row in rows {
                let file = row.into_record()?;
                files.insert(file.id, file);
            }
        }
        // Every version's file is in the same snapshot: a version without one is skipped
        // rather than invented (the foreign key makes that impossible).
        Ok(versions
            .into_iter()
            .filter_map(|version| {
                let file = files.get(&version.file_id)?.clone();
                Some(PendingReview { file, version })
            })
            .collect())
    })
}
