//! Directory listings by a loose index scan over `files (bucket, path COLLATE "C")`.
//!
//! No directory table: the children of a directory `P` are found by probes of the unique index,
//! each one `LIMIT 1` range lookup, so a page of `n` entries costs a few probes per entry
//! whatever the size of the bucket.
//!
//! # Order
//! Entries are sorted by the bytes of their UTF-8 name, as the port asks, files and
//! sub-directories together. A file and a sub-directory may share a name (`P/a` and `P/a/b`
//! can both exist); the file comes first, then the directory. The cursor `after` is a name:
//! the next page starts strictly after it, past both entries of that name.
//!
//! Path order is not name order: the directory `a` (paths `P/a/...`) sorts in path order after
//! the file `a.txt` (`.` is 0x2E, `/` is 0x2F) although the name `a` sorts before `a.txt`. So,
//! after finding the smallest path `p*` whose name `n*` follows the cursor, the scan checks the
//! directories named by the prefixes of `n*` that stop before a byte below `/` (`a` for `a.txt`,
//! `a` and `a-b` for `a-b.c`): the first that exists comes before `n*`. Proof sketch: any entry
//! with a smaller name than `n*` has a path greater than `p*`, so its name must be a proper
//! prefix `m` of `n*` followed in `n*` by a byte below `/`, and it must be a directory (the file
//! `P/m` would sort before `p*`).

use std::collections::HashMap;

use diesel::OptionalExtension;
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use storage_domain::model::DirPath;
use storage_domain::ports::ListEntry;

use super::Work;
use super::reads::prefix_upper_bound;
use crate::error::TxError;
use crate::rows::{FILE_COLUMNS, FILE_FROM, FileRow, PathRow};

type Conn = AsyncPgConnection;

#[derive(Debug, QueryableByName)]
struct OrdinalRow {
    #[diesel(sql_type = BigInt)]
    i: i64,
}

/// Where the scan stands.
enum Position {
    /// Before the first entry.
    Start,
    /// Past every entry named so (file and directory).
    AfterName(String),
    /// The file of this name was just listed; a directory of the same name may follow.
    AfterFile(String),
}

/// The child name of `path` under `dir`, and whether it is a sub-directory.
fn child_of<'p>(dir: &str, path: &'p str) -> (&'p str, bool) {
    let rest = path.get(dir.len()..).unwrap_or_default();
    match rest.find('/') {
        Some(i) => (&rest[..i], true),
        None => (rest, false),
    }
}

/// The smallest path in `[low, upper)` (`low` excluded when `exclusive`) (one probe of the
/// index).
async fn probe(
    c: &mut Conn,
    bucket: &str,
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
        .bind::<Text, _>(bucket)
        .bind::<Text, _>(low)
        .bind::<Text, _>(upper)
        .get_result(c)
        .await
        .optional()?;
    Ok(row.map(|r| r.path))
}

/// The smallest path under `dir` whose child name sorts after `after` (any child if `None`).
async fn next_path(
    c: &mut Conn,
    bucket: &str,
    dir: &str,
    upper: &str,
    after: Option<&str>,
) -> Result<Option<String>, TxError> {
    let Some(name) = after else {
        return probe(c, bucket, dir, true, upper).await;
    };
    // Names longer than `name` that continue with a byte below `/` lie strictly between
    // `dir||name` and `dir||name||'/'`; every other greater name is at or after
    // `dir||name||'0'`, which skips the directory `name` itself.
    let base = format!("{dir}{name}");
    let mut found = probe(c, bucket, &base, true, &format!("{base}/")).await?;
    if found.is_none() {
        found = probe(c, bucket, &format!("{base}0"), false, upper).await?;
    }
    // At or after `dir||name||'0'` also lie the directories named by a prefix of `name` cut
    // before a byte below `/` (`a/…` sorts after `a-b.c0`): their names sort before `name`,
    // so skip each subtree. At most one skip per such prefix.
    while let Some(path) = &found {
        let (child, _) = child_of(dir, path);
        if child > name {
            break;
        }
        found = probe(c, bucket, &format!("{dir}{child}0"), false, upper).await?;
    }
    Ok(found)
}

/// The first of `names` (in the given order) that is a non-empty sub-directory of `dir`.
async fn first_directory(
    c: &mut Conn,
    bucket: &str,
    dir: &str,
    names: &[String],
) -> Result<Option<usize>, TxError> {
    if names.is_empty() {
        return Ok(None);
    }
    let lows: Vec<String> = names.iter().map(|n| format!("{dir}{n}/")).collect();
    let highs: Vec<String> = names.iter().map(|n| format!("{dir}{n}0")).collect();
    let row: Option<OrdinalRow> = diesel::sql_query(
        "SELECT t.i FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(lo, hi, i) \
         WHERE EXISTS (SELECT 1 FROM files f \
                       WHERE f.bucket = $1 AND f.path >= t.lo AND f.path < t.hi) \
         ORDER BY t.i LIMIT 1",
    )
    .bind::<Text, _>(bucket)
    .bind::<Array<Text>, _>(lows)
    .bind::<Array<Text>, _>(highs)
    .get_result(c)
    .await
    .optional()?;
    Ok(row.and_then(|r| usize::try_from(r.i - 1).ok()))
}

pub(crate) fn list_children(
    c: &mut Conn,
    (dir, after, limit): (DirPath, Option<String>, u32),
) -> Work<'_, Vec<ListEntry>> {
    Box::pin(async move {
        let bucket = dir.bucket().as_str();
        let prefix = dir.as_str();
        let upper = prefix_upper_bound(prefix);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // (name, is_directory), in listing order.
        let mut found: Vec<(String, bool)> = Vec::new();
        let mut position = after.map_or(Position::Start, Position::AfterName);
        while found.len() < limit {
            position = match position {
                Position::AfterFile(name) => {
                    if first_directory(c, bucket, prefix, std::slice::from_ref(&name))
                        .await?
                        .is_some()
                    {
                        found.push((name.clone(), true));
                    }
                    Position::AfterName(name)
                }
                Position::Start | Position::AfterName(_) => {
                    let cursor = match &position {
                        Position::AfterName(name) => Some(name.as_str()),
                        _ => None,
                    };
                    let Some(path) = next_path(c, bucket, prefix, &upper, cursor).await? else {
                        break;
                    };
                    let (name, is_dir) = child_of(prefix, &path);
                    // Directories named by a prefix of `name` cut before a byte below '/'.
                    let shorter: Vec<String> = name
                        .bytes()
                        .enumerate()
                        .filter(|&(i, b)| i > 0 && b < b'/')
                        .map(|(i, _)| name[..i].to_owned())
                        .filter(|m| cursor.is_none_or(|k| m.as_str() > k))
                        .collect();
                    if let Some(i) = first_directory(c, bucket, prefix, &shorter).await? {
                        let m = shorter[i].clone();
                        found.push((m.clone(), true));
                        Position::AfterName(m)
                    } else if is_dir {
                        found.push((name.to_owned(), true));
                        Position::AfterName(name.to_owned())
                    } else {
                        found.push((name.to_owned(), false));
                        Position::AfterFile(name.to_owned())
                    }
                }
            };
        }

        let file_paths: Vec<String> = found
            .iter()
            .filter(|(_, d)| !d)
            .map(|(n, _)| format!("{prefix}{n}"))
            .collect();
        let mut files = HashMap::with_capacity(file_paths.len());
        if !file_paths.is_empty() {
            let rows: Vec<FileRow> = diesel::sql_query(format!(
                "SELECT {FILE_COLUMNS} FROM {FILE_FROM} WHERE f.bucket = $1 AND f.path = ANY($2)"
            ))
            .bind::<Text, _>(bucket)
            .bind::<Array<Text>, _>(&file_paths)
            .load(c)
            .await?;
            for row in rows {
                let record = row.into_record()?;
                files.insert(record.path.as_str().to_owned(), record);
            }
        }
        let mut entries = Vec::with_capacity(found.len());
        for (name, is_dir) in found {
            if is_dir {
                entries.push(ListEntry::Directory { name });
            } else {
                let record = files.remove(&format!("{prefix}{name}")).ok_or_else(|| {
                    storage_domain::ports::RepoError::Internal("listing snapshot broke".into())
                })?;
                entries.push(ListEntry::File(Box::new(record)));
            }
        }
        Ok(entries)
    })
}
