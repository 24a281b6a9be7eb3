//! Hostile input, generated: tags, cursors, paths, bucket names and free texts (upload and
//! commit messages, review comments, force-unlock reasons, content types) sent over real HTTP
//! through the domain to two instances of the service, one on PostgreSQL and one on SQLite
//! (each with a local object directory), must get the same answer from both, and never a 5xx.
//!
//! A property test (proptest); `PROPTEST_CASES` sets the number of cases (64 by default here).
//! Run through `tests/run.sh` (it starts the PostgreSQL the first instance needs).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::{collections::HashMap, path::Path, time::Duration};

use base64::Engine;
use proptest::{
    prelude::*,
    test_runner::{Config as RunnerConfig, TestCaseError, TestRunner},
};
use reqwest::{Client, Method, StatusCode, multipart};
use serde_json::{Map, Number, Value, json};
use storage_jwt_auth::{JwtSigner, SignerConfig};
use storage_server::{
    app::Application,
    config::{Config, Vars},
};
use storage_test_support::postgres::{TestDatabase, fingerprint_dir};

const SECRET: &str = "hostile-test-secret-0123456789abcdef";
const FILE: &str = "/users/alice/t.txt";
const LOCKED: &str = "/users/alice/locked.txt";

/// One running instance.
struct Instance {
    name: &'static str,
    base: String,
    client: Client,
    token: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _data: tempfile::TempDir,
}

/// What an answer says, as compared between the stores: the status, the error code, and for a
/// success what the answer holds that both stores must agree on.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    code: Option<String>,
    content: Value,
}

async fn start(name: &'static str, database_url: Option<&str>) -> Instance {
    let data = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = [
        ("APP_ENV", "testing"),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("JWT_SECRET", SECRET),
        ("JANITOR_INTERVAL_SECONDS", "3600"),
        ("METRICS_ENABLED", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.insert("DATA_DIR".into(), data.path().display().to_string());
    if let Some(url) = database_url {
        vars.insert("DATABASE_URL".into(), url.to_owned());
    }
    let config = Config::from_vars(&Vars::from_map(vars)).expect("config");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Application::build(config, async move {
        let _ = stopped.await;
    })
    .await
    .expect("the application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let signer = JwtSigner::new(&SignerConfig::hs256(SECRET)).unwrap();
    let instance = Instance {
        name,
        base,
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        token: signer
            .mint_token("alice", None, Duration::from_secs(3600))
            .unwrap(),
        _stop: stop,
        _data: data,
    };
    // The same files on both: one to tag, one in a sub-directory, one locked.
    for path in [FILE, "/users/alice/dir/a.txt", LOCKED] {
        let form = multipart::Form::new()
            .text("bucket", "users")
            .text("path", path)
            .part("file", multipart::Part::bytes(b"x".to_vec()).file_name("f"));
        let resp = instance
            .client
            .post(format!("{}/upload/proxy", instance.base))
            .bearer_auth(&instance.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{name}: upload {path}");
    }
    let locked = instance
        .send(
            Method::POST,
            "/lock",
            &[],
            Some(json!({"bucket": "users", "path": LOCKED})),
        )
        .await;
    assert_eq!(locked.status, 200, "{name}: lock");
    instance
}

impl Instance {
    /// A proxy upload of one byte to `path` with the text fields given.
    async fn upload(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut form = multipart::Form::new()
            .text("bucket", "users")
            .text("path", path.to_owned());
        for (name, value) in fields {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        let form = form.part("file", multipart::Part::bytes(b"y".to_vec()).file_name("f"));
        let resp = self
            .client
            .post(format!("{}/upload/proxy", self.base))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let code = body["message"].as_str().map(str::to_owned);
        Answer {
            status,
            code: (status >= 400).then_some(code).flatten(),
            content: content_of("/upload/proxy", &body),
        }
    }

    async fn send(
        &self,
        method: Method,
        route: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{route}", self.base))
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let code = body["message"].as_str().map(str::to_owned);
        Answer {
            status,
            code: (status >= 400).then_some(code).flatten(),
            content: content_of(route, &body),
        }
    }
}

/// What both stores must agree on in a success: the tags of a file, the names of a listing,
/// the paths of a lock listing, the number of audit events; never ids or times.
fn content_of(route: &str, body: &Value) -> Value {
    match route {
        "/metadata" => body["file"]["tags"].clone(),
        "/list" => Value::Array(
            body["entries"]
                .as_array()
                .map(|entries| entries.iter().map(|e| e["name"].clone()).collect())
                .unwrap_or_default(),
        ),
        "/locks" => Value::Array(
            body["locks"]
                .as_array()
                .map(|locks| locks.iter().map(|l| l["path"].clone()).collect())
                .unwrap_or_default(),
        ),
        "/audit" => json!(body["events"].as_array().map_or(0, Vec::len)),
        "/upload/proxy" => json!([body["version"]["message"], body["version"]["content_type"]]),
        "/unlock" => body["released"]["holder"].clone(),
        _ => Value::Null,
    }
}

/// Text with what attackers send: control characters (NUL first), separators, dots, non-ASCII.
fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("\u{0}".to_owned()),
        Just("\u{1b}".to_owned()),
        Just("\u{7f}".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\n".to_owned()),
        Just("/".to_owned()),
        Just("..".to_owned()),
        Just("\\".to_owned()),
        Just("%00".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("e\u{301}".to_owned()),
        "[a-z]{1,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..max).prop_map(|parts| parts.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        hostile_text(6).prop_map(Value::String),
    ];
    leaf.prop_recursive(10, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(3), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn tags() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(hostile_text(4), json_value(), 0..8)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn cursor() -> impl Strategy<Value = String> {
    let encode = |raw: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    prop_oneof![
        hostile_text(12),
        "[A-Za-z0-9_-]{0,40}",
        (
            prop_oneof![Just("list"), Just("locks"), Just("audit"), Just("other")],
            hostile_text(10)
        )
            .prop_map(move |(kind, pos)| encode(format!("{kind}:{pos}"))),
        prop_oneof![Just("list:"), Just("locks:/users/alice/")]
            .prop_flat_map(|kind| (Just(kind), hostile_text(8)))
            .prop_map(move |(kind, pos)| encode(format!("{kind}{pos}"))),
        (1usize..4000).prop_map(move |n| encode(format!("list:{}", "n".repeat(n)))),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile_text(10),
        hostile_text(6).prop_map(|rest| format!("/users/alice/{rest}")),
        hostile_text(6).prop_map(|rest| format!("/users/alice/dir/{rest}")),
    ]
}

/// Bucket names: the three, near misses, and hostile text.
fn bucket() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("users".to_owned()),
        Just("users\u{0}".to_owned()),
        Just("Users".to_owned()),
        Just("projects\n".to_owned()),
        hostile_text(4),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    tags: Value,
    cursor: String,
    path: String,
    bucket: String,
    /// A message, comment or reason.
    text: String,
}

/// A version id no store holds: the review routes check their comment before looking it up.
const UNKNOWN_VERSION: &str = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d";

/// Every request of a case, on one instance.
async fn answers(instance: &Instance, case: &Case) -> Vec<(&'static str, Answer)> {
    let dir = "/users/alice/";
    let cursor = case.cursor.as_str();
    vec![
        (
            "PATCH /metadata",
            instance
                .send(
                    Method::PATCH,
                    "/metadata",
                    &[],
                    Some(json!({"bucket": "users", "path": FILE, "tags": case.tags})),
                )
                .await,
        ),
        (
            "GET /metadata",
            instance
                .send(
                    Method::GET,
                    "/metadata",
                    &[("bucket", "users"), ("path", FILE)],
                    None,
                )
                .await,
        ),
        (
            "GET /list",
            instance
                .send(
                    Method::GET,
                    "/list",
                    &[("bucket", "users"), ("path", dir), ("cursor", cursor)],
                    None,
                )
                .await,
        ),
        (
            "GET /locks",
            instance
                .send(
                    Method::GET,
                    "/locks",
                    &[("bucket", "users"), ("path", dir), ("cursor", cursor)],
                    None,
                )
                .await,
        ),
        (
            "GET /audit",
            instance
                .send(
                    Method::GET,
                    "/audit",
                    &[("bucket", "users"), ("path", dir), ("cursor", cursor)],
                    None,
                )
                .await,
        ),
        (
            "GET /metadata (path)",
            instance
                .send(
                    Method::GET,
                    "/metadata",
                    &[("bucket", "users"), ("path", &case.path)],
                    None,
                )
                .await,
        ),
        (
            "GET /list (path)",
            instance
                .send(
                    Method::GET,
                    "/list",
                    &[("bucket", "users"), ("path", &case.path)],
                    None,
                )
                .await,
        ),
        (
            "PATCH /metadata (path)",
            instance
                .send(
                    Method::PATCH,
                    "/metadata",
                    &[],
                    Some(json!({"bucket": "users", "path": case.path, "tags": {"k": "v"}})),
                )
                .await,
        ),
        (
            "GET /versions (path)",
            instance
                .send(
                    Method::GET,
                    "/versions",
                    &[("bucket", "users"), ("path", &case.path)],
                    None,
                )
                .await,
        ),
        (
            "POST /lock (path)",
            instance
                .send(
                    Method::POST,
                    "/lock",
                    &[],
                    Some(json!({"bucket": "users", "path": case.path})),
                )
                .await,
        ),
        (
            "GET /metadata (bucket)",
            instance
                .send(
                    Method::GET,
                    "/metadata",
                    &[("bucket", &case.bucket), ("path", FILE)],
                    None,
                )
                .await,
        ),
        (
            "GET /list (bucket)",
            instance
                .send(
                    Method::GET,
                    "/list",
                    &[("bucket", &case.bucket), ("path", dir)],
                    None,
                )
                .await,
        ),
        (
            "POST /upload/presign (bucket)",
            instance
                .send(
                    Method::POST,
                    "/upload/presign",
                    &[],
                    Some(json!({"bucket": case.bucket, "path": FILE})),
                )
                .await,
        ),
        (
            "POST /upload/proxy (message)",
            instance.upload(FILE, &[("message", &case.text)]).await,
        ),
        (
            "POST /upload/proxy (content_type)",
            instance.upload(FILE, &[("content_type", &case.text)]).await,
        ),
        (
            "POST /versions/commit (message)",
            instance
                .send(
                    Method::POST,
                    "/versions/commit",
                    &[],
                    Some(json!({
                        "source_bucket": "users", "source_path": "/users/alice/work.txt",
                        "target_bucket": "users", "target_path": FILE,
                        "message": case.text,
                    })),
                )
                .await,
        ),
        (
            "POST /versions/{id}/reject (comment)",
            instance
                .send(
                    Method::POST,
                    &format!("/versions/{UNKNOWN_VERSION}/reject"),
                    &[],
                    Some(json!({"comment": case.text})),
                )
                .await,
        ),
        (
            "POST /versions/{id}/approve (comment)",
            instance
                .send(
                    Method::POST,
                    &format!("/versions/{UNKNOWN_VERSION}/approve"),
                    &[],
                    Some(json!({"comment": case.text})),
                )
                .await,
        ),
        (
            "POST /unlock (reason)",
            instance
                .send(
                    Method::POST,
                    "/unlock",
                    &[],
                    Some(json!({"bucket": "users", "path": LOCKED, "force": true,
                                "reason": case.text})),
                )
                .await,
        ),
        (
            // Locked again for the next case (the lock of a file already its holder's is
            // renewed): a reason that was accepted reached both stores' audit trail.
            "POST /lock (again)",
            instance
                .send(
                    Method::POST,
                    "/lock",
                    &[],
                    Some(json!({"bucket": "users", "path": LOCKED})),
                )
                .await,
        ),
    ]
}

async fn migrated_database() -> TestDatabase {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
        storage_pg_diesel::run_migrations(&url).await.map(|_| ())
    })
    .await
}

#[test]
fn generated_hostile_input_gets_the_same_answer_from_both_stores_and_never_a_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(migrated_database());
    let (pg, sqlite) = runtime.block_on(async {
        (
            start("PostgreSQL", Some(db.url())).await,
            start("SQLite", None).await,
        )
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let strategy = (tags(), cursor(), path(), bucket(), hostile_text(12)).prop_map(
        |(tags, cursor, path, bucket, text)| Case {
            tags,
            cursor,
            path,
            bucket,
            text,
        },
    );
    let refused = std::cell::Cell::new(0usize);
    let served = std::cell::Cell::new(0usize);
    let texts_refused = std::cell::Cell::new(0usize);
    let texts_served = std::cell::Cell::new(0usize);
    let outcome = runner.run(&strategy, |case| {
        let (on_pg, on_sqlite) =
            runtime.block_on(async { (answers(&pg, &case).await, answers(&sqlite, &case).await) });
        for ((what, a), (_, b)) in on_pg.iter().zip(&on_sqlite) {
            for (instance, answer) in [(&pg, a), (&sqlite, b)] {
                if answer.status >= 500 {
                    return Err(TestCaseError::fail(format!(
                        "{what} on {}: {answer:?}",
                        instance.name
                    )));
                }
            }
            if a != b {
                return Err(TestCaseError::fail(format!(
                    "{what}: PostgreSQL {a:?}, SQLite {b:?}"
                )));
            }
        }
        if on_pg[0].1.status == 200 {
            served.set(served.get() + 1);
        } else {
            refused.set(refused.get() + 1);
        }
        let message = on_pg
            .iter()
            .find(|(what, _)| *what == "POST /upload/proxy (message)")
            .map_or(0, |(_, a)| a.status);
        if message == 200 {
            texts_served.set(texts_served.get() + 1);
        } else {
            texts_refused.set(texts_refused.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    // The generators reach both sides of the rules: tags stored and tags refused.
    let (served, refused) = (served.get(), refused.get());
    assert!(
        served > 0 && refused > 0,
        "served {served}, refused {refused}"
    );
    // And texts kept and texts refused.
    let (texts_served, texts_refused) = (texts_served.get(), texts_refused.get());
    assert!(
        texts_served > 0 && texts_refused > 0,
        "messages kept {texts_served}, refused {texts_refused}"
    );
    drop((pg, sqlite));
    runtime.shutdown_timeout(Duration::from_secs(5));
}
