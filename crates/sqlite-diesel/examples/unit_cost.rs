//! What the SQLite store's units of work cost: on a fresh store in a temporary directory, runs
//! `ROUNDS` (first argument, default 1000) rounds of a lock, a tag change, an unlock, a new
//! version (a reservation and its commit) and two reads, one after the other. Measure it as a
//! whole process, e.g. `perf stat -r 5 -e task-clock target/release/examples/unit_cost 2000`:
//! CPU time, which the machine's other load disturbs far less than wall time.

use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, SubsecRound, Utc};
use storage_domain::model::{
    AuditAction, AuditDraft, AuditId, BucketKind, FileId, FilePath, ObjectKey, Tags, UploadId,
    UploadKind, UploadReservation, UserId, VersionId, VersionStatus,
};
use storage_domain::ports::{
    AcquireLock, MetadataStore, NewVersion, ReleaseLock, SetTags, WriteMode,
};
use storage_sqlite_diesel::{SqliteConfig, SqliteMetadataStore};

type Error = Box<dyn std::error::Error>;

fn draft(action: AuditAction, actor: &UserId, path: &FilePath) -> AuditDraft {
    AuditDraft {
        id: AuditId::from_uuid(uuid::Uuid::now_v7()),
        actor: actor.clone(),
        action,
        path: path.clone(),
        request_id: "req-cost".into(),
        detail: None,
    }
}

/// Reserves and commits one version of `path` (two units of work).
async fn upload(
    store: &dyn MetadataStore,
    path: &FilePath,
    author: &UserId,
) -> Result<FileId, Error> {
    let version_id = VersionId::from_uuid(uuid::Uuid::now_v7());
    let now = Utc::now().trunc_subsecs(3);
    let r = UploadReservation {
        id: UploadId::from_uuid(uuid::Uuid::new_v4()),
        kind: UploadKind::Proxy,
        path: path.clone(),
        created_by: author.clone(),
        version_id,
        object_key: ObjectKey::for_version(path.owner(), version_id),
        content_type: "application/pdf".into(),
        expected_size: Some(11),
        expected_sha256: None,
        max_bytes: 1 << 20,
        expires_at: now + ChronoDuration::hours(1),
        created_at: now,
        completed_version: None,
    };
    store.create_reservation(&r, None).await?;
    let (file, _) = store
        .commit_version(NewVersion {
            reservation: r.id,
            completes: None,
            path: r.path.clone(),
            new_file_id: FileId::from_uuid(uuid::Uuid::new_v4()),
            version_id: r.version_id,
            object_key: r.object_key.clone(),
            size: 11,
            sha256: "ab".repeat(32),
            content_type: r.content_type.clone(),
            author: author.clone(),
            message: None,
            status: VersionStatus::Draft,
            tags: None,
            mode: WriteMode::Upsert {
                expected: None,
                overwrite: true,
            },
            checkout: None,
            audit: draft(AuditAction::Upload, author, path),
        })
        .await?;
    Ok(file.id)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let rounds: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let location = dir.path().join("meta.db");
    let store =
        SqliteMetadataStore::open(&location.to_string_lossy(), SqliteConfig::default()).await?;
    let alice = UserId::new("alice")?;
    let path = FilePath::parse(BucketKind::Projects, "/projects/cost/a.pdf")?;
    let file_id = upload(&store, &path, &alice).await?;
    let started = Instant::now();
    for i in 0..rounds {
        store
            .acquire_lock(AcquireLock {
                file_id,
                holder: alice.clone(),
                ttl: Duration::from_secs(60),
                audit: draft(AuditAction::Lock, &alice, &path),
            })
            .await?;
        let mut tags = Tags::new();
        tags.insert("round".into(), serde_json::Value::from(i));
        store
            .set_tags(SetTags {
                file_id,
                actor: alice.clone(),
                tags,
                audit: draft(AuditAction::UpdateTags, &alice, &path),
            })
            .await?;
        store
            .release_lock(ReleaseLock {
                file_id,
                actor: alice.clone(),
                force: false,
                audit: draft(AuditAction::Unlock, &alice, &path),
            })
            .await?;
        upload(&store, &path, &alice).await?;
        store.find_file(&path).await?;
        store.find_file_by_id(file_id).await?;
    }
    eprintln!("{rounds} rounds in {:.3}s", started.elapsed().as_secs_f64());
    Ok(())
}
