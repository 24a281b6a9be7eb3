//! `storage-server audit verify` (issue 17) against audit rows changed behind the service's
//! back, on PostgreSQL and on the embedded SQLite store: an edited event is named as altered,
//! a deleted one as removed, two exchanged ones as reordered, an edited refusal as altered;
//! the intact trail verifies (exit 0), and so does one of the trash, pins and retention; every
//! fault exits 1 naming the event.

// A test: a call that fails is a failed test, reported by the panic of `unwrap`.
#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use storage_domain::model::{AuditAction, AuditEvent, FileId};
use storage_domain::ports::ReleaseLock;
use storage_domain::rules::chain::seal;
use storage_test_support::metadata_contract::{self as c, Store};
use storage_test_support::postgres::{TestDatabase, fingerprint_dir};

/// What a scenario made: the file's chain (in order) and the refusal.
struct Trail {
    chain: Vec<AuditEvent>,
    refusal: AuditEvent,
}

/// Five chained events on one file, one on another, and a sealed refusal.
async fn make_trail(store: &Store) -> Trail {
    let alice = c::user("alice");
    let path = c::file("/projects/p1/report.pdf");
    let (f, _) = c::upload(store, &path, &alice).await;
    c::upload(store, &path, &alice).await;
    c::lock(store, &f, &alice, Duration::from_secs(600))
        .await
        .unwrap();
    store
        .release_lock(ReleaseLock {
            file_id: f.id,
            actor: alice.clone(),
            force: false,
            audit: c::draft(AuditAction::Unlock, &alice, &path),
        })
        .await
        .unwrap();
    c::upload(store, &path, &alice).await;
    c::upload(store, &c::file("/projects/p1/other.pdf"), &alice).await;
    let mut refusal = c::draft(AuditAction::Delete, &c::user("mallory"), &path).complete(
        None,
        None,
        storage_domain::model::AuditOutcome::Denied,
        chrono::Utc::now(),
    );
    refusal.detail = Some("no access".into());
    let refusal = seal(refusal);
    store
        .record_refusal(&refusal, Duration::from_secs(60))
        .await
        .unwrap();
    Trail {
        chain: chain(store, f.id).await,
        refusal,
    }
}

async fn chain(store: &Store, file: FileId) -> Vec<AuditEvent> {
    let chain = c::chain_of(store, file).await;
    assert_eq!(chain.len(), 5);
    chain
}

/// Runs `storage-server audit verify` with `env`; (success, stdout + stderr).
fn verify(env: &[(String, String)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storage-server"))
        .args(["audit", "verify"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().cloned())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The four tampers, each on a fresh trail made by `fresh`, applied by `sql`.
async fn tampers<F, Fut, S>(fresh: F, sql: S)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (Store, Vec<(String, String)>, Box<dyn std::any::Any>)>,
    S: Fn(&[(String, String)], Vec<String>),
{
    // Intact.
    let (store, env, _keep) = fresh().await;
    let trail = make_trail(&store).await;
    let (ok, text) = verify(&env);
    assert!(ok, "an intact trail verifies: {text}");
    assert!(
        text.contains("2 chains, 6 chained events, 1 sealed refusals"),
        "{text}"
    );
    let _ = trail;
    drop(store);

    // The trash (trash → restore with each `on_conflict` → trash → purge, now and by the
    // janitor), pins and a prune of two versions: two chains that verify.
    let (store, env, _keep) = fresh().await;
    c::trash_pins_and_prunes_are_chained(store.clone()).await;
    let (ok, text) = verify(&env);
    assert!(ok, "the trash, pins and prunes verify: {text}");
    assert!(
        text.contains("2 chains, 20 chained events, 0 sealed refusals"),
        "{text}"
    );
    drop(store);

    // Edited: the second event's detail.
    let (store, env, _keep) = fresh().await;
    let trail = make_trail(&store).await;
    let id = trail.chain[1].id;
    sql(
        &env,
        vec![format!(
            "UPDATE audit_events SET detail = 'nothing happened' WHERE id = '{id}'"
        )],
    );
    let (ok, text) = verify(&env);
    assert!(!ok, "an edit fails: {text}");
    assert!(
        text.contains(&format!("the first: event {id} (seq 2) was altered")),
        "{text}"
    );
    drop(store);

    // Removed: the third event.
    let (store, env, _keep) = fresh().await;
    let trail = make_trail(&store).await;
    let (gone, next) = (trail.chain[2].id, trail.chain[3].id);
    sql(
        &env,
        vec![format!("DELETE FROM audit_events WHERE id = '{gone}'")],
    );
    let (ok, text) = verify(&env);
    assert!(!ok, "a removal fails: {text}");
    assert!(
        text.contains("the first: events 3..=3 of file")
            && text.contains(&format!("were removed (before event {next})")),
        "{text}"
    );
    drop(store);

    // Reordered: the second and third exchanged (their positions swapped).
    let (store, env, _keep) = fresh().await;
    let trail = make_trail(&store).await;
    let (two, three) = (trail.chain[1].id, trail.chain[2].id);
    sql(
        &env,
        vec![
            format!("UPDATE audit_events SET seq = 100 WHERE id = '{two}'"),
            format!("UPDATE audit_events SET seq = 2 WHERE id = '{three}'"),
            format!("UPDATE audit_events SET seq = 3 WHERE id = '{two}'"),
        ],
    );
    let (ok, text) = verify(&env);
    assert!(!ok, "a reorder fails: {text}");
    assert!(
        text.contains(&format!("the first: event {three} (seq 2) was reordered")),
        "{text}"
    );
    drop(store);

    // A refusal edited (who was refused).
    let (store, env, _keep) = fresh().await;
    let trail = make_trail(&store).await;
    let id = trail.refusal.id;
    sql(
        &env,
        vec![format!(
            "UPDATE audit_events SET actor = 'bob' WHERE id = '{id}'"
        )],
    );
    let (ok, text) = verify(&env);
    assert!(!ok, "an edited refusal fails: {text}");
    assert!(
        text.contains(&format!("the first: event {id} (a refusal) was altered")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_what_was_changed_on_postgresql() {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let fresh = || {
        let migrations = migrations.clone();
        async move {
            let db = TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
                storage_pg_diesel::run_migrations(&url).await.map(|_| ())
            })
            .await;
            let store: Store = Arc::new(
                storage_pg_diesel::PgMetadataStore::new(&storage_pg_diesel::PgConfig::new(
                    db.url(),
                ))
                .unwrap(),
            );
            let data = tempfile::tempdir().unwrap();
            let env = vec![
                ("APP_ENV".to_owned(), "testing".to_owned()),
                ("DATABASE_URL".to_owned(), db.url().to_owned()),
                ("DATA_DIR".to_owned(), data.path().display().to_string()),
            ];
            let keep: Box<dyn std::any::Any> = Box::new((db, data));
            (store, env, keep)
        }
    };
    tampers(fresh, |env, statements| {
        let url = env
            .iter()
            .find(|(k, _)| k == "DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
                let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
                for s in statements {
                    diesel::sql_query(s).execute(&mut conn).await.unwrap();
                }
            });
        })
        .join()
        .unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_what_was_changed_on_sqlite() {
    let fresh = || async {
        let data = tempfile::tempdir().unwrap();
        let file = data.path().join("storage.sqlite3");
        let store: Store = Arc::new(
            storage_sqlite_diesel::SqliteMetadataStore::open(
                &file.display().to_string(),
                storage_sqlite_diesel::SqliteConfig::default(),
            )
            .await
            .unwrap(),
        );
        let env = vec![
            ("APP_ENV".to_owned(), "testing".to_owned()),
            ("DATA_DIR".to_owned(), data.path().display().to_string()),
        ];
        let keep: Box<dyn std::any::Any> = Box::new(data);
        (store, env, keep)
    };
    tampers(fresh, |env, statements| {
        use diesel::{Connection, RunQueryDsl, SqliteConnection};
        let dir = env
            .iter()
            .find(|(k, _)| k == "DATA_DIR")
            .map(|(_, v)| v.clone())
            .unwrap();
        let mut conn = SqliteConnection::establish(&format!("{dir}/storage.sqlite3")).unwrap();
        for s in statements {
            // SQLite keeps ids as hyphenated lower-case text, as written here.
            diesel::sql_query(s).execute(&mut conn).unwrap();
        }
    })
    .await;
}
