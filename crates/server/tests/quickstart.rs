//! The README's quick start, literally: the real `storage-server` binary in an empty directory
//! with no configuration but a port (so `./data` is the embedded default: SQLite and a local
//! directory), a token minted by the binary's `token` subcommand, an upload through the proxy,
//! the same bytes downloaded, a lock, a presigned upload to the service's own URL completed and
//! downloaded; then SIGTERM, a restart on the same data directory, and everything still there.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions: a failure is a failed test"
)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{Client, StatusCode, multipart};
use serde_json::{Value, json};

fn binary(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storage-server"));
    // Nothing from the test environment: what a fresh shell on a fresh clone has.
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(cwd);
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `storage-server serve`; killed on drop if the test did not stop it.
struct Server {
    child: Child,
    base: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    out
}

impl Server {
    /// `storage-server` (no subcommand, as `cargo run` runs it) in `cwd`, on a free port.
    async fn start(cwd: &Path) -> Server {
        let port = free_port();
        let mut child = binary(cwd)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&mut self) {
        let client = Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "the server exited ({status}) before answering /health.\nstdout:\n{}\nstderr:\n{}",
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            if let Ok(answer) = client.get(format!("{}/health", self.base)).send().await {
                let status = answer.status();
                let body = answer.text().await.unwrap_or_default();
                assert_eq!(status, StatusCode::OK, "/health: {body}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not answer /health within 60 s.\nstdout:\n{}\nstderr:\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the process must exit by itself, successfully.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}\nstderr:\n{}",
                    self.stderr.lock().unwrap()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `storage-server token --sub <user>` in `cwd`.
fn token(cwd: &Path, user: &str) -> String {
    let out = binary(cwd).args(["token", "--sub", user]).output().unwrap();
    assert!(
        out.status.success(),
        "token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct Api {
    client: Client,
    base: String,
    token: String,
}

impl Api {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
    }

    async fn ok_json(&self, request: reqwest::RequestBuilder) -> Value {
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn upload(&self, path: &str, bytes: &[u8]) -> Value {
        let form = multipart::Form::new()
            .text("bucket", "users")
            .text("path", path.to_owned())
            .part(
                "file",
                multipart::Part::bytes(bytes.to_vec())
                    .file_name("report.txt")
                    .mime_str("text/plain")
                    .unwrap(),
            );
        self.ok_json(
            self.client
                .post(format!("{}/upload/proxy", self.base))
                .bearer_auth(&self.token)
                .multipart(form),
        )
        .await
    }

    async fn download(&self, path: &str) -> Vec<u8> {
        let answer = self
            .get("/download/proxy")
            .query(&[("bucket", "users"), ("path", path)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        answer.bytes().await.unwrap().to_vec()
    }
}

const REPORT: &str = "/users/alice/docs/report.txt";
const DIRECT: &str = "/users/alice/docs/direct.bin";

#[tokio::test]
async fn the_readme_quick_start_works_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();

    // 1. `cargo run`: an empty directory, no configuration.
    let server = Server::start(cwd).await;
    {
        let banner = server.stdout.lock().unwrap().clone();
        for needle in [server.base.as_str(), "/docs", "data dir:", "token --sub"] {
            assert!(
                banner.contains(needle),
                "the banner shows {needle}:\n{banner}"
            );
        }
    }
    let data = cwd.join("data");
    assert!(
        data.join("storage.sqlite3").is_file(),
        "the embedded database"
    );
    assert!(
        data.join("objects/users").is_dir(),
        "the embedded blob directory"
    );
    #[cfg(unix)]
    for secret in ["jwt-secret", "presign-secret"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join(secret))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{secret}");
    }

    // 2. `cargo run -- token --sub alice`.
    let api = Api {
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: server.base.clone(),
        token: token(cwd, "alice"),
    };

    // 3. Upload through the proxy (twice: two versions), download the same bytes.
    let v1 = b"quick start, version 1\n".to_vec();
    let v2: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let first = api.upload(REPORT, &v1).await;
    assert_eq!(first["version"]["number"], 1);
    assert_eq!(api.download(REPORT).await, v1);
    let second = api.upload(REPORT, &v2).await;
    assert_eq!(second["version"]["number"], 2);
    assert_eq!(api.download(REPORT).await, v2);

    // 4. Take a lock.
    let locked = api
        .ok_json(api.post("/lock", &json!({"bucket": "users", "path": REPORT})))
        .await;
    assert_eq!(locked["lock"]["holder"], "alice", "{locked}");

    // 5. Presigned upload to the service's own URL, completed, then downloaded both ways.
    let direct: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
    let presigned = api
        .ok_json(api.post(
            "/upload/presign",
            &json!({"bucket": "users", "path": DIRECT, "content_type": "application/octet-stream", "size": direct.len()}),
        ))
        .await;
    let url = presigned["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/blob/users/", server.base)),
        "{url}"
    );
    let mut put = api.client.put(url).body(direct.clone());
    for (name, value) in presigned["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let answer = put.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{:?}", answer.text().await);
    let completed = api
        .ok_json(api.post(
            "/upload/complete",
            &json!({"upload_id": presigned["upload_id"]}),
        ))
        .await;
    assert_eq!(completed["version"]["number"], 1);
    assert_eq!(api.download(DIRECT).await, direct);
    let link = api
        .ok_json(api.post(
            "/download/presign",
            &json!({"bucket": "users", "path": DIRECT}),
        ))
        .await;
    let answer = api
        .client
        .get(link["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.bytes().await.unwrap().as_ref(), direct.as_slice());
    // A tampered URL is refused in the contract's shape.
    let tampered = url.replace("/blob/users/alice/", "/blob/users/bob/");
    let answer = api
        .client
        .put(&tampered)
        .body(direct.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["message"], "access_denied");

    // The container health check answers for this instance, and fails once it is gone.
    let bind = server.base.trim_start_matches("http://").to_owned();
    let healthcheck = |bind: &str| {
        binary(cwd)
            .env("BIND_ADDR", bind)
            .args(["healthcheck"])
            .status()
            .unwrap()
    };
    assert!(
        healthcheck(&bind).success(),
        "healthcheck against a healthy server"
    );

    // 6. SIGTERM, then start again on the same data directory.
    server.terminate();
    assert!(
        !healthcheck(&bind).success(),
        "healthcheck against a stopped server"
    );
    let server = Server::start(cwd).await;
    let api = Api {
        base: server.base.clone(),
        // The token minted before the restart is still accepted: the secret was kept.
        ..api
    };

    // 7. The file, its versions and its lock are still there, and the bytes.
    let meta = api
        .ok_json(
            api.get("/metadata")
                .query(&[("bucket", "users"), ("path", REPORT)]),
        )
        .await;
    assert_eq!(meta["file"]["version"], 2, "{meta}");
    assert_eq!(meta["file"]["lock"]["holder"], "alice", "{meta}");
    let versions = api
        .ok_json(
            api.get("/versions")
                .query(&[("bucket", "users"), ("path", REPORT)]),
        )
        .await;
    let numbers: Vec<u64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    let locks = api
        .ok_json(
            api.get("/locks")
                .query(&[("bucket", "users"), ("path", "/users/alice/")]),
        )
        .await;
    let held: Vec<(&str, &str)> = locks["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["path"].as_str().unwrap(),
                l["lock"]["holder"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(held, [(REPORT, "alice")]);
    assert_eq!(api.download(REPORT).await, v2);
    let old = api
        .get("/download/proxy")
        .query(&[("bucket", "users"), ("path", REPORT), ("version", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(old.bytes().await.unwrap().as_ref(), v1.as_slice());
    assert_eq!(api.download(DIRECT).await, direct);
    // Another user still sees nothing of alice's.
    let bob = token(cwd, "bob");
    let answer = api
        .client
        .get(format!("{}/download/proxy", api.base))
        .bearer_auth(bob)
        .query(&[("bucket", "users"), ("path", REPORT)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    server.terminate();
}
