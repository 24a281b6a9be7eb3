//! Directory listings: the loose index scan shared with the PostgreSQL adapter
//! (`storage_diesel_common::listing`, whose docs give the order and the proof), answered here by
//! probes of the unique index on `files (bucket, path)` (BINARY collation: byte order), each a
//! `LIMIT 1` range lookup.
//!
//! The shared scan is an `async fn` over its probes; SQLite's probes are plain blocking calls
//! (this code already runs on a blocking thread), so their futures are ready at once and the scan
//! is driven by polling it once ([`poll_ready`]), without an executor.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use diesel::{OptionalExtension, RunQueryDsl};
use storage_diesel_common::error::TxError;
use storage_diesel_common::listing::{PathIndex, assemble, file_paths, scan_children};
use storage_diesel_common::rows::{FILE_COLUMNS, FileRow, PathRow};
use storage_diesel_common::sql_types::DbTime;
use storage_domain::model::DirPath;
use storage_domain::ports::{ListEntry, RepoError};

use super::Conn;
use super::reads::FILE_FROM;

/// Most paths bound in one `IN (...)` (far below SQLite's limit on parameters).
const PATHS_PER_QUERY: usize = 200;

/// The paths of one bucket, on the transaction's connection.
struct Index<'c> {
    conn: &'c mut Conn,
    bucket: &'static str,
}

impl Index<'_> {
    fn probe(
        &mut self,
        low: &str,
        exclusive: bool,
        upper: &str,
    ) -> Result<Option<String>, TxError> {
        let sql = if exclusive {
            "SELECT path FROM files WHERE bucket = ?1 AND path > ?2 AND path < ?3 \
             ORDER BY path LIMIT 1"
        } else {
            "SELECT path FROM files WHERE bucket = ?1 AND path >= ?2 AND path < ?3 \
             ORDER BY path LIMIT 1"
        };
        let row: Option<PathRow> = diesel::sql_query(sql)
            .bind::<Text, _>(self.bucket)
            .bind::<Text, _>(low)
            .bind::<Text, _>(upper)
            .get_result(self.conn)
            .optional()?;
        Ok(row.map(|r| r.path))
    }
}

impl PathIndex for Index<'_> {
    type Error = TxError;

    async fn first_path(
        &mut self,
        low: &str,
        exclusive: bool,
        upper: &str,
    ) -> Result<Option<String>, TxError> {
        self.probe(low, exclusive, upper)
    }

    /// One probe per range, in order (each an index lookup, in process).
    async fn first_nonempty(
        &mut self,
        ranges: &[(String, String)],
    ) -> Result<Option<usize>, TxError> {
        for (i, (low, high)) in ranges.iter().enumerate() {
            if self.probe(low, false, high)?.is_some() {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

/// The output of a future that never waits, polled once; `Internal` if it did wait.
fn poll_ready<F: Future>(future: F) -> Result<F::Output, RepoError> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(RepoError::Internal("listing scan waited".into())),
    }
}

pub(crate) fn list_children(
    c: &mut Conn,
    now: DateTime<Utc>,
    (dir, after, limit): (DirPath, Option<String>, u32),
) -> Result<Vec<ListEntry>, TxError> {
    let bucket = dir.bucket().as_str();
    let prefix = dir.as_str();
    let found = poll_ready(scan_children(
        &mut Index { conn: c, bucket },
        prefix,
        after,
        limit,
    ))??;

    let paths = file_paths(prefix, &found);
    let mut records = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(PATHS_PER_QUERY) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 3)).collect();
        let mut query = diesel::sql_query(format!(
            "SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.bucket = ?2 AND f.path IN ({})",
            placeholders.join(", ")
        ))
        .into_boxed::<Sqlite>()
        .bind::<DbTime, _>(now)
        .bind::<Text, _>(bucket);
        for path in chunk {
            query = query.bind::<Text, _>(path.clone());
        }
        let rows: Vec<FileRow> = query.load(c)?;
        for row in rows {
            records.push(row.into_record()?);
        }
    }
    Ok(assemble(prefix, found, records)?)
}
