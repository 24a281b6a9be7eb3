//! SQLite-specific behaviour of the adapter: migrations, reopening a file, a database locked by
//! another connection, two stores on one file, dropped futures, and a small timing of the hot
//! paths (printed, not asserted).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use storage_domain::model::{AuditAction, VersionStatus};
use storage_domain::ports::{AcquireLock, RepoError};
use storage_sqlite_diesel::{
    MigrationError, OpenError, SqliteConfig, SqliteMetadataStore, revert_all, run_migrations,
};
use storage_test_support::{
    metadata_contract::{
        Store, UPSERT, audit_of, dir, draft, file, lock, new_version, reserve, upload, user,
    },
    timing,
};
use tempfile::TempDir;

fn temp() -> TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"))
}

fn db_file(dir: &TempDir) -> PathBuf {
    dir.path().join("nested").join("metadata.db")
}

fn location(path: &Path) -> String {
    path.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {}", path.display()))
        .to_owned()
}

async fn open(path: &Path, tune: impl FnOnce(&mut SqliteConfig)) -> Store {
    let mut config = SqliteConfig::default();
    tune(&mut config);
    Arc::new(
        SqliteMetadataStore::open(&location(path), config)
            .await
            .unwrap_or_else(|e| panic!("open: {e}")),
    )
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut SqliteConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

const TABLES: &str = "SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name IN \
     ('files', 'versions', 'locks', 'upload_reservations', 'audit_events', 'pending_deletions')";

#[tokio::test(flavor = "multi_thread")]
async fn migrations_run_up_down_and_up_again() {
    let tmp = temp();
    let path = db_file(&tmp);
    let url = format!("sqlite://{}", path.display());
    assert!(!path.exists());

    let applied = run_migrations(&url).await.unwrap();
    assert!(!applied.is_empty());
    assert!(path.exists(), "the file and its directory are created");
    let mut conn = SqliteConnection::establish(&location(&path)).unwrap();
    assert_eq!(count(&mut conn, TABLES), 6);
    assert!(
        run_migrations(&url).await.unwrap().is_empty(),
        "nothing left to apply"
    );

    let reverted = revert_all(&url).await.unwrap();
    assert_eq!(reverted.len(), applied.len());
    assert_eq!(count(&mut conn, TABLES), 0);

    assert_eq!(run_migrations(&url).await.unwrap(), applied);
    assert_eq!(count(&mut conn, TABLES), 6);
    drop(conn);
    // The schema works after the round trip.
    let store = open(&path, |_| {}).await;
    upload(
        &store,
        &file("/projects/p1/after-roundtrip.txt"),
        &user("alice"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_locations_are_refused() {
    for bad in [
        ":memory:",
        "sqlite::memory:",
        "file:x.db?mode=memory",
        "sqlite://",
        "",
    ] {
        assert!(
            matches!(
                SqliteMetadataStore::open(bad, SqliteConfig::default()).await,
                Err(OpenError::Location(_))
            ),
            "{bad:?}"
        );
    }
    // A directory where the file should be cannot be opened: an error, not a hang.
    let tmp = temp();
    let started = Instant::now();
    let opened = SqliteMetadataStore::open(&location(tmp.path()), SqliteConfig::default()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    match opened {
        Err(OpenError::Migration(MigrationError::Connect(_))) => {}
        Err(other) => panic!("a directory must fail to open as a database file, got {other:?}"),
        Ok(_) => panic!("a directory was opened as a database"),
    }
}

/// Closing the store and opening the file again finds every row: files, versions, locks,
/// audit, reservations and the deletion queue; migrations are not applied twice.
#[tokio::test(flavor = "multi_thread")]
async fn reopening_a_file_keeps_the_data() {
    let tmp = temp();
    let path = db_file(&tmp);
    let alice = user("alice");
    let p = file("/projects/p1/kept.txt");
    let (f, v1) = {
        let store = open(&path, |_| {}).await;
        let (f, v1) = upload(&store, &p, &alice).await;
        upload(&store, &p, &alice).await;
        lock(&store, &f, &alice, Duration::from_secs(600))
            .await
            .unwrap();
        reserve(&store, &p, &alice).await;
        (f, v1)
    };
    let store = open(&path, |_| {}).await;
    let again = store.find_file(&p).await.unwrap().unwrap();
    assert_eq!(again.id, f.id);
    assert_eq!(again.version.get(), 2);
    assert_eq!(again.lock.map(|l| l.holder), Some(alice.clone()));
    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        2
    );
    assert_eq!(store.find_version(v1.id).await.unwrap().unwrap().1, v1);
    assert_eq!(audit_of(&store, &p).await.len(), 3);
    assert_eq!(
        store
            .list_locks(&dir("/projects/p1/"), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Another connection holds SQLite's write lock: a unit of work gives `Unavailable` after
/// `busy_timeout`, the writes queued behind it after `wait_timeout` (while the first still
/// waits), reads still answer (WAL), and everything works again once the lock is gone.
///
/// Timing (`storage_test_support::timing`): each refusal comes not before its timeout and
/// within it plus the margin; the two timeouts are far enough apart (0.3 s and 2.5 s) that the
/// margin cannot blur which one answered.
#[tokio::test(flavor = "multi_thread")]
async fn locked_database_is_unavailable_within_the_bounded_wait() {
    const WAIT: Duration = Duration::from_millis(300);
    const BUSY: Duration = Duration::from_millis(2500);
    let tmp = temp();
    let path = db_file(&tmp);
    let store = open(&path, |c| {
        c.busy_timeout = BUSY;
        c.wait_timeout = WAIT;
    })
    .await;
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/held.txt"), &alice).await;

    let mut blocker = SqliteConnection::establish(&location(&path)).unwrap();
    blocker.batch_execute("BEGIN IMMEDIATE").unwrap();

    let stuck = {
        let store = store.clone();
        let f = f.clone();
        let alice = alice.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = store
                .acquire_lock(AcquireLock {
                    file_id: f.id,
                    holder: alice.clone(),
                    ttl: Duration::from_secs(60),
                    audit: draft(AuditAction::Lock, &alice, &f.path),
                })
                .await;
            (result, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The writer is taken by the stuck unit of work: the next write waits `wait_timeout`.
    let started = Instant::now();
    let queued = lock(&store, &f, &user("bob"), Duration::from_secs(60)).await;
    let waited = started.elapsed();
    assert!(
        matches!(queued, Err(RepoError::Unavailable(_))),
        "{queued:?}"
    );
    timing::assert_timed_out("the queued write", waited, WAIT);
    assert!(
        !stuck.is_finished(),
        "the queued write was refused by its own wait, not after the stuck one gave up"
    );
    // Reads do not wait for the writer: answered (at most a reader connection's wait) while it
    // still holds the lock.
    let started = Instant::now();
    assert_eq!(store.find_file_by_id(f.id).await.unwrap().unwrap().id, f.id);
    timing::assert_within("a read", started.elapsed(), WAIT);
    assert!(!stuck.is_finished(), "the read did not wait for the writer");

    let (result, took) = stuck.await.unwrap();
    assert!(
        matches!(result, Err(RepoError::Unavailable(_))),
        "{result:?}"
    );
    timing::assert_timed_out("the stuck unit of work", took, BUSY);
    blocker.batch_execute("ROLLBACK").unwrap();
    // The refused unit of work left nothing, and the store works again.
    assert_eq!(
        store.find_file_by_id(f.id).await.unwrap().unwrap().lock,
        None
    );
    assert_eq!(audit_of(&store, &f.path).await.len(), 1);
    lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
}

/// Two stores on one file (two service instances, two writers): `BEGIN IMMEDIATE` serialises
/// their decisions in the database. One lock winner per round; commits numbered without gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_decide_atomically() {
    let tmp = temp();
    let path = db_file(&tmp);
    let stores = [open(&path, |_| {}).await, open(&path, |_| {}).await];
    let alice = user("alice");
    let (f, _) = upload(&stores[0], &file("/projects/p1/shared.txt"), &alice).await;

    for round in 0..10 {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = stores[i % 2].clone();
                let f = f.clone();
                tokio::spawn(async move {
                    let me = user(&format!("taker-{i}"));
                    lock(&store, &f, &me, Duration::from_secs(60)).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(l) => winners.push(l),
                Err(RepoError::FileLocked(_)) => {}
                Err(e) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        store_release(&stores[round % 2], &f, &winners[0].holder).await;
    }

    let path_b = file("/projects/p1/numbered.bin");
    let mut reservations = Vec::new();
    for i in 0..20 {
        reservations.push(reserve(&stores[i % 2], &path_b, &user(&format!("w{i}"))).await);
    }
    let tasks: Vec<_> = reservations
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                store
                    .commit_version(new_version(&r, UPSERT, VersionStatus::Draft))
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().unwrap().1.number.get());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<u32>>());
}

async fn store_release(
    store: &Store,
    f: &storage_domain::model::FileRecord,
    holder: &storage_domain::model::UserId,
) {
    store
        .release_lock(storage_domain::ports::ReleaseLock {
            file_id: f.id,
            actor: holder.clone(),
            force: false,
            audit: draft(AuditAction::Unlock, holder, &f.path),
        })
        .await
        .unwrap_or_else(|e| panic!("release: {e}"))
        .unwrap_or_else(|| panic!("nothing to release"));
}

/// Callers dropped at any point of a unit of work leave every unit of work whole or absent, and
/// the store usable.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_callers_leave_whole_units_of_work() {
    let tmp = temp();
    let path = db_file(&tmp);
    let store = open(&path, |_| {}).await;
    let p = file("/projects/p1/dropped.txt");
    let alice = user("alice");
    let mut answered = 0;
    for i in 0..60u64 {
        let r = reserve(&store, &p, &alice).await;
        let unit = store.commit_version(new_version(&r, UPSERT, VersionStatus::Draft));
        match i % 3 {
            // Dropped before it is polled: nothing happens.
            0 => drop(unit),
            // Dropped after two polls: the transaction has started on its blocking thread (or
            // the caller was still waiting for the writer).
            1 => {
                tokio::select! {
                    biased;
                    result = unit => match result {
                        Ok(_) => answered += 1,
                        Err(e) => panic!("a unit of work that answered failed: {e:?}"),
                    },
                    () = tokio::task::yield_now() => {}
                }
            }
            _ => {
                unit.await.unwrap();
                answered += 1;
            }
        }
    }
    // Let the detached blocking tasks finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let f = store.find_file(&p).await.unwrap().unwrap();
    let versions = store.list_versions(f.id, None, 1000).await.unwrap();
    assert_eq!(
        versions.len() as u32,
        f.version.get(),
        "numbers 1..=n, no gap"
    );
    let mut conn = SqliteConnection::establish(&location(&path)).unwrap();
    let completed = count(
        &mut conn,
        "SELECT count(*) AS n FROM upload_reservations WHERE completed_version IS NOT NULL",
    );
    assert_eq!(completed, versions.len() as i64, "a version per completion");
    let events = count(&mut conn, "SELECT count(*) AS n FROM audit_events");
    assert_eq!(events, versions.len() as i64, "an audit event per version");
    assert!(
        versions.len() > answered,
        "units of work whose caller was dropped ran to their end ({} > {answered})",
        versions.len()
    );
    // The writer still works.
    upload(&store, &p, &alice).await;
}

fn summary(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let mean = total / samples.len() as u32;
    let p50 = samples[samples.len() / 2];
    let p95 = samples[samples.len() * 95 / 100];
    format!(
        "{name}: n={} mean={:.3} ms p50={:.3} ms p95={:.3} ms",
        samples.len(),
        mean.as_secs_f64() * 1e3,
        p50.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3
    )
}

/// The time of one `acquire_lock` and one `commit_version` (the reservation made beforehand),
/// 200 of each, one caller at a time, and of a listing page. Printed for the record
/// (`--nocapture`), not asserted.
#[tokio::test(flavor = "multi_thread")]
async fn timing_of_lock_and_commit() {
    let tmp = temp();
    let store = open(&db_file(&tmp), |_| {}).await;
    let alice = user("alice");
    let path = file("/projects/p1/bench.bin");
    let (f, _) = upload(&store, &path, &alice).await;
    let iterations = 200;

    let mut locks = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let cmd = AcquireLock {
            file_id: f.id,
            holder: alice.clone(),
            ttl: Duration::from_secs(60),
            audit: draft(AuditAction::Lock, &alice, &path),
        };
        let started = Instant::now();
        store.acquire_lock(cmd).await.unwrap();
        locks.push(started.elapsed());
    }
    let mut commits = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let r = reserve(&store, &path, &alice).await;
        let cmd = new_version(&r, UPSERT, VersionStatus::Draft);
        let started = Instant::now();
        store.commit_version(cmd).await.unwrap();
        commits.push(started.elapsed());
    }
    println!("{}", summary("acquire_lock (refresh)", locks));
    println!("{}", summary("commit_version", commits));

    // A listing page of 100 entries (files with extensions, and sub-directories) out of 300.
    for i in 0..300 {
        let p = if i % 3 == 0 {
            format!("/projects/p1/list/d{i:03}/x.txt")
        } else {
            format!("/projects/p1/list/f{i:03}.txt")
        };
        upload(&store, &file(&p), &alice).await;
    }
    let list = dir("/projects/p1/list/");
    let mut pages = Vec::with_capacity(20);
    for _ in 0..20 {
        let started = Instant::now();
        let page = store
            .list_children(&list, Some("d100".into()), 100)
            .await
            .unwrap();
        pages.push(started.elapsed());
        assert_eq!(page.len(), 100);
    }
    println!("{}", summary("list_children (page of 100)", pages));
    assert_eq!(
        store.find_file(&path).await.unwrap().unwrap().version.get(),
        iterations as u32 + 1
    );
}
