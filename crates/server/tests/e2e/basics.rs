//! The first end-to-end tests (formerly `tests/e2e.rs`), on the shared harness.

use reqwest::StatusCode;
use serde_json::Value;
use storage_test_support::project_standin::unverified_sub;

use crate::support::{App, id_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_an_upload_round_trip() {
    let app = App::start().await;
    let health: Value = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"], "ok");
    assert_eq!(health["object_store"], "ok");

    let alice = app.user("alice");
    let body = alice
        .upload("/users/alice/notes/todo.txt", b"buy milk".to_vec())
        .await
        .ok();
    assert_eq!(body["file"]["version"], 1);
    let got = alice
        .download("/users/alice/notes/todo.txt", "latest")
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.bytes, b"buy milk");

    // Bob sees nothing of Alice's space, not even whether the file exists.
    let bob = app.user("bob");
    let got = bob.download("/users/alice/notes/todo.txt", "latest").await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
    let got = bob
        .download("/users/alice/notes/nothing.txt", "latest")
        .await;
    assert_eq!(got.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_commit_and_approve_across_users() {
    let app = App::start().await;
    app.allow("alice", "p1", &["read", "write", "lock"]);
    app.allow("bob", "p1", &["read", "validate"]);
    // Cookie for alice (as a browser), bearer for bob.
    let alice = app.user("alice").by_cookie();
    let bob = app.user("bob");
    let spec = "/projects/p1/docs/spec.txt";
    let v1 = id_of(&alice.upload(spec, b"v1".to_vec()).await.ok());
    // v1 is a draft: submit it, bob approves.
    alice.submit(&v1).await.ok();
    bob.approve(&v1, Some("ok")).await.ok();

    // Alice checks the file out into her workspace: the source gets locked for her.
    let work = "/users/alice/work/spec.txt";
    alice.copy(spec, work).await.ok();
    let resp = bob.lock(spec).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "bob has no lock right");

    // She edits the workspace copy and commits it back as version 2, pending validation.
    alice.upload(work, b"v2".to_vec()).await.ok();
    let body = alice.commit(work, spec, "second draft").await.ok();
    assert_eq!(body["version"]["number"], 2);
    assert_eq!(body["version"]["status"], "pending_validation");
    let v2 = id_of(&body);

    // While v2 waits, `validated` still serves v1; once approved, it serves v2.
    assert_eq!(bob.download(spec, "validated").await.bytes, b"v1");
    let resp = alice.approve(&v2, None).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN, "alice lacks validate");
    bob.approve(&v2, None).await.ok();
    assert_eq!(bob.download(spec, "validated").await.bytes, b"v2");

    // The project service was asked with the caller's credentials forwarded.
    let asked = app.standin.requests();
    assert!(!asked.is_empty());
    let sub_of = |value: Option<&str>, prefix: &str| {
        value
            .and_then(|v| v.strip_prefix(prefix))
            .and_then(unverified_sub)
    };
    assert!(
        asked
            .iter()
            .any(|r| sub_of(r.cookie(), "access_token=").as_deref() == Some("alice")),
        "alice's cookie is forwarded"
    );
    assert!(
        asked
            .iter()
            .any(|r| sub_of(r.authorization(), "Bearer ").as_deref() == Some("bob")),
        "bob's bearer token is forwarded"
    );
}

/// A file `x` and a directory `x/` may both exist; a page cut between them keeps both, so
/// paging through the listing (cursor = last name) never skips the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_keep_a_file_and_a_directory_of_the_same_name_together() {
    let app = App::start().await;
    let alice = app.user("alice");
    for path in [
        "/users/alice/d/a.txt",
        "/users/alice/d/x",
        "/users/alice/d/x/inner.txt",
        "/users/alice/d/z.txt",
    ] {
        alice.upload(path, b"1".to_vec()).await.ok();
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![
            ("bucket", "users"),
            ("path", "/users/alice/d/"),
            ("limit", "2"),
        ];
        if let Some(c) = cursor.as_deref() {
            query.push(("cursor", c));
        }
        let page = alice.get("/list", &query).await.ok();
        pages += 1;
        for entry in page["entries"].as_array().unwrap() {
            names.push(format!(
                "{}:{}",
                entry["type"].as_str().unwrap(),
                entry["name"].as_str().unwrap()
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(
        names,
        ["file:a.txt", "file:x", "directory:x", "file:z.txt"],
        "{names:?}"
    );
    assert_eq!(pages, 2);
}
