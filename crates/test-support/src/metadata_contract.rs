//! The metadata store contract: what every [`MetadataStore`] adapter must do, as public async
//! functions over `Arc<dyn MetadataStore>`. An adapter's test file runs each case against a
//! fresh, empty store (one test per case).
//!
//! The cases check decisions the port leaves to the store (locks, numbering, reviews), its
//! refusals, atomicity (a refused change leaves no version and no audit event), and the janitor's
//! queue. They run concurrent callers where the port promises an atomic decision.

// A test suite: a call that fails is a failed test, reported by the panic of `unwrap`.
#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as ChronoDuration, SubsecRound, Utc};
use storage_domain::model::{
    AuditAction, AuditDraft, AuditEvent, AuditId, AuditOutcome, BucketKind, CheckoutTicket,
    DirPath, FileId, FilePath, FileRecord, FileStatus, ObjectKey, Tags, UploadId, UploadKind,
    UploadReservation, UserId, Version, VersionId, VersionNumber, VersionSelector, VersionStatus,
};
use storage_domain::ports::{
    AcquireLock, AuditCursor, AuditScope, Checkout, DeleteFile, Expectation, ListEntry,
    MetadataStore, NewVersion, PruneVersions, ReleaseLock, RepoError, ReviewCursor,
    ReviewTransition, SetArchived, SetPin, SetTags, WriteMode,
};
use storage_domain::rules::retention::RetentionRule;

pub use crate::trash_contract::{
    a_pin_survives_the_trash, purge_removes_the_entry_and_queues_objects,
    restore_from_trash_by_on_conflict, trash_is_listed_newest_first_in_pages,
    trash_moves_a_file_out_of_the_namespace,
};

/// The store under test.
pub type Store = Arc<dyn MetadataStore>;

// ---- helpers ---------------------------------------------------------------------------------

/// A user id.
pub fn user(name: &str) -> UserId {
    UserId::new(name).unwrap_or_else(|e| panic!("bad user id {name}: {e}"))
}

/// A file path in the `projects` bucket.
pub fn file(raw: &str) -> FilePath {
    FilePath::parse(BucketKind::Projects, raw).unwrap_or_else(|e| panic!("bad path {raw}: {e}"))
}

/// A directory path in the `projects` bucket.
pub fn dir(raw: &str) -> DirPath {
    DirPath::parse(BucketKind::Projects, raw).unwrap_or_else(|e| panic!("bad dir {raw}: {e}"))
}

fn n(v: u32) -> VersionNumber {
    VersionNumber::new(v).unwrap_or_else(|e| panic!("bad version number: {e}"))
}

/// An audit draft of `action` by `actor` on `path`.
pub fn draft(action: AuditAction, actor: &UserId, path: &FilePath) -> AuditDraft {
    AuditDraft {
        id: AuditId::from_uuid(uuid::Uuid::now_v7()),
        actor: actor.clone(),
        action,
        path: path.clone(),
        request_id: format!("req-{}", uuid::Uuid::new_v4().simple()),
        detail: None,
    }
}

/// An open reservation for `path`, valid for `valid_for` (negative: already expired).
pub fn reservation(
    path: &FilePath,
    author: &UserId,
    valid_for: ChronoDuration,
) -> UploadReservation {
    let version_id = VersionId::from_uuid(uuid::Uuid::now_v7());
    // Milliseconds: every store keeps at least that precision, so the value reads back equal.
    let now = Utc::now().trunc_subsecs(3);
    UploadReservation {
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
        expires_at: now + valid_for,
        created_at: now,
        completed_version: None,
    }
}

/// Creates an open reservation (valid one hour).
pub async fn reserve(store: &Store, path: &FilePath, author: &UserId) -> UploadReservation {
    let r = reservation(path, author, ChronoDuration::hours(1));
    store
        .create_reservation(&r, None)
        .await
        .unwrap_or_else(|e| panic!("create_reservation: {e}"));
    r
}

/// The command recording `reservation` as a new version with `mode`.
pub fn new_version(r: &UploadReservation, mode: WriteMode, status: VersionStatus) -> NewVersion {
    let action = match mode {
        WriteMode::Upsert { .. } => AuditAction::Upload,
        WriteMode::Commit { .. } => AuditAction::Commit,
        WriteMode::Restore { .. } => AuditAction::Restore,
    };
    NewVersion {
        reservation: r.id,
        completes: None,
        path: r.path.clone(),
        new_file_id: FileId::from_uuid(uuid::Uuid::new_v4()),
        version_id: r.version_id,
        object_key: r.object_key.clone(),
        size: 11,
        sha256: "ab".repeat(32),
        content_type: r.content_type.clone(),
        author: r.created_by.clone(),
        message: Some("a message".into()),
        status,
        tags: None,
        mode,
        checkout: None,
        audit: draft(action, &r.created_by, &r.path),
    }
}

/// An unconditional upload mode (adds a version to an existing file).
pub const UPSERT: WriteMode = WriteMode::Upsert {
    expected: None,
    overwrite: true,
};

/// A workspace copy of `author`'s at `/users/<author>/ws/<name>` made without a checkout (no
/// ticket): a commit from it follows the lock's `base_version`.
pub async fn workspace(store: &Store, author: &UserId, name: &str) -> FileRecord {
    let path = FilePath::parse(BucketKind::Users, &format!("/users/{author}/ws/{name}"))
        .unwrap_or_else(|e| panic!("bad workspace path: {e}"));
    upload(store, &path, author).await.0
}

/// The commit mode from `source`.
pub fn commit_from(source: &FileRecord, keep_lock: bool) -> WriteMode {
    WriteMode::Commit {
        keep_lock,
        source: source.id,
    }
}

/// The checkout of `target` at `base` by `author`, into a new version of `copy` (a
/// workspace path); returns the workspace copy.
pub async fn checkout(
    store: &Store,
    target: &FileRecord,
    base: VersionNumber,
    copy: &FilePath,
    author: &UserId,
    ttl: Duration,
) -> Result<FileRecord, RepoError> {
    let r = reserve(store, copy, author).await;
    let mut cmd = new_version(&r, UPSERT, VersionStatus::Draft);
    cmd.audit = draft(AuditAction::Copy, author, copy);
    cmd.checkout = Some(Checkout {
        file_id: target.id,
        path: target.path.clone(),
        base_version: base,
        ttl,
        audit: draft(AuditAction::Checkout, author, &target.path),
    });
    store.commit_version(cmd).await.map(|(f, _)| f)
}

/// Reserves and commits one version of `path` by `author` with `mode`.
pub async fn upload_with(
    store: &Store,
    path: &FilePath,
    author: &UserId,
    mode: WriteMode,
) -> Result<(FileRecord, Version), RepoError> {
    let r = reserve(store, path, author).await;
    store
        .commit_version(new_version(&r, mode, VersionStatus::Draft))
        .await
}

/// Reserves and commits one draft version of `path` by `author`, unconditionally.
pub async fn upload(store: &Store, path: &FilePath, author: &UserId) -> (FileRecord, Version) {
    upload_with(store, path, author, UPSERT)
        .await
        .unwrap_or_else(|e| panic!("upload {path}: {e}"))
}

/// Takes the lock of `file_id` for `holder`.
pub async fn lock(
    store: &Store,
    file: &FileRecord,
    holder: &UserId,
    ttl: Duration,
) -> Result<storage_domain::model::Lock, RepoError> {
    store
        .acquire_lock(AcquireLock {
            file_id: file.id,
            holder: holder.clone(),
            ttl,
            audit: draft(AuditAction::Lock, holder, &file.path),
        })
        .await
}

/// Releases `actor`'s own lock on the file (not forced), audited as an unlock of `path`.
pub async fn unlock(
    store: &Store,
    file_id: FileId,
    actor: &UserId,
    path: &FilePath,
) -> Result<Option<storage_domain::model::Lock>, RepoError> {
    store
        .release_lock(ReleaseLock {
            file_id,
            actor: actor.clone(),
            force: false,
            audit: draft(AuditAction::Unlock, actor, path),
        })
        .await
}

/// Settles every one of `claimed` as delivered (a dispatch pass whose sinks all took them).
pub async fn settle_delivered(store: &Store, claimed: &[storage_domain::ports::OutboxEvent]) {
    store
        .settle_events(
            claimed
                .iter()
                .map(|e| (e.event.id, storage_domain::ports::Settlement::Delivered))
                .collect(),
        )
        .await
        .unwrap_or_else(|e| panic!("settle {} events as delivered: {e}", claimed.len()));
}

/// Deletes the file as `actor`, audited as a delete of `path`.
pub async fn delete(
    store: &Store,
    file_id: FileId,
    actor: &UserId,
    path: &FilePath,
) -> Result<Vec<storage_domain::model::PendingDeletion>, RepoError> {
    store
        .delete_file(DeleteFile {
            file_id,
            actor: actor.clone(),
            audit: draft(AuditAction::Delete, actor, path),
        })
        .await
}

/// Every audit event of a file, newest first.
pub async fn audit_of(store: &Store, path: &FilePath) -> Vec<AuditEvent> {
    store
        .list_audit(&AuditScope::File(path.clone()), None, 1000)
        .await
        .unwrap_or_else(|e| panic!("list_audit: {e}"))
}

fn names(entries: &[ListEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            ListEntry::Directory { name } => format!("{name}/"),
            ListEntry::File(f) => f.path.name().to_owned(),
        })
        .collect()
}

// ---- cases -----------------------------------------------------------------------------------

/// A reservation completed by `commit_version` creates the file and its version 1, readable by
/// path, by id and by version id; the reservation is completed, and a second completion is
/// refused as already completed; the audit event carries what the store decided.
pub async fn first_upload_creates_file_and_version(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/docs/spec.pdf");
    assert_eq!(store.find_file(&path).await.unwrap(), None);
    store.health().await.unwrap();

    let r = reserve(&store, &path, &alice).await;
    assert_eq!(store.find_reservation(r.id).await.unwrap(), Some(r.clone()));
    let mut cmd = new_version(&r, UPSERT, VersionStatus::Draft);
    let mut tags = Tags::new();
    tags.insert("kind".into(), serde_json::json!("spec"));
    cmd.tags = Some(tags.clone());
    let audit_id = cmd.audit.id;
    let new_file_id = cmd.new_file_id;
    let (created, version) = store.commit_version(cmd.clone()).await.unwrap();

    assert_eq!(created.id, new_file_id);
    assert_eq!(created.path, path);
    assert_eq!(created.created_by, alice);
    assert_eq!(created.version, VersionNumber::FIRST);
    assert_eq!(created.validated_version, None);
    assert_eq!(created.status, FileStatus::Draft);
    assert_eq!(created.lock, None);
    assert_eq!(created.tags, tags);
    assert_eq!(
        (created.size, created.content_type.as_str()),
        (11, "application/pdf")
    );
    assert_eq!(created.sha256, "ab".repeat(32));
    assert_eq!(version.id, r.version_id);
    assert_eq!(version.file_id, created.id);
    assert_eq!(version.number, VersionNumber::FIRST);
    assert_eq!(version.status, VersionStatus::Draft);
    assert_eq!(version.author, alice);
    assert_eq!(version.object_key, r.object_key);
    assert_eq!(version.message.as_deref(), Some("a message"));

    assert_eq!(store.find_file(&path).await.unwrap(), Some(created.clone()));
    assert_eq!(
        store.find_file_by_id(created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store.find_version(version.id).await.unwrap(),
        Some((created.clone(), version.clone()))
    );
    assert_eq!(
        store
            .find_file_version(&path, VersionSelector::Number(VersionNumber::FIRST))
            .await
            .unwrap(),
        Some((created.clone(), Some(version.clone())))
    );
    assert_eq!(
        store
            .find_file_version(&path, VersionSelector::Number(n(2)))
            .await
            .unwrap(),
        Some((created.clone(), None))
    );
    assert_eq!(
        store.list_versions(created.id, None, 1000).await.unwrap(),
        vec![version.clone()]
    );
    assert_eq!(
        store
            .find_version(VersionId::from_uuid(uuid::Uuid::new_v4()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_file_by_id(FileId::from_uuid(uuid::Uuid::new_v4()))
            .await
            .unwrap(),
        None
    );

    let completed = store.find_reservation(r.id).await.unwrap().unwrap();
    assert_eq!(completed.completed_version, Some(version.id));
    // Completing again is refused as already done, and changes nothing.
    let mut again = cmd.clone();
    again.audit = draft(AuditAction::Upload, &alice, &path);
    assert_eq!(
        store.commit_version(again).await,
        Err(RepoError::UploadAlreadyCompleted {
            version_id: version.id
        })
    );
    assert_eq!(
        store
            .list_versions(created.id, None, 1000)
            .await
            .unwrap()
            .len(),
        1
    );

    let events = audit_of(&store, &path).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.id, audit_id);
    assert_eq!(event.action, AuditAction::Upload);
    assert_eq!(event.bucket, BucketKind::Projects);
    assert_eq!(event.file_id, Some(created.id));
    assert_eq!(event.version, Some(VersionNumber::FIRST));
    assert_eq!(event.outcome, AuditOutcome::Success);
    assert_eq!(event.actor, alice);
}

/// Versions of one file are numbered 1, 2, 3; the file follows its latest version; the history
/// is newest first.
pub async fn next_versions_are_numbered_in_order(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/a.txt");
    let (first, v1) = upload(&store, &path, &alice).await;
    let r = reserve(&store, &path, &alice).await;
    let mut cmd = new_version(&r, UPSERT, VersionStatus::Draft);
    cmd.size = 42;
    cmd.content_type = "text/plain".into();
    let (second, v2) = store.commit_version(cmd).await.unwrap();
    let (third, v3) = upload(&store, &path, &user("bob")).await;

    assert_eq!(second.id, first.id, "a new version keeps the file");
    assert_eq!((v1.number, v2.number, v3.number), (n(1), n(2), n(3)));
    assert_eq!(second.version, n(2));
    assert_eq!(
        (second.size, second.content_type.as_str()),
        (42, "text/plain")
    );
    assert_eq!(third.version, n(3));
    assert_eq!(third.created_by, alice, "the creator stays");
    let history = store.list_versions(first.id, None, 1000).await.unwrap();
    assert_eq!(
        history.iter().map(|v| v.number.get()).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert_eq!(history[1], v2);
    assert!(third.updated_at >= first.updated_at);
}

/// `list_children` lists files and sub-directories in one byte order of their names, each
/// sub-directory once, page by page with the last name as cursor.
pub async fn list_children_pages_through_files_and_directories(store: Store) {
    let alice = user("alice");
    // A directory `a` sorts before the file `a.txt` by name although its paths (`a/...`) sort
    // after `a.txt` (`.` < `/`); `a-b` and `a.b` dirs too. Non-ASCII names sort after ASCII.
    let paths = [
        "/projects/p1/docs/a.txt",
        "/projects/p1/docs/a/one.txt",
        "/projects/p1/docs/a/two.txt",
        "/projects/p1/docs/a/deep/three.txt",
        "/projects/p1/docs/a-b/x",
        "/projects/p1/docs/a-b.c",
        "/projects/p1/docs/B.pdf",
        "/projects/p1/docs/b",
        "/projects/p1/docs/b0/x",
        "/projects/p1/docs/c 1.txt",
        "/projects/p1/docs/c/z",
        "/projects/p1/docs/\u{e9}t\u{e9}.txt",
        "/projects/p1/docs/zz/\u{e9}/x",
        "/projects/p1/docs%/not-a-child",
        "/projects/p1/docs0",
        "/projects/p1/doc/x",
        "/projects/p2/docs/other-owner",
    ];
    for p in paths {
        upload(&store, &file(p), &alice).await;
    }
    // Written out by hand, in byte order of the names (a directory by its bare name).
    let expected = vec![
        "B.pdf",
        "a/",
        "a-b/",
        "a-b.c",
        "a.txt",
        "b",
        "b0/",
        "c/",
        "c 1.txt",
        "zz/",
        "\u{e9}t\u{e9}.txt",
    ];

    let docs = dir("/projects/p1/docs/");
    let all = store.list_children(&docs, None, 100).await.unwrap();
    assert_eq!(names(&all), expected);
    // What the adapter answered is strictly increasing in byte order of the bare names.
    let listed = names(&all);
    for pair in listed.windows(2) {
        let (a, b) = (pair[0].trim_end_matches('/'), pair[1].trim_end_matches('/'));
        assert!(
            a.as_bytes() < b.as_bytes(),
            "{a:?} is listed before {b:?}: {listed:?}"
        );
    }
    for entry in &all {
        if let ListEntry::File(f) = entry {
            assert_eq!(f.path.parent(), docs);
            assert_eq!(f.version, VersionNumber::FIRST);
        }
    }

    for page_size in [1_u32, 2, 3, 4] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store
                .list_children(&docs, cursor.clone(), page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size as usize);
            if page.is_empty() {
                break;
            }
            cursor = page.last().map(|e| e.name().to_owned());
            seen.extend(names(&page));
        }
        assert_eq!(seen, expected, "pages of {page_size}");
    }

    // A cursor that is not an entry's name still starts strictly after it.
    let page = store
        .list_children(&docs, Some("a-".into()), 2)
        .await
        .unwrap();
    assert_eq!(names(&page), vec!["a-b/", "a-b.c"]);
    let page = store
        .list_children(&docs, Some("a".into()), 1)
        .await
        .unwrap();
    assert_eq!(names(&page), vec!["a-b/"]);

    let nested = store
        .list_children(&dir("/projects/p1/docs/a/"), None, 10)
        .await
        .unwrap();
    assert_eq!(names(&nested), vec!["deep/", "one.txt", "two.txt"]);
    let root = store
        .list_children(&dir("/projects/p1/"), None, 10)
        .await
        .unwrap();
    assert_eq!(names(&root), vec!["doc/", "docs/", "docs%/", "docs0"]);
    assert!(
        store
            .list_children(&dir("/projects/p1/nothing/"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_children(&docs, None, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Of many concurrent takers of one free lock exactly one wins; the others get `FileLocked`
/// naming the winner. Repeated `rounds` times.
pub async fn lock_race_has_exactly_one_winner(store: Store, takers: usize, rounds: usize) {
    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/race.txt"), &alice).await;
    for round in 0..rounds {
        let mut tasks = Vec::with_capacity(takers);
        for i in 0..takers {
            let store = store.clone();
            let f = f.clone();
            tasks.push(tokio::spawn(async move {
                let me = user(&format!("taker-{i}"));
                (
                    me.clone(),
                    lock(&store, &f, &me, Duration::from_secs(60)).await,
                )
            }));
        }
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (me, Ok(l)) => {
                    assert_eq!(l.holder, me);
                    winners.push(l);
                }
                (_, Err(RepoError::FileLocked(l))) => losers.push(l),
                (_, Err(e)) => panic!("round {round}: unexpected {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: one winner");
        let winner = &winners[0];
        assert!(
            losers.iter().all(|l| l.holder == winner.holder),
            "round {round}"
        );
        let held = store.find_file_by_id(f.id).await.unwrap().unwrap().lock;
        assert_eq!(held.as_ref().map(|l| &l.holder), Some(&winner.holder));
        let released = unlock(&store, f.id, &winner.holder, &f.path).await.unwrap();
        assert_eq!(released.map(|l| l.holder), Some(winner.holder.clone()));
    }
    // One lock event and one unlock event per round, nothing for the losers.
    assert_eq!(audit_of(&store, &f.path).await.len(), 1 + 2 * rounds);
}

/// Concurrent commits on one path (some creating it) get numbers 1..=n, no gap, no duplicate.
pub async fn concurrent_commits_number_without_gap(store: Store, writers: usize) {
    let path = file("/projects/p1/busy.bin");
    let mut reservations = Vec::new();
    for i in 0..writers {
        reservations.push(reserve(&store, &path, &user(&format!("w{i}"))).await);
    }
    let tasks: Vec<_> = reservations
        .into_iter()
        .map(|r| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .commit_version(new_version(&r, UPSERT, VersionStatus::Draft))
                    .await
            })
        })
        .collect();
    let mut numbers = Vec::new();
    let mut file_ids = HashSet::new();
    for t in tasks {
        let (f, v) = t.await.unwrap().unwrap();
        numbers.push(v.number.get());
        file_ids.insert(f.id);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=writers as u32).collect::<Vec<_>>());
    assert_eq!(file_ids.len(), 1, "one file for the path");
    let f = store.find_file(&path).await.unwrap().unwrap();
    assert_eq!(f.version.get(), writers as u32);
    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        writers
    );
    assert_eq!(audit_of(&store, &path).await.len(), writers);
}

fn review(v: &Version, path: &FilePath, to: VersionStatus, reviewer: &UserId) -> ReviewTransition {
    let action = if to == VersionStatus::Validated {
        AuditAction::Approve
    } else {
        AuditAction::Reject
    };
    ReviewTransition {
        version_id: v.id,
        from: VersionStatus::PendingValidation,
        to,
        reviewer: Some(reviewer.clone()),
        comment: Some(format!("{} by {reviewer}", to.as_str())),
        audit: draft(action, reviewer, path),
    }
}

/// Submission, then concurrent approve/reject decisions: exactly one wins, the others get
/// `InvalidTransition`; an approval raises `validated_version` and the file's status follows.
pub async fn concurrent_reviews_have_exactly_one_winner(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/review.pdf");
    let (f, v1) = upload(&store, &path, &alice).await;
    let (_, submitted) = store
        .review_version(ReviewTransition {
            version_id: v1.id,
            from: VersionStatus::Draft,
            to: VersionStatus::PendingValidation,
            reviewer: None,
            comment: None,
            audit: draft(AuditAction::Submit, &alice, &path),
        })
        .await
        .unwrap();
    assert_eq!(submitted.status, VersionStatus::PendingValidation);
    assert_eq!(submitted.reviewed_by, None);
    assert_eq!(
        store.find_file_by_id(f.id).await.unwrap().unwrap().status,
        FileStatus::PendingValidation
    );

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let v = submitted.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let to = if i % 2 == 0 {
                    VersionStatus::Validated
                } else {
                    VersionStatus::Rejected
                };
                store
                    .review_version(review(&v, &path, to, &user(&format!("rev{i}"))))
                    .await
            })
        })
        .collect();
    let mut wins = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(won) => wins.push(won),
            Err(RepoError::InvalidTransition(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one decision wins");
    let (file_after, decided) = wins.remove(0);
    let stored = store.find_version(v1.id).await.unwrap().unwrap().1;
    assert_eq!(stored, decided);
    assert!(decided.reviewed_by.is_some() && decided.reviewed_at.is_some());
    assert!(decided.review_comment.is_some());
    match decided.status {
        VersionStatus::Validated => {
            assert_eq!(file_after.validated_version, Some(n(1)));
            assert_eq!(file_after.status, FileStatus::Validated);
        }
        VersionStatus::Rejected => {
            assert_eq!(file_after.validated_version, None);
            assert_eq!(file_after.status, FileStatus::Draft);
        }
        other => panic!("unexpected status {other:?}"),
    }
    // The upload, the submission, one decision.
    assert_eq!(audit_of(&store, &path).await.len(), 3);
    // A decided version cannot be decided again, refused as the domain's rule words it.
    let rule = storage_domain::rules::store::decide_review(
        decided.status,
        VersionStatus::PendingValidation,
        VersionStatus::Validated,
    );
    assert!(matches!(rule, Err(RepoError::InvalidTransition(_))));
    assert_eq!(
        store
            .review_version(review(&decided, &path, VersionStatus::Validated, &alice))
            .await
            .map(|_| ()),
        rule
    );
    let missing = Version {
        id: VersionId::from_uuid(uuid::Uuid::new_v4()),
        ..decided
    };
    assert_eq!(
        store
            .review_version(review(&missing, &path, VersionStatus::Validated, &alice))
            .await,
        Err(RepoError::VersionNotFound)
    );
}

/// Approving an older version raises `validated_version` but leaves the status to the latest.
pub async fn approving_an_older_version_keeps_the_latest_status(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/older.pdf");
    let r = reserve(&store, &path, &alice).await;
    let (_, v1) = store
        .commit_version(new_version(&r, UPSERT, VersionStatus::PendingValidation))
        .await
        .unwrap();
    let (f2, _) = upload(&store, &path, &alice).await;
    assert_eq!(f2.status, FileStatus::Draft);
    let (after, _) = store
        .review_version(review(&v1, &path, VersionStatus::Validated, &user("rev")))
        .await
        .unwrap();
    assert_eq!(after.validated_version, Some(n(1)));
    assert_eq!(
        after.status,
        FileStatus::Draft,
        "the latest version is a draft"
    );
}

/// One read answers the file with its live lock and the version a selector picks: the latest,
/// the validated one (none before an approval, then the approved one while a newer waits), or
/// a number (none when the file has no such version); no file, no answer.
pub async fn a_file_is_read_with_the_version_a_selector_picks(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/picked.pdf");
    let pick = async |selector| store.find_file_version(&path, selector).await.unwrap();
    assert_eq!(pick(VersionSelector::Latest).await, None);
    let r = reserve(&store, &path, &alice).await;
    let (_, v1) = store
        .commit_version(new_version(&r, UPSERT, VersionStatus::PendingValidation))
        .await
        .unwrap();
    let (_, v2) = upload(&store, &path, &alice).await;
    let f = store.find_file(&path).await.unwrap().unwrap();
    lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    let locked = store.find_file(&path).await.unwrap().unwrap();
    assert!(locked.lock.is_some());
    assert_eq!(
        pick(VersionSelector::Latest).await,
        Some((locked.clone(), Some(v2.clone())))
    );
    assert_eq!(
        pick(VersionSelector::Validated).await,
        Some((locked.clone(), None))
    );
    assert_eq!(
        pick(VersionSelector::Number(n(1))).await,
        Some((locked.clone(), Some(v1.clone())))
    );
    assert_eq!(
        pick(VersionSelector::Number(n(3))).await,
        Some((locked.clone(), None))
    );
    let (approved, v1) = store
        .review_version(review(&v1, &path, VersionStatus::Validated, &user("rev")))
        .await
        .unwrap();
    assert_eq!(
        pick(VersionSelector::Validated).await,
        Some((approved.clone(), Some(v1)))
    );
    assert_eq!(
        pick(VersionSelector::Latest).await,
        Some((approved, Some(v2)))
    );
}

/// A lock expires after its ttl (store clock); another holder then takes it with new
/// `acquired_at` and `base_version`. Reads return live locks only.
pub async fn expired_lock_is_free(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/expiring.txt");
    let (f, _) = upload(&store, &path, &alice).await;
    let first = lock(&store, &f, &alice, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(first.expires_at > first.acquired_at);
    assert!(matches!(
        lock(&store, &f, &bob, Duration::from_secs(60)).await,
        Err(RepoError::FileLocked(l)) if l == first
    ));
    let (f, _) = upload(&store, &path, &alice).await; // the holder may write: base moves to 2
    assert_eq!(f.lock.as_ref().map(|l| l.base_version), Some(n(2)));

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let read = store.find_file(&path).await.unwrap().unwrap();
    assert_eq!(read.lock, None, "an expired lock is not returned");
    assert!(
        store
            .list_locks(&dir("/projects/p1/"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Bob may now write without the lock, and take it.
    upload(&store, &path, &bob).await;
    let taken = lock(&store, &f, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(taken.holder, bob);
    assert!(taken.acquired_at > first.acquired_at);
    assert_eq!(taken.base_version, n(3));
}

/// The checkout ticket outlives the lock's expiry for its holder: when she takes her own
/// expired lock again, `base_version` stays where it was, so after someone else added a
/// version meanwhile her commit is `version_conflict` (not a silent overwrite). Her own
/// versions move it, expired or not.
pub async fn retaken_lock_keeps_the_holders_base(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/ticket.txt");
    let commit = commit_from(&workspace(&store, &alice, "ticket.txt").await, false);
    let pending = VersionStatus::PendingValidation;
    let (f, _) = upload(&store, &path, &alice).await;
    let first = lock(&store, &f, &alice, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.base_version, n(1));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // While her lock is expired, bob adds version 2.
    upload(&store, &path, &bob).await;
    let again = lock(&store, &f, &alice, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(again.base_version, n(1), "her ticket is still on version 1");
    assert!(again.acquired_at > first.acquired_at, "a new acquisition");
    let r = reserve(&store, &path, &alice).await;
    assert!(matches!(
        store.commit_version(new_version(&r, commit, pending)).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
    ));
    assert_eq!(
        store.find_file_by_id(f.id).await.unwrap().unwrap().version,
        n(2),
        "nothing written"
    );
    // Her own version, even while her lock is expired, moves her ticket.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    upload(&store, &path, &alice).await;
    let third = lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(third.base_version, n(3));
    let r = reserve(&store, &path, &alice).await;
    let (_, v4) = store
        .commit_version(new_version(&r, commit, pending))
        .await
        .unwrap();
    assert_eq!(v4.number, n(4));
    // Another holder in between starts from the latest version.
    let (f, _) = upload(&store, &file("/projects/p1/ticket2.txt"), &alice).await;
    lock(&store, &f, &alice, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    upload(&store, &f.path, &bob).await;
    let bobs = lock(&store, &f, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(bobs.base_version, n(2));
}

/// The holder's second `acquire_lock` refreshes the lock: same `acquired_at` and
/// `base_version`, later `expires_at`.
pub async fn refresh_keeps_acquired_at_and_base_version(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/refresh.txt");
    let (f, _) = upload(&store, &path, &alice).await;
    let first = lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(first.base_version, n(1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let refreshed = lock(&store, &f, &alice, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(refreshed.acquired_at, first.acquired_at);
    assert_eq!(refreshed.base_version, first.base_version);
    assert!(refreshed.expires_at > first.expires_at);
    assert_eq!(
        store.find_file(&path).await.unwrap().unwrap().lock,
        Some(refreshed)
    );
}

/// A refused change leaves nothing: no version, no audit event, the reservation still open.
pub async fn refused_change_leaves_no_trace(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/atomic.txt");
    let (f, _) = upload(&store, &path, &alice).await;
    lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    let before = audit_of(&store, &path).await;

    // Refused for the lock.
    let r = reserve(&store, &path, &bob).await;
    let cmd = new_version(&r, UPSERT, VersionStatus::Draft);
    let refused_audit = cmd.audit.id;
    assert!(
        matches!(store.commit_version(cmd).await, Err(RepoError::FileLocked(l)) if l.holder == alice)
    );
    // Refused for the expected version.
    let r2 = reserve(&store, &path, &alice).await;
    let mode = WriteMode::Upsert {
        expected: Some(Expectation {
            latest: Some(n(7)),
            precondition: true,
        }),
        overwrite: true,
    };
    let cmd2 = new_version(&r2, mode, VersionStatus::Draft);
    let refused_audit2 = cmd2.audit.id;
    assert!(matches!(
        store.commit_version(cmd2).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(1)
    ));
    // Refused for a checkout of a file someone else holds: the upload itself is undone too.
    let other = file("/projects/p1/other.txt");
    let (of, _) = upload(&store, &other, &bob).await;
    lock(&store, &of, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    let target = file("/projects/p1/copy-target.txt");
    let r3 = reserve(&store, &target, &alice).await;
    let mut cmd3 = new_version(&r3, UPSERT, VersionStatus::Draft);
    cmd3.checkout = Some(Checkout {
        file_id: of.id,
        path: other.clone(),
        base_version: n(1),
        ttl: Duration::from_secs(60),
        audit: draft(AuditAction::Checkout, &alice, &other),
    });
    assert!(
        matches!(store.commit_version(cmd3).await, Err(RepoError::FileLocked(l)) if l.holder == bob)
    );
    assert_eq!(store.find_file(&target).await.unwrap(), None);
    assert!(audit_of(&store, &target).await.is_empty());

    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        1
    );
    let after = audit_of(&store, &path).await;
    assert_eq!(after, before);
    assert!(
        after
            .iter()
            .all(|e| e.id != refused_audit && e.id != refused_audit2)
    );
    for id in [r.id, r2.id, r3.id] {
        assert_eq!(
            store
                .find_reservation(id)
                .await
                .unwrap()
                .unwrap()
                .completed_version,
            None
        );
    }

    // A refusal is recorded on its own, when the use case asks.
    let denied = draft(AuditAction::Upload, &bob, &path).complete(
        Some(f.id),
        None,
        AuditOutcome::Denied,
        Utc::now(),
    );
    store
        .record_refusal(&denied, Duration::from_secs(60))
        .await
        .unwrap();
    let with_denial = audit_of(&store, &path).await;
    assert_eq!(with_denial.len(), before.len() + 1);
    assert!(
        with_denial
            .iter()
            .any(|e| e.id == denied.id && e.outcome == AuditOutcome::Denied)
    );
}

/// The `Upsert` rules: expectations, overwrite, and the author's lock moving with the upload.
pub async fn upsert_rules(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/upsert.txt");
    let create_only = WriteMode::Upsert {
        expected: Some(Expectation {
            latest: None,
            precondition: false,
        }),
        overwrite: false,
    };
    // Expecting version 1 of a missing file.
    let expect_1 = WriteMode::Upsert {
        expected: Some(Expectation {
            latest: Some(n(1)),
            precondition: true,
        }),
        overwrite: true,
    };
    assert!(matches!(
        upload_with(&store, &path, &alice, expect_1).await,
        Err(RepoError::VersionConflict { current: None, .. })
    ));
    let (f, _) = upload_with(&store, &path, &alice, create_only)
        .await
        .unwrap();
    // The path now holds a file: "must not exist" and "no overwrite" are refused.
    assert!(matches!(
        upload_with(&store, &path, &alice, create_only).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(1)
    ));
    let no_overwrite = WriteMode::Upsert {
        expected: None,
        overwrite: false,
    };
    assert!(matches!(
        upload_with(&store, &path, &alice, no_overwrite).await,
        Err(RepoError::VersionConflict {
            current: Some(_),
            ..
        })
    ));
    // If-Match on the latest version passes, then is stale.
    let (f2, v2) = upload_with(&store, &path, &bob, expect_1).await.unwrap();
    assert_eq!((f2.version, v2.number), (n(2), n(2)));
    assert!(matches!(
        upload_with(&store, &path, &bob, expect_1).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
    ));
    // Another user's lock refuses; the holder's own upload moves the lock's base.
    let l = lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(l.base_version, n(2));
    assert!(matches!(
        upload_with(&store, &path, &bob, UPSERT).await,
        Err(RepoError::FileLocked(held)) if held.holder == alice
    ));
    let (f3, _) = upload_with(&store, &path, &alice, UPSERT).await.unwrap();
    let moved = f3.lock.unwrap();
    assert_eq!(
        (moved.holder.clone(), moved.base_version),
        (alice.clone(), n(3))
    );
    assert_eq!(moved.acquired_at, l.acquired_at);
    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        3
    );
}

/// The `Restore` mode: the new version records `restored_from` (read back by id, by page and
/// with its file), the others keep none; the path must still hold the restored file (a new
/// file at a deleted file's path is not it); another user's lock and a stale expectation
/// refuse as for an upload; nothing is renumbered.
pub async fn restore_records_restored_from(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/restore.txt");
    let (f, v1) = upload(&store, &path, &alice).await;
    upload(&store, &path, &alice).await;
    let restore = |from: u32, expected: Option<u32>| WriteMode::Restore {
        file: f.id,
        from: n(from),
        expected: expected.map(|e| Expectation {
            latest: Some(n(e)),
            precondition: true,
        }),
    };
    let (f3, v3) = upload_with(&store, &path, &bob, restore(1, Some(2)))
        .await
        .unwrap();
    assert_eq!((f3.id, f3.version, v3.number), (f.id, n(3), n(3)));
    assert_eq!(
        v3.restored_from,
        Some(n(1)),
        "the restored version's number"
    );
    assert_eq!(v1.restored_from, None);
    let (_, by_id) = store.find_version(v3.id).await.unwrap().unwrap();
    assert_eq!(by_id.restored_from, Some(n(1)), "read back by id");
    let page = store.list_versions(f.id, None, 1000).await.unwrap();
    let froms: Vec<_> = page
        .iter()
        .map(|v| (v.number.get(), v.restored_from))
        .collect();
    assert_eq!(froms, vec![(3, Some(n(1))), (2, None), (1, None)]);
    // A stale expectation and another user's lock refuse, as for an upload.
    assert!(matches!(
        upload_with(&store, &path, &bob, restore(1, Some(2))).await,
        Err(RepoError::VersionConflict { current: Some(c), precondition: true, .. }) if c == n(3)
    ));
    lock(&store, &f3, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        upload_with(&store, &path, &bob, restore(2, None)).await,
        Err(RepoError::FileLocked(held)) if held.holder == alice
    ));
    let (_, v4) = upload_with(&store, &path, &alice, restore(2, None))
        .await
        .unwrap();
    assert_eq!((v4.number, v4.restored_from), (n(4), Some(n(2))));
    // The file is deleted and its path reused: the restore of the old file is refused.
    delete(&store, f.id, &alice, &path).await.unwrap();
    assert_eq!(
        upload_with(&store, &path, &alice, restore(1, None))
            .await
            .map(|_| ()),
        Err(RepoError::FileNotFound),
        "a restore into a path without its file"
    );
    upload(&store, &path, &alice).await;
    assert_eq!(
        upload_with(&store, &path, &alice, restore(1, None))
            .await
            .map(|_| ()),
        Err(RepoError::FileNotFound),
        "a restore into another file at the path"
    );
}

/// The `Commit` rules: the file must exist, the author must hold its live lock, the lock's base
/// must be the latest version; the lock is released unless `keep_lock`.
pub async fn commit_rules(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/commit.txt");
    let ws = workspace(&store, &alice, "commit.txt").await;
    let commit = commit_from(&ws, false);
    let keep = commit_from(&ws, true);
    let pending = VersionStatus::PendingValidation;

    let r = reserve(&store, &path, &alice).await;
    assert_eq!(
        store.commit_version(new_version(&r, commit, pending)).await,
        Err(RepoError::FileNotFound)
    );
    let (f, _) = upload(&store, &path, &alice).await;
    // Without the lock.
    let r = reserve(&store, &path, &alice).await;
    assert!(matches!(
        store.commit_version(new_version(&r, commit, pending)).await,
        Err(RepoError::InvalidTransition(_))
    ));
    // Someone else's lock.
    lock(&store, &f, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        store.commit_version(new_version(&r, commit, pending)).await,
        Err(RepoError::FileLocked(l)) if l.holder == bob
    ));
    unlock(&store, f.id, &bob, &path).await.unwrap();
    // With her lock: `keep_lock` keeps it, on the new version.
    lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, keep_v) = store
        .commit_version(new_version(&r, keep, pending))
        .await
        .unwrap();
    assert_eq!(keep_v.number, n(2));
    assert_eq!(keep_v.status, VersionStatus::PendingValidation);
    let after_keep = store.find_file_by_id(f.id).await.unwrap().unwrap();
    assert_eq!(after_keep.status, FileStatus::PendingValidation);
    let kept = after_keep.lock.unwrap();
    assert_eq!(
        (kept.holder.clone(), kept.base_version),
        (alice.clone(), n(2))
    );

    let r = reserve(&store, &path, &alice).await;
    let (released, v3) = store
        .commit_version(new_version(&r, commit, pending))
        .await
        .unwrap();
    assert_eq!(v3.number, n(3));
    assert_eq!(released.lock, None, "the commit released the lock");

    // Stale base: a checkout of version 1 taken by alice on a file now at version 3, committed
    // from the copy (its ticket) and from a copy without a ticket (the lock's base).
    let f = store.find_file_by_id(f.id).await.unwrap().unwrap();
    let other = file("/projects/p1/workspace-copy.txt");
    let copy = checkout(&store, &f, n(1), &other, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    for source in [&copy, &ws] {
        let r = reserve(&store, &path, &alice).await;
        assert!(matches!(
            store.commit_version(new_version(&r, commit_from(source, false), pending)).await,
            Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(3)
        ));
    }
    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        3
    );
    // A commit from a source that no longer exists is refused.
    let gone = FileRecord {
        id: FileId::from_uuid(uuid::Uuid::new_v4()),
        ..ws.clone()
    };
    let r = reserve(&store, &path, &alice).await;
    assert_eq!(
        store
            .commit_version(new_version(&r, commit_from(&gone, false), pending))
            .await,
        Err(RepoError::FileNotFound)
    );
}

/// A copy with a checkout locks the source for the author at the copied version, in the same
/// unit of work, with its own audit event.
pub async fn checkout_locks_the_source(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let source = file("/projects/p1/source.txt");
    let (src, _) = upload(&store, &source, &bob).await;
    upload(&store, &source, &bob).await;
    let target = FilePath::parse(BucketKind::Users, "/users/alice/ws/source.txt").unwrap();
    let r = reserve(&store, &target, &alice).await;
    let mut cmd = new_version(&r, UPSERT, VersionStatus::Draft);
    cmd.audit = draft(AuditAction::Copy, &alice, &target);
    let checkout_audit = draft(AuditAction::Checkout, &alice, &source);
    let checkout_id = checkout_audit.id;
    cmd.checkout = Some(Checkout {
        file_id: src.id,
        path: source.clone(),
        base_version: n(2),
        ttl: Duration::from_secs(120),
        audit: checkout_audit,
    });
    let (copy, _) = store.commit_version(cmd).await.unwrap();
    assert_eq!(copy.path, target);
    assert_eq!(copy.lock, None);
    // The copy carries the checkout ticket, on every read.
    let ticket = CheckoutTicket {
        file_id: src.id,
        path: source.clone(),
        version: n(2),
    };
    assert_eq!(copy.checkout, Some(ticket.clone()));
    assert_eq!(
        store.find_file(&target).await.unwrap().unwrap().checkout,
        Some(ticket)
    );
    assert_eq!(
        store.find_file(&source).await.unwrap().unwrap().checkout,
        None,
        "the checked-out file has no ticket"
    );
    let locked = store
        .find_file_by_id(src.id)
        .await
        .unwrap()
        .unwrap()
        .lock
        .unwrap();
    assert_eq!(
        (locked.holder.clone(), locked.base_version),
        (alice.clone(), n(2))
    );
    let events = audit_of(&store, &source).await;
    let checkout_event = events.iter().find(|e| e.id == checkout_id).unwrap();
    assert_eq!(checkout_event.file_id, Some(src.id));
    assert_eq!(checkout_event.version, Some(n(2)));
    assert_eq!(audit_of(&store, &target).await.len(), 1);

    // A checkout of a missing file is refused, and nothing of the copy stays.
    let t2 = FilePath::parse(BucketKind::Users, "/users/alice/ws/ghost.txt").unwrap();
    let r = reserve(&store, &t2, &alice).await;
    let mut cmd = new_version(&r, UPSERT, VersionStatus::Draft);
    cmd.checkout = Some(Checkout {
        file_id: FileId::from_uuid(uuid::Uuid::new_v4()),
        path: source.clone(),
        base_version: n(1),
        ttl: Duration::from_secs(60),
        audit: draft(AuditAction::Checkout, &alice, &source),
    });
    assert_eq!(
        store.commit_version(cmd).await,
        Err(RepoError::FileNotFound)
    );
    assert_eq!(store.find_file(&t2).await.unwrap(), None);
}

/// Release rules: the holder releases; another user is refused unless forced; nothing to
/// release is `None` without audit; `list_locks` shows live locks under a prefix, by path.
pub async fn release_and_list_locks(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let paths = [
        "/projects/p1/l/b.txt",
        "/projects/p1/l/a.txt",
        "/projects/p1/l/sub/c.txt",
        "/projects/p1/m.txt",
    ];
    let mut files = Vec::new();
    for p in paths {
        let (f, _) = upload(&store, &file(p), &alice).await;
        lock(&store, &f, &alice, Duration::from_secs(60))
            .await
            .unwrap();
        files.push(f);
    }
    let under = store
        .list_locks(&dir("/projects/p1/l/"), None, 10)
        .await
        .unwrap();
    assert_eq!(
        under.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
        vec![
            "/projects/p1/l/a.txt",
            "/projects/p1/l/b.txt",
            "/projects/p1/l/sub/c.txt"
        ]
    );
    assert!(under.iter().all(|l| l.lock.holder == alice));
    let page = store
        .list_locks(
            &dir("/projects/p1/l/"),
            Some("/projects/p1/l/a.txt".into()),
            1,
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].path.as_str(), "/projects/p1/l/b.txt");
    assert_eq!(page[0].file_id, files[0].id);

    let f = &files[0];
    let release = |actor: &UserId, force: bool| ReleaseLock {
        file_id: f.id,
        actor: actor.clone(),
        force,
        audit: draft(
            if force {
                AuditAction::ForceUnlock
            } else {
                AuditAction::Unlock
            },
            actor,
            &f.path,
        ),
    };
    assert!(matches!(
        store.release_lock(release(&bob, false)).await,
        Err(RepoError::FileLocked(l)) if l.holder == alice
    ));
    let audit_before = audit_of(&store, &f.path).await.len();
    let forced = store.release_lock(release(&bob, true)).await.unwrap();
    assert_eq!(forced.map(|l| l.holder), Some(alice.clone()));
    assert_eq!(store.release_lock(release(&alice, false)).await, Ok(None));
    let events = audit_of(&store, &f.path).await;
    assert_eq!(
        events.len(),
        audit_before + 1,
        "only the forced release is recorded"
    );
    assert_eq!(events[0].action, AuditAction::ForceUnlock);
    let missing = ReleaseLock {
        file_id: FileId::from_uuid(uuid::Uuid::new_v4()),
        ..release(&alice, false)
    };
    assert_eq!(
        store.release_lock(missing).await,
        Err(RepoError::FileNotFound)
    );
    assert_eq!(
        store
            .list_locks(&dir("/projects/p1/l/"), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Deleting a file removes its rows and lock, queues every version's object, and keeps the
/// audit trail; another user's lock refuses the delete.
pub async fn delete_queues_objects_and_keeps_audit(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/doomed.txt");
    let (f, v1) = upload(&store, &path, &alice).await;
    let (_, v2) = upload(&store, &path, &alice).await;
    lock(&store, &f, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    let delete = |actor: &UserId| DeleteFile {
        file_id: f.id,
        actor: actor.clone(),
        audit: draft(AuditAction::Delete, actor, &path),
    };
    assert!(matches!(
        store.delete_file(delete(&alice)).await,
        Err(RepoError::FileLocked(l)) if l.holder == bob
    ));
    let queued = store.delete_file(delete(&bob)).await.unwrap();
    let keys: HashSet<_> = queued.iter().map(|d| d.object_key.clone()).collect();
    assert_eq!(
        keys,
        HashSet::from([v1.object_key.clone(), v2.object_key.clone()])
    );
    assert!(
        queued
            .iter()
            .all(|d| d.bucket == BucketKind::Projects && d.attempts == 0)
    );

    assert_eq!(store.find_file(&path).await.unwrap(), None);
    assert_eq!(store.find_file_by_id(f.id).await.unwrap(), None);
    assert_eq!(store.find_version(v1.id).await.unwrap(), None);
    assert!(
        store
            .list_versions(f.id, None, 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_locks(&dir("/projects/p1/"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let events = audit_of(&store, &path).await;
    assert_eq!(events.len(), 4, "two uploads, the lock, the delete");
    assert_eq!(events[0].action, AuditAction::Delete);
    assert_eq!(
        store.delete_file(delete(&bob)).await,
        Err(RepoError::FileNotFound)
    );

    // The path is free again: a new file, numbered from 1.
    let (again, v) = upload(&store, &path, &alice).await;
    assert_ne!(again.id, f.id);
    assert_eq!(v.number, n(1));

    // The queued objects are the janitor's.
    let claimed = store
        .claim_deletions(Duration::from_secs(60), 10)
        .await
        .unwrap();
    let claimed_keys: HashSet<_> = claimed.iter().map(|d| d.object_key.clone()).collect();
    assert_eq!(claimed_keys, keys);
    assert!(claimed.iter().all(|d| d.attempts == 1));
}

/// Reservations: extend, abandon (queues its object), expiry (commit refused, janitor queues
/// the object), completed ones kept then forgotten; claim, lease and forget.
pub async fn reservations_and_janitor(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/upload.bin");

    // Extend an open reservation; a completed one cannot be.
    let open = reserve(&store, &path, &alice).await;
    let later = Utc::now() + ChronoDuration::hours(2);
    store.extend_reservation(open.id, later).await.unwrap();
    let extended = store.find_reservation(open.id).await.unwrap().unwrap();
    assert!((extended.expires_at - later).num_milliseconds().abs() < 1);
    assert_eq!(
        store
            .extend_reservation(UploadId::from_uuid(uuid::Uuid::new_v4()), later)
            .await,
        Err(RepoError::UploadNotFound)
    );

    // Abandon: gone, object queued; twice is a no-op.
    let queued = store.abandon_reservation(open.id).await.unwrap().unwrap();
    assert_eq!(queued.object_key, open.object_key);
    assert_eq!(queued.bucket, BucketKind::Projects);
    assert_eq!(store.find_reservation(open.id).await.unwrap(), None);
    assert_eq!(store.abandon_reservation(open.id).await.unwrap(), None);
    let cmd = new_version(&open, UPSERT, VersionStatus::Draft);
    assert_eq!(
        store.commit_version(cmd).await,
        Err(RepoError::UploadNotFound)
    );

    // A completed reservation is neither abandoned nor extended.
    let done = reserve(&store, &path, &alice).await;
    store
        .commit_version(new_version(&done, UPSERT, VersionStatus::Draft))
        .await
        .unwrap();
    assert_eq!(store.abandon_reservation(done.id).await.unwrap(), None);
    assert_eq!(
        store.extend_reservation(done.id, later).await,
        Err(RepoError::UploadNotFound)
    );

    // Expired: cannot complete nor extend; the janitor queues its object.
    let expired = reservation(&path, &alice, ChronoDuration::seconds(-5));
    store.create_reservation(&expired, None).await.unwrap();
    assert_eq!(
        store
            .commit_version(new_version(&expired, UPSERT, VersionStatus::Draft))
            .await,
        Err(RepoError::UploadNotFound)
    );
    assert_eq!(
        store.extend_reservation(expired.id, later).await,
        Err(RepoError::UploadNotFound)
    );
    let still_open = reserve(&store, &path, &alice).await;
    assert_eq!(
        store
            .expire_reservations(Duration::from_secs(3600), 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.find_reservation(expired.id).await.unwrap(), None);
    assert!(
        store
            .find_reservation(still_open.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store.find_reservation(done.id).await.unwrap().is_some(),
        "kept for an hour"
    );
    assert_eq!(
        store
            .expire_reservations(Duration::from_secs(3600), 100)
            .await
            .unwrap(),
        0
    );
    // Completed ones older than `keep_completed` are forgotten (nothing queued for them).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        store
            .expire_reservations(Duration::from_secs(1), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.find_reservation(done.id).await.unwrap(), None);

    // The queue: the abandoned object and the expired one.
    let claimed = store
        .claim_deletions(Duration::from_secs(1), 10)
        .await
        .unwrap();
    let keys: HashSet<_> = claimed.iter().map(|d| d.object_key.clone()).collect();
    assert_eq!(
        keys,
        HashSet::from([open.object_key.clone(), expired.object_key.clone()])
    );
    assert!(claimed.iter().all(|d| d.attempts == 1));
    // Leased: nobody else gets them until the lease lapses.
    assert!(
        store
            .claim_deletions(Duration::from_secs(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.forget_deletion(claimed[0].id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let again = store
        .claim_deletions(Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[1].id);
    assert_eq!(again[0].attempts, 2);
    store.forget_deletion(again[0].id).await.unwrap();
    store.forget_deletion(again[0].id).await.unwrap();

    // Queued directly.
    let objects = vec![
        (BucketKind::Users, ObjectKey::from_stored("u/1")),
        (BucketKind::Companies, ObjectKey::from_stored("c/2")),
    ];
    let queued = store.queue_deletions(&objects, None).await.unwrap();
    let mut got: Vec<_> = queued
        .iter()
        .map(|d| (d.bucket, d.object_key.clone()))
        .collect();
    got.sort();
    assert_eq!(got, objects);
    assert!(store.queue_deletions(&[], None).await.unwrap().is_empty());
}

/// Concurrent janitors never claim the same deletion.
pub async fn concurrent_claimers_never_share(store: Store) {
    let objects: Vec<_> = (0..60)
        .map(|i| {
            (
                BucketKind::Projects,
                ObjectKey::from_stored(format!("p1/obj{i}")),
            )
        })
        .collect();
    store.queue_deletions(&objects, None).await.unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_deletions(Duration::from_secs(300), 4)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    mine.extend(batch.into_iter().map(|d| d.id));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 60, "every deletion claimed once");
    assert_eq!(distinct.len(), 60, "no deletion claimed twice");
}

/// An archived file refuses versions, tag changes and locks; tags need no foreign lock;
/// unarchiving restores the status of the latest version.
pub async fn archived_file_refuses_writes(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/archive.txt");
    let (f, _) = upload(&store, &path, &alice).await;

    let mut tags = Tags::new();
    tags.insert("a".into(), serde_json::json!(1));
    let set_tags = |actor: &UserId, tags: &Tags| SetTags {
        file_id: f.id,
        actor: actor.clone(),
        tags: tags.clone(),
        audit: draft(AuditAction::UpdateTags, actor, &path),
    };
    let tagged = store.set_tags(set_tags(&alice, &tags)).await.unwrap();
    assert_eq!(tagged.tags, tags);
    lock(&store, &f, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        store.set_tags(set_tags(&alice, &Tags::new())).await,
        Err(RepoError::FileLocked(_))
    ));
    let archive = |actor: &UserId, archived: bool| SetArchived {
        file_id: f.id,
        actor: actor.clone(),
        archived,
        audit: draft(
            if archived {
                AuditAction::Archive
            } else {
                AuditAction::Unarchive
            },
            actor,
            &path,
        ),
    };
    assert!(matches!(
        store.set_archived(archive(&alice, true)).await,
        Err(RepoError::FileLocked(_))
    ));
    unlock(&store, f.id, &bob, &path).await.unwrap();

    let archived = store.set_archived(archive(&alice, true)).await.unwrap();
    assert_eq!(archived.status, FileStatus::Archived);
    assert!(matches!(
        store.set_archived(archive(&alice, true)).await,
        Err(RepoError::InvalidTransition(_))
    ));
    let audit_before = audit_of(&store, &path).await.len();

    assert!(matches!(
        upload_with(&store, &path, &alice, UPSERT).await,
        Err(RepoError::InvalidTransition(_))
    ));
    assert!(matches!(
        store.set_tags(set_tags(&alice, &Tags::new())).await,
        Err(RepoError::InvalidTransition(_))
    ));
    assert!(matches!(
        lock(&store, &f, &alice, Duration::from_secs(60)).await,
        Err(RepoError::InvalidTransition(_))
    ));
    assert_eq!(audit_of(&store, &path).await.len(), audit_before);
    assert_eq!(
        store.list_versions(f.id, None, 1000).await.unwrap().len(),
        1
    );

    let back = store.set_archived(archive(&alice, false)).await.unwrap();
    assert_eq!(back.status, FileStatus::Draft);
    assert!(matches!(
        store.set_archived(archive(&alice, false)).await,
        Err(RepoError::InvalidTransition(_))
    ));
    assert_eq!(upload(&store, &path, &alice).await.1.number, n(2));
    let missing = SetArchived {
        file_id: FileId::from_uuid(uuid::Uuid::new_v4()),
        ..archive(&alice, true)
    };
    assert_eq!(
        store.set_archived(missing).await,
        Err(RepoError::FileNotFound)
    );
    assert!(matches!(
        lock(
            &store,
            &FileRecord {
                id: FileId::from_uuid(uuid::Uuid::new_v4()),
                ..f.clone()
            },
            &alice,
            Duration::from_secs(1)
        )
        .await,
        Err(RepoError::FileNotFound)
    ));
}

/// The audit trail pages newest first with a `(at, id)` cursor, for a file or a subtree.
pub async fn audit_pages_newest_first(store: Store) {
    let alice = user("alice");
    let a = file("/projects/p1/d/a.txt");
    let b = file("/projects/p1/d/sub/b.txt");
    let c = file("/projects/p1/other.txt");
    for _ in 0..3 {
        upload(&store, &a, &alice).await;
        upload(&store, &b, &alice).await;
        upload(&store, &c, &alice).await;
    }
    let subtree = AuditScope::Directory(dir("/projects/p1/d/"));
    let all = store.list_audit(&subtree, None, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|e| e.path == a || e.path == b));
    for pair in all.windows(2) {
        assert!(
            (pair[0].at, pair[0].id) > (pair[1].at, pair[1].id),
            "newest first"
        );
    }
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_audit(&subtree, before, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|e| AuditCursor { at: e.at, id: e.id });
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let only_a = store
        .list_audit(&AuditScope::File(a.clone()), None, 2)
        .await
        .unwrap();
    assert_eq!(only_a.len(), 2);
    assert!(only_a.iter().all(|e| e.path == a));
    assert_eq!(only_a[0].version, Some(n(3)));
    let rest = store
        .list_audit(
            &AuditScope::File(a.clone()),
            Some(AuditCursor {
                at: only_a[1].at,
                id: only_a[1].id,
            }),
            10,
        )
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].version, Some(n(1)));
}

// ---- fresh lock decisions, unlock of expired locks, checkout tickets, sealed uploads -------

/// A write racing a lock acquisition on the same file is ordered with it: either the write
/// came first (then the new lock stands on the version it wrote), or the lock did (then the
/// write is refused for it). Never both on the old state: a write decides on the lock as
/// committed once it holds the file (PostgreSQL: a fresh read after the row lock; SQLite: one
/// writer at a time). Uploads and deletes, `rounds` times each. (The deterministic
/// interleavings of PostgreSQL are in `storage-pg-diesel`'s `interleaving` tests.)
pub async fn writes_and_lock_acquisitions_are_ordered(store: Store, rounds: usize) {
    let (alice, bob) = (user("alice"), user("bob"));
    for round in 0..rounds {
        let path = file(&format!("/projects/p1/race/{round}.txt"));
        let (f, _) = upload(&store, &path, &alice).await;
        let r = reserve(&store, &path, &alice).await;
        let taker = {
            let (store, f, bob) = (store.clone(), f.clone(), bob.clone());
            tokio::spawn(async move { lock(&store, &f, &bob, Duration::from_secs(60)).await })
        };
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .commit_version(new_version(&r, UPSERT, VersionStatus::Draft))
                    .await
            })
        };
        let (taken, written) = (taker.await.unwrap(), writer.await.unwrap());
        match (&taken, &written) {
            (Ok(l), Ok((_, v))) => assert_eq!(
                l.base_version, v.number,
                "round {round}: both succeeded, so the upload came first and the lock stands on it"
            ),
            (Ok(l), Err(RepoError::FileLocked(held))) => assert_eq!(held, l, "round {round}"),
            other => panic!("round {round}: unexpected {other:?}"),
        }

        // A delete against a fresh acquisition: one of them must see the other.
        let path = file(&format!("/projects/p1/race/delete-{round}.txt"));
        let (f, _) = upload(&store, &path, &alice).await;
        let taker = {
            let (store, f, bob) = (store.clone(), f.clone(), bob.clone());
            tokio::spawn(async move { lock(&store, &f, &bob, Duration::from_secs(60)).await })
        };
        let deleter = {
            let (store, f, alice) = (store.clone(), f.clone(), alice.clone());
            tokio::spawn(async move { delete(&store, f.id, &alice, &f.path).await })
        };
        match (taker.await.unwrap(), deleter.await.unwrap()) {
            (Ok(l), Err(RepoError::FileLocked(held))) => assert_eq!(held, l, "round {round}"),
            (Err(RepoError::FileNotFound), Ok(_)) => {}
            other => {
                panic!("round {round}: the lock and the delete both ignored the other: {other:?}")
            }
        }
    }
}

/// `/unlock` of an expired lock releases nothing and deletes nothing, whoever asks, forced or
/// not (no audit event): its holder, taking it again, still has her `base_version`. A live lock
/// is released by its holder, or forced (audited as `force_unlock`).
pub async fn unlock_of_an_expired_lock_changes_nothing(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/expired-unlock.txt");
    let (f, _) = upload(&store, &path, &alice).await;
    lock(&store, &f, &alice, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let before = audit_of(&store, &path).await;
    let release = |actor: &UserId, force: bool| ReleaseLock {
        file_id: f.id,
        actor: actor.clone(),
        force,
        audit: draft(AuditAction::Unlock, actor, &path),
    };
    for (actor, force) in [(&bob, false), (&bob, true), (&alice, false)] {
        assert_eq!(
            store.release_lock(release(actor, force)).await,
            Ok(None),
            "{actor} force={force}"
        );
    }
    assert_eq!(audit_of(&store, &path).await, before, "nothing recorded");
    // Bob adds a version while the lock is expired; alice's row is still hers: her ticket
    // stays on version 1.
    upload(&store, &path, &bob).await;
    let again = lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(again.base_version, n(1), "the expired row was not deleted");

    // Live: bob may only force it; the force is audited as such.
    assert!(matches!(
        store.release_lock(release(&bob, false)).await,
        Err(RepoError::FileLocked(l)) if l.holder == alice
    ));
    let forced = store.release_lock(release(&bob, true)).await.unwrap();
    assert_eq!(forced.map(|l| l.holder), Some(alice.clone()));
    assert_eq!(
        audit_of(&store, &path).await[0].action,
        AuditAction::ForceUnlock
    );
}

/// Checks out `/projects/p1/<name>` (created by bob, at version 1) into alice's workspace with a
/// lock of `ttl`; returns the checked-out file and the copy.
async fn checked_out(store: &Store, name: &str, ttl: Duration) -> (FileRecord, FileRecord) {
    let target = file(&format!("/projects/p1/{name}"));
    let (f, _) = upload(store, &target, &user("bob")).await;
    let copy = FilePath::parse(BucketKind::Users, &format!("/users/alice/ws/{name}")).unwrap();
    let copy = checkout(store, &f, n(1), &copy, &user("alice"), ttl)
        .await
        .unwrap();
    (f, copy)
}

/// The commit of `copy` onto `target` by alice.
async fn commit_copy(
    store: &Store,
    target: &FileRecord,
    copy: &FileRecord,
    keep_lock: bool,
) -> Result<(FileRecord, Version), RepoError> {
    let r = reserve(store, &target.path, &user("alice")).await;
    store
        .commit_version(new_version(
            &r,
            commit_from(copy, keep_lock),
            VersionStatus::PendingValidation,
        ))
        .await
}

/// A refused commit created nothing: still `versions` versions, and alice still holds the lock.
async fn assert_refused_commit_kept_everything(store: &Store, target: &FileRecord, versions: u32) {
    let now = store.find_file_by_id(target.id).await.unwrap().unwrap();
    assert_eq!(now.version, n(versions), "no version created");
    assert_eq!(
        store
            .list_versions(target.id, None, 1000)
            .await
            .unwrap()
            .len(),
        versions as usize
    );
    assert_eq!(
        now.lock.map(|l| l.holder),
        Some(user("alice")),
        "the lock is kept"
    );
}

/// The checkout ticket lives with the workspace copy: whatever happened to the lock since the
/// checkout, a version newer than the one copied makes the commit from the copy
/// `version_conflict`, nothing is created and the lock stays. (a) another user took the lock
/// after it expired and added a version; (b) another user's unlock of the expired lock, a
/// version by him, and the holder's new lock; (c) the holder's own upload after the checkout.
pub async fn a_stale_checkout_ticket_refuses_the_commit(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let short = Duration::from_secs(1);
    let wait = Duration::from_millis(1300);

    // (a) Bob takes the expired lock and adds version 2; he still holds it.
    let (fa, copy_a) = checked_out(&store, "ticket-a.txt", short).await;
    tokio::time::sleep(wait).await;
    lock(&store, &fa, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    upload(&store, &fa.path, &bob).await;
    assert!(matches!(
        commit_copy(&store, &fa, &copy_a, false).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
    ));
    // Even once alice has the lock back.
    unlock(&store, fa.id, &bob, &fa.path).await.unwrap();
    let relocked = lock(&store, &fa, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        relocked.base_version,
        n(2),
        "a new holder's base is the latest"
    );
    assert!(matches!(
        commit_copy(&store, &fa, &copy_a, false).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
    ));
    assert_refused_commit_kept_everything(&store, &fa, 2).await;

    // (b) Bob's unlock of the expired lock, his version 2, alice's new lock.
    let (fb, copy_b) = checked_out(&store, "ticket-b.txt", short).await;
    tokio::time::sleep(wait).await;
    let unlocked = unlock(&store, fb.id, &bob, &fb.path).await;
    assert_eq!(unlocked, Ok(None));
    upload(&store, &fb.path, &bob).await;
    lock(&store, &fb, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        commit_copy(&store, &fb, &copy_b, true).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
    ));
    assert_refused_commit_kept_everything(&store, &fb, 2).await;

    // (c) Alice's own upload to the checked-out file moves her lock's base, not her ticket.
    let (fc, copy_c) = checked_out(&store, "ticket-c.txt", Duration::from_secs(60)).await;
    let (_, v2) = upload(&store, &fc.path, &alice).await;
    assert_eq!(
        store
            .find_file_by_id(fc.id)
            .await
            .unwrap()
            .unwrap()
            .lock
            .map(|l| l.base_version),
        Some(v2.number)
    );
    assert!(matches!(
        commit_copy(&store, &fc, &copy_c, false).await,
        Err(RepoError::VersionConflict { current: Some(c), .. }) if c == n(2)
    ));
    assert_refused_commit_kept_everything(&store, &fc, 2).await;
    // The copy's ticket never moved.
    for (copy, target) in [(&copy_a, &fa), (&copy_b, &fb), (&copy_c, &fc)] {
        let ticket = store
            .find_file_by_id(copy.id)
            .await
            .unwrap()
            .unwrap()
            .checkout;
        assert_eq!(
            ticket.map(|t| (t.file_id, t.version)),
            Some((target.id, n(1)))
        );
    }
}

/// A checkout whose lock expired, taken by nobody since, commits once its holder has locked
/// again when nothing changed; so does one whose lock another user took and gave back without
/// a version. A commit needs the lock. After a commit (with `keep_lock` or not) the copy's
/// ticket stands on the version it created.
pub async fn a_current_checkout_ticket_commits(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let (f, copy) = checked_out(&store, "current.txt", Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        matches!(
            commit_copy(&store, &f, &copy, true).await,
            Err(RepoError::InvalidTransition(_))
        ),
        "a commit needs the lock"
    );
    let again = lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(again.base_version, n(1));
    let (after, v2) = commit_copy(&store, &f, &copy, true).await.unwrap();
    assert_eq!(v2.number, n(2));
    assert_eq!(
        after.lock.map(|l| (l.holder, l.base_version)),
        Some((alice.clone(), n(2)))
    );
    let moved = store
        .find_file_by_id(copy.id)
        .await
        .unwrap()
        .unwrap()
        .checkout;
    assert_eq!(
        moved.map(|t| t.version),
        Some(n(2)),
        "keep_lock: the ticket moved"
    );
    // Committing again from the copy (nothing changed since) works, and releases the lock.
    let (after, v3) = commit_copy(&store, &f, &copy, false).await.unwrap();
    assert_eq!((v3.number, after.lock), (n(3), None));
    let moved = store
        .find_file_by_id(copy.id)
        .await
        .unwrap()
        .unwrap()
        .checkout;
    assert_eq!(moved.map(|t| t.version), Some(n(3)));

    // Bob takes the lock and gives it back without a version: alice's ticket is current.
    let (g, copy_g) = checked_out(&store, "current-2.txt", Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    lock(&store, &g, &bob, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        commit_copy(&store, &g, &copy_g, false).await,
        Err(RepoError::FileLocked(l)) if l.holder == bob
    ));
    unlock(&store, g.id, &bob, &g.path).await.unwrap();
    lock(&store, &g, &alice, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, v) = commit_copy(&store, &g, &copy_g, false).await.unwrap();
    assert_eq!(v.number, n(2));
}

/// A presigned upload `path` whose staging object is `staging`, valid for `valid_for`.
pub fn presigned(path: &FilePath, author: &UserId, valid_for: ChronoDuration) -> UploadReservation {
    let mut r = reservation(path, author, valid_for);
    r.kind = UploadKind::Presigned;
    r.object_key = ObjectKey::staging(path.owner(), r.id);
    r
}

/// A sealed completion: the version records the seal's object and completes both the seal's
/// reservation and the presigned upload; completing the upload again (with another seal) is
/// `UploadAlreadyCompleted` naming the version; the upload's staging object is queued for
/// deletion, due once the upload's reservation has expired (not before: its URL may still
/// write it).
pub async fn a_sealed_completion_completes_the_upload_and_queues_its_staging_object(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/sealed.bin");
    let upload = presigned(&path, &alice, ChronoDuration::milliseconds(1500));
    store.create_reservation(&upload, None).await.unwrap();
    let seal = reserve(&store, &path, &alice).await;
    let mut cmd = new_version(&seal, UPSERT, VersionStatus::Draft);
    cmd.completes = Some(upload.id);
    let (_, version) = store.commit_version(cmd).await.unwrap();
    assert_eq!(
        version.object_key, seal.object_key,
        "the version is the sealed copy"
    );
    for id in [upload.id, seal.id] {
        assert_eq!(
            store
                .find_reservation(id)
                .await
                .unwrap()
                .unwrap()
                .completed_version,
            Some(version.id)
        );
    }
    let second_seal = reserve(&store, &path, &alice).await;
    let mut again = new_version(&second_seal, UPSERT, VersionStatus::Draft);
    again.completes = Some(upload.id);
    assert_eq!(
        store.commit_version(again).await,
        Err(RepoError::UploadAlreadyCompleted {
            version_id: version.id
        })
    );
    assert_eq!(
        store
            .find_reservation(second_seal.id)
            .await
            .unwrap()
            .unwrap()
            .completed_version,
        None,
        "the refused completion changed nothing"
    );

    assert!(
        store
            .claim_deletions(Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "the staging object is not due while its URL may write it"
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let due = store
        .claim_deletions(Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|d| d.object_key.clone()).collect::<Vec<_>>(),
        vec![upload.object_key.clone()]
    );
    // The completed reservation expires without queueing it a second time.
    assert_eq!(
        store
            .expire_reservations(Duration::from_secs(3600), 100)
            .await
            .unwrap(),
        0
    );

    // An expired presigned upload cannot be completed; the janitor queues its staging object.
    let late = presigned(&path, &alice, ChronoDuration::seconds(-1));
    store.create_reservation(&late, None).await.unwrap();
    let seal = reserve(&store, &path, &alice).await;
    let mut cmd = new_version(&seal, UPSERT, VersionStatus::Draft);
    cmd.completes = Some(late.id);
    assert_eq!(
        store.commit_version(cmd).await,
        Err(RepoError::UploadNotFound)
    );
    assert_eq!(
        store
            .expire_reservations(Duration::from_secs(3600), 100)
            .await
            .unwrap(),
        1
    );
    let due = store
        .claim_deletions(Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter().map(|d| d.object_key.clone()).collect::<Vec<_>>(),
        vec![late.object_key]
    );
}

/// A deletion queued with a `not_before` is not claimed before then, and is after.
pub async fn deferred_deletions_wait_for_their_time(store: Store) {
    let objects = vec![(BucketKind::Users, ObjectKey::from_stored("u/late"))];
    let later = Utc::now() + ChronoDuration::milliseconds(1200);
    let queued = store.queue_deletions(&objects, Some(later)).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(
        store
            .claim_deletions(Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let claimed = store
        .claim_deletions(Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, queued[0].id);
    assert_eq!(claimed[0].attempts, 1);
}

/// `list_pending_reviews` lists the versions `pending_validation` of the files under a
/// directory (any depth, that owner only), oldest first, each with its file and live lock;
/// drafts and decided versions are left out; a page resumes strictly after its cursor.
pub async fn pending_reviews_are_listed_oldest_first(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let pending = async |path: &FilePath| {
        let r = reserve(&store, path, &alice).await;
        store
            .commit_version(new_version(&r, UPSERT, VersionStatus::PendingValidation))
            .await
            .unwrap()
    };
    let a = file("/projects/p1/r/a.pdf");
    let b = file("/projects/p1/r/sub/b.pdf");
    let (_, a1) = pending(&a).await;
    let (_, b1) = pending(&b).await;
    let (a_file, a2) = pending(&a).await;
    // Not listed: a draft, a rejected version, versions outside the directory.
    upload(&store, &file("/projects/p1/r/draft.pdf"), &alice).await;
    let (_, rejected) = pending(&file("/projects/p1/r/rejected.pdf")).await;
    store
        .review_version(review(
            &rejected,
            &file("/projects/p1/r/rejected.pdf"),
            VersionStatus::Rejected,
            &bob,
        ))
        .await
        .unwrap();
    pending(&file("/projects/p1/rest/c.pdf")).await;
    pending(&file("/projects/p2/r/d.pdf")).await;
    lock(&store, &a_file, &bob, Duration::from_secs(600))
        .await
        .unwrap();

    let all = store
        .list_pending_reviews(&dir("/projects/p1/r/"), None, 10)
        .await
        .unwrap();
    let seen: Vec<(VersionId, String)> = all
        .iter()
        .map(|r| (r.version.id, r.file.path.as_str().to_owned()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (a1.id, a.as_str().to_owned()),
            (b1.id, b.as_str().to_owned()),
            (a2.id, a.as_str().to_owned()),
        ]
    );
    assert!(
        all.iter()
            .all(|r| r.version.status == VersionStatus::PendingValidation
                && r.version.file_id == r.file.id)
    );
    assert_eq!(all[0].file.lock.as_ref().map(|l| &l.holder), Some(&bob));
    assert!(all[1].file.lock.is_none());
    assert_eq!(all[2].version, a2);

    // Pages: strictly after the last version sent.
    let first = store
        .list_pending_reviews(&dir("/projects/p1/r/"), None, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let last = &first[1].version;
    let rest = store
        .list_pending_reviews(
            &dir("/projects/p1/r/"),
            Some(ReviewCursor {
                created_at: last.created_at,
                version_id: last.id,
            }),
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|r| r.version.id).collect::<Vec<_>>(),
        vec![a2.id]
    );
    assert!(
        store
            .list_pending_reviews(&dir("/projects/p1/r/sub/"), None, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.version.id)
            .eq([b1.id])
    );
    assert!(
        store
            .list_pending_reviews(&dir("/projects/p3/"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `list_versions` pages newest first by number, below the cursor's number: a walk of small
/// pages covers every version exactly once, including when versions are committed between two
/// pages (they sort above the cursor: a fresh first page shows them, the walk does not repeat
/// anything). Another file's versions never appear.
pub async fn versions_pages_cover_every_version_once(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/history.txt");
    let mut f = upload(&store, &path, &alice).await.0;
    for _ in 1..7 {
        f = upload(&store, &path, &alice).await.0;
    }
    assert_eq!(f.version, n(7));
    // Another file, with versions of the same numbers.
    let other = file("/projects/p1/other.txt");
    upload(&store, &other, &alice).await;
    upload(&store, &other, &alice).await;

    let numbers = |page: &[Version]| page.iter().map(|v| v.number.get()).collect::<Vec<_>>();
    let first = store.list_versions(f.id, None, 3).await.unwrap();
    assert_eq!(numbers(&first), [7, 6, 5]);
    assert!(first.iter().all(|v| v.file_id == f.id));

    // Two versions are committed between pages.
    upload(&store, &path, &alice).await;
    upload(&store, &path, &alice).await;

    let mut seen: Vec<u32> = numbers(&first);
    let mut cursor = first.last().map(|v| v.number);
    let mut pages = 1;
    while let Some(before) = cursor {
        assert!(pages < 10, "the walk never ends: {seen:?}");
        let page = store.list_versions(f.id, Some(before), 3).await.unwrap();
        assert!(page.len() <= 3);
        assert!(page.iter().all(|v| v.file_id == f.id && v.number < before));
        seen.extend(numbers(&page));
        pages += 1;
        cursor = (page.len() == 3)
            .then(|| page.last().map(|v| v.number))
            .flatten();
    }
    assert_eq!(
        seen,
        [7, 6, 5, 4, 3, 2, 1],
        "every version once, newest first"
    );
    assert_eq!(pages, 3);
    // Below version 1 there is nothing.
    assert!(
        store
            .list_versions(f.id, Some(n(1)), 3)
            .await
            .unwrap()
            .is_empty()
    );
    // The new versions head a fresh first page.
    let fresh = store.list_versions(f.id, None, 1000).await.unwrap();
    assert_eq!(numbers(&fresh), [9, 8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(
        numbers(&store.list_versions(f.id, Some(n(9)), 2).await.unwrap()),
        [8, 7]
    );
}

/// `create_reservation` with a cap counts the author's open presigned uploads (not completed,
/// not expired; other kinds and other users not counted) in its unit of work: of a concurrent
/// burst past the cap exactly the room left succeeds, the rest is refused with
/// `TooManyOpenUploads` and stores nothing; completing one makes room for one.
pub async fn open_uploads_are_capped_per_user(store: Store) {
    const CAP: u32 = 5;
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/burst.bin");
    // Not counted: an expired presigned upload, a completed one, a proxy upload, bob's.
    store
        .create_reservation(&presigned(&path, &alice, ChronoDuration::seconds(-5)), None)
        .await
        .unwrap();
    let mut done = presigned(&path, &alice, ChronoDuration::hours(1));
    done.completed_version = Some(VersionId::from_uuid(uuid::Uuid::now_v7()));
    store.create_reservation(&done, None).await.unwrap();
    reserve(&store, &path, &alice).await;
    store
        .create_reservation(&presigned(&path, &bob, ChronoDuration::hours(1)), Some(CAP))
        .await
        .unwrap();
    // One open already.
    let held = presigned(&path, &alice, ChronoDuration::hours(1));
    store.create_reservation(&held, Some(CAP)).await.unwrap();

    let burst: Vec<UploadReservation> = (0..20)
        .map(|_| presigned(&path, &alice, ChronoDuration::hours(1)))
        .collect();
    let tasks: Vec<_> = burst
        .iter()
        .cloned()
        .map(|r| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { (r.id, store.create_reservation(&r, Some(CAP)).await) })
        })
        .collect();
    let mut admitted = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(())) => admitted.push(id),
            (_, Err(RepoError::TooManyOpenUploads { open, limit })) => {
                assert_eq!((open, limit), (u64::from(CAP), CAP));
            }
            (_, Err(e)) => panic!("unexpected refusal: {e}"),
        }
    }
    assert_eq!(
        admitted.len(),
        CAP as usize - 1,
        "the room left, and no more"
    );
    for r in &burst {
        let stored = store.find_reservation(r.id).await.unwrap();
        assert_eq!(
            stored.is_some(),
            admitted.contains(&r.id),
            "a refused one is not stored"
        );
    }
    // More bursts, on a warm pool (every connection open, so the units of work overlap), each
    // by a user of its own: exactly the cap, each time.
    for round in 0..6 {
        let who = user(&format!("burst{round}"));
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let store = Arc::clone(&store);
                let r = presigned(&path, &who, ChronoDuration::hours(1));
                tokio::spawn(async move { store.create_reservation(&r, Some(3)).await.is_ok() })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap());
        }
        assert_eq!(admitted, 3, "round {round}: the cap, and no more");
    }
    // Uncapped reservations (proxy uploads, copies) are not refused; bob still has room.
    reserve(&store, &path, &alice).await;
    store
        .create_reservation(&presigned(&path, &bob, ChronoDuration::hours(1)), Some(CAP))
        .await
        .unwrap();
    // Completing one of alice's makes room for exactly one more.
    store
        .commit_version(new_version(&held, UPSERT, VersionStatus::Draft))
        .await
        .unwrap();
    store
        .create_reservation(
            &presigned(&path, &alice, ChronoDuration::hours(1)),
            Some(CAP),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_reservation(
                &presigned(&path, &alice, ChronoDuration::hours(1)),
                Some(CAP)
            )
            .await,
        Err(RepoError::TooManyOpenUploads { .. })
    ));
}

/// A refusal of `actor` for `action` on `path`, as the use cases record it.
fn refusal(action: AuditAction, actor: &UserId, path: &FilePath) -> AuditEvent {
    let mut d = draft(action, actor, path);
    d.detail = Some("you have no access".into());
    d.complete(None, None, AuditOutcome::Denied, Utc::now())
}

/// Records a refusal of `action` on `path` to `actor` ([`refusal`]), counted with identical ones
/// of the same `window`.
async fn refuse(
    store: &Store,
    action: AuditAction,
    actor: &UserId,
    path: &FilePath,
    window: Duration,
) -> Result<(), RepoError> {
    store
        .record_refusal(&refusal(action, actor, path), window)
        .await
}

/// `record_refusal` counts identical refusals (actor, action, path) of one fixed window on one
/// event, also when they arrive at once (a burst that straddles a window's end makes two, so
/// the counts are summed: every refusal counted, at most two rows); a refusal of another
/// actor, action or path, one of a later window, or any with a zero window, is an event of its
/// own. Successes are left alone.
pub async fn repeated_refusals_are_counted_on_one_event(store: Store) {
    let (alice, mallory) = (user("alice"), user("mallory"));
    let path = file("/projects/p1/guarded.txt");
    upload(&store, &path, &alice).await;
    let minute = Duration::from_secs(60);

    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let store = Arc::clone(&store);
            let event = refusal(AuditAction::Delete, &mallory, &path);
            tokio::spawn(async move { store.record_refusal(&event, minute).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let denied = |events: Vec<AuditEvent>| -> Vec<AuditEvent> {
        events
            .into_iter()
            .filter(|e| e.outcome == AuditOutcome::Denied)
            .collect()
    };
    let counted = |events: &[AuditEvent]| events.iter().map(|e| e.repeat_count).sum::<u32>();
    let events = denied(audit_of(&store, &path).await);
    let counts: Vec<u32> = events.iter().map(|e| e.repeat_count).collect();
    assert!(
        (1..=2).contains(&events.len()),
        "30 identical refusals in one window make {} events (two at most), counts {counts:?}",
        events.len()
    );
    assert_eq!(counted(&events), 30, "every refusal counted: {counts:?}");
    for event in &events {
        assert_eq!(event.actor, mallory);
        assert_eq!(event.action, AuditAction::Delete);
        match event.last_repeat_at {
            Some(last) => assert!(last >= event.at && event.repeat_count > 1, "{event:?}"),
            None => assert_eq!(event.repeat_count, 1, "{event:?}"),
        }
    }
    // The upload's event is untouched.
    let all = audit_of(&store, &path).await;
    assert!(
        all.iter()
            .any(|e| e.outcome == AuditOutcome::Success && e.repeat_count == 1)
    );

    // More bursts on a warm pool (the units of work overlap), each on a path of its own.
    for round in 0..6 {
        let target = file(&format!("/projects/p1/round{round}.txt"));
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let store = Arc::clone(&store);
                let event = refusal(AuditAction::Delete, &mallory, &target);
                tokio::spawn(async move { store.record_refusal(&event, minute).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let events = denied(audit_of(&store, &target).await);
        let counts: Vec<u32> = events.iter().map(|e| e.repeat_count).collect();
        assert!(events.len() <= 2, "round {round}: counts {counts:?}");
        assert_eq!(
            counted(&events),
            24,
            "round {round}: every refusal counted: {counts:?}"
        );
    }

    // Another action, another actor, another path: events of their own.
    refuse(&store, AuditAction::Lock, &mallory, &path, minute)
        .await
        .unwrap();
    refuse(&store, AuditAction::Delete, &user("eve"), &path, minute)
        .await
        .unwrap();
    let elsewhere = file("/projects/p1/other.txt");
    refuse(&store, AuditAction::Delete, &mallory, &elsewhere, minute)
        .await
        .unwrap();
    let events = denied(audit_of(&store, &path).await);
    let (delete, lock): (Vec<_>, Vec<_>) = events
        .into_iter()
        .filter(|e| e.actor == mallory)
        .partition(|e| e.action == AuditAction::Delete);
    assert_eq!((counted(&delete), counted(&lock)), (30, 1));
    assert_eq!(
        denied(audit_of(&store, &path).await).len(),
        delete.len() + 2
    );
    assert_eq!(denied(audit_of(&store, &elsewhere).await).len(), 1);

    // With a zero window each refusal is its own event.
    let open = file("/projects/p1/open.txt");
    for _ in 0..3 {
        refuse(&store, AuditAction::Upload, &mallory, &open, Duration::ZERO)
            .await
            .unwrap();
    }
    let events = denied(audit_of(&store, &open).await);
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e.repeat_count == 1 && e.last_repeat_at.is_none())
    );

    // Windows are fixed: two refusals early in one window are one event, one in the next
    // window is a new event.
    let short = Duration::from_secs(2);
    let timed = file("/projects/p1/timed.txt");
    let record = || async {
        refuse(&store, AuditAction::Upload, &mallory, &timed, short)
            .await
            .unwrap();
    };
    let into_window = 2_000 - Utc::now().timestamp_millis().rem_euclid(2_000);
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(into_window).unwrap() + 50,
    ))
    .await;
    record().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    record().await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    record().await;
    let events = denied(audit_of(&store, &timed).await);
    assert_eq!(
        events.iter().map(|e| e.repeat_count).collect::<Vec<_>>(),
        [1, 2],
        "newest first: the next window's one, then the first window's two"
    );
}

// ---- events and the audit chain (issue 17) ----------------------------------------------------

/// `audit verify`'s walk of the store's chains (of `bucket`, or all) under the development key,
/// which the contract stores chain with.
pub async fn verify_dev(
    store: &Store,
    bucket: Option<BucketKind>,
) -> storage_domain::service::events::AuditReport {
    storage_domain::service::events::verify_audit(
        &**store,
        bucket,
        &storage_domain::rules::chain::AuditKeyring::development(),
    )
    .await
    .unwrap()
}

/// The chained events of one file, in chain order, read page by page (`audit_chain`'s keyset).
pub async fn chain_of(store: &Store, file_id: FileId) -> Vec<AuditEvent> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.audit_chain(None, after, 3).await.unwrap();
        all.extend(page.iter().cloned());
        match page.last() {
            Some(last) if page.len() == 3 => after = last.file_id.zip(last.seq),
            _ => break,
        }
    }
    all.into_iter()
        .filter(|e| e.file_id == Some(file_id))
        .collect()
}

/// Every change's audit event is its outbox record, written by the change's unit of work: its
/// event type (`rules::events::event_type`), its `data`, `pending` delivery; and the next link
/// of its file's chain (`seq` 1, 2, … each `prev_hash` the hash before), which `verify_audit`
/// accepts. Each file has a chain of its own; a refusal is sealed alone and stays valid when
/// its repeats are counted.
pub async fn changes_are_chained_outbox_events(store: Store) {
    use storage_domain::model::EventType as T;
    use storage_domain::ports::DeliveryState;
    use storage_domain::rules::chain::{AuditKeyring, check_sealed};
    use storage_domain::rules::events::EventMessage;

    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/chain.txt");
    let hour = Duration::from_secs(3600);
    let (f, _) = upload(&store, &path, &alice).await;
    let (_, v2) = upload(&store, &path, &alice).await;
    lock(&store, &f, &alice, hour).await.unwrap();
    unlock(&store, f.id, &alice, &path).await.unwrap();
    let mut tags = Tags::new();
    tags.insert("k".into(), "v".into());
    store
        .set_tags(SetTags {
            file_id: f.id,
            actor: alice.clone(),
            tags,
            audit: draft(AuditAction::UpdateTags, &alice, &path),
        })
        .await
        .unwrap();
    for (from, to, action, reviewer) in [
        (
            VersionStatus::Draft,
            VersionStatus::PendingValidation,
            AuditAction::Submit,
            None,
        ),
        (
            VersionStatus::PendingValidation,
            VersionStatus::Validated,
            AuditAction::Approve,
            Some(bob.clone()),
        ),
    ] {
        let actor = reviewer.clone().unwrap_or_else(|| alice.clone());
        store
            .review_version(ReviewTransition {
                version_id: v2.id,
                from,
                to,
                reviewer,
                comment: None,
                audit: draft(action, &actor, &path),
            })
            .await
            .unwrap();
    }
    for (archived, action) in [
        (true, AuditAction::Archive),
        (false, AuditAction::Unarchive),
    ] {
        store
            .set_archived(SetArchived {
                file_id: f.id,
                actor: bob.clone(),
                archived,
                audit: draft(action, &bob, &path),
            })
            .await
            .unwrap();
    }
    // The store seals it.
    let refused = refusal(AuditAction::Delete, &user("mallory"), &path);
    for _ in 0..2 {
        store
            .record_refusal(&refused, Duration::from_secs(60))
            .await
            .unwrap();
    }
    delete(&store, f.id, &alice, &path).await.unwrap();
    // Another file: a chain of its own.
    let other = file("/projects/p1/other.txt");
    let (g, _) = upload(&store, &other, &bob).await;

    let chain = chain_of(&store, f.id).await;
    let types: Vec<Option<T>> = chain.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            T::FileCreated,
            T::VersionCreated,
            T::LockAcquired,
            T::LockReleased,
            T::FileTagsChanged,
            T::VersionSubmitted,
            T::VersionApproved,
            T::FileArchived,
            T::FileUnarchived,
            T::FileDeleted,
        ]
        .map(Some)
    );
    let mut prev = String::new();
    for (i, e) in chain.iter().enumerate() {
        assert_eq!(e.seq, Some(i as u64 + 1), "{e:?}");
        assert_eq!(e.prev_hash.as_deref(), Some(prev.as_str()), "{e:?}");
        prev = e.hash.clone().unwrap();
        // `<key id>:<hex HMAC-SHA256>`, under the default (development) key.
        assert_eq!(prev.len(), "dev:".len() + 64, "{prev}");
        assert!(prev.starts_with("dev:"), "{prev}");
    }
    let g_chain = chain_of(&store, g.id).await;
    assert_eq!(g_chain.len(), 1);
    assert_eq!(
        (g_chain[0].seq, g_chain[0].prev_hash.as_deref()),
        (Some(1), Some(""))
    );

    // `list_audit` shows the same hashes.
    let listed = audit_of(&store, &path).await;
    for e in &chain {
        let shown = listed.iter().find(|l| l.id == e.id).unwrap();
        assert_eq!(shown, e);
    }

    // The refusal: unchained, sealed, still valid with its count raised.
    let unchained = store.audit_unchained(None, None, 100).await.unwrap();
    assert_eq!(unchained.len(), 1, "{unchained:?}");
    assert_eq!(unchained[0].repeat_count, 2);
    assert_eq!(unchained[0].seq, None);
    assert_eq!(
        check_sealed(&unchained[0], &AuditKeyring::development()),
        Ok(())
    );
    assert!(
        unchained[0].hash.as_deref().unwrap().starts_with("dev:"),
        "{unchained:?}"
    );

    let report = verify_dev(&store, None).await;
    assert_eq!(report.faults, []);
    assert_eq!((report.chains, report.chained, report.sealed), (2, 11, 1));
    let users = verify_dev(&store, Some(BucketKind::Users)).await;
    assert_eq!((users.chains, users.sealed), (0, 0));

    // The outbox: every change pending, each a message with its audit id and data.
    let pending = store
        .list_events(DeliveryState::Pending, 100)
        .await
        .unwrap();
    assert_eq!(pending.len(), 11);
    for p in &pending {
        assert_eq!((p.attempts, p.last_error.as_deref()), (0, None));
        let m = EventMessage::of(&p.event).unwrap();
        assert_eq!(m.id, p.event.id.to_string());
        assert!(m.data.is_object(), "{m:?}");
    }
    let created = pending
        .iter()
        .find(|p| p.event.event_type == Some(T::FileCreated) && p.event.file_id == Some(f.id))
        .unwrap();
    let m = EventMessage::of(&created.event).unwrap();
    assert_eq!(m.data["size"], 11);
    assert_eq!(m.data["status"], "draft");
    assert_eq!(m.version, Some(1));
    assert_eq!(m.path, "/projects/p1/chain.txt");
}

/// A store built with its audit chain off (`AuditChain::Off`, `AUDIT_CHAIN=off`, run by the
/// adapters' tests on a store so built): every change's event is still written (its outbox
/// record, pending), but unchained, as before the chain existed (no `seq`, no hash, no previous
/// hash), and a refusal is not sealed; `verify_audit` counts them all as events before the
/// chain and finds no fault.
pub async fn the_chain_switched_off_writes_unchained_events(store: Store) {
    use storage_domain::ports::DeliveryState;

    let alice = user("alice");
    let path = file("/projects/p1/unchained.txt");
    let (f, _) = upload(&store, &path, &alice).await;
    upload(&store, &path, &alice).await;
    lock(&store, &f, &alice, Duration::from_secs(3600))
        .await
        .unwrap();
    unlock(&store, f.id, &alice, &path).await.unwrap();
    refuse(
        &store,
        AuditAction::Delete,
        &user("mallory"),
        &path,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    delete(&store, f.id, &alice, &path).await.unwrap();

    assert_eq!(store.audit_chain(None, None, 100).await.unwrap(), []);
    let events = audit_of(&store, &path).await;
    assert_eq!(events.len(), 6, "{events:?}");
    for e in &events {
        assert_eq!(
            (e.seq, &e.hash, &e.prev_hash),
            (None, &None, &None),
            "{e:?}"
        );
    }
    let unchained = store.audit_unchained(None, None, 100).await.unwrap();
    assert_eq!(unchained.len(), 6);
    let report = verify_dev(&store, None).await;
    assert_eq!(report.faults, []);
    assert_eq!(
        (report.chains, report.chained, report.sealed),
        (0, 0, 0),
        "{report:?}"
    );
    assert_eq!(report.unsealed_before_chain, 6);
    // Still the outbox: the five changes wait for delivery.
    let pending = store
        .list_events(DeliveryState::Pending, 100)
        .await
        .unwrap();
    assert_eq!(pending.len(), 5);
}

/// The outbox's claims: due pending events, each file's as a run from its first pending event
/// in chain order, never the same event to two claimers while its lease runs, again once it
/// lapsed (a dispatcher that died); settled as delivered, released unattempted, retried later
/// (holding back the file's later events), or dead; dead letters are listed and re-queued with
/// their attempts reset.
pub async fn events_are_claimed_in_order_and_settled(store: Store) {
    use storage_domain::ports::{DeliveryState, Settlement};

    let alice = user("alice");
    let hour = Duration::from_secs(3600);
    let (a_path, b_path) = (file("/projects/p1/a.txt"), file("/projects/p1/b.txt"));
    let (a, _) = upload(&store, &a_path, &alice).await;
    lock(&store, &a, &alice, hour).await.unwrap();
    unlock(&store, a.id, &alice, &a_path).await.unwrap();
    let (b, _) = upload(&store, &b_path, &alice).await;
    let a_chain = chain_of(&store, a.id).await;
    let b_chain = chain_of(&store, b.id).await;

    let ids = |events: &[storage_domain::ports::OutboxEvent]| -> HashSet<AuditId> {
        events.iter().map(|e| e.event.id).collect()
    };
    let lease = Duration::from_secs(60);
    let first = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(
        ids(&first),
        HashSet::from([a_chain[0].id, a_chain[1].id, a_chain[2].id, b_chain[0].id]),
        "each file's pending events"
    );
    assert!(first.iter().all(|e| e.attempts == 1));
    assert_eq!(store.claim_events(lease, 10).await.unwrap(), [], "leased");

    store
        .settle_events(vec![
            (a_chain[0].id, Settlement::Delivered),
            (a_chain[1].id, Settlement::Released),
            (a_chain[2].id, Settlement::Released),
        ])
        .await
        .unwrap();
    let next = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(
        ids(&next),
        HashSet::from([a_chain[1].id, a_chain[2].id]),
        "the file's released events, again"
    );
    assert!(
        next.iter().all(|e| e.attempts == 1),
        "a release counts none"
    );
    store
        .settle_events(vec![
            (
                a_chain[1].id,
                Settlement::Retry {
                    at: Utc::now() + ChronoDuration::hours(1),
                    error: "503".into(),
                    acked: Vec::new(),
                },
            ),
            (a_chain[2].id, Settlement::Released),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.claim_events(lease, 10).await.unwrap(),
        [],
        "a retry waits for its time, and the file's later events wait behind it"
    );

    store
        .settle_event(
            b_chain[0].id,
            Settlement::Dead {
                error: "gone".into(),
                acked: Vec::new(),
            },
        )
        .await
        .unwrap();
    let dead = store.list_events(DeliveryState::Dead, 10).await.unwrap();
    assert_eq!(ids(&dead), HashSet::from([b_chain[0].id]));
    assert_eq!(dead[0].state, DeliveryState::Dead);
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_deref()),
        (1, Some("gone"))
    );
    assert_eq!(
        store.retry_events(Some(vec![b_chain[0].id])).await.unwrap(),
        1
    );
    assert_eq!(
        store.list_events(DeliveryState::Dead, 10).await.unwrap(),
        []
    );
    let again = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(ids(&again), HashSet::from([b_chain[0].id]));
    assert_eq!(again[0].attempts, 1, "attempts start again");
    store
        .settle_event(
            b_chain[0].id,
            Settlement::Dead {
                error: "gone".into(),
                acked: Vec::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.retry_events(None).await.unwrap(),
        1,
        "every dead letter"
    );
    assert_eq!(store.retry_events(None).await.unwrap(), 0);

    // A lapsed lease: claimed again, the same event.
    let short = store
        .claim_events(Duration::from_millis(1), 10)
        .await
        .unwrap();
    assert_eq!(ids(&short), HashSet::from([b_chain[0].id]));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reclaimed = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(ids(&reclaimed), HashSet::from([b_chain[0].id]));
    assert_eq!(reclaimed[0].attempts, 2);
    store
        .settle_event(b_chain[0].id, Settlement::Delivered)
        .await
        .unwrap();

    // Concurrent claimers never share an event.
    for i in 0..20 {
        upload(&store, &file(&format!("/projects/p1/many/{i}.txt")), &alice).await;
    }
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.claim_events(lease, 6).await.unwrap() })
        })
        .collect();
    let mut seen = HashSet::new();
    let mut total = 0;
    for task in tasks {
        for e in task.await.unwrap() {
            total += 1;
            assert!(seen.insert(e.event.id), "claimed twice: {:?}", e.event.id);
        }
    }
    // What the racing claimers skipped (rows another held at that instant) is still there.
    for e in store.claim_events(lease, 100).await.unwrap() {
        total += 1;
        assert!(seen.insert(e.event.id), "claimed twice: {:?}", e.event.id);
    }
    assert_eq!(total, 20, "every event of the twenty files, once");
    // The two delivered events left the outbox (neither pending nor dead); the audit trail
    // keeps them, unchanged.
    let mut queued = ids(&store
        .list_events(DeliveryState::Pending, 1000)
        .await
        .unwrap());
    queued.extend(ids(&store
        .list_events(DeliveryState::Dead, 1000)
        .await
        .unwrap()));
    assert_eq!(
        queued.len(),
        22,
        "the twenty files' events and a's last two"
    );
    for delivered in [&a_chain[0], &b_chain[0]] {
        assert!(
            !queued.contains(&delivered.id),
            "{delivered:?} still queued"
        );
    }
    assert_eq!(chain_of(&store, a.id).await[0], a_chain[0]);
    assert_eq!(chain_of(&store, b.id).await[0], b_chain[0]);
}

/// `n` lock+unlock pairs on the file: `2n` events in its chain.
async fn lock_unlock(store: &Store, f: &FileRecord, n: usize) {
    let alice = user("alice");
    for _ in 0..n {
        lock(store, f, &alice, Duration::from_secs(3600))
            .await
            .unwrap();
        unlock(store, f.id, &alice, &f.path).await.unwrap();
    }
}

/// A busy file's backlog goes out in runs: 120 pending events of one file are claimed in
/// ceil(120 / batch) passes, each a run in chain order following the last.
pub async fn a_busy_file_is_claimed_in_runs(store: Store) {
    let alice = user("alice");
    let path = file("/projects/p1/busy.txt");
    let (f, _) = upload(&store, &path, &alice).await;
    lock_unlock(&store, &f, 59).await;
    store
        .set_tags(SetTags {
            file_id: f.id,
            actor: alice.clone(),
            tags: Tags::new(),
            audit: draft(AuditAction::UpdateTags, &alice, &path),
        })
        .await
        .unwrap();
    let chain = chain_of(&store, f.id).await;
    assert_eq!(chain.len(), 120);
    let lease = Duration::from_secs(60);
    let mut passes = 0;
    let mut seqs = Vec::new();
    loop {
        let claimed = store.claim_events(lease, 50).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        passes += 1;
        assert!(claimed.len() <= 50);
        assert!(claimed.iter().all(|e| e.attempts == 1));
        let mut run: Vec<u64> = claimed.iter().map(|e| e.event.seq.unwrap()).collect();
        run.sort_unstable();
        let from = seqs.len() as u64 + 1;
        assert_eq!(
            run,
            (from..from + run.len() as u64).collect::<Vec<_>>(),
            "pass {passes}: the next events of the chain, none skipped"
        );
        seqs.extend(run);
        settle_delivered(&store, &claimed).await;
    }
    assert_eq!(passes, 3, "ceil(120 / 50)");
    assert_eq!(seqs, (1..=120).collect::<Vec<_>>());
}

/// A failed delivery ends its file's run: the events after it are released unattempted (their
/// attempts as before, their due time too), the failed one waits for its retry, and the next
/// claim resumes at the failed event, with the rest of the run behind it in order. A dead
/// event no longer holds the file back.
pub async fn a_failure_releases_the_rest_of_its_run(store: Store) {
    use storage_domain::ports::{DeliveryState, Settlement};

    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/run.txt"), &alice).await;
    lock_unlock(&store, &f, 3).await;
    let chain = chain_of(&store, f.id).await;
    assert_eq!(chain.len(), 7);
    let lease = Duration::from_secs(60);
    let claimed = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 7);
    let ids: Vec<AuditId> = chain.iter().map(|e| e.id).collect();
    // Delivered 1 and 2; 3 failed (due again at once); 4 to 7 not attempted.
    let mut outcomes = vec![
        (ids[0], Settlement::Delivered),
        (ids[1], Settlement::Delivered),
        (
            ids[2],
            Settlement::Retry {
                at: Utc::now() - ChronoDuration::seconds(1),
                error: "503".into(),
                acked: Vec::new(),
            },
        ),
    ];
    outcomes.extend(ids[3..].iter().map(|id| (*id, Settlement::Released)));
    store.settle_events(outcomes).await.unwrap();
    let pending = store
        .list_events(DeliveryState::Pending, 100)
        .await
        .unwrap();
    let attempts: Vec<(AuditId, u32)> = pending.iter().map(|e| (e.event.id, e.attempts)).collect();
    assert_eq!(attempts.len(), 5, "{attempts:?}");
    for (id, n) in &attempts {
        let expected = if *id == ids[2] { 1 } else { 0 };
        assert_eq!(*n, expected, "{id:?}: a released event counts no attempt");
    }
    let again = store.claim_events(lease, 10).await.unwrap();
    let mut resumed: Vec<(u64, u32)> = again
        .iter()
        .map(|e| (e.event.seq.unwrap(), e.attempts))
        .collect();
    resumed.sort_unstable();
    assert_eq!(
        resumed,
        [(3, 2), (4, 1), (5, 1), (6, 1), (7, 1)],
        "resumes at the failed event"
    );
    // 3 dies: the rest of the run comes back without it.
    let mut outcomes = vec![(
        ids[2],
        Settlement::Dead {
            error: "gone".into(),
            acked: Vec::new(),
        },
    )];
    outcomes.extend(ids[3..].iter().map(|id| (*id, Settlement::Released)));
    store.settle_events(outcomes).await.unwrap();
    let rest = store.claim_events(lease, 10).await.unwrap();
    let mut seqs: Vec<u64> = rest.iter().map(|e| e.event.seq.unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [4, 5, 6, 7]);
}

/// Per-sink delivery state: the sinks that acknowledged an event are kept with a retry and a
/// dead letter (listed with it), and kept when `retry_events` re-queues it, so the next
/// attempt goes to the others only.
pub async fn acknowledged_sinks_are_kept(store: Store) {
    use storage_domain::ports::{DeliveryState, Settlement};

    let alice = user("alice");
    let (f, _) = upload(&store, &file("/projects/p1/sinks.txt"), &alice).await;
    let id = chain_of(&store, f.id).await[0].id;
    let lease = Duration::from_secs(60);
    let claimed = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(claimed[0].acked, Vec::<String>::new(), "none yet");
    let a = "https://a.example/hook".to_owned();
    let n = "nats:STORAGE_EVENTS".to_owned();
    store
        .settle_event(
            id,
            Settlement::Retry {
                at: Utc::now() - ChronoDuration::seconds(1),
                error: "https://b.example/hook: 503".into(),
                acked: vec![a.clone()],
            },
        )
        .await
        .unwrap();
    let again = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(again[0].acked, std::slice::from_ref(&a));
    store
        .settle_event(
            id,
            Settlement::Dead {
                error: "https://b.example/hook: 503".into(),
                acked: vec![a.clone(), n.clone()],
            },
        )
        .await
        .unwrap();
    let dead = store.list_events(DeliveryState::Dead, 10).await.unwrap();
    assert_eq!(dead[0].acked, [a.clone(), n.clone()]);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("https://b.example/hook: 503")
    );
    assert_eq!(store.retry_events(Some(vec![id])).await.unwrap(), 1);
    let requeued = store.claim_events(lease, 10).await.unwrap();
    assert_eq!(
        requeued[0].acked,
        [a, n],
        "re-queued for the failed sink only"
    );
    store.settle_event(id, Settlement::Delivered).await.unwrap();
}

/// Concurrent claimers never hold events of the same file at once, and each takes a file's
/// events as a run from its first pending event; over rounds, every event is claimed once.
pub async fn concurrent_claimers_never_share_a_file(store: Store) {
    let alice = user("alice");
    let mut files = Vec::new();
    for i in 0..8 {
        let (f, _) = upload(
            &store,
            &file(&format!("/projects/p1/share/{i}.txt")),
            &alice,
        )
        .await;
        lock_unlock(&store, &f, 3).await;
        files.push(f.id);
    }
    let lease = Duration::from_secs(60);
    let mut delivered: HashMap<FileId, Vec<u64>> = HashMap::new();
    for round in 0..20 {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.claim_events(lease, 5).await.unwrap() })
            })
            .collect();
        let mut holders: HashMap<FileId, usize> = HashMap::new();
        let mut all = Vec::new();
        for (claimer, task) in tasks.into_iter().enumerate() {
            for e in task.await.unwrap() {
                let file_id = e.event.file_id.unwrap();
                let holder = *holders.entry(file_id).or_insert(claimer);
                assert_eq!(
                    holder, claimer,
                    "round {round}: two claimers hold events of {file_id:?}"
                );
                all.push(e);
            }
        }
        if all.is_empty() {
            break;
        }
        for e in &all {
            delivered
                .entry(e.event.file_id.unwrap())
                .or_default()
                .push(e.event.seq.unwrap());
        }
        settle_delivered(&store, &all).await;
    }
    for id in files {
        let mut seqs = delivered.remove(&id).unwrap_or_default();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "{id:?}: each event once");
    }
}

/// A store built with publishing off (`EVENTS_ENABLED=false`): every change writes its audit
/// event as before (type, data, its link in the file's chain, which `verify_audit` accepts),
/// but queues nothing: no claim takes it, no listing shows it, `retry_events` finds nothing.
pub async fn changes_publish_nothing_when_events_are_off(store: Store) {
    use storage_domain::model::EventType as T;
    use storage_domain::ports::DeliveryState;

    let alice = user("alice");
    let path = file("/projects/p1/quiet.txt");
    let (f, _) = upload(&store, &path, &alice).await;
    for _ in 0..3 {
        lock(&store, &f, &alice, Duration::from_secs(3600))
            .await
            .unwrap();
        unlock(&store, f.id, &alice, &path).await.unwrap();
    }
    let chain = chain_of(&store, f.id).await;
    assert_eq!(chain.len(), 7, "the created file and three lock+unlock");
    assert_eq!(chain[0].event_type, Some(T::FileCreated));
    assert_eq!(chain[6].event_type, Some(T::LockReleased));
    let mut prev = String::new();
    for (i, e) in chain.iter().enumerate() {
        assert_eq!(e.seq, Some(i as u64 + 1), "{e:?}");
        assert_eq!(e.prev_hash.as_deref(), Some(prev.as_str()), "{e:?}");
        assert!(e.data.is_some(), "{e:?}");
        prev = e.hash.clone().unwrap();
    }
    let report = verify_dev(&store, None).await;
    assert_eq!(report.faults, []);
    assert_eq!((report.chains, report.chained), (1, 7));

    assert_eq!(
        store
            .claim_events(Duration::from_millis(1), 100)
            .await
            .unwrap(),
        [],
        "nothing to claim"
    );
    for state in [DeliveryState::Pending, DeliveryState::Dead] {
        assert_eq!(
            store.list_events(state, 100).await.unwrap(),
            [],
            "{state:?}"
        );
    }
    assert_eq!(store.retry_events(None).await.unwrap(), 0);
}

/// The events of one file's chain: `(type, version, data)` in chain order, after checking
/// the links (`seq` 1, 2, …, each `prev_hash` the hash before).
async fn linked_events(
    store: &Store,
    file_id: FileId,
) -> Vec<(
    storage_domain::model::EventType,
    Option<u32>,
    serde_json::Value,
)> {
    let chain = chain_of(store, file_id).await;
    let mut prev = String::new();
    chain
        .iter()
        .enumerate()
        .map(|(i, e)| {
            assert_eq!(e.seq, Some(i as u64 + 1), "{e:?}");
            assert_eq!(e.prev_hash.as_deref(), Some(prev.as_str()), "{e:?}");
            prev = e.hash.clone().unwrap();
            let data = serde_json::from_str(e.data.as_deref().unwrap()).unwrap();
            (
                e.event_type.unwrap(),
                e.version.map(VersionNumber::get),
                data,
            )
        })
        .collect()
}

/// The trash, pins and retention record their changes as chained outbox events: pin, unpin,
/// a prune of two versions in one unit of work (each linked after the one before), trash →
/// restore with each `on_conflict` (`replace` links into two chains: the occupant's trashing
/// in its own) → trash → purge, now and by the janitor. Each event carries its data; every
/// chain verifies; a pin survives the trash.
pub async fn trash_pins_and_prunes_are_chained(store: Store) {
    use crate::trash_contract::{restore_cmd, trash};
    use storage_domain::model::{EventType as T, OnConflict};
    use storage_domain::ports::{DeliveryState, PurgeTrash};
    use storage_domain::rules::events::EventMessage;

    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/t/plan.txt");
    let (f, v1) = upload(&store, &path, &alice).await;
    let (_, v2) = upload(&store, &path, &alice).await;
    let (_, v3) = upload(&store, &path, &alice).await;
    upload(&store, &path, &alice).await;
    set_pin(&store, v1.id, &path, &bob, Some("keep"))
        .await
        .unwrap();
    set_pin(&store, v1.id, &path, &bob, None).await.unwrap();
    set_pin(&store, v2.id, &path, &bob, Some("release"))
        .await
        .unwrap();
    // 1 and 3 go (2 is pinned, 4 the latest): two events in one unit of work.
    assert_eq!(
        prune(&store, f.id, keep_last(1), 64).await.unwrap(),
        vec![n(1), n(3)]
    );

    // trash → restore (fail, to the free path).
    let e1 = trash(&store, &f, &alice).await.unwrap();
    let back = store
        .restore_trash(restore_cmd(&e1, None, OnConflict::Fail, &bob))
        .await
        .unwrap();
    let (_, pinned) = store.find_version(v2.id).await.unwrap().unwrap();
    assert_eq!(
        pinned.pinned.as_deref(),
        Some("release"),
        "the pin survives the trash"
    );
    // trash → restore (rename: another file took the path).
    let e2 = trash(&store, &back, &alice).await.unwrap();
    let (occupant, _) = upload(&store, &path, &bob).await;
    let renamed = store
        .restore_trash(restore_cmd(&e2, None, OnConflict::Rename, &alice))
        .await
        .unwrap();
    assert_eq!(renamed.path.as_str(), "/projects/p1/t/plan (restored).txt");
    // trash → restore (replace: the occupant goes to the trash, in its own chain).
    let e3 = trash(&store, &renamed, &alice).await.unwrap();
    let replace = restore_cmd(&e3, Some(path.as_str()), OnConflict::Replace, &alice);
    let replaced_trash_id = replace.replaced_trash_id;
    let replaced = store.restore_trash(replace).await.unwrap();
    assert_eq!((replaced.id, replaced.path.clone()), (f.id, path.clone()));
    // trash → purge now; the occupant purged by the janitor.
    let e4 = trash(&store, &replaced, &alice).await.unwrap();
    store
        .purge_trash(PurgeTrash {
            trash_id: e4.trash_id,
            due_after: None,
            audit: draft(AuditAction::Purge, &alice, &path),
        })
        .await
        .unwrap();
    store
        .purge_trash(PurgeTrash {
            trash_id: replaced_trash_id,
            due_after: Some(Duration::ZERO),
            audit: draft(AuditAction::Purge, &user("janitor"), &path),
        })
        .await
        .unwrap();

    let events = linked_events(&store, f.id).await;
    let types: Vec<T> = events.iter().map(|e| e.0).collect();
    assert_eq!(
        types,
        [
            T::FileCreated,
            T::VersionCreated,
            T::VersionCreated,
            T::VersionCreated,
            T::VersionPinned,
            T::VersionUnpinned,
            T::VersionPinned,
            T::VersionPruned,
            T::VersionPruned,
            T::FileTrashed,
            T::FileRestored,
            T::FileTrashed,
            T::FileRestored,
            T::FileTrashed,
            T::FileRestored,
            T::FileTrashed,
            T::FilePurged,
        ]
    );
    let data = |i: usize| &events[i].2;
    assert_eq!(
        (events[4].1, &data(4)["version_id"], &data(4)["label"]),
        (Some(1), &v1.id.to_string().into(), &"keep".into())
    );
    assert_eq!(data(5)["label"], serde_json::Value::Null);
    assert_eq!(
        (events[6].1, &data(6)["label"]),
        (Some(2), &"release".into())
    );
    let rule = serde_json::json!({"keep_last": 1, "keep_days": null});
    assert_eq!(
        (events[7].1, &data(7)["version_id"], &data(7)["rule"]),
        (Some(1), &v1.id.to_string().into(), &rule)
    );
    assert_eq!(
        (events[8].1, &data(8)["version_id"]),
        (Some(3), &v3.id.to_string().into())
    );
    assert_eq!(
        (&data(9)["trash_id"], &data(9)["versions"], &data(9)["size"]),
        (&e1.trash_id.to_string().into(), &2.into(), &11.into())
    );
    for (i, entry, on_conflict, at) in [
        (10, &e1, "fail", "/projects/p1/t/plan.txt"),
        (12, &e2, "rename", "/projects/p1/t/plan (restored).txt"),
        (14, &e3, "replace", "/projects/p1/t/plan.txt"),
    ] {
        assert_eq!(
            (
                &data(i)["trash_id"],
                &data(i)["on_conflict"],
                &data(i)["path"],
                &data(i)["versions"],
            ),
            (
                &entry.trash_id.to_string().into(),
                &on_conflict.into(),
                &at.into(),
                &2.into()
            ),
            "{:?}",
            data(i)
        );
    }
    assert_eq!(
        (
            &data(14)["replaced_trash_id"],
            &data(14)["replaced_file_id"]
        ),
        (
            &replaced_trash_id.to_string().into(),
            &occupant.id.to_string().into()
        )
    );
    assert_eq!(
        (&data(16)["trash_id"], &data(16)["versions"]),
        (&e4.trash_id.to_string().into(), &2.into())
    );

    let theirs = linked_events(&store, occupant.id).await;
    let types: Vec<T> = theirs.iter().map(|e| e.0).collect();
    assert_eq!(types, [T::FileCreated, T::FileTrashed, T::FilePurged]);
    assert_eq!(
        (
            &theirs[1].2["trash_id"],
            &theirs[1].2["replaced_by_trash_id"]
        ),
        (
            &replaced_trash_id.to_string().into(),
            &e3.trash_id.to_string().into()
        )
    );
    assert_eq!(theirs[2].2["versions"], 1);

    let report = verify_dev(&store, None).await;
    assert_eq!(report.faults, []);
    assert_eq!(
        (report.chains, report.chained),
        (2, (events.len() + theirs.len()) as u64)
    );
    // Every one an outbox event with its message.
    let pending = store
        .list_events(DeliveryState::Pending, 100)
        .await
        .unwrap();
    assert_eq!(pending.len(), events.len() + theirs.len());
    for p in &pending {
        let m = EventMessage::of(&p.event).unwrap();
        assert!(m.data.is_object(), "{m:?}");
    }
}

// ---- pins and retention (issue 16) -----------------------------------------------------------

/// Pins `version_id` with `label` (`None`: unpins) as `actor`.
pub async fn set_pin(
    store: &Store,
    version_id: VersionId,
    path: &FilePath,
    actor: &UserId,
    label: Option<&str>,
) -> Result<(FileRecord, Version), RepoError> {
    let action = if label.is_some() {
        AuditAction::Pin
    } else {
        AuditAction::Unpin
    };
    store
        .set_pin(SetPin {
            version_id,
            actor: actor.clone(),
            label: label.map(str::to_owned),
            audit: draft(action, actor, path),
        })
        .await
}

/// Prunes `file_id` under `rule` as the janitor would (at most `max` versions).
pub async fn prune(
    store: &Store,
    file_id: FileId,
    rule: RetentionRule,
    max: usize,
) -> Result<Vec<VersionNumber>, RepoError> {
    store
        .prune_versions(PruneVersions {
            file_id,
            rule,
            audit_ids: (0..max)
                .map(|_| AuditId::from_uuid(uuid::Uuid::now_v7()))
                .collect(),
            actor: user("janitor"),
            request_id: "janitor-test".into(),
        })
        .await
}

fn keep_last(n: u32) -> RetentionRule {
    RetentionRule {
        keep_last: Some(n),
        keep_days: None,
    }
}

/// The version numbers of a file, newest first.
async fn numbers(store: &Store, file_id: FileId) -> Vec<u32> {
    store
        .list_versions(file_id, None, 1000)
        .await
        .unwrap()
        .iter()
        .map(|v| v.number.get())
        .collect()
}

/// Pins: a label set, read back by id, by page and with the file, replaced, cleared; audited
/// as `pin`/`unpin` on the version; an unknown version is `VersionNotFound`; another user's
/// lock and an archived file refuse it (as a change of tags) and leave the label as it was.
pub async fn pins_are_set_replaced_and_cleared(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/pins.txt");
    let (f, v1) = upload(&store, &path, &alice).await;
    upload(&store, &path, &alice).await;
    assert_eq!(v1.pinned, None);
    let (file_after, pinned) = set_pin(&store, v1.id, &path, &bob, Some("release 1.0"))
        .await
        .unwrap();
    assert_eq!((file_after.id, file_after.version), (f.id, n(2)));
    assert_eq!(
        (pinned.number, pinned.pinned.as_deref()),
        (n(1), Some("release 1.0"))
    );
    let (_, by_id) = store.find_version(v1.id).await.unwrap().unwrap();
    assert_eq!(
        by_id.pinned.as_deref(),
        Some("release 1.0"),
        "read back by id"
    );
    let page = store.list_versions(f.id, None, 10).await.unwrap();
    let pins: Vec<_> = page
        .iter()
        .map(|v| (v.number.get(), v.pinned.clone()))
        .collect();
    assert_eq!(pins, vec![(2, None), (1, Some("release 1.0".to_owned()))]);
    let (_, replaced) = set_pin(&store, v1.id, &path, &bob, Some("final"))
        .await
        .unwrap();
    assert_eq!(replaced.pinned.as_deref(), Some("final"));
    let (_, cleared) = set_pin(&store, v1.id, &path, &bob, None).await.unwrap();
    assert_eq!(cleared.pinned, None);
    let (_, again) = set_pin(&store, v1.id, &path, &bob, None).await.unwrap();
    assert_eq!(
        again.pinned, None,
        "unpinning an unpinned version changes nothing"
    );
    let events: Vec<_> = audit_of(&store, &path)
        .await
        .into_iter()
        .filter(|e| matches!(e.action, AuditAction::Pin | AuditAction::Unpin))
        .map(|e| (e.action, e.version, e.actor.as_str().to_owned(), e.file_id))
        .collect();
    assert_eq!(
        events,
        vec![
            (AuditAction::Unpin, Some(n(1)), "bob".to_owned(), Some(f.id)),
            (AuditAction::Unpin, Some(n(1)), "bob".to_owned(), Some(f.id)),
            (AuditAction::Pin, Some(n(1)), "bob".to_owned(), Some(f.id)),
            (AuditAction::Pin, Some(n(1)), "bob".to_owned(), Some(f.id)),
        ]
    );
    // Unknown version.
    let unknown = VersionId::from_uuid(uuid::Uuid::now_v7());
    assert_eq!(
        set_pin(&store, unknown, &path, &bob, Some("x"))
            .await
            .map(|_| ()),
        Err(RepoError::VersionNotFound)
    );
    // Another user's lock refuses; the holder may pin.
    set_pin(&store, v1.id, &path, &bob, Some("kept"))
        .await
        .unwrap();
    let f = lock(&store, &f, &alice, Duration::from_secs(60))
        .await
        .map(|_| f)
        .unwrap();
    assert!(matches!(
        set_pin(&store, v1.id, &path, &bob, None).await,
        Err(RepoError::FileLocked(held)) if held.holder == alice
    ));
    set_pin(&store, v1.id, &path, &alice, Some("by the holder"))
        .await
        .unwrap();
    // An archived file refuses pins.
    store
        .set_archived(SetArchived {
            file_id: f.id,
            actor: alice.clone(),
            archived: true,
            audit: draft(AuditAction::Archive, &alice, &path),
        })
        .await
        .unwrap();
    assert!(matches!(
        set_pin(&store, v1.id, &path, &alice, Some("late")).await,
        Err(RepoError::InvalidTransition(_))
    ));
    let (_, left) = store.find_version(v1.id).await.unwrap().unwrap();
    assert_eq!(
        left.pinned.as_deref(),
        Some("by the holder"),
        "refusals change nothing"
    );
}

/// Pruning with `keep_last = 3` over nine versions keeps the last three and every exception
/// (pinned 1, validated 2, pending 3, a ticket's base 4): 5 and 6 go, their objects are queued,
/// each is audited as `prune`; a second pass prunes nothing; numbers are never reused; the
/// candidates are the files with more versions than the count; a rule's other part keeps what
/// it keeps; a missing file prunes nothing.
pub async fn pruning_keeps_the_exceptions(store: Store) {
    let (alice, bob) = (user("alice"), user("bob"));
    let path = file("/projects/p1/history.txt");
    let mut versions = Vec::new();
    for _ in 0..9 {
        versions.push(upload(&store, &path, &alice).await.1);
    }
    let f = store.find_file(&path).await.unwrap().unwrap();
    set_pin(&store, versions[0].id, &path, &alice, Some("v1"))
        .await
        .unwrap();
    for (v, approve) in [(&versions[1], true), (&versions[2], false)] {
        store
            .review_version(ReviewTransition {
                version_id: v.id,
                from: VersionStatus::Draft,
                to: VersionStatus::PendingValidation,
                reviewer: None,
                comment: None,
                audit: draft(AuditAction::Submit, &alice, &path),
            })
            .await
            .unwrap();
        if approve {
            store
                .review_version(review(v, &path, VersionStatus::Validated, &bob))
                .await
                .unwrap();
        }
    }
    let copy = FilePath::parse(BucketKind::Users, "/users/bob/ws/history.txt").unwrap();
    checkout(&store, &f, n(4), &copy, &bob, Duration::from_secs(600))
        .await
        .unwrap();
    // Candidates: this file (9 > 3), not under a larger count, not in another bucket.
    let other = file("/projects/p1/short.txt");
    upload(&store, &other, &alice).await;
    assert_eq!(
        store
            .retention_candidates(BucketKind::Projects, keep_last(3), None, 10)
            .await
            .unwrap(),
        vec![f.id]
    );
    assert!(
        store
            .retention_candidates(BucketKind::Projects, keep_last(9), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .retention_candidates(BucketKind::Projects, keep_last(3), Some(f.id), 10)
            .await
            .unwrap()
            .is_empty(),
        "after the last candidate"
    );
    // Drain what the uploads queued (nothing), to see what the pruning queues.
    assert!(
        store
            .claim_deletions(Duration::from_secs(60), 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Both parts: the age part keeps every version (all younger than a day).
    let both = RetentionRule {
        keep_last: Some(3),
        keep_days: Some(1),
    };
    assert!(prune(&store, f.id, both, 64).await.unwrap().is_empty());

    let pruned = prune(&store, f.id, keep_last(3), 64).await.unwrap();
    assert_eq!(pruned, vec![n(5), n(6)]);
    assert_eq!(numbers(&store, f.id).await, vec![9, 8, 7, 4, 3, 2, 1]);
    assert!(store.find_version(versions[4].id).await.unwrap().is_none());
    let (_, none) = store
        .find_file_version(&path, VersionSelector::Number(n(5)))
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_none(), "a pruned number reads as no version");
    let mut queued: Vec<_> = store
        .claim_deletions(Duration::from_secs(60), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.bucket, d.object_key))
        .collect();
    queued.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
    let mut expected: Vec<_> = [&versions[4], &versions[5]]
        .iter()
        .map(|v| (BucketKind::Projects, v.object_key.clone()))
        .collect();
    expected.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
    assert_eq!(queued, expected, "the pruned versions' objects are queued");
    let prunes: Vec<_> = audit_of(&store, &path)
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::Prune)
        .map(|e| (e.version, e.actor.as_str().to_owned(), e.outcome))
        .collect();
    assert_eq!(
        prunes,
        vec![
            (Some(n(6)), "janitor".to_owned(), AuditOutcome::Success),
            (Some(n(5)), "janitor".to_owned(), AuditOutcome::Success),
        ]
    );
    // Again: nothing left to prune.
    assert!(
        prune(&store, f.id, keep_last(3), 64)
            .await
            .unwrap()
            .is_empty()
    );
    // The next version is 10, never a pruned number; then 7 falls out of the last three.
    // (bob holds the lock of his checkout)
    let (_, v10) = upload(&store, &path, &bob).await;
    assert_eq!(v10.number, n(10));
    // At most as many versions as audit ids.
    let more = RetentionRule {
        keep_last: Some(1),
        keep_days: None,
    };
    assert_eq!(prune(&store, f.id, more, 1).await.unwrap(), vec![n(7)]);
    assert_eq!(
        prune(&store, f.id, more, 64).await.unwrap(),
        vec![n(8), n(9)]
    );
    assert_eq!(numbers(&store, f.id).await, vec![10, 4, 3, 2, 1]);
    // Unpinned, version 1 goes too.
    set_pin(&store, versions[0].id, &path, &bob, None)
        .await
        .unwrap();
    assert_eq!(prune(&store, f.id, more, 64).await.unwrap(), vec![n(1)]);
    // A missing file prunes nothing.
    assert!(
        prune(&store, FileId::from_uuid(uuid::Uuid::now_v7()), more, 64)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Janitors pruning one file at once: each version is pruned, queued and audited once.
pub async fn concurrent_pruners_never_double_delete(store: Store, pruners: usize) {
    let alice = user("alice");
    let path = file("/projects/p1/busy.txt");
    for _ in 0..12 {
        upload(&store, &path, &alice).await;
    }
    let f = store.find_file(&path).await.unwrap().unwrap();
    let tasks: Vec<_> = (0..pruners)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { prune(&store, f.id, keep_last(2), 64).await })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap().unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=10).map(n).collect::<Vec<_>>(), "each pruned once");
    let queued = store
        .claim_deletions(Duration::from_secs(60), 100)
        .await
        .unwrap();
    let keys: HashSet<_> = queued.iter().map(|d| d.object_key.clone()).collect();
    assert_eq!(
        (queued.len(), keys.len()),
        (10, 10),
        "each object queued once"
    );
    let prunes = audit_of(&store, &path)
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::Prune)
        .count();
    assert_eq!(prunes, 10, "each pruning audited once");
    assert_eq!(numbers(&store, f.id).await, vec![12, 11]);
    // Each linked once into the file's chain, whichever janitor pruned it.
    let report = verify_dev(&store, None).await;
    assert_eq!(report.faults, []);
    assert_eq!((report.chains, report.chained), (1, 22));
}
