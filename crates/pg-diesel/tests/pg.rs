//! PostgreSQL-specific behaviour of the adapter: migrations, timeouts, a full pool, dropped
//! futures, and a small timing of the hot paths (printed, not asserted).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use storage_domain::model::AuditAction;
use storage_domain::ports::{AcquireLock, MetadataStore, RepoError};
use storage_pg_diesel::{PgConfig, PgMetadataStore, revert_all, run_migrations};
use storage_test_support::metadata_contract::{
    Store, UPSERT, draft, file, new_version, presigned, reserve, upload, user,
};
use storage_test_support::postgres::{TestDatabase, fingerprint_dir};
use storage_test_support::timing;

async fn database() -> TestDatabase {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
        run_migrations(&url).await.map(|_| ())
    })
    .await
}

fn store_on(db: &TestDatabase, tune: impl FnOnce(&mut PgConfig)) -> Store {
    let mut config = PgConfig::new(db.url());
    tune(&mut config);
    Arc::new(PgMetadataStore::new(&config).unwrap_or_else(|e| panic!("pool: {e}")))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

const TABLES: &str = "SELECT count(*) AS n FROM information_schema.tables \
     WHERE table_schema = 'public' AND table_name IN \
     ('files', 'versions', 'locks', 'upload_reservations', 'audit_events', 'pending_deletions')";

#[tokio::test(flavor = "multi_thread")]
async fn migrations_run_up_down_and_up_again() {
    let db = TestDatabase::empty().await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    assert_eq!(count(&mut conn, TABLES).await, 0);

    let applied = run_migrations(db.url()).await.unwrap();
    assert!(!applied.is_empty());
    assert_eq!(count(&mut conn, TABLES).await, 6);
    assert!(
        run_migrations(db.url()).await.unwrap().is_empty(),
        "nothing left to apply"
    );

    let reverted = revert_all(db.url()).await.unwrap();
    assert_eq!(reverted.len(), applied.len());
    assert_eq!(count(&mut conn, TABLES).await, 0);

    assert_eq!(run_migrations(db.url()).await.unwrap(), applied);
    assert_eq!(count(&mut conn, TABLES).await, 6);
    // The schema works after the round trip.
    drop(conn);
    let store = store_on(&db, |_| {});
    upload(
        &store,
        &file("/projects/p1/after-roundtrip.txt"),
        &user("alice"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_migration_runs_apply_each_migration_once() {
    let db = TestDatabase::empty().await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move { run_migrations(&url).await })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.extend(run.await.unwrap().unwrap());
    }
    let expected =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations"))
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count();
    assert_eq!(
        applied.len(),
        expected,
        "each migration applied exactly once: {applied:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_database_is_unavailable_fast() {
    let mut config = PgConfig::new("postgres://postgres@127.0.0.1:1/nowhere");
    config.create_timeout = Duration::from_secs(2);
    config.wait_timeout = Duration::from_secs(2);
    let store = PgMetadataStore::new(&config).unwrap();
    // Each call is refused within the time allowed to open a connection.
    let started = Instant::now();
    let health = store.health().await;
    timing::assert_within("health", started.elapsed(), config.create_timeout);
    assert!(
        matches!(health, Err(RepoError::Unavailable(_))),
        "{health:?}"
    );
    let started = Instant::now();
    let found = store.find_file(&file("/projects/p1/a")).await;
    timing::assert_within("find_file", started.elapsed(), config.create_timeout);
    assert!(matches!(found, Err(RepoError::Unavailable(_))), "{found:?}");
}

/// A statement stuck behind a row lock is cut by `statement_timeout`; meanwhile a full pool
/// answers `Unavailable` after its wait timeout instead of hanging.
///
/// Timing (`storage_test_support::timing`): each refusal comes not before its timeout and
/// within it plus the margin; the two timeouts (0.3 s and 2 s) are far enough apart that the
/// margin cannot blur which one answered.
#[tokio::test(flavor = "multi_thread")]
async fn full_pool_and_statement_timeout_answer_unavailable() {
    const WAIT: Duration = Duration::from_millis(300);
    const STATEMENT: Duration = Duration::from_secs(2);
    let db = database().await;
    let store = store_on(&db, |c| {
        c.max_size = 1;
        c.wait_timeout = WAIT;
        c.statement_timeout = STATEMENT;
    });
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/held.txt"), &alice).await;

    // Another session holds the file row.
    let mut blocker = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut blocker)
        .await
        .unwrap();
    diesel::sql_query("SELECT id FROM files WHERE path = $1 FOR UPDATE")
        .bind::<Text, _>(f.path.as_str())
        .execute(&mut blocker)
        .await
        .unwrap();

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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let full = store.health().await;
    let waited = started.elapsed();
    assert!(matches!(full, Err(RepoError::Unavailable(_))), "{full:?}");
    timing::assert_timed_out("a request on the full pool", waited, WAIT);
    assert!(
        !stuck.is_finished(),
        "the full pool answered by its own wait, not after the stuck statement ended"
    );

    let (result, took) = stuck.await.unwrap();
    assert!(
        matches!(result, Err(RepoError::Unavailable(_))),
        "{result:?}"
    );
    timing::assert_timed_out("the stuck statement", took, STATEMENT);
    diesel::sql_query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    // The pool's one connection is usable again.
    store.health().await.unwrap();
    assert!(
        store
            .find_file_by_id(f.id)
            .await
            .unwrap()
            .unwrap()
            .lock
            .is_none()
    );
}

/// Callers dropped at any point of a unit of work leave no transaction open and every unit of
/// work either whole or absent.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_callers_leave_no_open_transaction() {
    let db = database().await;
    let store = store_on(&db, |c| c.max_size = 4);
    let path = file("/projects/p1/dropped.txt");
    let alice = user("alice");
    let mut answered = 0;
    for i in 0..60u64 {
        let r = reserve(&store, &path, &alice).await;
        let cmd = new_version(&r, UPSERT, storage_domain::model::VersionStatus::Draft);
        // Cut the caller off after 0..3 ms: before, during or after the transaction.
        let outcome =
            tokio::time::timeout(Duration::from_millis(i % 4), store.commit_version(cmd)).await;
        if matches!(outcome, Ok(Ok(_))) {
            answered += 1;
        }
    }
    // Let the detached tasks finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let open = count(
        &mut conn,
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .await;
    assert_eq!(open, 0, "no transaction left open");
    let f = store.find_file(&path).await.unwrap().unwrap();
    let versions = store.list_versions(f.id, None, 1000).await.unwrap();
    assert_eq!(
        versions.len() as u32,
        f.version.get(),
        "numbers 1..=n, no gap"
    );
    let completed = count(
        &mut conn,
        "SELECT count(*) AS n FROM upload_reservations WHERE completed_version IS NOT NULL",
    )
    .await;
    assert_eq!(
        completed,
        versions.len() as i64,
        "a version per completed reservation"
    );
    let events = count(&mut conn, "SELECT count(*) AS n FROM audit_events").await;
    assert_eq!(events, versions.len() as i64, "an audit event per version");
    assert!(
        versions.len() > answered,
        "units of work whose caller was dropped ran to their end ({} > {answered})",
        versions.len()
    );
    // The pool still works.
    upload(&store, &path, &alice).await;
}

/// The store's connections to the test database (not this test's own), by backend pid.
async fn store_backends(conn: &mut AsyncPgConnection) -> Vec<i64> {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = BigInt)]
        pid: i64,
    }
    diesel::sql_query(
        "SELECT pid::bigint AS pid FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid",
    )
    .load::<Pid>(conn)
    .await
    .unwrap_or_else(|e| panic!("pg_stat_activity: {e}"))
    .into_iter()
    .map(|p| p.pid)
    .collect()
}

/// A capped reservation runs a transaction of its own, pipelined (`writes::reserve`, outside
/// diesel's transaction manager): refused by the cap or failed (a duplicate id), it leaves no
/// transaction open, and the pool's connection is reused after a success, a refusal and a
/// failure (not dropped and opened again).
#[tokio::test(flavor = "multi_thread")]
async fn capped_reservations_leave_no_transaction_open() {
    let db = database().await;
    let store = store_on(&db, |c| c.max_size = 1);
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let path = file("/projects/p1/capped.bin");
    let (alice, bob) = (user("alice"), user("bob"));
    let hour = chrono::Duration::hours(1);
    let open_transactions = "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'";

    let held = presigned(&path, &alice, hour);
    store.create_reservation(&held, Some(1)).await.unwrap();
    let backends = store_backends(&mut conn).await;
    assert_eq!(backends.len(), 1, "the pool's one connection");

    let refused = store
        .create_reservation(&presigned(&path, &alice, hour), Some(1))
        .await;
    assert!(
        matches!(
            refused,
            Err(RepoError::TooManyOpenUploads { open: 1, limit: 1 })
        ),
        "{refused:?}"
    );
    assert_eq!(
        count(&mut conn, open_transactions).await,
        0,
        "after a refusal"
    );

    let mut duplicate = presigned(&path, &bob, hour);
    duplicate.id = held.id;
    let failed = store.create_reservation(&duplicate, Some(1)).await;
    assert!(matches!(failed, Err(RepoError::Internal(_))), "{failed:?}");
    assert_eq!(
        count(&mut conn, open_transactions).await,
        0,
        "after a failure"
    );

    // Bob's own reservation is stored (committed: seen from another connection).
    let own = presigned(&path, &bob, hour);
    store.create_reservation(&own, Some(1)).await.unwrap();
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM upload_reservations").await,
        2
    );
    assert_eq!(
        store_backends(&mut conn).await,
        backends,
        "the same connection throughout"
    );
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
/// 200 of each, one caller at a time. Printed for the record (`--nocapture`), not asserted.
#[tokio::test(flavor = "multi_thread")]
async fn timing_of_lock_and_commit() {
    let db = database().await;
    let store = store_on(&db, |_| {});
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
        let cmd = new_version(&r, UPSERT, storage_domain::model::VersionStatus::Draft);
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
    let list = storage_test_support::metadata_contract::dir("/projects/p1/list/");
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

#[derive(QueryableByName)]
struct RowVersion {
    #[diesel(sql_type = Text)]
    v: String,
}

/// Where each audit row lives and which transaction wrote it (`ctid`, `xmin`): any update of
/// the row changes both.
async fn audit_row_versions(conn: &mut AsyncPgConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT id::text || ' ' || ctid::text || ' ' || xmin::text AS v FROM audit_events \
         ORDER BY id",
    )
    .load::<RowVersion>(conn)
    .await
    .unwrap_or_else(|e| panic!("audit row versions: {e}"))
    .into_iter()
    .map(|r| r.v)
    .collect()
}

/// A busy dispatcher vacuums the outbox itself: once 2 000 of its rows were claimed or
/// settled by the store, the outbox has been vacuumed (a manual vacuum, counted apart from
/// autovacuum's, which is kept off the table here so that it cannot hold the store's vacuum
/// off); autovacuum would come at most once a minute. (Not asserted: the dead rows the
/// statistics show, which backends report up to a few seconds late.)
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_outbox_is_vacuumed_by_the_store() {
    use storage_test_support::metadata_contract::{lock, settle_delivered, unlock};
    #[derive(QueryableByName)]
    struct Vacuums {
        #[diesel(sql_type = BigInt)]
        manual: i64,
    }
    let db = database().await;
    let store = store_on(&db, |_| {});
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("ALTER TABLE event_outbox SET (autovacuum_enabled = false)")
        .execute(&mut conn)
        .await
        .unwrap();
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/busy.txt"), &alice).await;
    // The upload's event and 1 000 more: claimed (1 001 rows) and settled (1 001).
    for _ in 0..500 {
        lock(&store, &f, &alice, Duration::from_secs(60))
            .await
            .unwrap();
        unlock(&store, f.id, &alice, &f.path).await.unwrap();
    }
    let mut delivered = 0;
    loop {
        let claimed = store
            .claim_events(Duration::from_secs(60), 300)
            .await
            .unwrap();
        if claimed.is_empty() {
            break;
        }
        delivered += claimed.len();
        settle_delivered(&store, &claimed).await;
    }
    assert_eq!(delivered, 1_001);
    let seen: Vacuums = diesel::sql_query(
        "SELECT vacuum_count AS manual FROM pg_stat_user_tables WHERE relname = 'event_outbox'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(
        seen.manual >= 1,
        "the outbox was not vacuumed after 2 002 rows claimed or settled"
    );
}

/// Delivery touches only the outbox: claiming, retrying, releasing, dead-lettering,
/// re-queueing and delivering events leave every audit row as its change wrote it (the audit
/// trail is append-only), and a delivered event leaves the outbox.
#[tokio::test(flavor = "multi_thread")]
async fn delivery_never_updates_an_audit_row() {
    use storage_domain::ports::{DeliveryState, Settlement};
    let db = database().await;
    let store = store_on(&db, |_| {});
    let alice = user("alice");
    for name in ["a", "b", "c"] {
        upload(&store, &file(&format!("/projects/p1/{name}.txt")), &alice).await;
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let before = audit_row_versions(&mut conn).await;
    assert_eq!(before.len(), 3);
    let lease = Duration::from_secs(60);
    let claimed = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let id = |i: usize| claimed[i].event.id;
    store
        .settle_events(vec![
            (id(0), Settlement::Delivered),
            (
                id(1),
                Settlement::Dead {
                    error: "gone".into(),
                    acked: vec!["nats:s".into()],
                },
            ),
            (id(2), Settlement::Released),
        ])
        .await
        .unwrap();
    assert_eq!(store.retry_events(None).await.unwrap(), 1);
    let again = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    store
        .settle_events(
            again
                .iter()
                .map(|e| (e.event.id, Settlement::Delivered))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(
        audit_row_versions(&mut conn).await,
        before,
        "an audit row was rewritten by delivery"
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM event_outbox").await,
        0
    );
    for state in [DeliveryState::Pending, DeliveryState::Dead] {
        assert_eq!(store.list_events(state, 10).await.unwrap(), []);
    }
}

/// The statements diesel calls unsafe to cache (`UPDATE`, `ON CONFLICT … DO UPDATE`) that the
/// hot paths run are kept prepared by their text (`storage_diesel_common::prepared`): run three
/// times on one connection, each is prepared once and stays in the session's
/// `pg_prepared_statements` (an uncached statement is prepared per execution and closed).
#[tokio::test(flavor = "multi_thread")]
async fn hot_updates_and_upserts_are_prepared_once_per_connection() {
    use storage_diesel_common::queries::{self, NewLock};
    use storage_diesel_common::sql_types::{DbAt, DbId};
    let db = database().await;
    let store = store_on(&db, |_| {});
    let (f, _) = upload(&store, &file("/projects/p1/prepared.txt"), &user("alice")).await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let id = DbId(f.id.as_uuid());
    let now = DbAt(chrono::Utc::now());
    for _ in 0..3 {
        let row = NewLock {
            file_id: id.clone(),
            bucket: "projects",
            path: f.path.as_str(),
            holder: "alice",
            acquired_at: now.clone(),
            expires_at: now.clone(),
            base_version: 1,
        };
        storage_diesel_common::store_lock!(&row)
            .execute(&mut conn)
            .await
            .unwrap();
        queries::rebase_lock(id.clone(), 1)
            .execute(&mut conn)
            .await
            .unwrap();
        queries::set_ticket(id.clone(), id.clone(), f.path.as_str(), 1)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for (statement, like) in [
        ("the lock upsert", "INSERT INTO \"locks\"%ON CONFLICT%"),
        ("the lock's rebase", "UPDATE \"locks\"%"),
        (
            "the checkout ticket",
            "UPDATE \"files\" SET \"checkout_file_id\"%",
        ),
    ] {
        let sql = format!(
            "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE '{like}'"
        );
        assert_eq!(count(&mut conn, &sql).await, 1, "{statement}");
    }
}

#[derive(QueryableByName)]
struct Plans {
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = BigInt)]
    custom_plans: i64,
}

/// After 12 executions of the statement of this session whose text is `LIKE` the pattern,
/// PostgreSQL's plan cache tried at most its five custom plans and kept the generic one.
async fn assert_planned_once(conn: &mut AsyncPgConnection, like: &str, what: &str) {
    let plans: Plans = diesel::sql_query(format!(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE '{like}' AND statement NOT LIKE '%pg_prepared_statements%'"
    ))
    .get_result(conn)
    .await
    .unwrap_or_else(|e| panic!("{what}: pg_prepared_statements: {e}"));
    assert!(
        plans.custom_plans <= 5 && plans.generic_plans >= 7,
        "{what}, 12 executions: {} custom plans, {} generic",
        plans.custom_plans,
        plans.generic_plans
    );
}

/// The read every unit of work makes under its file's row lock (the file, its lock row and the
/// head of its audit chain, `queries::file_and_chain_head`) is planned once per connection: after the
/// five custom plans PostgreSQL always tries, its plan cache keeps the generic plan. With the
/// head read by `ORDER BY seq DESC LIMIT $n` (diesel binds the limit), the generic plan
/// assumed a tenth of the file's events were read, lost to a custom plan, and the statement
/// was planned again on every execution (0.17 ms each in `storage-bench ops`, more than it took
/// to run).
#[tokio::test(flavor = "multi_thread")]
async fn the_locked_read_is_planned_once_per_connection() {
    use storage_diesel_common::rows::FileLockRow;
    use storage_diesel_common::sql_types::DbId;
    use storage_test_support::metadata_contract::{lock, unlock};
    let db = database().await;
    let store = store_on(&db, |_| {});
    let alice = user("alice");
    let mut files = Vec::new();
    for i in 0..8 {
        let (f, _) = upload(&store, &file(&format!("/projects/p1/plan-{i}.txt")), &alice).await;
        files.push(f);
    }
    // Chains of 81 links (648 events), so that the statistics see files with many events.
    for _ in 0..40 {
        for f in &files {
            lock(&store, f, &alice, Duration::from_secs(60))
                .await
                .unwrap();
            unlock(&store, f.id, &alice, &f.path).await.unwrap();
        }
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query("ANALYZE")
        .execute(&mut conn)
        .await
        .unwrap();
    let id = DbId(files[0].id.as_uuid());
    for _ in 0..12 {
        let (_, seq, hash): (FileLockRow, Option<i64>, Option<String>) =
            storage_diesel_common::queries::file_and_chain_head(id.clone())
                .get_result(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            seq,
            Some(81),
            "the head's seq: the upload, then 40 locks and unlocks"
        );
        assert!(hash.is_some_and(|h| !h.is_empty()), "the head's hash");
    }
    assert_planned_once(
        &mut conn,
        "SELECT \"files\".%\"audit_events\"%",
        "the locked read",
    )
    .await;
}

#[derive(QueryableByName)]
struct Returned {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The locked read finds the head of a file's audit chain in one step down
/// `audit_events_chain_idx` however long the chain grew after the connection planned the
/// statement. On a connection set up as the store's are (`session_settings`), the plan is made
/// while the table is young (analysed with 60 other files' first events, four pages, then the
/// statement's sixth execution; autovacuum kept from analysing it again), then the chain grows
/// by 20 000 links,
/// and the index entries the read returns are counted in its transaction. With the head read
/// as `max(seq)`, the kept plan was the plain aggregate over every entry of the file (40 003
/// entries for the two subselects); with PostgreSQL's default `random_page_cost` (4), a
/// sequential scan of the table (no entry of the index read, every row of the table: 7 ms).
#[tokio::test(flavor = "multi_thread")]
async fn the_chain_head_is_one_index_step_whatever_its_length() {
    use storage_diesel_common::rows::FileLockRow;
    use storage_diesel_common::sql_types::DbId;
    let db = database().await;
    let store = store_on(&db, |_| {});
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/long-chain.txt"), &alice).await;
    let id = DbId(f.id.as_uuid());
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "{}; ALTER TABLE audit_events SET (autovacuum_enabled = false); \
             INSERT INTO audit_events (id, actor, action, bucket, path, file_id, outcome, \
             request_id, seq, prev_hash, hash, data) \
             SELECT gen_random_uuid(), 'bob', 'upload', 'projects', '/projects/p1/other-' || i, \
             gen_random_uuid(), 'success', 'r', 1, '', repeat('h', 70), repeat('d', 200) \
             FROM generate_series(1, 60) i; \
             ANALYZE audit_events",
            storage_pg_diesel::session_settings(30_000)
        ),
    )
    .await
    .unwrap();
    let mut head = None;
    for _ in 0..8 {
        let (_, seq, _): (FileLockRow, Option<i64>, Option<String>) =
            storage_diesel_common::queries::file_and_chain_head(id.clone())
                .get_result(&mut conn)
                .await
                .unwrap();
        head = seq;
    }
    let head = head.expect("the upload's event is the chain's first link");
    diesel::sql_query(format!(
        "INSERT INTO audit_events (id, actor, action, bucket, path, file_id, outcome, \
         request_id, seq, prev_hash, hash) \
         SELECT gen_random_uuid(), 'alice', 'lock', 'projects', '/projects/p1/long-chain.txt', \
         '{}', 'success', 'r', {head} + s, 'p', 'h' || s FROM generate_series(1, 20000) s",
        f.id.as_uuid()
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    // The index's entries returned so far, counted by this backend and not yet reported (the
    // counter is read before and after the read, in one transaction: nothing is reported in
    // between).
    let returned = diesel::sql_query(
        "SELECT pg_stat_get_xact_tuples_returned('audit_events_chain_idx'::regclass) AS n",
    );
    let (seq, hash, returned) = conn
        .transaction(async |c| {
            let before: Returned = returned.clone().get_result(c).await?;
            let (_, seq, hash): (FileLockRow, Option<i64>, Option<String>) =
                storage_diesel_common::queries::file_and_chain_head(id.clone())
                    .get_result(c)
                    .await?;
            let after: Returned = returned.get_result(c).await?;
            Ok::<_, diesel::result::Error>((seq, hash, after.n - before.n))
        })
        .await
        .unwrap();
    assert_eq!(seq, Some(head + 20_000), "the head after 20 000 more links");
    assert_eq!(hash.as_deref(), Some("h20000"), "the head's hash");
    assert!(
        (1..=4).contains(&returned),
        "the head's read returned {returned} index entries of the chain (one per subselect \
         expected; none: a sequential scan of the table)"
    );
}

/// The count of a user's open presigned uploads (the cap's decision, `open_uploads_of`) is
/// planned once per connection, as above: with the upload's kind bound as a parameter, no
/// generic plan could use the partial index `upload_reservations_open_by_user_idx`
/// (`WHERE … kind = 'presigned'`), and the statement was planned on every execution.
#[tokio::test(flavor = "multi_thread")]
async fn the_open_uploads_count_is_planned_once_per_connection() {
    use storage_diesel_common::queries;
    let db = database().await;
    let store = store_on(&db, |_| {});
    // The shape of a busy store: a few open presigned uploads for each of 5 000 users, and
    // as many proxy ones (written straight, as the service's would be).
    let who = user("user7");
    for i in 0..3 {
        let r = presigned(
            &file(&format!("/projects/p1/u7-{i}.txt")),
            &who,
            chrono::Duration::hours(1),
        );
        store.create_reservation(&r, None).await.unwrap();
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query(
        "INSERT INTO upload_reservations (id, kind, bucket, path, created_by, version_id, \
           object_key, content_type, max_bytes, expires_at, created_at) \
         SELECT gen_random_uuid(), k, 'projects', '/projects/p1/x' || n || k, 'u' || (n % 5000), \
           gen_random_uuid(), 'key' || n || k, 'text/plain', 1, now() + interval '1 hour', now() \
         FROM generate_series(1, 15000) n, unnest(ARRAY['presigned', 'proxy']) k",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    diesel::sql_query("ANALYZE")
        .execute(&mut conn)
        .await
        .unwrap();
    for _ in 0..12 {
        let open: i64 = queries::open_uploads_of("user7")
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(open, 3, "user7's open presigned uploads");
    }
    assert_planned_once(
        &mut conn,
        "SELECT COUNT(*) FROM \"upload_reservations\"%",
        "the open uploads' count",
    )
    .await;
}
