//! What the SQLite store's units of work cost: on a fresh store in a temporary directory, runs
//! `ROUNDS` (first argument, default 1000) rounds of a lock, a tag change, an unlock, a new
//! version (a reservation and its commit) and two reads, one after the other. Measure it as a
//! whole process, e.g. `perf stat -r 5 -e task-clock target/release/examples/unit_cost 2000`:
//! CPU time, which the machine's other load disturbs far less than wall time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_domain::model::{AuditAction, Tags};
use storage_domain::ports::{AcquireLock, ReleaseLock, SetTags};
use storage_sqlite_diesel::{SqliteConfig, SqliteMetadataStore};
use storage_test_support::metadata_contract::{Store, draft, file, upload, user};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let location = dir.path().join("meta.db");
    let store: Store = Arc::new(
        SqliteMetadataStore::open(&location.to_string_lossy(), SqliteConfig::default()).await?,
    );
    let alice = user("alice");
    let path = file("/projects/cost/a.pdf");
    let (f, _) = upload(&store, &path, &alice).await;
    let started = Instant::now();
    for i in 0..rounds {
        store
            .acquire_lock(AcquireLock {
                file_id: f.id,
                holder: alice.clone(),
                ttl: Duration::from_secs(60),
                audit: draft(AuditAction::Lock, &alice, &path),
            })
            .await?;
        let mut tags = Tags::new();
        tags.insert("round".into(), serde_json::Value::from(i));
        store
            .set_tags(SetTags {
                file_id: f.id,
                actor: alice.clone(),
                tags,
                audit: draft(AuditAction::UpdateTags, &alice, &path),
            })
            .await?;
        store
            .release_lock(ReleaseLock {
                file_id: f.id,
                actor: alice.clone(),
                force: false,
                audit: draft(AuditAction::Unlock, &alice, &path),
            })
            .await?;
        upload(&store, &path, &alice).await;
        store.find_file(&path).await?;
        store.find_file_by_id(f.id).await?;
    }
    eprintln!("{rounds} rounds in {:.3}s", started.elapsed().as_secs_f64());
    Ok(())
}
