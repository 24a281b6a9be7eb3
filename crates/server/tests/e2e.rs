//! End to end over real HTTP: the real server (`Application::build` on port 0) on a real
//! PostgreSQL database, the test Garage and the project-service stand-in.
#![expect(clippy::expect_used, reason = "test helpers outside #[test] functions")]

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
    project_standin::ProjectStandin,
};

const SECRET: &str = "e2e-secret-0123456789abcdef0123456789";

struct Running {
    base: String,
    client: Client,
    signer: JwtSigner,
    standin: ProjectStandin,
    _db: TestDatabase,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start() -> Running {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let db = TestDatabase::new(&fingerprint_dir(&migrations), |url| async move {
        storage_pg_diesel::run_migrations(&url).await.map(|_| ())
    })
    .await;
    let standin = ProjectStandin::start().await;
    let vars: HashMap<String, String> = [
        ("APP_ENV", "testing".to_owned()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", db.url().to_owned()),
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
        ("JWT_SECRET", SECRET.to_owned()),
        ("PROJECT_SERVICE_URL", standin.url()),
        ("MAX_UPLOAD_BYTES", "1048576".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&Vars::from_map(vars)).expect("config");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Application::build(config, async move {
        let _ = stopped.await;
    })
    .await
    .expect("the application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Running {
        base,
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        signer: JwtSigner::new(&SignerConfig::hs256(SECRET)).expect("signer"),
        standin,
        _db: db,
        stop: Some(stop),
    }
}

impl Running {
    fn token(&self, user: &str) -> String {
        self.signer
            .mint_token(user, None, Duration::from_secs(600))
            .expect("token")
    }

    async fn upload(
        &self,
        user: &str,
        bucket: &str,
        path: &str,
        bytes: &'static [u8],
    ) -> (StatusCode, Value) {
        let form = multipart::Form::new()
            .text("bucket", bucket.to_owned())
            .text("path", path.to_owned())
            .part(
                "file",
                multipart::Part::bytes(bytes)
                    .file_name("f")
                    .mime_str("text/plain")
                    .expect("mime"),
            );
        let resp = self
            .client
            .post(format!("{}/upload/proxy", self.base))
            .bearer_auth(self.token(user))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        let status = resp.status();
        (status, resp.json().await.expect("json"))
    }

    async fn post(&self, user: &str, route: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}{route}", self.base))
            .header("Cookie", format!("access_token={}", self.token(user)))
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = resp.status();
        (status, resp.json().await.expect("json"))
    }

    async fn download(
        &self,
        user: &str,
        bucket: &str,
        path: &str,
        version: &str,
    ) -> (StatusCode, Vec<u8>) {
        let resp = self
            .client
            .get(format!("{}/download/proxy", self.base))
            .query(&[("bucket", bucket), ("path", path), ("version", version)])
            .bearer_auth(self.token(user))
            .send()
            .await
            .expect("download");
        let status = resp.status();
        (status, resp.bytes().await.expect("body").to_vec())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_an_upload_round_trip() {
    let app = start().await;
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

    let (status, body) = app
        .upload("alice", "users", "/users/alice/notes/todo.txt", b"buy milk")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["file"]["version"], 1);
    let (status, bytes) = app
        .download("alice", "users", "/users/alice/notes/todo.txt", "latest")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, b"buy milk");

    // Bob sees nothing of Alice's space, not even whether the file exists.
    let (status, _) = app
        .download("bob", "users", "/users/alice/notes/todo.txt", "latest")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .download("bob", "users", "/users/alice/notes/nothing.txt", "latest")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_commit_and_approve_across_users() {
    let app = start().await;
    for action in ["read", "write", "lock"] {
        app.standin.allow("alice", "p1", action);
    }
    for action in ["read", "validate"] {
        app.standin.allow("bob", "p1", action);
    }
    let spec = "/projects/p1/docs/spec.txt";
    let (status, body) = app.upload("alice", "projects", spec, b"v1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v1 = body["version"]["id"].as_str().unwrap().to_owned();
    // v1 is a draft: submit it, bob approves.
    let (status, body) = app
        .post("alice", &format!("/versions/{v1}/submit"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "bob",
            &format!("/versions/{v1}/approve"),
            json!({"comment": "ok"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Alice checks the file out into her workspace: the source gets locked for her.
    let work = "/users/alice/work/spec.txt";
    let (status, body) = app
        .post(
            "alice",
            "/copy",
            json!({"source_bucket": "projects", "source_path": spec, "target_bucket": "users", "target_path": work}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post("bob", "/lock", json!({"bucket": "projects", "path": spec}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "bob has no lock right: {body}"
    );

    // She edits the workspace copy and commits it back as version 2, pending validation.
    let (status, body) = app.upload("alice", "users", work, b"v2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "alice",
            "/versions/commit",
            json!({"source_bucket": "users", "source_path": work, "target_bucket": "projects",
                   "target_path": spec, "message": "second draft"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["version"]["number"], 2);
    assert_eq!(body["version"]["status"], "pending_validation");
    let v2 = body["version"]["id"].as_str().unwrap().to_owned();

    // While v2 waits, `validated` still serves v1; once approved, it serves v2.
    let (_, bytes) = app.download("bob", "projects", spec, "validated").await;
    assert_eq!(bytes, b"v1");
    let (status, body) = app
        .post("alice", &format!("/versions/{v2}/approve"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "alice lacks validate: {body}"
    );
    let (status, body) = app
        .post("bob", &format!("/versions/{v2}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, bytes) = app.download("bob", "projects", spec, "validated").await;
    assert_eq!(bytes, b"v2");

    // The project service was asked with the caller's credentials forwarded.
    let asked = app.standin.requests();
    assert!(!asked.is_empty());
}
