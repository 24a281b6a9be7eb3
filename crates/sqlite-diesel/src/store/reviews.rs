//! The review queue: versions `pending_validation` under a directory, oldest first, each with
//! its file (and the file's live lock), in one snapshot: the page of versions (keyset on
//! `(created_at, id)`; times are integer microseconds and ids hyphenated lower-case text, which
//! sort as PostgreSQL's do), then each of their files.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use storage_diesel_common::error::TxError;
use storage_diesel_common::listing::prefix_upper_bound;
use storage_diesel_common::rows::{VERSION_COLUMNS, VersionRow, sql_limit};
use storage_diesel_common::sql_types::{DbTime, DbUuid};
use storage_domain::model::{DirPath, VersionStatus};
use storage_domain::ports::{PendingReview, ReviewCursor};

use super::Conn;
use super::reads::file_by_id;

pub(crate) fn list_pending_reviews(
    c: &mut Conn,
    now: DateTime<Utc>,
    (dir, after, limit): (DirPath, Option<ReviewCursor>, u32),
) -> Result<Vec<PendingReview>, TxError> {
    let keyset = if after.is_some() {
        " AND (v.created_at > ?5 OR (v.created_at = ?5 AND v.id > ?6)) \
         ORDER BY v.created_at, v.id LIMIT ?7"
    } else {
        " ORDER BY v.created_at, v.id LIMIT ?5"
    };
    let mut query = diesel::sql_query(format!(
        "SELECT {VERSION_COLUMNS} FROM versions v JOIN files f ON f.id = v.file_id \
         WHERE f.bucket = ?1 AND f.path >= ?2 AND f.path < ?3 AND v.status = ?4{keyset}"
    ))
    .into_boxed::<Sqlite>()
    .bind::<Text, _>(dir.bucket().as_str())
    .bind::<Text, _>(dir.as_str())
    .bind::<Text, _>(prefix_upper_bound(dir.as_str()))
    .bind::<Text, _>(VersionStatus::PendingValidation.as_str());
    if let Some(after) = after {
        query = query
            .bind::<DbTime, _>(after.created_at)
            .bind::<DbUuid, _>(after.version_id.as_uuid());
    }
    let rows: Vec<VersionRow> = query.bind::<BigInt, _>(sql_limit(limit)).load(c)?;
    let mut files = HashMap::new();
    let mut reviews = Vec::with_capacity(rows.len());
    for row in rows {
        let version = row.into_version()?;
        let file = match files.entry(version.file_id) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(slot) => slot.insert(file_by_id(c, now, version.file_id)?),
        };
        // The foreign key keeps every version's file; a missing one is skipped, not invented.
        if let Some(file) = file {
            reviews.push(PendingReview {
                file: file.clone(),
                version,
            });
        }
    }
    Ok(reviews)
}
