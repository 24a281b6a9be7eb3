//! One scenario of pinned versions and retention (`VERSION_KEEP_LAST=3`) over real HTTP, run on
//! PostgreSQL + Garage (`e2e`) and on the embedded default (`embedded`): each test binary
//! includes this file and gives it a running server, started with `VERSION_KEEP_LAST=3`, where
//! `alice` and `bob` may `read`, `write`, `lock` and `validate` in project `p16`, and `carol`
//! nothing; janitor passes by instances of their own; and a look into its object store.

use reqwest::{Client, Method, StatusCode, multipart};
use serde_json::{Value, json};
use storage_domain::model::{BucketKind, ObjectKey};
use storage_domain::service::JanitorReport;

/// A running server, tokens for it, janitors and its object store.
pub(crate) trait Server {
    fn base(&self) -> &str;
    fn client(&self) -> &Client;
    fn token(&self, user: &str) -> String;
    /// One janitor pass by an instance of its own (adapters of its own).
    async fn janitor(&self) -> JanitorReport;
    /// Whether the object store holds `key` in `bucket`.
    async fn holds(&self, bucket: BucketKind, key: &ObjectKey) -> bool;
}

pub(crate) const PATH: &str = "/projects/p16/retained.txt";
const COPY: &str = "/users/bob/ws/retained.txt";

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

    async fn post(&self, user: &str, route: &str, body: Value) -> Value {
        let (status, answer) = self.json(user, Method::POST, route, &[], Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{route}: {answer}");
        answer
    }

    async fn upload(&self, user: &str, i: u32) -> Value {
        let form = multipart::Form::new()
            .text("bucket", "projects")
            .text("path", PATH)
            .part(
                "file",
                multipart::Part::bytes(format!("version {i}").into_bytes()).file_name("r.txt"),
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
        let answer: Value = resp.json().await.expect("JSON");
        assert_eq!(answer["version"]["number"], i, "{answer}");
        answer["version"].clone()
    }

    async fn versions(&self) -> Vec<Value> {
        let (status, body) = self
            .json(
                "alice",
                Method::GET,
                "/versions",
                &[("bucket", "projects"), ("path", PATH)],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["versions"].as_array().expect("versions").clone()
    }
}

fn id(version: &Value) -> String {
    version["id"].as_str().expect("id").to_owned()
}

fn refused(answer: &(StatusCode, Value), status: StatusCode, code: &str, what: &str) {
    assert_eq!(
        (answer.0, answer.1["message"].as_str()),
        (status, Some(code)),
        "{what}: {}",
        answer.1
    );
}

/// Nine versions; 1 pinned, 2 validated, 3 pending, 4 the base of bob's checkout ticket, 5
/// pinned then unpinned; two janitors at once prune exactly 5 and 6 (the last three being 7, 8,
/// 9), once each; their objects are gone from the store, the others stay; `/versions` shows the
/// gap, the next version is 10; the audit trail shows pin, unpin and prune; `/config` reports
/// the rule; bad labels, carol and unknown ids are refused.
pub(crate) async fn retention_scenario<S: Server>(server: &S) {
    let call = Call { server };
    let (status, config) = call.json("alice", Method::GET, "/config", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        config["retention"]["projects"],
        json!({"keep_last": 3, "keep_days": null}),
        "{config}"
    );

    let mut v = vec![Value::Null];
    for i in 1..=4 {
        v.push(call.upload("alice", i).await);
    }
    // Bob checks version 4 out into his workspace (the ticket names 4), then lets the lock go:
    // the ticket stays on his copy.
    call.post(
        "bob",
        "/copy",
        json!({"source_bucket": "projects", "source_path": PATH,
               "target_bucket": "users", "target_path": COPY}),
    )
    .await;
    call.post(
        "bob",
        "/unlock",
        json!({"bucket": "projects", "path": PATH}),
    )
    .await;
    for i in 5..=9 {
        v.push(call.upload("alice", i).await);
    }

    // Pins: 1 kept, 5 pinned then unpinned; labels checked.
    let pinned = call
        .post(
            "bob",
            &format!("/versions/{}/pin", id(&v[1])),
            json!({"label": " baseline "}),
        )
        .await;
    assert_eq!(
        (&pinned["version"]["number"], &pinned["version"]["pinned"]),
        (&json!(1), &json!("baseline")),
        "{pinned}"
    );
    call.post(
        "alice",
        &format!("/versions/{}/pin", id(&v[5])),
        json!({"label": "maybe"}),
    )
    .await;
    let unpinned = call
        .post(
            "alice",
            &format!("/versions/{}/unpin", id(&v[5])),
            json!({}),
        )
        .await;
    assert_eq!(unpinned["version"]["pinned"], Value::Null, "{unpinned}");
    for bad in [
        json!({"label": ""}),
        json!({"label": "a\nb"}),
        json!({}),
        json!({"label": "x".repeat(129)}),
    ] {
        let answer = call
            .json(
                "alice",
                Method::POST,
                &format!("/versions/{}/pin", id(&v[6])),
                &[],
                Some(bad.clone()),
            )
            .await;
        refused(
            &answer,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &bad.to_string(),
        );
    }
    let foreign = call
        .json(
            "carol",
            Method::POST,
            &format!("/versions/{}/pin", id(&v[6])),
            &[],
            Some(json!({"label": "mine"})),
        )
        .await;
    refused(
        &foreign,
        StatusCode::NOT_FOUND,
        "version_not_found",
        "carol",
    );
    let unknown = call
        .json(
            "alice",
            Method::POST,
            "/versions/01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d/unpin",
            &[],
            None,
        )
        .await;
    refused(
        &unknown,
        StatusCode::NOT_FOUND,
        "version_not_found",
        "an unknown id",
    );

    // 2 validated, 3 pending.
    call.post(
        "alice",
        &format!("/versions/{}/submit", id(&v[2])),
        json!({}),
    )
    .await;
    call.post(
        "bob",
        &format!("/versions/{}/approve", id(&v[2])),
        json!({}),
    )
    .await;
    call.post(
        "alice",
        &format!("/versions/{}/submit", id(&v[3])),
        json!({}),
    )
    .await;

    // Two janitors at once: each version pruned, and each object deleted, once.
    let (one, two) = tokio::join!(server.janitor(), server.janitor());
    assert_eq!(
        (
            one.versions_pruned + two.versions_pruned,
            one.deletions_failed + two.deletions_failed
        ),
        (2, 0),
        "{one:?} {two:?}"
    );
    assert_eq!(
        one.objects_deleted + two.objects_deleted,
        2,
        "{one:?} {two:?}"
    );
    let again = server.janitor().await;
    assert_eq!(
        (again.versions_pruned, again.objects_deleted),
        (0, 0),
        "{again:?}"
    );

    let after = call.versions().await;
    let numbers: Vec<u64> = after
        .iter()
        .map(|v| v["number"].as_u64().expect("n"))
        .collect();
    assert_eq!(
        numbers,
        vec![9, 8, 7, 4, 3, 2, 1],
        "the documented set, with the gap"
    );
    let pins: Vec<&Value> = after.iter().map(|v| &v["pinned"]).collect();
    assert_eq!(pins[6], "baseline");
    assert!(pins[..6].iter().all(|p| p.is_null()), "{after:?}");
    for (i, kept) in (1..=9).map(|i| (i, ![5, 6].contains(&i))) {
        // `<owner>/<version id>` (the service's key scheme, `ObjectKey::for_version`).
        let version_id: uuid::Uuid = id(&v[i]).parse().expect("a UUID");
        let key = ObjectKey::from_stored(format!("p16/{}", version_id.as_simple()));
        assert_eq!(
            server.holds(BucketKind::Projects, &key).await,
            kept,
            "the object of version {i}"
        );
    }
    let gone = call
        .json(
            "alice",
            Method::GET,
            "/download/proxy",
            &[("bucket", "projects"), ("path", PATH), ("version", "5")],
            None,
        )
        .await;
    refused(
        &gone,
        StatusCode::NOT_FOUND,
        "version_not_found",
        "a pruned version",
    );
    let pin_gone = call
        .json(
            "alice",
            Method::POST,
            &format!("/versions/{}/pin", id(&v[6])),
            &[],
            Some(json!({"label": "late"})),
        )
        .await;
    refused(
        &pin_gone,
        StatusCode::NOT_FOUND,
        "version_not_found",
        "pinning a pruned version",
    );
    // Numbers are never reused.
    call.upload("alice", 10).await;

    let (status, audit) = call
        .json(
            "alice",
            Method::GET,
            "/audit",
            &[("bucket", "projects"), ("path", PATH)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let events: Vec<(&str, &str, Option<u64>)> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            ["pin", "unpin", "prune"].contains(&e["action"].as_str().unwrap_or_default())
                && e["outcome"] == "success"
        })
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["actor"].as_str().expect("actor"),
                e["version"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            ("prune", "janitor", Some(6)),
            ("prune", "janitor", Some(5)),
            ("unpin", "alice", Some(5)),
            ("pin", "alice", Some(5)),
            ("pin", "bob", Some(1)),
        ],
        "{audit}"
    );
}
