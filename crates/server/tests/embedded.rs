//! The embedded default in-process (`Application::build` on port 0): project access from a
//! policy file or, without one, never; and each store chosen on its own (a lone `DATABASE_URL`
//! or `MINIO_ENDPOINT` beside the embedded other).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::{collections::HashMap, path::Path, time::Duration};

use reqwest::{Client, StatusCode, multipart};
use serde_json::{Value, json};
use storage_jwt_auth::{JwtSigner, SignerConfig};
use storage_server::{
    app::Application,
    config::{Config, Vars},
};
use storage_test_support::{
    env::require,
    postgres::{TestDatabase, fingerprint_dir},
};

const SECRET: &str = "embedded-test-secret-0123456789abcdef";

struct Running {
    base: String,
    client: Client,
    signer: JwtSigner,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn config(data: &Path, extra: &[(&str, String)]) -> Config {
    let mut vars: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATA_DIR", data.display().to_string()),
        ("JWT_SECRET", SECRET.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), v.clone());
    }
    Config::from_vars(&Vars::from_map(vars)).expect("config")
}

async fn start(config: Config) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Application::build(config, async move {
        let _ = stopped.await;
    })
    .await
    .expect("the application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    assert_eq!(
        app.public_base_url(),
        base,
        "the default base URL follows the bound port"
    );
    tokio::spawn(app.run_until_stopped());
    Running {
        base,
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        signer: JwtSigner::new(&SignerConfig::hs256(SECRET)).unwrap(),
        stop: Some(stop),
    }
}

impl Running {
    fn token(&self, user: &str) -> String {
        self.signer
            .mint_token(user, None, Duration::from_secs(600))
            .unwrap()
    }

    async fn upload(&self, user: &str, bucket: &str, path: &str) -> (StatusCode, Value) {
        let form = multipart::Form::new()
            .text("bucket", bucket.to_owned())
            .text("path", path.to_owned())
            .part(
                "file",
                multipart::Part::bytes(b"content".to_vec()).file_name("f"),
            );
        let resp = self
            .client
            .post(format!("{}/upload/proxy", self.base))
            .bearer_auth(self.token(user))
            .multipart(form)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn metadata(&self, user: &str, bucket: &str, path: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}/metadata", self.base))
            .bearer_auth(self.token(user))
            .query(&[("bucket", bucket), ("path", path)])
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    /// Presign, PUT to the URL given, complete: the upload flow whatever the store.
    async fn presigned_upload(&self, user: &str, path: &str, bytes: &[u8]) -> Value {
        let presigned: Value = self
            .client
            .post(format!("{}/upload/presign", self.base))
            .bearer_auth(self.token(user))
            .json(&json!({"bucket": "users", "path": path, "content_type": "text/plain", "size": bytes.len()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut put = self
            .client
            .put(presigned["url"].as_str().expect("url"))
            .body(bytes.to_vec());
        for (name, value) in presigned["headers"].as_object().unwrap() {
            put = put.header(name, value.as_str().unwrap());
        }
        assert!(put.send().await.unwrap().status().is_success());
        let resp = self
            .client
            .post(format!("{}/upload/complete", self.base))
            .bearer_auth(self.token(user))
            .json(&json!({"upload_id": presigned["upload_id"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        presigned
    }
}

#[tokio::test]
async fn a_policy_file_decides_project_access() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules": [
            {"user": "alice", "project": "5678", "actions": ["read", "write"]},
            {"user": "*", "project": "5678", "actions": ["read"]}
        ]}"#,
    )
    .unwrap();
    let app = start(config(
        data.path(),
        &[("PROJECT_POLICY_FILE", policy.display().to_string())],
    ))
    .await;
    let (status, body) = app
        .upload("alice", "projects", "/projects/5678/spec.txt")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .upload("bob", "projects", "/projects/5678/other.txt")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["message"], "access_denied");
    let (status, _) = app
        .metadata("bob", "projects", "/projects/5678/spec.txt")
        .await;
    assert_eq!(status, StatusCode::OK, "'*' may read");
    let (status, body) = app
        .upload("alice", "projects", "/projects/9999/x.txt")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another project: {body}");
}

#[tokio::test]
async fn without_project_configuration_projects_are_never_allowed() {
    let data = tempfile::tempdir().unwrap();
    let app = start(config(data.path(), &[])).await;
    let (status, body) = app
        .upload("alice", "projects", "/projects/5678/spec.txt")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["message"], "project_service_unavailable");
    let (status, body) = app.upload("alice", "users", "/users/alice/a.txt").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn in_development_the_data_dir_policy_is_used_by_default() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("project-policy.json"),
        r#"{"rules": [{"user": "alice", "project": "demo", "actions": ["write"]}]}"#,
    )
    .unwrap();
    let app = start(config(data.path(), &[])).await;
    let (status, body) = app
        .upload("alice", "projects", "/projects/demo/a.txt")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_malformed_policy_file_stops_the_start_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules": [{"user": "alice", "project": "5678", "actions": ["admin"]}]}"#,
    )
    .unwrap();
    for path in [policy.clone(), data.path().join("missing.json")] {
        let err = Application::build(
            config(
                data.path(),
                &[("PROJECT_POLICY_FILE", path.display().to_string())],
            ),
            std::future::pending(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("PROJECT_POLICY_FILE"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

/// A lone `DATABASE_URL`: PostgreSQL for the metadata, the local directory for the bytes.
#[tokio::test]
async fn a_lone_database_url_keeps_the_local_directory() {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let db = TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
        storage_pg_diesel::run_migrations(&url).await.map(|_| ())
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let app = start(config(
        data.path(),
        &[("DATABASE_URL", db.url().to_owned())],
    ))
    .await;
    let presigned = app
        .presigned_upload("alice", "/users/alice/local.txt", b"local bytes")
        .await;
    assert!(
        presigned["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/blob/", app.base)),
        "{presigned}"
    );
    assert!(
        !data.path().join("storage.sqlite3").exists(),
        "no SQLite file"
    );
    let objects: Vec<_> = std::fs::read_dir(data.path().join("objects/users/alice"))
        .unwrap()
        .collect();
    assert_eq!(objects.len(), 2, "the object and its sidecar");
}

/// A lone `MINIO_ENDPOINT`: the embedded SQLite for the metadata, S3 for the bytes.
#[tokio::test]
async fn a_lone_minio_endpoint_keeps_the_embedded_database() {
    let data = tempfile::tempdir().unwrap();
    let app = start(config(
        data.path(),
        &[
            ("MINIO_ENDPOINT", require("TEST_S3_ENDPOINT")),
            ("MINIO_ACCESS_KEY", require("TEST_S3_ACCESS_KEY")),
            ("MINIO_SECRET_KEY", require("TEST_S3_SECRET_KEY")),
            ("MINIO_REGION", require("TEST_S3_REGION")),
            ("MINIO_BUCKET_USERS", require("TEST_S3_BUCKET_USERS")),
            (
                "MINIO_BUCKET_COMPANIES",
                require("TEST_S3_BUCKET_COMPANIES"),
            ),
            ("MINIO_BUCKET_PROJECTS", require("TEST_S3_BUCKET_PROJECTS")),
            ("MINIO_CREATE_BUCKETS", "false".to_owned()),
        ],
    ))
    .await;
    let presigned = app
        .presigned_upload("alice", "/users/alice/s3.txt", b"s3 bytes")
        .await;
    assert!(
        presigned["url"]
            .as_str()
            .unwrap()
            .contains("X-Amz-Signature="),
        "an S3 URL: {presigned}"
    );
    assert!(data.path().join("storage.sqlite3").is_file());
    assert!(!data.path().join("objects").exists(), "no local directory");
    let (status, body) = app.metadata("alice", "users", "/users/alice/s3.txt").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_embedded_stores_report_their_pools_and_signed_transfers_in_the_metrics() {
    let data = tempfile::tempdir().unwrap();
    let app = start(config(data.path(), &[])).await;
    let (status, body) = app.upload("alice", "users", "/users/alice/m.txt").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Through the service's own signed-URL routes (`/blob/...`).
    app.presigned_upload("alice", "/users/alice/signed.txt", b"signed!!")
        .await;
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = storage_test_support::prometheus::parse(&text);
    let value =
        |name: &str, label: (&str, &str)| scrape.matching(name, &[label]).next().map(|s| s.value);
    assert_eq!(
        value("storage_db_pool_max_size", ("pool", "sqlite_writer")),
        Some(1.0)
    );
    assert!(
        value("storage_db_pool_max_size", ("pool", "sqlite_readers")).is_some_and(|n| n >= 1.0)
    );
    assert!(value("storage_db_pool_size", ("pool", "sqlite_writer")).is_some_and(|n| n <= 1.0));
    assert_eq!(
        value("storage_db_pool_waiting", ("pool", "sqlite_readers")),
        Some(0.0)
    );
    // "content" by proxy, "signed!!" by the signed URL.
    assert_eq!(
        value("storage_uploaded_bytes_total", ("bucket", "users")),
        Some(15.0)
    );
    assert_eq!(
        scrape.get(
            "storage_http_requests_total",
            &[
                ("method", "PUT"),
                ("route", "/blob/{bucket}/{key:.+}"),
                ("status", "200")
            ]
        ),
        Some(1.0),
        "{text}"
    );
}

/// The embedded default's presigned uploads (the service's own `/blob` URLs, the local
/// directory): a URL writes nothing once its upload is completed (nor after its file is
/// deleted), a staging object is never replaced, an approved version downloads as approved, and
/// once the URL's lifetime has passed one janitor pass leaves no staging file on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_versions_on_the_embedded_default() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules": [
            {"user": "alice", "project": "p", "actions": ["read", "write", "delete"]},
            {"user": "bob", "project": "p", "actions": ["read", "validate"]}
        ]}"#,
    )
    .unwrap();
    let config = config(
        data.path(),
        &[
            ("PROJECT_POLICY_FILE", policy.display().to_string()),
            ("PRESIGN_TTL_SECONDS", "2".to_owned()),
            ("UPLOAD_GRACE_SECONDS", "1".to_owned()),
        ],
    );
    let app = start(config.clone()).await;
    let call = async |user: &str, route: &str, body: Value| -> Value {
        let resp = app
            .client
            .post(format!("{}{route}", app.base))
            .bearer_auth(app.token(user))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        body
    };
    let presign = async |path: &str, bytes: &[u8]| -> Value {
        call(
            "alice",
            "/upload/presign",
            json!({"bucket": "projects", "path": path, "content_type": "text/plain",
                   "size": bytes.len()}),
        )
        .await
    };
    let put = async |presigned: &Value, bytes: &[u8]| -> StatusCode {
        let mut put = app
            .client
            .put(presigned["url"].as_str().unwrap())
            .body(bytes.to_vec());
        for (name, value) in presigned["headers"].as_object().unwrap() {
            put = put.header(name, value.as_str().unwrap());
        }
        put.send().await.unwrap().status()
    };
    let complete = async |presigned: &Value| -> Value {
        call(
            "alice",
            "/upload/complete",
            json!({"upload_id": presigned["upload_id"]}),
        )
        .await
    };
    let download = async |user: &str, path: &str, version: &str| -> Vec<u8> {
        let resp = app
            .client
            .get(format!("{}/download/proxy", app.base))
            .bearer_auth(app.token(user))
            .query(&[("bucket", "projects"), ("path", path), ("version", version)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.bytes().await.unwrap().to_vec()
    };
    let staging_files = || -> Vec<std::path::PathBuf> {
        let root = data.path().join("objects/projects/~staging");
        let mut found = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_type().unwrap().is_dir() {
                    dirs.push(entry.path());
                } else {
                    found.push(entry.path());
                }
            }
        }
        found
    };
    let path = "/projects/p/report.txt";

    // Completed: the URL writes nothing any more.
    let first = presign(path, b"good!").await;
    assert_eq!(put(&first, b"good!").await, StatusCode::OK);
    let v1 = complete(&first).await;
    assert!(
        staging_files().is_empty(),
        "completion removed the staging file"
    );
    assert_eq!(put(&first, b"evil!").await, StatusCode::FORBIDDEN);
    assert!(
        staging_files().is_empty(),
        "a used URL writes nothing, not even staging"
    );
    assert_eq!(download("alice", path, "1").await, b"good!");

    // Before completion, a staging object is never replaced.
    let second = presign(path, b"v2 ok").await;
    assert_eq!(put(&second, b"v2 ok").await, StatusCode::OK);
    assert_eq!(put(&second, b"v2 no").await, StatusCode::FORBIDDEN);
    let v2 = complete(&second).await;
    assert_eq!(v2["version"]["number"], 2);
    assert_eq!(download("alice", path, "2").await, b"v2 ok");

    // Reviewed, then the old URLs are tried again: the approved bytes stay.
    let v1_id = v1["version"]["id"].as_str().unwrap();
    call("alice", &format!("/versions/{v1_id}/submit"), json!({})).await;
    call("bob", &format!("/versions/{v1_id}/approve"), json!({})).await;
    for used in [&first, &second] {
        assert_eq!(put(used, b"evil, later").await, StatusCode::FORBIDDEN);
    }
    assert_eq!(download("bob", path, "validated").await, b"good!");
    let versions: Value = app
        .client
        .get(format!("{}/versions", app.base))
        .bearer_auth(app.token("alice"))
        .query(&[("bucket", "projects"), ("path", path)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hashes: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(hashes, [sha256_hex(b"v2 ok"), sha256_hex(b"good!")]);

    // Completed, then the file deleted: the URL still writes nothing.
    let gone_path = "/projects/p/gone.txt";
    let gone = presign(gone_path, b"gone").await;
    assert_eq!(put(&gone, b"gone").await, StatusCode::OK);
    complete(&gone).await;
    let deleted = app
        .client
        .delete(format!("{}/delete", app.base))
        .bearer_auth(app.token("alice"))
        .query(&[("bucket", "projects"), ("path", gone_path)])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(put(&gone, b"after the delete").await, StatusCode::FORBIDDEN);

    // Abandoned: its staging file stays until the URL's lifetime has passed, then one janitor
    // pass removes it, and no staging file is left.
    let abandoned = presign("/projects/p/abandoned.txt", b"never completed").await;
    assert_eq!(put(&abandoned, b"never completed").await, StatusCode::OK);
    assert_eq!(staging_files().len(), 2, "the object and its sidecar");
    tokio::time::sleep(Duration::from_millis(3_600)).await;
    let base_url = config.public_base_url(config.bind_addr.port());
    let adapters = storage_server::app::Adapters::connect(&config, &base_url)
        .await
        .unwrap();
    let report = storage_server::app::storage_service(&adapters, &config)
        .run_janitor_once()
        .await
        .unwrap();
    assert_eq!(report.deletions_failed, 0, "{report:?}");
    assert!(report.objects_deleted >= 1, "{report:?}");
    assert_eq!(staging_files(), Vec::<std::path::PathBuf>::new());
    assert_eq!(download("bob", path, "validated").await, b"good!");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// NUL and other control characters in tags and cursors are refused (400) on the embedded
/// SQLite store as on PostgreSQL (`e2e::transfers`), before any store call: SQLite would have
/// kept them.
#[tokio::test]
async fn nul_in_tags_and_cursors_is_refused_on_sqlite() {
    use base64::Engine;
    let data = tempfile::tempdir().unwrap();
    let running = start(config(data.path(), &[])).await;
    let (status, _) = running.upload("alice", "users", "/users/alice/t.txt").await;
    assert_eq!(status, StatusCode::OK);
    let send = |request: reqwest::RequestBuilder| async move {
        let resp = request.send().await.unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    for tags in [
        json!({"k": "\u{0}"}),
        json!({"k\u{0}": "v"}),
        json!({"k": ["\u{1b}"]}),
    ] {
        let (status, body) = send(
            running
                .client
                .patch(format!("{}/metadata", running.base))
                .bearer_auth(running.token("alice"))
                .json(&json!({"bucket": "users", "path": "/users/alice/t.txt", "tags": tags})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["message"], "invalid_request");
    }
    let encode = |raw: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    for (route, cursor) in [
        ("/list", encode("list:a\u{0}b")),
        ("/locks", encode("locks:/users/alice/\u{0}")),
    ] {
        let (status, body) = send(
            running
                .client
                .get(format!("{}{route}", running.base))
                .bearer_auth(running.token("alice"))
                .query(&[
                    ("bucket", "users"),
                    ("path", "/users/alice/"),
                    ("cursor", cursor.as_str()),
                ]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}: {body}");
        assert_eq!(body["message"], "invalid_request");
    }
    let (_, meta) = running
        .metadata("alice", "users", "/users/alice/t.txt")
        .await;
    assert_eq!(meta["file"]["tags"], json!({}));
}

/// The embedded SQLite store bounds an intruder's refusals like PostgreSQL: 1,000 refused
/// deletes over HTTP are one `denied` event of the audit trail per fixed window (two when the
/// burst straddles a window's end), counting 1,000 in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intruders_thousand_refusals_add_a_bounded_number_of_audit_events_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let app = start(config(data.path(), &[])).await;
    let path = "/users/alice/secret.txt";
    let (status, body) = app.upload("alice", "users", path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mallory = app.token("mallory");
    for _ in 0..40 {
        let round = futures_util::future::join_all((0..25).map(|_| {
            app.client
                .delete(format!("{}/delete", app.base))
                .bearer_auth(&mallory)
                .query(&[("bucket", "users"), ("path", path)])
                .send()
        }))
        .await;
        for resp in round {
            assert_eq!(resp.unwrap().status(), StatusCode::FORBIDDEN);
        }
    }
    let audit: Value = app
        .client
        .get(format!("{}/audit", app.base))
        .bearer_auth(app.token("alice"))
        .query(&[("bucket", "users"), ("path", path), ("limit", "1000")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refusals: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    // One event per fixed window: two if the burst straddles a window's end.
    let counts: Vec<u64> = refusals
        .iter()
        .map(|e| e["repeat_count"].as_u64().unwrap())
        .collect();
    assert!(
        (1..=2).contains(&refusals.len()),
        "{} denied events for 1,000 refusals (two at most)",
        refusals.len()
    );
    assert_eq!(
        counts.iter().sum::<u64>(),
        1000,
        "every refusal counted: {counts:?}"
    );
    assert!(refusals.iter().all(|e| e["actor"] == "mallory"));
}

#[path = "scenarios/restore.rs"]
mod restore;

impl restore::Server for Running {
    fn base(&self) -> &str {
        &self.base
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn token(&self, user: &str) -> String {
        Running::token(self, user)
    }
}

/// `POST /versions/{version_id}/restore` on SQLite and the local directory: the scenario
/// shared with the PostgreSQL + Garage end-to-end tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_on_the_embedded_default() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules": [
            {"user": "alice", "project": "p16", "actions": ["read", "write", "lock", "validate"]},
            {"user": "bob", "project": "p16", "actions": ["read", "write", "lock", "validate"]}
        ]}"#,
    )
    .unwrap();
    let app = start(config(
        data.path(),
        &[("PROJECT_POLICY_FILE", policy.display().to_string())],
    ))
    .await;
    restore::restore_scenario(&app).await;
}

#[path = "scenarios/trash.rs"]
mod trash;

/// A running embedded server with its configuration (its janitor and its store, opened again
/// beside it).
struct WithConfig {
    running: Running,
    config: Config,
}

impl trash::TrashServer for WithConfig {
    fn base(&self) -> &str {
        &self.running.base
    }
    fn client(&self) -> &Client {
        &self.running.client
    }
    fn token(&self, user: &str) -> String {
        Running::token(&self.running, user)
    }
    async fn object_exists(&self, path: &str, version_id: &str) -> bool {
        let path = storage_domain::model::FilePath::parse_request("projects", path).unwrap();
        let version = storage_domain::model::VersionId::parse(version_id).unwrap();
        let key = storage_domain::model::ObjectKey::for_version(path.owner(), version);
        let adapters = self.adapters().await;
        match adapters.blobs.head(path.bucket(), &key).await {
            Ok(_) => true,
            Err(storage_domain::ports::BlobError::NotFound) => false,
            Err(e) => panic!("head {key}: {e}"),
        }
    }
    async fn run_janitor(&self) -> u64 {
        let adapters = self.adapters().await;
        storage_server::app::storage_service(&adapters, &self.config)
            .run_janitor_once()
            .await
            .unwrap()
            .trash_purged
    }
}

impl WithConfig {
    async fn adapters(&self) -> storage_server::app::Adapters {
        let base_url = self.config.public_base_url(self.config.bind_addr.port());
        storage_server::app::Adapters::connect(&self.config, &base_url)
            .await
            .unwrap()
    }
}

/// The trash on SQLite and the local directory: the scenario shared with the PostgreSQL +
/// Garage end-to-end tests (`TRASH_RETENTION_DAYS=0`, a janitor run by the test only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_on_the_embedded_default() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules": [
            {"user": "alice", "project": "p16t", "actions": ["read", "write", "delete", "lock"]},
            {"user": "bob", "project": "p16t", "actions": ["read", "write", "delete", "lock"]}
        ]}"#,
    )
    .unwrap();
    let config = config(
        data.path(),
        &[
            ("PROJECT_POLICY_FILE", policy.display().to_string()),
            ("TRASH_RETENTION_DAYS", "0".to_owned()),
            ("JANITOR_INTERVAL_SECONDS", "3600".to_owned()),
        ],
    );
    let running = start(config.clone()).await;
    trash::trash_scenario(&WithConfig { running, config }).await;
}

#[path = "scenarios/retention.rs"]
mod retention;

/// The embedded server with the configuration its janitors and object store are built from.
struct Retained {
    running: Running,
    config: Config,
}

impl retention::Server for Retained {
    fn base(&self) -> &str {
        &self.running.base
    }
    fn client(&self) -> &Client {
        &self.running.client
    }
    fn token(&self, user: &str) -> String {
        self.running.token(user)
    }
    async fn janitor(&self) -> storage_domain::service::JanitorReport {
        let base_url = self.config.public_base_url(self.config.bind_addr.port());
        let adapters = storage_server::app::Adapters::connect(&self.config, &base_url)
            .await
            .unwrap();
        storage_server::app::storage_service(&adapters, &self.config)
            .run_janitor_once()
            .await
            .unwrap()
    }
    async fn holds(
        &self,
        bucket: storage_domain::model::BucketKind,
        key: &storage_domain::model::ObjectKey,
    ) -> bool {
        let base_url = self.config.public_base_url(self.config.bind_addr.port());
        let adapters = storage_server::app::Adapters::connect(&self.config, &base_url)
            .await
            .unwrap();
        match adapters.blobs.head(bucket, key).await {
            Ok(_) => true,
            Err(storage_domain::ports::BlobError::NotFound) => false,
            Err(e) => panic!("head {key:?}: {e}"),
        }
    }
}

/// Pins and `VERSION_KEEP_LAST=3` on SQLite and the local directory: the scenario shared with
/// the PostgreSQL + Garage end-to-end tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_the_embedded_default() {
    let data = tempfile::tempdir().unwrap();
    let policy = data.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules": [
            {"user": "alice", "project": "p16", "actions": ["read", "write", "lock", "validate"]},
            {"user": "bob", "project": "p16", "actions": ["read", "write", "lock", "validate"]}
        ]}"#,
    )
    .unwrap();
    let config = config(
        data.path(),
        &[
            ("PROJECT_POLICY_FILE", policy.display().to_string()),
            ("VERSION_KEEP_LAST", "3".to_owned()),
            // The service's own janitor must not prune before the scenario's.
            ("JANITOR_INTERVAL_SECONDS", "86400".to_owned()),
        ],
    );
    let running = start(config.clone()).await;
    retention::retention_scenario(&Retained { running, config }).await;
}
