//! Directory listings: the loose index scan shared with the SQLite adapter
//! (`storage_diesel_common::listing`, whose docs give the order and the proof), answered here by
//! probes of `files (bucket, path COLLATE "C")`, each a `LIMIT 1` range lookup.

use diesel::OptionalExtension;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_diesel_common::listing::{PathIndex, assemble, file_paths, scan_children};
use storage_domain::model::DirPath;
use storage_domain::ports::ListEntry;

use super::Work;
use crate::error::TxError;
use crate::rows::{FILE_COLUMNS, FILE_FROM, FileRow, PathRow};

type Conn = AsyncPgConnection;

#[derive(Debug, QueryableByName)]
struct OrdinalRow {
    #[diesel(sql_type = BigInt)]
    i: i64,
}

/// The paths of one bucket, on the transaction's connection.
struct Index<'c> {
    conn: &'c mut Conn,
    bucket: &'static str,
}

impl PathIndex for Index<'_> {
    type Error = TxError;

    async fn first_path(
        &mut self,
        low: &str,
        exclusive: bool,
        upper: &str,
    ) -> Result<Option<String>, TxError> {
        let sql = if exclusive {
            "SELECT path FROM files WHERE bucket = $1 AND path > $2 AND path < $3 \
             ORDER BY path LIMIT 1"
        } else {
            "SELECT path FROM files WHERE bucket = $1 AND path >= $2 AND path < $3 \
             ORDER BY path LIMIT 1"
        };
        let row: Option<PathRow> = diesel::sql_query(sql)
            .bind::<Text, _>(self.bucket)
            .bind::<Text, _>(low)
            .bind::<Text, _>(upper)
            .get_result(self.conn)
            .await
            .optional()?;
        Ok(row.map(|r| r.path))
    }

    /// One statement for all the ranges.
    async fn first_nonempty(
        &mut self,
        ranges: &[(String, String)],
    ) -> Result<Option<usize>, TxError> {
        let lows: Vec<&str> = ranges.iter().map(|(lo, _)| lo.as_str()).collect();
        let highs: Vec<&str> = ranges.iter().map(|(_, hi)| hi.as_str()).collect();
        let row: Option<OrdinalRow> = diesel::sql_query(
            "SELECT t.i FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(lo, hi, i) \
             WHERE EXISTS (SELECT 1 FROM files f \
                           WHERE f.bucket = $1 AND f.path >= t.lo AND f.path < t.hi) \
             ORDER BY t.i LIMIT 1",
        )
        .bind::<Text, _>(self.bucket)
        .bind::<Array<Text>, _>(lows)
        .bind::<Array<Text>, _>(highs)
        .get_result(self.conn)
        .await
        .optional()?;
        Ok(row.and_then(|r| usize::try_from(r.i - 1).ok()))
    }
}

pub(crate) fn list_children(
    c: &mut Conn,
    (dir, after, limit): (DirPath, Option<String>, u32),
) -> Work<'_, Vec<ListEntry>> {
    Box::pin(async move {
        let bucket = dir.bucket().as_str();
        let prefix = dir.as_str();
        let found = scan_children(&mut Index { conn: c, bucket }, prefix, after, limit).await?;

        let paths = file_paths(prefix, &found);
        let mut records = Vec::with_capacity(paths.len());
        if !paths.is_empty() {
            let rows: Vec<FileRow> = diesel::sql_query(format!(
                "SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.bucket = $1 AND f.path = ANY($2)"
            ))
            .bind::<Text, _>(bucket)
            .bind::<Array<Text>, _>(&paths)
            .load(c)
            .await?;
            for row in rows {
                records.push(row.into_record()?);
            }
        }
        Ok(assemble(prefix, found, records)?)
    })
}
