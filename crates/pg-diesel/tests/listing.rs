//! The listing scan (the `list_children` SQL function) against a brute-force listing of random
//! trees whose names mix the bytes around `/` (`-`, `.`, `0`), spaces and non-ASCII letters:
//! every page size, every cursor, every directory.

use std::collections::BTreeMap;
use std::path::Path;

use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::{Rng, SeedableRng, rngs::StdRng};
use storage_domain::model::{BucketKind, DirPath};
use storage_domain::ports::{ListEntry, MetadataStore};
use storage_pg_diesel::{PgConfig, PgMetadataStore, run_migrations};
use storage_test_support::postgres::{TestDatabase, fingerprint_dir};

/// Name pieces chosen to sit around `/` (0x2F) in byte order: `-` 0x2D, `.` 0x2E, `0` 0x30.
const PIECES: [&str; 9] = ["a", "a-b", "a.b", "a0", "b", "-", ".x", "é", "a b"];

fn random_name(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..=2);
    (0..n)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

/// The expected children of `dir`: names in byte order, a file before the directory of the
/// same name.
fn expected(paths: &[String], dir: &str) -> Vec<(String, bool)> {
    let mut children: BTreeMap<(Vec<u8>, bool), String> = BTreeMap::new();
    for p in paths {
        let Some(rest) = p.strip_prefix(dir) else {
            continue;
        };
        match rest.find('/') {
            Some(i) => children.insert((rest.as_bytes()[..i].to_vec(), true), rest[..i].into()),
            None => children.insert((rest.as_bytes().to_vec(), false), rest.into()),
        };
    }
    children
        .into_iter()
        .map(|((_, is_dir), name)| (name, is_dir))
        .collect()
}

fn entry(e: &ListEntry) -> (String, bool) {
    match e {
        ListEntry::Directory { name } => (name.clone(), true),
        ListEntry::File(f) => (
            f.path
                .as_str()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            false,
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_match_a_brute_force_listing_of_random_trees() {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let db = TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
        run_migrations(&url).await.map(|_| ())
    })
    .await;
    let store = PgMetadataStore::new(&PgConfig::new(db.url())).unwrap();
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let mut rng = StdRng::seed_from_u64(0x5354_4f52);
    for tree in 0..4 {
        let owner = format!("o{tree}");
        let mut paths: Vec<String> = (0..rng.random_range(5..40))
            .map(|_| {
                let depth = rng.random_range(1..=3);
                let segments: Vec<String> = (0..depth).map(|_| random_name(&mut rng)).collect();
                format!("/users/{owner}/{}", segments.join("/"))
            })
            .collect();
        paths.sort();
        paths.dedup();
        // A file cannot also be a directory prefix of itself: all such pairs are allowed here
        // (`a` and `a/b` may both exist), as in the store.
        diesel::sql_query(
            "INSERT INTO files (id, bucket, path, created_by, version, status, size, \
             content_type, sha256) \
             SELECT gen_random_uuid(), 'users', p, 'o', 1, 'draft', 0, 'text/plain', \
             'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
             FROM unnest($1::text[]) AS p",
        )
        .bind::<Array<Text>, _>(&paths)
        .execute(&mut conn)
        .await
        .unwrap();

        // Every directory that has children, and the owner's root.
        let mut dirs: Vec<String> = vec![format!("/users/{owner}/")];
        for p in &paths {
            let mut at = 0;
            while let Some(i) = p[at..].find('/') {
                at += i + 1;
                if at > format!("/users/{owner}/").len() {
                    dirs.push(p[..at].to_owned());
                }
            }
        }
        dirs.sort();
        dirs.dedup();
        for dir in &dirs {
            let want = expected(&paths, dir);
            let dir_path = DirPath::parse(BucketKind::Users, dir).unwrap();
            // The port's cursor is a name: a page starts strictly after it, past both the file
            // and the directory of that name.
            let mut cursors: Vec<Option<String>> = vec![None];
            cursors.extend(want.iter().map(|(n, _)| Some(n.clone())));
            cursors.push(Some(random_name(&mut rng)));
            for after in cursors {
                for limit in [1u32, 3, 1000] {
                    let page = store
                        .list_children(&dir_path, after.clone(), limit)
                        .await
                        .unwrap();
                    let got: Vec<(String, bool)> = page.iter().map(entry).collect();
                    let expect: Vec<(String, bool)> = want
                        .iter()
                        .filter(|(n, _)| after.as_ref().is_none_or(|a| n.as_bytes() > a.as_bytes()))
                        .take(limit as usize)
                        .cloned()
                        .collect();
                    assert_eq!(
                        got, expect,
                        "{dir} after {after:?} limit {limit}; paths {paths:#?}"
                    );
                }
            }
        }
    }
}
