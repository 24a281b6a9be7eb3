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
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, RunQueryDsl};
use storage_diesel_common::error::TxError;
use storage_diesel_common::listing::{PathIndex, assemble, file_paths, scan_children};
use storage_diesel_common::queries;
use storage_diesel_common::rows::{FileLockRow, file_record};
use storage_diesel_common::schema::files;
use storage_diesel_common::sql_types::DbAt;
use storage_domain::model::DirPath;
use storage_domain::ports::{ListEntry, RepoError};

use super::Conn;

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
        let in_bucket = files::table
            .select(files::path)
            .filter(files::bucket.eq(self.bucket))
            .filter(files::path.lt(upper))
            .order(files::path)
            .limit(1);
        Ok(if exclusive {
            in_bucket
                .filter(files::path.gt(low))
                .get_result(self.conn)
                .optional()?
        } else {
            in_bucket
                .filter(files::path.ge(low))
                .get_result(self.conn)
                .optional()?
        })
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
        let rows: Vec<FileLockRow> = queries::files_at(bucket, chunk).load(c)?;
        for (file, lock, _) in rows {
            records.push(file_record((file, lock, DbAt(now)))?);
        }
    }
    Ok(assemble(prefix, found, records)?)
}
