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
