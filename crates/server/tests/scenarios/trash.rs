//! One scenario of the trash (`POST /trash`, `GET /trash`, `POST /trash/restore`, `DELETE
//! /trash`, the janitor's purge) over real HTTP, run on PostgreSQL + Garage (`e2e`) and on the
//! embedded default (`embedded`): each test binary includes this file and gives it a running
//! server with `TRASH_RETENTION_DAYS=0` and a janitor that does not run by itself, where
//! `alice` and `bob` may `read`, `write`, `delete` and `lock` in project `p16t`, and `carol`
//! nothing.

use reqwest::{Client, Method, StatusCode, multipart};
use serde_json::{Value, json};

/// A running server, tokens for it, its object store and its janitor.
pub(crate) trait TrashServer {
    fn base(&self) -> &str;
    fn client(&self) -> &Client;
    fn token(&self, user: &str) -> String;
    /// Whether the object of version `version_id` of the file at `path` is in the store.
    async fn object_exists(&self, path: &str, version_id: &str) -> bool;
    /// One janitor pass; returns how many trash entries it purged.
    async fn run_janitor(&self) -> u64;
}

const DIR: &str = "/projects/p16t/docs/";
const REPORT: &str = "/projects/p16t/docs/report.txt";

struct Call<'a, S: TrashServer> {
    server: &'a S,
}

impl<S: TrashServer> Call<'_, S> {
    async fn json(
        &self,
        user: &str,
        method: Method,
        route: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .server
            .client()
            .request(method, format!("{}{route}", self.server.base()))
            .bearer_auth(self.server.token(user))
            .query(query);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        (status, resp.json().await.expect("a JSON answer"))
    }

    /// Uploads `bytes` to `path`; returns the new version's id.
    async fn upload(&self, user: &str, path: &str, bytes: &[u8]) -> String {
        let form = multipart::Form::new()
            .text("bucket", "projects")
            .text("path", path.to_owned())
            .part(
                "file",
                multipart::Part::bytes(bytes.to_vec()).file_name("f.txt"),
            );
        let resp = self
            .server
            .client()
            .post(format!("{}/upload/proxy", self.server.base()))
            .bearer_auth(self.server.token(user))
            .multipart(form)
            .send()
            .await
            .expect("upload sent");
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("JSON");
        body["version"]["id"]
            .as_str()
            .expect("version id")
            .to_owned()
    }

    async fn download(&self, path: &str, version: &str) -> Vec<u8> {
        let resp = self
            .server
            .client()
            .get(format!("{}/download/proxy", self.server.base()))
            .bearer_auth(self.server.token("alice"))
            .query(&[("bucket", "projects"), ("path", path), ("version", version)])
            .send()
            .await
            .expect("download sent");
        assert_eq!(resp.status(), StatusCode::OK, "download {path}@{version}");
        resp.bytes().await.expect("body").to_vec()
    }

    async fn file_op(&self, user: &str, route: &str, path: &str) -> (StatusCode, Value) {
        self.json(
            user,
            Method::POST,
            route,
            &[],
            Some(json!({"bucket": "projects", "path": path})),
        )
        .await
    }

    /// Trashes `path` as `user`; returns the entry.
    async fn trash(&self, user: &str, path: &str) -> Value {
        let (status, body) = self.file_op(user, "/trash", path).await;
        assert_eq!(status, StatusCode::OK, "trash {path}: {body}");
        body["entry"].clone()
    }

    async fn restore(&self, user: &str, body: Value) -> (StatusCode, Value) {
        self.json(user, Method::POST, "/trash/restore", &[], Some(body))
            .await
    }

    async fn list_trash(&self, user: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut q = vec![("bucket", "projects")];
        q.extend_from_slice(query);
        self.json(user, Method::GET, "/trash", &q, None).await
    }

    async fn purge(&self, user: &str, trash_id: &str) -> (StatusCode, Value) {
        self.json(
            user,
            Method::DELETE,
            "/trash",
            &[("trash_id", trash_id)],
            None,
        )
        .await
    }

    async fn metadata(&self, path: &str) -> (StatusCode, Value) {
        self.json(
            "alice",
            Method::GET,
            "/metadata",
            &[("bucket", "projects"), ("path", path)],
            None,
        )
        .await
    }
}

fn refused(answer: &(StatusCode, Value), status: StatusCode, code: &str, what: &str) {
    assert_eq!(
        (answer.0, answer.1["message"].as_str()),
        (status, Some(code)),
        "{what}: {}",
        answer.1
    );
}

fn id(entry: &Value) -> String {
    entry["trash_id"].as_str().expect("trash_id").to_owned()
}

/// Trash → not visible, path reusable; the listing newest first in pages; restore with each
/// `on_conflict`; purge now and by the janitor → objects gone from the store; refusals; every
/// action in `/audit`.
pub(crate) async fn trash_scenario<S: TrashServer>(server: &S) {
    let call = Call { server };
    let (status, config) = call.json("alice", Method::GET, "/config", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["trash_retention_days"], 0, "{config}");

    let v1 = call.upload("alice", REPORT, b"one").await;
    let v2 = call.upload("alice", REPORT, b"two").await;

    // Someone else's lock refuses.
    let (status, body) = call.file_op("bob", "/lock", REPORT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let locked = call.file_op("alice", "/trash", REPORT).await;
    refused(
        &locked,
        StatusCode::CONFLICT,
        "file_locked",
        "locked by bob",
    );
    let (status, body) = call.file_op("bob", "/unlock", REPORT).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Trash: out of the namespace, listed in the trash.
    let entry = call.trash("alice", REPORT).await;
    assert_eq!(
        (&entry["path"], &entry["versions"], &entry["trashed_by"]),
        (&json!(REPORT), &json!(2), &json!("alice")),
        "{entry}"
    );
    assert!(entry["purge_at"].is_string(), "{entry}");
    let first_id = id(&entry);
    refused(
        &call.metadata(REPORT).await,
        StatusCode::NOT_FOUND,
        "file_not_found",
        "metadata of a trashed file",
    );
    let (status, listing) = call
        .json(
            "alice",
            Method::GET,
            "/list",
            &[("bucket", "projects"), ("path", DIR)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    assert_eq!(listing["entries"], json!([]), "not listed");

    // The path is free: bob's new file there.
    let occupant_v1 = call.upload("bob", REPORT, b"bob's").await;
    let (status, meta) = call.metadata(REPORT).await;
    assert_eq!(
        (status, &meta["file"]["version"]),
        (StatusCode::OK, &json!(1))
    );

    // Listing: newest first, in pages.
    call.upload("alice", "/projects/p16t/docs/other.txt", b"other")
        .await;
    let other = call.trash("alice", "/projects/p16t/docs/other.txt").await;
    let (status, page1) = call
        .list_trash("alice", &[("path", "/projects/p16t/"), ("limit", "1")])
        .await;
    assert_eq!(status, StatusCode::OK, "{page1}");
    assert_eq!(
        page1["entries"][0]["trash_id"], other["trash_id"],
        "newest first"
    );
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (status, page2) = call
        .list_trash(
            "alice",
            &[
                ("path", "/projects/p16t/"),
                ("limit", "1"),
                ("cursor", &cursor),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page2}");
    assert_eq!(page2["entries"][0]["trash_id"], json!(first_id));
    assert!(page2["next_cursor"].is_null(), "{page2}");

    // Restore: fail (default), then rename.
    let conflict = call.restore("alice", json!({"trash_id": first_id})).await;
    refused(
        &conflict,
        StatusCode::CONFLICT,
        "version_conflict",
        "the path is taken",
    );
    let (status, renamed) = call
        .restore(
            "alice",
            json!({"trash_id": first_id, "on_conflict": "rename"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    let renamed_path = "/projects/p16t/docs/report (restored).txt";
    assert_eq!(
        (&renamed["file"]["path"], &renamed["file"]["version"]),
        (&json!(renamed_path), &json!(2))
    );
    assert_eq!(call.download(renamed_path, "1").await, b"one");
    assert_eq!(call.download(renamed_path, "2").await, b"two");

    // Replace: bob's occupant goes to the trash in turn.
    let again = call.trash("alice", renamed_path).await;
    let (status, replaced) = call
        .restore(
            "alice",
            json!({"trash_id": id(&again), "target_path": REPORT, "on_conflict": "replace"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["file"]["path"], REPORT);
    assert_eq!(call.download(REPORT, "latest").await, b"two");
    let (status, trash) = call.list_trash("alice", &[("path", DIR)]).await;
    assert_eq!(status, StatusCode::OK, "{trash}");
    let occupant = trash["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["trashed_by"] == "alice" && e["path"] == REPORT && e["version"] == 1)
        .expect("bob's file is in the trash")
        .clone();

    // Restore to another path, then purge it now: its object is gone.
    let (status, moved) = call
        .restore(
            "bob",
            json!({"trash_id": id(&occupant), "target_path": "/projects/p16t/docs/bob.txt"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        call.download("/projects/p16t/docs/bob.txt", "1").await,
        b"bob's"
    );
    let bobs = call.trash("bob", "/projects/p16t/docs/bob.txt").await;
    assert!(server.object_exists(REPORT, &occupant_v1).await);
    let (status, purged) = call.purge("bob", &id(&bobs)).await;
    assert_eq!(status, StatusCode::OK, "{purged}");
    assert!(
        !server.object_exists(REPORT, &occupant_v1).await,
        "the purged version's object is gone"
    );
    refused(
        &call.purge("bob", &id(&bobs)).await,
        StatusCode::NOT_FOUND,
        "file_not_found",
        "purged already",
    );

    // Carol may not: the listing is refused, an entry she cannot read is unknown to her.
    refused(
        &call.list_trash("carol", &[("path", DIR)]).await,
        StatusCode::FORBIDDEN,
        "access_denied",
        "carol lists",
    );
    refused(
        &call.restore("carol", json!({"trash_id": id(&other)})).await,
        StatusCode::NOT_FOUND,
        "file_not_found",
        "carol restores",
    );

    // The janitor purges what is past TRASH_RETENTION_DAYS (0 here): objects gone.
    call.trash("alice", REPORT).await;
    assert!(server.object_exists(REPORT, &v1).await);
    assert!(server.object_exists(REPORT, &v2).await);
    assert!(server.run_janitor().await >= 2, "report.txt and other.txt");
    assert!(!server.object_exists(REPORT, &v1).await, "v1's object gone");
    assert!(!server.object_exists(REPORT, &v2).await, "v2's object gone");
    let (status, empty) = call
        .list_trash("alice", &[("path", "/projects/p16t/")])
        .await;
    assert_eq!((status, &empty["entries"]), (StatusCode::OK, &json!([])));

    // Every action is in the audit trail of the directory.
    let (status, audit) = call
        .json(
            "alice",
            Method::GET,
            "/audit",
            &[("bucket", "projects"), ("path", DIR), ("limit", "1000")],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let events = audit["events"].as_array().expect("events");
    let seen = |action: &str, actor: &str| {
        events
            .iter()
            .filter(|e| e["action"] == action && e["actor"] == actor && e["outcome"] == "success")
            .count()
    };
    assert_eq!(
        seen("trash", "alice"),
        5,
        "report twice, other, renamed, the occupant: {audit}"
    );
    assert_eq!(seen("trash", "bob"), 1);
    assert_eq!(seen("trash_restore", "alice"), 2);
    assert_eq!(seen("trash_restore", "bob"), 1);
    assert_eq!(seen("purge", "bob"), 1);
    assert_eq!(seen("purge", "janitor"), 2);
}
