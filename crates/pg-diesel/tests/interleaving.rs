//! Fresh lock decisions under READ COMMITTED, made deterministic with two connections.
//!
//! A second session (`other`) opens a transaction that changes a file's lock the way a lock
//! acquisition or release does (the file row locked, then the `locks` row written) and keeps it
//! open. The store then starts a write on the same file: it must wait for the file row. Once
//! PostgreSQL shows it waiting, `other` commits. The write must decide on the lock as committed,
//! not on what it read before it waited (a `SELECT … LEFT JOIN locks … FOR UPDATE OF files`
//! that waited returns the joined lock row of its statement snapshot, taken before the wait).
//!
//! The reverse holds too: a lock acquisition waits for a write holding the file row.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use storage_domain::model::{AuditAction, FileRecord, Lock, Tags, VersionStatus};
use storage_domain::ports::{
    AcquireLock, DeleteFile, ReleaseLock, RepoError, SetArchived, SetTags, WriteMode,
};
use storage_pg_diesel::{PgConfig, PgMetadataStore, run_migrations};
use storage_test_support::metadata_contract::{
    Store, UPSERT, draft, file, lock, new_version, reserve, upload, user,
};
use storage_test_support::postgres::{TestDatabase, fingerprint_dir};

async fn database() -> TestDatabase {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
        run_migrations(&url).await.map(|_| ())
    })
    .await
}

fn store_on(db: &TestDatabase) -> Store {
    let mut config = PgConfig::new(db.url());
    config.max_size = 4;
    Arc::new(PgMetadataStore::new(&config).unwrap_or_else(|e| panic!("pool: {e}")))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Waits until a session of this database waits for a lock (the store's write, behind
/// `other`'s row lock). Bounded: a write that does not wait fails the test.
async fn until_a_session_waits(watcher: &mut AsyncPgConnection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result::<Count>(watcher)
        .await
        .unwrap_or_else(|e| panic!("pg_stat_activity: {e}"))
        .n;
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the store's write never waited for the file row"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What `other` does in its open transaction, after locking the file row.
#[derive(Clone, Copy)]
enum LockChange {
    /// Bob takes the lock (an acquisition).
    BobTakes,
    /// The lock row is removed (a release or a force-unlock).
    Released,
}

/// A session that locked `f`'s row and changed its lock, still open.
async fn open_lock_change(
    db: &TestDatabase,
    f: &FileRecord,
    change: LockChange,
) -> AsyncPgConnection {
    let mut other = AsyncPgConnection::establish(db.url()).await.unwrap();
    exec(&mut other, "BEGIN").await;
    diesel::sql_query("SELECT id FROM files WHERE id = $1 FOR UPDATE")
        .bind::<SqlUuid, _>(f.id.as_uuid())
        .execute(&mut other)
        .await
        .unwrap();
    match change {
        LockChange::BobTakes => {
            diesel::sql_query(
                "INSERT INTO locks (file_id, bucket, path, holder, acquired_at, expires_at, \
                                    base_version) \
                 VALUES ($1, 'projects', $2, 'bob', now(), now() + interval '1 hour', 1) \
                 ON CONFLICT (file_id) DO UPDATE SET holder = EXCLUDED.holder, \
                     acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at, \
                     base_version = EXCLUDED.base_version",
            )
            .bind::<SqlUuid, _>(f.id.as_uuid())
            .bind::<Text, _>(f.path.as_str())
            .execute(&mut other)
            .await
            .unwrap();
        }
        LockChange::Released => {
            diesel::sql_query("DELETE FROM locks WHERE file_id = $1")
                .bind::<SqlUuid, _>(f.id.as_uuid())
                .execute(&mut other)
                .await
                .unwrap();
        }
    }
    other
}

type Outcome = Result<(), RepoError>;

/// Runs `write` on the store while `other` holds `change` open, commits `other` once the write
/// waits, and returns what the write answered.
async fn interleave(
    db: &TestDatabase,
    f: &FileRecord,
    change: LockChange,
    write: impl Future<Output = Outcome> + Send + 'static,
) -> Outcome {
    let mut other = open_lock_change(db, f, change).await;
    let mut watcher = AsyncPgConnection::establish(db.url()).await.unwrap();
    let write = tokio::spawn(write);
    until_a_session_waits(&mut watcher).await;
    exec(&mut other, "COMMIT").await;
    tokio::time::timeout(Duration::from_secs(10), write)
        .await
        .expect("the write ends once the file row is free")
        .unwrap()
}

#[track_caller]
fn assert_locked_by_bob(what: &str, outcome: &Outcome) {
    assert!(
        matches!(outcome, Err(RepoError::FileLocked(l)) if l.holder == user("bob")),
        "{what} must see bob's lock committed while it waited, got {outcome:?}"
    );
}

/// Alice's upload waits behind bob's lock acquisition, then must be refused for bob's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_that_waited_sees_the_lock_taken_meanwhile() {
    let db = database().await;
    let store = store_on(&db);
    let (alice, path) = (user("alice"), file("/projects/p1/race-upload.txt"));
    let (f, _) = upload(&store, &path, &alice).await;
    let r = reserve(&store, &path, &alice).await;
    let writer = store.clone();
    let outcome = interleave(&db, &f, LockChange::BobTakes, async move {
        writer
            .commit_version(new_version(&r, UPSERT, VersionStatus::Draft))
            .await
            .map(drop)
    })
    .await;
    assert_locked_by_bob("an upload", &outcome);
    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        1,
        "no version added"
    );
}

/// Tags, archive and delete by alice wait behind bob's acquisition, then are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tags_archive_and_delete_that_waited_see_the_lock_taken_meanwhile() {
    let db = database().await;
    let store = store_on(&db);
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/race-tags.txt"), &alice).await;

    let (writer, cmd) = (
        store.clone(),
        SetTags {
            file_id: f.id,
            actor: alice.clone(),
            tags: Tags::from_iter([("k".to_owned(), serde_json::json!("v"))]),
            audit: draft(AuditAction::UpdateTags, &alice, &f.path),
        },
    );
    let outcome = interleave(&db, &f, LockChange::BobTakes, async move {
        writer.set_tags(cmd).await.map(drop)
    })
    .await;
    assert_locked_by_bob("a tag change", &outcome);

    let (writer, cmd) = (
        store.clone(),
        SetArchived {
            file_id: f.id,
            actor: alice.clone(),
            archived: true,
            audit: draft(AuditAction::Archive, &alice, &f.path),
        },
    );
    let outcome = interleave(&db, &f, LockChange::BobTakes, async move {
        writer.set_archived(cmd).await.map(drop)
    })
    .await;
    assert_locked_by_bob("an archive", &outcome);

    let (writer, cmd) = (
        store.clone(),
        DeleteFile {
            file_id: f.id,
            actor: alice.clone(),
            audit: draft(AuditAction::Delete, &alice, &f.path),
        },
    );
    let outcome = interleave(&db, &f, LockChange::BobTakes, async move {
        writer.delete_file(cmd).await.map(drop)
    })
    .await;
    assert_locked_by_bob("a delete", &outcome);
    let after = store
        .find_file_by_id(f.id)
        .await
        .unwrap()
        .expect("not deleted");
    assert!(after.tags.is_empty(), "tags unchanged");
    assert_ne!(
        after.status,
        storage_domain::model::FileStatus::Archived,
        "not archived"
    );
}

/// Alice's lock and unlock wait behind bob's acquisition, then are refused for bob's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_and_unlock_that_waited_see_the_lock_taken_meanwhile() {
    let db = database().await;
    let store = store_on(&db);
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/race-lock.txt"), &alice).await;

    let (writer, cmd) = (
        store.clone(),
        AcquireLock {
            file_id: f.id,
            holder: alice.clone(),
            ttl: Duration::from_secs(60),
            audit: draft(AuditAction::Lock, &alice, &f.path),
        },
    );
    let outcome = interleave(&db, &f, LockChange::BobTakes, async move {
        writer.acquire_lock(cmd).await.map(drop)
    })
    .await;
    assert_locked_by_bob("a lock", &outcome);

    let (writer, cmd) = (
        store.clone(),
        ReleaseLock {
            file_id: f.id,
            actor: alice.clone(),
            force: false,
            audit: draft(AuditAction::Unlock, &alice, &f.path),
        },
    );
    let outcome = interleave(&db, &f, LockChange::BobTakes, async move {
        writer.release_lock(cmd).await.map(drop)
    })
    .await;
    assert_locked_by_bob("an unlock", &outcome);
    let held: Option<Lock> = store.find_file_by_id(f.id).await.unwrap().unwrap().lock;
    assert_eq!(held.map(|l| l.holder), Some(user("bob")));
}

/// Alice's commit waits behind a force-unlock of her lock, then must find no lock to commit
/// under.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_that_waited_sees_its_lock_released_meanwhile() {
    let db = database().await;
    let store = store_on(&db);
    let (alice, path) = (user("alice"), file("/projects/p1/race-commit.txt"));
    let (f, _) = upload(&store, &path, &alice).await;
    lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    let workspace = storage_domain::model::FilePath::parse(
        storage_domain::model::BucketKind::Users,
        "/users/alice/ws/race-commit.txt",
    )
    .unwrap();
    let (ws, _) = upload(&store, &workspace, &alice).await;
    let r = reserve(&store, &path, &alice).await;
    let writer = store.clone();
    let outcome = interleave(&db, &f, LockChange::Released, async move {
        let mode = WriteMode::Commit {
            keep_lock: false,
            source: ws.id,
        };
        writer
            .commit_version(new_version(&r, mode, VersionStatus::PendingValidation))
            .await
            .map(drop)
    })
    .await;
    assert!(
        matches!(outcome, Err(RepoError::InvalidTransition(_))),
        "a commit must see its lock released while it waited, got {outcome:?}"
    );
    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        1,
        "no version added"
    );
}

/// The reverse order: a lock acquisition waits for a write that holds the file row, so it
/// cannot slip in between a write's decision and its commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_acquisition_waits_for_a_write_holding_the_file_row() {
    let db = database().await;
    let store = store_on(&db);
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/race-reverse.txt"), &alice).await;
    let mut writer = AsyncPgConnection::establish(db.url()).await.unwrap();
    exec(&mut writer, "BEGIN").await;
    diesel::sql_query("SELECT id FROM files WHERE id = $1 FOR UPDATE")
        .bind::<SqlUuid, _>(f.id.as_uuid())
        .execute(&mut writer)
        .await
        .unwrap();
    let mut watcher = AsyncPgConnection::establish(db.url()).await.unwrap();
    let taker = {
        let store = store.clone();
        let f = f.clone();
        tokio::spawn(async move { lock(&store, &f, &user("bob"), Duration::from_secs(60)).await })
    };
    until_a_session_waits(&mut watcher).await;
    assert!(!taker.is_finished(), "the acquisition waits for the writer");
    exec(&mut writer, "COMMIT").await;
    let taken = taker.await.unwrap().unwrap();
    assert_eq!(taken.holder, user("bob"));
}
