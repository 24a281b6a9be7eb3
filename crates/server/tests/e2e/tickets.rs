//! The checkout ticket lives with the workspace copy (`/metadata` shows it): whatever happens to
//! the lock after a checkout, a commit from the copy whose source has a newer version, by anyone,
//! is 409 `version_conflict`, nothing is created and the lock stays. (a) another user takes the
//! lock after it expired; (b) another user's `/unlock` of the expired lock; (c) the holder's own
//! direct upload. A checkout whose lock expired, taken by nobody, still commits when nothing
//! changed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use storage_domain::ErrorCode;

use crate::support::{App, As, Options, actions, numbers};

/// Locks taken by a checkout live one second (`LOCK_TTL_SECONDS=1`).
async fn app() -> App {
    let app = App::start_with(Options::default().var("LOCK_TTL_SECONDS", 1)).await;
    for user in ["alice", "bob"] {
        app.allow(user, "p", &["read", "write", "lock"]);
    }
    app
}

/// Bob creates `path` (version 1); alice checks it out into her workspace copy `work`.
async fn checked_out(app: &App, path: &str, work: &str) {
    app.user("bob").upload(path, b"v1".to_vec()).await.ok();
    app.user("alice").copy(path, work).await.ok();
}

async fn expire_the_lock() {
    tokio::time::sleep(Duration::from_millis(1_300)).await;
}

/// The commit of `work` onto `path` is refused as stale; nothing is created, alice holds the
/// lock (when she held it), the project file is still bob's version 2.
async fn assert_stale_commit(alice: &As<'_>, work: &str, path: &str, lock_holder: &str) {
    let audit_before = alice.audit(path).await.ok();
    let body = alice
        .commit(work, path, "my edit")
        .await
        .err(StatusCode::CONFLICT, ErrorCode::VersionConflict);
    assert_eq!(body["current_version"], 2, "{body}");
    let after = alice.versions(path).await.ok();
    assert_eq!(numbers(&after), [2, 1], "nothing created");
    assert_eq!(
        after["file"]["lock"]["holder"], lock_holder,
        "the lock is kept"
    );
    assert_eq!(alice.download(path, "latest").await.bytes, b"v2, bob");
    assert_eq!(
        crate::support::changes_only(alice.audit(path).await.ok()),
        crate::support::changes_only(audit_before),
        "nothing recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_copy_shows_its_ticket() {
    let app = app().await;
    let (path, work) = ("/projects/p/shown.txt", "/users/alice/shown.txt");
    checked_out(&app, path, work).await;
    let alice = app.user("alice");
    let source = alice.metadata(path).await.ok();
    let copy = alice.metadata(work).await.ok();
    assert_eq!(
        copy["file"]["checkout"],
        json!({"file_id": source["file"]["id"], "bucket": "projects", "path": path, "version": 1})
    );
    assert_eq!(source["file"]["checkout"], serde_json::Value::Null);
    // Edits of the copy keep its ticket.
    alice.upload(work, b"edited".to_vec()).await.ok();
    assert_eq!(
        alice.metadata(work).await.ok()["file"]["checkout"]["version"],
        1
    );
}

/// (a) Alice's lock expires; bob takes it and adds version 2: her commit is stale, while bob
/// holds the lock and once she has it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_by_another_after_expiry_leaves_the_ticket_stale() {
    let app = app().await;
    let (path, work) = ("/projects/p/a.txt", "/users/alice/a.txt");
    checked_out(&app, path, work).await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    expire_the_lock().await;
    bob.lock_for(path, 60).await.ok();
    bob.upload(path, b"v2, bob".to_vec()).await.ok();
    alice
        .upload(work, b"alice's edit of v1".to_vec())
        .await
        .ok();
    assert_stale_commit(&alice, work, path, "bob").await;
    bob.unlock(path).await.ok();
    let relocked = alice.lock_for(path, 60).await.ok();
    assert_eq!(
        relocked["lock"]["base_version"], 2,
        "a new lock stands on the latest"
    );
    assert_stale_commit(&alice, work, path, "alice").await;
}

/// (b) Bob's `/unlock` of alice's expired lock releases nothing and deletes nothing; he adds
/// version 2; alice locks again (her lock row kept her base): her commit is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlock_by_another_of_an_expired_lock_changes_nothing() {
    let app = app().await;
    let (path, work) = ("/projects/p/b.txt", "/users/alice/b.txt");
    checked_out(&app, path, work).await;
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    expire_the_lock().await;
    let audit_before = alice.audit(path).await.ok();
    let unlocked = bob.unlock(path).await.ok();
    assert_eq!(unlocked["released"], serde_json::Value::Null);
    assert_eq!(
        alice.audit(path).await.ok(),
        audit_before,
        "nothing released, nothing recorded"
    );
    bob.upload(path, b"v2, bob".to_vec()).await.ok();
    let relocked = alice.lock_for(path, 60).await.ok();
    assert_eq!(
        relocked["lock"]["base_version"], 1,
        "her expired lock was not deleted"
    );
    assert_stale_commit(&alice, work, path, "alice").await;
    assert!(!actions(&alice.audit(path).await.ok()).contains(&"unlock".to_owned()));
}

/// (c) Alice's own upload to the project file after her checkout moves her lock's base, not
/// her copy's ticket: committing the copy would supersede version 2 unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holders_own_upload_after_checkout_leaves_the_ticket_stale() {
    let app = App::start().await;
    app.allow("alice", "p", &["read", "write", "lock"]);
    app.allow("bob", "p", &["read", "write", "lock"]);
    let (path, work) = ("/projects/p/c.txt", "/users/alice/c.txt");
    checked_out(&app, path, work).await;
    let alice = app.user("alice");
    let uploaded = alice.upload(path, b"v2, bob".to_vec()).await.ok();
    assert_eq!(uploaded["file"]["lock"]["base_version"], 2);
    alice.upload(work, b"edit of v1".to_vec()).await.ok();
    assert_stale_commit(&alice, work, path, "alice").await;
}

/// A checkout whose lock expired and that nobody took commits once its holder locks again, when
/// nothing changed; a commit with `keep_lock` moves the ticket to the version it created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_checkout_nobody_took_still_commits() {
    let app = app().await;
    let (path, work) = ("/projects/p/d.txt", "/users/alice/d.txt");
    checked_out(&app, path, work).await;
    let alice = app.user("alice");
    alice.upload(work, b"alice's v2".to_vec()).await.ok();
    expire_the_lock().await;
    alice
        .commit(work, path, "needs the lock")
        .await
        .err(StatusCode::CONFLICT, ErrorCode::InvalidTransition);
    alice.lock_for(path, 60).await.ok();
    let committed = alice
        .post(
            "/versions/commit",
            json!({"source_bucket": "users", "source_path": work,
                   "target_bucket": "projects", "target_path": path,
                   "message": "my edit", "keep_lock": true}),
        )
        .await
        .ok();
    assert_eq!(committed["version"]["number"], 2);
    assert_eq!(committed["file"]["lock"]["holder"], "alice");
    assert_eq!(
        alice.metadata(work).await.ok()["file"]["checkout"]["version"],
        2
    );
    assert_eq!(alice.download(path, "latest").await.bytes, b"alice's v2");
    // Her next commit from the copy is not stale.
    alice.upload(work, b"alice's v3".to_vec()).await.ok();
    let again = alice.commit(work, path, "more").await.ok();
    assert_eq!(again["version"]["number"], 3);
}
