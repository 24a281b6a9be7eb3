//! One scenario of `POST /versions/{version_id}/restore` over real HTTP, run on PostgreSQL +
//! Garage (`e2e`) and on the embedded default (`embedded`): each test binary includes this file
//! and gives it a running server where `alice` and `bob` may `read`, `write`, `lock` and
//! `validate` in project `p16`, and `carol` nothing.

use reqwest::{Client, Method, StatusCode, multipart};
use serde_json::{Value, json};

/// A running server and tokens for it.
pub(crate) trait Server {
    fn base(&self) -> &str;
    fn client(&self) -> &Client;
    fn token(&self, user: &str) -> String;
}

pub(crate) const PATH: &str = "/projects/p16/plan.txt";

struct Call<'a, S: Server> {
    server: &'a S,
}

impl<S: Server> Call<'_, S> {
    async fn json(
        &self,
        user: &str,
        method: Method,
        route: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
        if_match: Option<&str>,
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
        if let Some(if_match) = if_match {
            req = req.header("If-Match", if_match);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        (status, resp.json().await.expect("a JSON answer"))
    }

    async fn upload(&self, user: &str, bytes: Vec<u8>) -> Value {
        let form = multipart::Form::new()
            .text("bucket", "projects")
            .text("path", PATH)
            .part("file", multipart::Part::bytes(bytes).file_name("plan.txt"));
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
        resp.json().await.expect("JSON")
    }

    async fn download(&self, user: &str, version: &str) -> Vec<u8> {
        let resp = self
            .server
            .client()
            .get(format!("{}/download/proxy", self.server.base()))
            .bearer_auth(self.server.token(user))
            .query(&[("bucket", "projects"), ("path", PATH), ("version", version)])
            .send()
            .await
            .expect("download sent");
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "download of version {version}"
        );
        resp.bytes().await.expect("body").to_vec()
    }

    async fn restore(
        &self,
        user: &str,
        version_id: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (StatusCode, Value) {
        self.json(
            user,
            Method::POST,
            &format!("/versions/{version_id}/restore"),
            &[],
            body,
            if_match,
        )
        .await
    }

    async fn file_op(&self, user: &str, route: &str) -> (StatusCode, Value) {
        self.json(
            user,
            Method::POST,
            route,
            &[],
            Some(json!({"bucket": "projects", "path": PATH})),
            None,
        )
        .await
    }

    async fn versions(&self, user: &str) -> Vec<Value> {
        let (status, body) = self
            .json(
                user,
                Method::GET,
                "/versions",
                &[("bucket", "projects"), ("path", PATH)],
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["versions"].as_array().expect("versions").clone()
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

/// Five versions of different bytes; version 2 restored as version 6 (same sha256, size and
/// bytes, `restored_from` 2, a draft by the caller; 1–5 unchanged); refused while bob holds the
/// lock (409), on a stale `If-Match` (412), on an archived file (409), for carol and for an
/// unknown id (404 `version_not_found` alike); allowed under the caller's own lock; audited.
pub(crate) async fn restore_scenario<S: Server>(server: &S) {
    let call = Call { server };
    for i in 1..=5 {
        call.upload(
            "alice",
            format!("plan, draft {i}: {}", "x".repeat(i * 7)).into_bytes(),
        )
        .await;
    }
    let before = call.versions("alice").await;
    assert_eq!(before.len(), 5);
    let v2 = before
        .iter()
        .find(|v| v["number"] == 2)
        .expect("version 2")
        .clone();
    let v2_id = v2["id"].as_str().expect("id").to_owned();

    let (status, done) = call
        .restore("bob", &v2_id, Some(json!({"message": "back to 2"})), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let v6 = &done["version"];
    assert_eq!(v6["number"], 6, "{done}");
    assert_eq!(v6["restored_from"], 2, "{done}");
    assert_eq!(
        (&v6["sha256"], &v6["size"]),
        (&v2["sha256"], &v2["size"]),
        "the restored version's digest and size"
    );
    assert_eq!(
        (&v6["status"], &v6["author_id"], &v6["message"]),
        (&json!("draft"), &json!("bob"), &json!("back to 2"))
    );
    assert_eq!(done["file"]["version"], 6);
    assert_eq!(
        call.download("alice", "6").await,
        call.download("alice", "2").await,
        "version 6 holds version 2's bytes"
    );
    assert_ne!(
        call.download("alice", "6").await,
        call.download("alice", "5").await
    );
    let after = call.versions("alice").await;
    assert_eq!(after.len(), 6);
    assert_eq!(&after[1..], &before[..], "versions 1 to 5 unchanged");
    assert_eq!(&after[0], v6, "/versions shows the restored version");
    assert!(
        before.iter().all(|v| v["restored_from"].is_null()),
        "{before:?}"
    );

    // Another user's lock refuses; the caller's own lock does not.
    let v1_id = before[4]["id"].as_str().expect("id").to_owned();
    let (status, body) = call.file_op("alice", "/lock").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let locked = call.restore("bob", &v1_id, None, None).await;
    refused(
        &locked,
        StatusCode::CONFLICT,
        "file_locked",
        "bob while alice holds the lock",
    );
    let (status, own) = call.restore("alice", &v1_id, None, None).await;
    assert_eq!(status, StatusCode::OK, "under her own lock: {own}");
    assert_eq!(
        (&own["version"]["number"], &own["version"]["restored_from"]),
        (&json!(7), &json!(1))
    );
    assert_eq!(own["version"]["message"], "restored from version 1");
    assert_eq!(
        own["file"]["lock"]["base_version"], 7,
        "the lock moved on: {own}"
    );
    let (status, body) = call.file_op("alice", "/unlock").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // If-Match, as for an upload.
    let stale = call.restore("bob", &v1_id, None, Some("6")).await;
    refused(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "version_conflict",
        "If-Match 6 at 7",
    );
    let (status, body) = call.restore("bob", &v1_id, None, Some("7")).await;
    assert_eq!(status, StatusCode::OK, "If-Match 7 at 7: {body}");

    // An archived file refuses, as for an upload.
    let (status, body) = call.file_op("alice", "/archive").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let archived = call.restore("alice", &v1_id, None, None).await;
    refused(
        &archived,
        StatusCode::CONFLICT,
        "invalid_transition",
        "archived",
    );
    let (status, body) = call.file_op("alice", "/unarchive").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Someone who may not read the file learns nothing: as an unknown id.
    let foreign = call.restore("carol", &v2_id, None, None).await;
    refused(
        &foreign,
        StatusCode::NOT_FOUND,
        "version_not_found",
        "carol",
    );
    let unknown = call
        .restore("alice", "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d", None, None)
        .await;
    refused(
        &unknown,
        StatusCode::NOT_FOUND,
        "version_not_found",
        "an unknown id",
    );

    let numbers: Vec<u64> = call
        .versions("alice")
        .await
        .iter()
        .map(|v| v["number"].as_u64().expect("number"))
        .collect();
    assert_eq!(
        numbers,
        vec![8, 7, 6, 5, 4, 3, 2, 1],
        "nothing removed or renumbered"
    );

    let (status, audit) = call
        .json(
            "alice",
            Method::GET,
            "/audit",
            &[("bucket", "projects"), ("path", PATH)],
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let restores: Vec<(&str, &str, Option<u64>)> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "restore" && e["outcome"] == "success")
        .map(|e| {
            (
                e["actor"].as_str().expect("actor"),
                e["detail"].as_str().unwrap_or_default(),
                e["version"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        restores,
        vec![
            ("bob", "from version 1", Some(8)),
            ("alice", "from version 1", Some(7)),
            ("bob", "from version 2", Some(6)),
        ],
        "{audit}"
    );
}
