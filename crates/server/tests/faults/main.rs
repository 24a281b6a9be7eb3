//! The fault suite: the service under broken or hostile surroundings, over real HTTP.
//!
//! - [`database`]: PostgreSQL stopped mid-run, then back;
//! - [`object_store`]: Garage stopped mid-run, with an upload in flight;
//! - [`project_service`]: the project service answering after 5 s;
//! - [`crash`]: the real binary killed with SIGKILL during a proxy upload, then the janitor;
//! - [`instances`]: two real binaries on one database and one Garage, racing for locks and
//!   versions;
//! - [`shutdown`]: SIGTERM to the real binary with an upload in flight: readiness turns 503
//!   first, the upload completes, then the process exits.
//!
//! A case that stops PostgreSQL or Garage starts its own (`storage_test_support::services`), on
//! its own ports and directory, so the tests running beside it keep theirs; the others use the
//! shared services of `tests/run.sh`. Every wait is bounded.
#![expect(clippy::expect_used, reason = "test helpers outside #[test] functions")]

mod crash;
mod database;
mod instances;
mod object_store;
mod project_service;
mod shutdown;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{Stream, stream};
use reqwest::{Client, StatusCode, multipart};
use serde_json::Value;
use storage_jwt_auth::{JwtSigner, SignerConfig};
use storage_server::{
    app::Application,
    config::{Config, Vars},
};
use storage_test_support::{env::require, postgres::TestDatabase};

pub const SECRET: &str = "fault-secret-0123456789abcdef0123456789";

/// A database of the shared PostgreSQL, migrated.
pub async fn shared_database() -> TestDatabase {
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    TestDatabase::new(
        &storage_test_support::postgres::fingerprint_dir(&migrations),
        |url| async move { storage_pg_diesel::run_migrations(&url).await.map(|_| ()) },
    )
    .await
}

/// The `MINIO_*` variables of the shared Garage.
pub fn shared_s3_vars() -> Vec<(String, String)> {
    [
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
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The variables every instance gets, before the case's own.
fn base_vars(database_url: &str, project_url: &str) -> Vec<(String, String)> {
    [
        ("APP_ENV", "testing"),
        ("BIND_ADDR", "127.0.0.1:0"),
        ("DATABASE_URL", database_url),
        ("JWT_SECRET", SECRET),
        ("PROJECT_SERVICE_URL", project_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// An instance of the service inside the test process (`Application::build` on port 0).
#[derive(Debug)]
pub struct InProcess {
    pub api: Api,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl InProcess {
    /// Starts an instance over `database_url`, the project service at `project_url`, and
    /// `extra` variables (which win), e.g. another Garage's `MINIO_*`.
    pub async fn start(database_url: &str, project_url: &str, extra: &[(String, String)]) -> Self {
        let mut vars: HashMap<String, String> =
            base_vars(database_url, project_url).into_iter().collect();
        vars.extend(extra.iter().cloned());
        let config = Config::from_vars(&Vars::from_map(vars)).expect("config");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Application::build(config, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the application starts");
        let api = Api::new(format!("http://127.0.0.1:{}", app.port()));
        tokio::spawn(app.run_until_stopped());
        Self {
            api,
            stop: Some(stop),
        }
    }
}

/// The real `storage-server` binary, as a child process; killed when dropped.
#[derive(Debug)]
pub struct Binary {
    pub api: Api,
    child: Child,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of a `storage-server` child: only what the case sets.
fn server_command(vars: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storage-server"));
    cmd.env_clear()
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("LOG_JSON", "true")
        .env("RUST_LOG", "warn,storage_server=info")
        .current_dir(std::env::temp_dir());
    cmd
}

/// The whole environment of an instance over the shared Garage.
pub fn binary_vars(
    database_url: &str,
    project_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut vars = base_vars(database_url, project_url);
    vars.extend(shared_s3_vars());
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    vars
}

impl Binary {
    /// Starts `storage-server serve` and waits (at most 20 s) for the port it logs.
    pub fn start(vars: &[(String, String)]) -> Self {
        let mut child = server_command(vars)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the storage-server binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<String>();
        // Drains the log for the child's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!("storage-server did not log its port within 20 s: {seen:#?}");
                }
            };
            if line.contains("storage-service listening")
                && let Some(port) = json_port(&line)
            {
                break port;
            }
            seen.push(line);
        };
        Self {
            api: Api::new(format!("http://127.0.0.1:{port}")),
            child,
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (with the system's `kill`: no libc binding in the tests).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// The exit status once the process has exited, or `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }
}

fn json_port(line: &str) -> Option<u16> {
    let v: Value = serde_json::from_str(line).ok()?;
    let port = v.get("fields")?.get("port")?.as_u64()?;
    u16::try_from(port).ok()
}

/// Runs `storage-server janitor --once` to its end (at most 30 s).
pub fn run_janitor_once(vars: &[(String, String)]) {
    let mut child = server_command(vars)
        .args(["janitor", "--once"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the janitor starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut log = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut err, &mut log);
            }
            assert!(status.success(), "janitor --once failed ({status}): {log}");
            return;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("janitor --once did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client of one running instance.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub client: Client,
    signer: std::sync::Arc<JwtSigner>,
}

/// An answer: status, JSON body (`Null` when not JSON) and how long it took.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub took: Duration,
}

impl Answer {
    /// The error code (`message`) of an error body.
    pub fn code(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

impl Api {
    pub fn new(base: String) -> Self {
        Self {
            base,
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            signer: std::sync::Arc::new(
                JwtSigner::new(&SignerConfig::hs256(SECRET)).expect("signer"),
            ),
        }
    }

    pub fn token(&self, user: &str) -> String {
        self.signer
            .mint_token(user, None, Duration::from_secs(3600))
            .expect("token")
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let started = Instant::now();
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        let bytes = response.bytes().await.expect("body");
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            took: started.elapsed(),
        }
    }

    pub async fn get(&self, user: &str, route: &str, query: &[(&str, &str)]) -> Answer {
        self.send(
            self.client
                .get(format!("{}{route}", self.base))
                .query(query)
                .bearer_auth(self.token(user)),
        )
        .await
    }

    pub async fn post(&self, user: &str, route: &str, body: &Value) -> Answer {
        self.send(
            self.client
                .post(format!("{}{route}", self.base))
                .bearer_auth(self.token(user))
                .json(body),
        )
        .await
    }

    pub async fn health(&self) -> Answer {
        self.send(self.client.get(format!("{}/health", self.base)))
            .await
    }

    pub async fn metadata(&self, user: &str, bucket: &str, path: &str) -> Answer {
        self.get(user, "/metadata", &[("bucket", bucket), ("path", path)])
            .await
    }

    /// A proxy upload of `bytes`.
    pub async fn upload(&self, user: &str, bucket: &str, path: &str, bytes: Vec<u8>) -> Answer {
        let part = multipart::Part::bytes(bytes)
            .file_name("f")
            .mime_str("application/octet-stream")
            .expect("mime");
        self.upload_part(user, bucket, path, part).await
    }

    /// A proxy upload whose file part is `part` (e.g. a slow stream).
    pub async fn upload_part(
        &self,
        user: &str,
        bucket: &str,
        path: &str,
        part: multipart::Part,
    ) -> Answer {
        let form = multipart::Form::new()
            .text("bucket", bucket.to_owned())
            .text("path", path.to_owned())
            .part("file", part);
        self.send(
            self.client
                .post(format!("{}/upload/proxy", self.base))
                .bearer_auth(self.token(user))
                .multipart(form),
        )
        .await
    }
}

/// `total` bytes in 1 MiB chunks (each stamped with its index, so Garage cannot deduplicate
/// them), with `pause` before each chunk after the first `fast` MiB; calls `on_chunk(sent)`
/// after yielding each chunk.
pub fn slow_body(
    total_mib: u64,
    fast_mib: u64,
    pause: Duration,
    on_chunk: impl Fn(u64) + Send + Sync + 'static,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    const MIB: u64 = 1024 * 1024;
    let on_chunk = std::sync::Arc::new(on_chunk);
    stream::unfold(0u64, move |i| {
        let on_chunk = on_chunk.clone();
        async move {
            if i >= total_mib {
                return None;
            }
            if i >= fast_mib {
                tokio::time::sleep(pause).await;
            }
            let mut chunk = vec![(i % 251) as u8; MIB as usize];
            chunk[..8].copy_from_slice(&i.to_le_bytes());
            on_chunk(i + 1);
            Some((Ok(Bytes::from(chunk)), i + 1))
        }
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `SELECT count(*) …` on `database_url`.
pub async fn count(database_url: &str, sql: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .expect("connect to check rows");
    diesel::sql_query(format!("SELECT count(*) AS n FROM ({sql}) AS q"))
        .get_result::<Count>(&mut conn)
        .await
        .expect("count query")
        .n
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
