//! Directory listings by a loose index scan over the unique index on `files (bucket, path)`,
//! whose paths compare byte by byte (PostgreSQL's `COLLATE "C"`, SQLite's `BINARY`).
//!
//! No directory table: the children of a directory `P` are found by probes of the index, each a
//! `LIMIT 1` range lookup ([`PathIndex`]), so a page of `n` entries costs a few probes per entry
//! whatever the size of the bucket. The scan ([`scan_children`]) is written once; each adapter
//! answers the probes.
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
use std::future::Future;

use storage_domain::model::FileRecord;
use storage_domain::ports::{ListEntry, RepoError};

/// The exclusive upper bound of the paths under `dir` (which ends with `/`): the same string
/// with its last `/` (0x2F) replaced by `0` (0x30), the next byte. `path >= dir AND path < upper`
/// is the prefix as an index range.
pub fn prefix_upper_bound(dir: &str) -> String {
    let mut upper = dir.strip_suffix('/').unwrap_or(dir).to_owned();
    upper.push('0');
    upper
}

/// The child name of `path` under `dir`, and whether it is a sub-directory.
pub fn child_of<'p>(dir: &str, path: &'p str) -> (&'p str, bool) {
    let rest = path.get(dir.len()..).unwrap_or_default();
    match rest.find('/') {
        Some(i) => (&rest[..i], true),
        None => (rest, false),
    }
}

/// The probes the scan needs, over the paths of one bucket, inside one read snapshot.
pub trait PathIndex {
    type Error;

    /// The smallest path in `[low, upper)` (`low` excluded when `exclusive`).
    fn first_path(
        &mut self,
        low: &str,
        exclusive: bool,
        upper: &str,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// The position in `ranges` of the first `[low, high)` that holds a path.
    fn first_nonempty(
        &mut self,
        ranges: &[(String, String)],
    ) -> impl Future<Output = Result<Option<usize>, Self::Error>> + Send;
}

/// The smallest path under `dir` whose child name sorts after `after` (any child if `None`).
async fn next_path<I: PathIndex + Send>(
    index: &mut I,
    dir: &str,
    upper: &str,
    after: Option<&str>,
) -> Result<Option<String>, I::Error> {
    let Some(name) = after else {
        return index.first_path(dir, true, upper).await;
    };
    // Names longer than `name` that continue with a byte below `/` lie strictly between
    // `dir||name` and `dir||name||'/'`; every other greater name is at or after
    // `dir||name||'0'`, which skips the directory `name` itself.
    let base = format!("{dir}{name}");
    let mut found = index.first_path(&base, true, &format!("{base}/")).await?;
    if found.is_none() {
        found = index.first_path(&format!("{base}0"), false, upper).await?;
    }
    // At or after `dir||name||'0'` also lie the directories named by a prefix of `name` cut
    // before a byte below `/` (`a/…` sorts after `a-b.c0`): their names sort before `name`,
    // so skip each subtree. At most one skip per such prefix.
    while let Some(path) = &found {
        let (child, _) = child_of(dir, path);
        if child > name {
            break;
        }
        found = index
            .first_path(&format!("{dir}{child}0"), false, upper)
            .await?;
    }
    Ok(found)
}

/// The first of `names` (in the given order) that is a non-empty sub-directory of `dir`.
async fn first_directory<I: PathIndex + Send>(
    index: &mut I,
    dir: &str,
    names: &[String],
) -> Result<Option<usize>, I::Error> {
    if names.is_empty() {
        return Ok(None);
    }
    let ranges: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("{dir}{n}/"), format!("{dir}{n}0")))
        .collect();
    index.first_nonempty(&ranges).await
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

/// The direct children of `dir` (a directory path, ending with `/`) whose name sorts after
/// `after`, in listing order, at most `limit`: `(name, is_directory)`.
pub async fn scan_children<I: PathIndex + Send>(
    index: &mut I,
    dir: &str,
    after: Option<String>,
    limit: u32,
) -> Result<Vec<(String, bool)>, I::Error> {
    let upper = prefix_upper_bound(dir);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut found: Vec<(String, bool)> = Vec::new();
    let mut position = after.map_or(Position::Start, Position::AfterName);
    while found.len() < limit {
        position = match position {
            Position::AfterFile(name) => {
                if first_directory(index, dir, std::slice::from_ref(&name))
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
                let Some(path) = next_path(index, dir, &upper, cursor).await? else {
                    break;
                };
                let (name, is_dir) = child_of(dir, &path);
                // Directories named by a prefix of `name` cut before a byte below '/'.
                let shorter: Vec<String> = name
                    .bytes()
                    .enumerate()
                    .filter(|&(i, b)| i > 0 && b < b'/')
                    .map(|(i, _)| name[..i].to_owned())
                    .filter(|m| cursor.is_none_or(|k| m.as_str() > k))
                    .collect();
                if let Some(i) = first_directory(index, dir, &shorter).await? {
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
    Ok(found)
}

/// The paths of the files among `found` (to read their records in one query).
pub fn file_paths(dir: &str, found: &[(String, bool)]) -> Vec<String> {
    found
        .iter()
        .filter(|(_, d)| !d)
        .map(|(n, _)| format!("{dir}{n}"))
        .collect()
}

/// The entries of the page, from the scan's names and the records of its files.
pub fn assemble(
    dir: &str,
    found: Vec<(String, bool)>,
    records: Vec<FileRecord>,
) -> Result<Vec<ListEntry>, RepoError> {
    let mut files: HashMap<String, FileRecord> = records
        .into_iter()
        .map(|r| (r.path.as_str().to_owned(), r))
        .collect();
    let mut entries = Vec::with_capacity(found.len());
    for (name, is_dir) in found {
        if is_dir {
            entries.push(ListEntry::Directory { name });
        } else {
            let record = files
                .remove(&format!("{dir}{name}"))
                .ok_or_else(|| RepoError::Internal("listing snapshot broke".into()))?;
            entries.push(ListEntry::File(Box::new(record)));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::convert::Infallible;
    use std::task::{Context, Poll, Waker};

    use super::*;

    #[test]
    fn upper_bound_is_the_byte_after_the_slash() {
        assert_eq!(prefix_upper_bound("/projects/1/docs/"), "/projects/1/docs0");
        assert!(
            "/projects/1/docs/zzz\u{10FFFF}" < prefix_upper_bound("/projects/1/docs/").as_str()
        );
        assert!("/projects/1/docs0" >= prefix_upper_bound("/projects/1/docs/").as_str());
    }

    /// Paths in a sorted set: the scan against an index that cannot be wrong.
    struct Sorted(BTreeSet<String>);

    impl PathIndex for Sorted {
        type Error = Infallible;

        async fn first_path(
            &mut self,
            low: &str,
            exclusive: bool,
            upper: &str,
        ) -> Result<Option<String>, Infallible> {
            Ok(self
                .0
                .iter()
                .find(|p| {
                    (if exclusive {
                        p.as_str() > low
                    } else {
                        p.as_str() >= low
                    }) && p.as_str() < upper
                })
                .cloned())
        }

        async fn first_nonempty(
            &mut self,
            ranges: &[(String, String)],
        ) -> Result<Option<usize>, Infallible> {
            Ok(ranges.iter().position(|(lo, hi)| {
                self.0
                    .iter()
                    .any(|p| p.as_str() >= lo.as_str() && p.as_str() < hi.as_str())
            }))
        }
    }

    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the sorted index never waits"),
        }
    }

    #[test]
    fn names_in_byte_order_each_directory_once() {
        let mut index = Sorted(
            [
                "/d/a.txt", "/d/a/1", "/d/a/2", "/d/a-b.c", "/d/a-b/x", "/d/b", "/d/b/c",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        );
        let all = ready(scan_children(&mut index, "/d/", None, 100)).unwrap();
        let shown: Vec<String> = all
            .iter()
            .map(|(n, d)| if *d { format!("{n}/") } else { n.clone() })
            .collect();
        assert_eq!(shown, ["a/", "a-b/", "a-b.c", "a.txt", "b", "b/"]);
        let page = ready(scan_children(&mut index, "/d/", Some("a-b".into()), 2)).unwrap();
        assert_eq!(
            page,
            [("a-b.c".to_owned(), false), ("a.txt".to_owned(), false)]
        );
    }
}
