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
use storage_domain::rules::chain::{AuditChain, AuditKey};
use storage_test_support::metadata_contract::{self as c, Store};
use storage_test_support::postgres::{TestDatabase, fingerprint_dir};

/// What a scenario made: the file's chain (in order) and the refusal.
struct Trail {
    chain: Vec<AuditEvent>,
    /// The other file's chain (one event).
    other: Vec<AuditEvent>,
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
    let (other, _) = c::upload(store, &c::file("/projects/p1/other.pdf"), &alice).await;
    let mut refusal = c::draft(AuditAction::Delete, &c::user("mallory"), &path).complete(
        None,
        None,
        storage_domain::model::AuditOutcome::Denied,
        chrono::Utc::now(),
    );
    refusal.detail = Some("no access".into());
    // The store seals it under its key.
    store
        .record_refusal(&refusal, Duration::from_secs(60))
        .await
        .unwrap();
    Trail {
        chain: chain(store, f.id).await,
        other: c::chain_of(store, other.id).await,
        refusal,
    }
}

async fn chain(store: &Store, file: FileId) -> Vec<AuditEvent> {
    let chain = c::chain_of(store, file).await;
    assert_eq!(chain.len(), 5);
    chain
}

/// The audit key the stores write with and `audit verify` is given (`AUDIT_KEY`).
const KEY: &str = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdCE=";
const KEY_ID: &str = "t1";

fn key() -> AuditKey {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    AuditKey::new(KEY_ID, bytes).unwrap()
}

/// The stores' chain setting: on, under [`key`].
fn chain_setting() -> AuditChain {
    AuditChain::On(Arc::new(key()))
}

/// The variables giving `audit verify` the key.
fn key_env() -> Vec<(String, String)> {
    vec![
        ("AUDIT_KEY".to_owned(), KEY.to_owned()),
        ("AUDIT_KEY_ID".to_owned(), KEY_ID.to_owned()),
    ]
}

/// Runs `storage-server audit verify` with `env`; (success, stdout + stderr).
fn verify(env: &[(String, String)]) -> (bool, String) {
    verify_with(env, &[])
}

/// `storage-server audit checkpoint` with `env`: the checkpoint, written to `path`.
fn checkpoint(env: &[(String, String)], path: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_storage-server"))
        .args(["audit", "checkpoint"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .envs(env.iter().cloned())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(path, &out.stdout).unwrap();
}

/// `storage-server audit verify <args>` with `env`; (success, stdout + stderr).
fn verify_with(env: &[(String, String)], args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storage-server"))
        .args(["audit", "verify"])
        .args(args)
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
    F: Fn(AuditChain) -> Fut,
    Fut: std::future::Future<Output = (Store, Vec<(String, String)>, Box<dyn std::any::Any>)>,
    S: Fn(&[(String, String)], Vec<String>),
{
    // Intact.
    let (store, env, _keep) = fresh(chain_setting()).await;
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
    // On a store with the default chain (the built-in development key), which `audit verify`
    // uses without AUDIT_KEY in testing (the contract case verifies under it too).
    let (store, mut env, _keep) = fresh(AuditChain::default()).await;
    c::trash_pins_and_prunes_are_chained(store.clone()).await;
    env.retain(|(k, _)| !k.starts_with("AUDIT_KEY"));
    let (ok, text) = verify(&env);
    assert!(ok, "the trash, pins and prunes verify: {text}");
    assert!(
        text.contains("2 chains, 20 chained events, 0 sealed refusals"),
        "{text}"
    );
    drop(store);

    // Edited: the second event's detail.
    let (store, env, _keep) = fresh(chain_setting()).await;
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
    let (store, env, _keep) = fresh(chain_setting()).await;
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
    let (store, env, _keep) = fresh(chain_setting()).await;
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
    let (store, env, _keep) = fresh(chain_setting()).await;
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
    drop(store);

    // Edited, and the chain recomputed from there on by someone without the key: under a key
    // of their own with the right id (altered), or as plain SHA-256 (unkeyed).
    for forged in [Some(AuditKey::new(KEY_ID, vec![7; 32]).unwrap()), None] {
        let (store, env, _keep) = fresh(chain_setting()).await;
        let trail = make_trail(&store).await;
        let mut prev = trail.chain[0].hash.clone().unwrap();
        let mut statements = Vec::new();
        for (i, e) in trail.chain.iter().enumerate().skip(1) {
            let mut e = e.clone();
            if i == 1 {
                e.detail = Some("nothing happened".into());
                statements.push(format!(
                    "UPDATE audit_events SET detail = 'nothing happened' WHERE id = '{}'",
                    e.id
                ));
            }
            let hash = match &forged {
                Some(k) => k.event_hash(&e, &prev),
                None => plain_hash(&e, &prev),
            };
            statements.push(format!(
                "UPDATE audit_events SET hash = '{hash}', prev_hash = '{prev}' WHERE id = '{}'",
                e.id
            ));
            prev = hash;
        }
        sql(&env, statements);
        let (ok, text) = verify(&env);
        assert!(!ok, "a recomputed chain fails: {text}");
        let id = trail.chain[1].id;
        let expected = if forged.is_some() {
            format!("the first: event {id} (seq 2) was altered")
        } else {
            format!("the first: event {id} carries an unkeyed hash")
        };
        assert!(text.contains(&expected), "{text}");
        drop(store);
    }

    // The right trail, verified without its key (another AUDIT_KEY_ID): each event is named
    // as hashed under a key that is not configured.
    let (store, env, _keep) = fresh(chain_setting()).await;
    let trail = make_trail(&store).await;
    let mut other = env.clone();
    other.retain(|(k, _)| !k.starts_with("AUDIT_KEY"));
    other.push((
        "AUDIT_KEY".to_owned(),
        "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktISE=".to_owned(),
    ));
    other.push(("AUDIT_KEY_ID".to_owned(), "t2".to_owned()));
    let (ok, text) = verify(&other);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "FAULT event {} is hashed under key id '{KEY_ID}'",
            trail.chain[0].id
        )),
        "{text}"
    );
    // With the old key retired, it verifies (a rotation).
    other.push(("AUDIT_RETIRED_KEYS".to_owned(), format!("{KEY_ID}:{KEY}")));
    let (ok, text) = verify(&other);
    assert!(ok, "after a rotation the retired key verifies: {text}");
    drop((store, trail));

    // A checkpoint, then the chain's last event deleted and the other chain removed: the
    // chain alone cannot tell (the walk passes), the checkpoint names both.
    let (store, env, _keep) = fresh(chain_setting()).await;
    let trail = make_trail(&store).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoint.jsonl");
    checkpoint(&env, &file);
    let at = ["--checkpoint", file.to_str().unwrap()];
    let (ok, text) = verify_with(&env, &at);
    assert!(ok, "an intact trail matches its checkpoint: {text}");
    assert!(text.contains("2 chains compared"), "{text}");
    // Grown since: still matches.
    c::upload(
        &store,
        &c::file("/projects/p1/report.pdf"),
        &c::user("alice"),
    )
    .await;
    let (ok, text) = verify_with(&env, &at);
    assert!(ok, "a grown trail matches its checkpoint: {text}");
    let f = trail.chain[0].file_id.unwrap();
    let grown = c::chain_of(&store, f).await;
    let (last, before) = (grown[5].id, grown[4].id);
    let other = trail.other[0].file_id.unwrap();
    sql(
        &env,
        vec![
            format!("DELETE FROM audit_events WHERE id IN ('{last}', '{before}')"),
            format!(
                "DELETE FROM audit_events WHERE id = '{}'",
                trail.other[0].id
            ),
        ],
    );
    let (ok, text) = verify(&env);
    assert!(
        ok,
        "without the checkpoint a removed tail is not seen: {text}"
    );
    let (ok, text) = verify_with(&env, &at);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "FAULT events 5..=5 of file {f}'s chain were removed from its end"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "FAULT file {other}'s chain was removed: the checkpoint holds it up to seq 1"
        )),
        "{text}"
    );
    // A checkpoint edited to hide the removal (its head lowered) is refused.
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"seq\":5,", "\"seq\":4,");
    assert_ne!(edited, std::fs::read_to_string(&file).unwrap());
    std::fs::write(&file, edited).unwrap();
    let (ok, text) = verify_with(&env, &at);
    assert!(!ok, "{text}");
    assert!(
        text.contains("refused: the checkpoint's MAC does not match"),
        "{text}"
    );
    drop(store);
}

/// The unkeyed format's hash (plain SHA-256 of the canonical text), as an attacker without the
/// key would compute it: the canonical text is public (`rules::chain::canonical`).
fn plain_hash(e: &AuditEvent, prev: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        storage_domain::rules::chain::canonical(e, prev).as_bytes(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_names_what_was_changed_on_postgresql() {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let fresh = |chain: AuditChain| {
        let migrations = migrations.clone();
        async move {
            let db = TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
                storage_pg_diesel::run_migrations(&url).await.map(|_| ())
            })
            .await;
            let mut config = storage_pg_diesel::PgConfig::new(db.url());
            config.audit_chain = chain;
            let store: Store = Arc::new(storage_pg_diesel::PgMetadataStore::new(&config).unwrap());
            let data = tempfile::tempdir().unwrap();
            let mut env = vec![
                ("APP_ENV".to_owned(), "testing".to_owned()),
                ("DATABASE_URL".to_owned(), db.url().to_owned()),
                ("DATA_DIR".to_owned(), data.path().display().to_string()),
            ];
            env.extend(key_env());
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
    let fresh = |chain: AuditChain| async move {
        let data = tempfile::tempdir().unwrap();
        let file = data.path().join("storage.sqlite3");
        let store: Store = Arc::new(
            storage_sqlite_diesel::SqliteMetadataStore::open(
                &file.display().to_string(),
                storage_sqlite_diesel::SqliteConfig {
                    audit_chain: chain,
                    ..storage_sqlite_diesel::SqliteConfig::default()
                },
            )
            .await
            .unwrap(),
        );
        let mut env = vec![
            ("APP_ENV".to_owned(), "testing".to_owned()),
            ("DATA_DIR".to_owned(), data.path().display().to_string()),
        ];
        env.extend(key_env());
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
