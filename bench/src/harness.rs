//! What a service benchmark stands on: PostgreSQL and Garage (the test scripts'
//! `services_start`, unless the `TEST_*` variables already name running ones), a database of
//! its own, the release `storage-server` binary as a child process (so its memory can be read
//! from `/proc`), the project-service stand-in, and an HTTP client with tokens.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, mpsc},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::Client;
use secrecy::SecretString;
use storage_jwt_auth::{JwtSigner, SignerConfig};
use storage_s3_minio::{BucketNames, S3Config};
use storage_test_support::project_standin::ProjectStandin;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// PostgreSQL and Garage, as `TEST_*` variables. When this process started them, they stop
/// (and their directory goes) when the value is dropped: the shell that runs them waits on our
/// pipe and its EXIT trap runs `services_stop`.
#[derive(Debug)]
pub struct Services {
    pub vars: HashMap<String, String>,
    shell: Option<(Child, ChildStdin)>,
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.shell.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

const NEEDED: [&str; 8] = [
    "TEST_DATABASE_URL",
    "TEST_S3_ENDPOINT",
    "TEST_S3_REGION",
    "TEST_S3_ACCESS_KEY",
    "TEST_S3_SECRET_KEY",
    "TEST_S3_BUCKET_USERS",
    "TEST_S3_BUCKET_COMPANIES",
    "TEST_S3_BUCKET_PROJECTS",
];

impl Services {
    /// The running services the environment names, or fresh ones.
    pub fn start() -> anyhow::Result<Self> {
        let from_env: HashMap<String, String> = NEEDED
            .iter()
            .filter_map(|k| Some(((*k).to_owned(), std::env::var(k).ok()?)))
            .collect();
        if from_env.len() == NEEDED.len() {
            eprintln!("[bench] using the services named by the TEST_* variables");
            return Ok(Self {
                vars: from_env,
                shell: None,
            });
        }
        eprintln!("[bench] starting PostgreSQL and Garage (tests/support/services.sh)");
        let script = r#"set -euo pipefail
source "$1/tests/support/services.sh"
services_start
env | grep -E '^(TEST_|GARAGE_BIN=)'
echo READY
read -r _ || true
"#;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("_")
            .arg(repo_root())
            .env_remove("TEST_DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot run bash")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut vars = HashMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line == "READY" {
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
        let services = Self {
            vars,
            shell: Some((child, stdin)),
        };
        for k in NEEDED {
            if !services.vars.contains_key(k) {
                bail!("services_start did not export {k}");
            }
        }
        Ok(services)
    }

    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).map_or("", String::as_str)
    }

    /// The S3 adapter's configuration for the Garage.
    pub fn s3_config(&self) -> S3Config {
        let mut config = S3Config::new(
            self.var("TEST_S3_ENDPOINT"),
            self.var("TEST_S3_ACCESS_KEY"),
            SecretString::from(self.var("TEST_S3_SECRET_KEY").to_owned()),
            self.var("TEST_S3_REGION"),
            BucketNames {
                users: self.var("TEST_S3_BUCKET_USERS").to_owned(),
                companies: self.var("TEST_S3_BUCKET_COMPANIES").to_owned(),
                projects: self.var("TEST_S3_BUCKET_PROJECTS").to_owned(),
            },
        );
        config.create_missing_buckets = false;
        config.presign_max_ttl = Duration::from_secs(3600);
        config
    }

    /// `TEST_DATABASE_URL` with the database `name`.
    pub fn database_url(&self, name: &str) -> anyhow::Result<String> {
        let base = self.var("TEST_DATABASE_URL");
        let (head, _) = base
            .rsplit_once('/')
            .ok_or_else(|| anyhow!("odd TEST_DATABASE_URL {base}"))?;
        Ok(format!("{head}/{name}"))
    }
}

/// A database of the benchmark's own, dropped at the end.
#[derive(Debug)]
pub struct BenchDatabase {
    admin: String,
    name: String,
    pub url: String,
}

impl BenchDatabase {
    pub async fn create(services: &Services) -> anyhow::Result<Self> {
        let admin = services.var("TEST_DATABASE_URL").to_owned();
        let name = format!("storage_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin).await?;
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
        let url = services.database_url(&name)?;
        Ok(Self { admin, name, url })
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        let mut conn = AsyncPgConnection::establish(&self.admin).await?;
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

/// The release `storage-server` binary, built if needed (`STORAGE_SERVER_BIN` overrides).
pub fn server_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("STORAGE_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the bench binary has no directory")?;
    let profile_release = dir.file_name().is_some_and(|n| n == "release");
    if !profile_release {
        bail!(
            "run the benchmark in release mode (cargo run -p storage-bench --release, or just bench)"
        );
    }
    // Up to date with the sources (a second when nothing changed). Built together with the
    // bench, as `just bench` does, so that both see the same unified features and neither
    // build undoes the other's.
    eprintln!("[bench] cargo build --release -p storage-server -p storage-bench");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "storage-server",
            "-p",
            "storage-bench",
        ])
        .current_dir(repo_root())
        .status()
        .context("cannot run cargo to build storage-server")?;
    if !status.success() {
        bail!("building storage-server failed");
    }
    let bin = dir.join("storage-server");
    if !bin.exists() {
        bail!("{} not found after the build", bin.display());
    }
    Ok(bin)
}

/// `storage-server` as a child process.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server settings a run sets itself (the figures depend on them); every other setting is
/// the server's default. `STORAGE_BENCH_SERVER_ENV` may override these or set others.
pub const BENCH_SETTINGS: [(&str, &str); 3] = [
    ("DB_POOL_MAX_SIZE", "16"),
    ("LOG_JSON", "true"),
    ("RUST_LOG", "warn,storage_server=info"),
];

/// Variables of the server's environment that say where things are or hold secrets, not how
/// the server behaves: left out of the report.
const NOT_SETTINGS: [&str; 12] = [
    "APP_ENV",
    "BIND_ADDR",
    "DATABASE_URL",
    "JWT_SECRET",
    "PROJECT_SERVICE_URL",
    "MINIO_ENDPOINT",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "MINIO_REGION",
    "MINIO_BUCKET_USERS",
    "MINIO_BUCKET_COMPANIES",
    "MINIO_BUCKET_PROJECTS",
];

/// The settings among `vars` (the server's whole environment), as `K=V`, sorted.
pub fn settings_of(vars: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = vars
        .iter()
        .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.sort();
    out
}

impl Server {
    /// The server's whole environment: where the services are, [`BENCH_SETTINGS`], then the
    /// overrides of `STORAGE_BENCH_SERVER_ENV` ("K=V K2=V2"), each variable once.
    pub fn env(
        services: &Services,
        database_url: &str,
        project_url: &str,
    ) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = [
            ("APP_ENV", "testing"),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("DATABASE_URL", database_url),
            ("JWT_SECRET", SECRET),
            ("PROJECT_SERVICE_URL", project_url),
            ("MINIO_ENDPOINT", services.var("TEST_S3_ENDPOINT")),
            ("MINIO_ACCESS_KEY", services.var("TEST_S3_ACCESS_KEY")),
            ("MINIO_SECRET_KEY", services.var("TEST_S3_SECRET_KEY")),
            ("MINIO_REGION", services.var("TEST_S3_REGION")),
            ("MINIO_BUCKET_USERS", services.var("TEST_S3_BUCKET_USERS")),
            (
                "MINIO_BUCKET_COMPANIES",
                services.var("TEST_S3_BUCKET_COMPANIES"),
            ),
            (
                "MINIO_BUCKET_PROJECTS",
                services.var("TEST_S3_BUCKET_PROJECTS"),
            ),
            ("MINIO_CREATE_BUCKETS", "false"),
        ]
        .into_iter()
        .chain(BENCH_SETTINGS)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Ok(extra) = std::env::var("STORAGE_BENCH_SERVER_ENV") {
            for kv in extra.split_whitespace() {
                if let Some((k, v)) = kv.split_once('=') {
                    vars.retain(|(known, _)| known != k);
                    vars.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        vars
    }

    /// Runs `storage-server migrate`.
    pub fn migrate(bin: &Path, vars: &[(String, String)]) -> anyhow::Result<()> {
        let out = Command::new(bin)
            .arg("migrate")
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .current_dir(std::env::temp_dir())
            .output()?;
        if !out.status.success() {
            bail!(
                "storage-server migrate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts `storage-server serve` and waits for the port it logs.
    pub fn start(bin: &Path, vars: &[(String, String)]) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .arg("serve")
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start storage-server")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("\"WARN\"") || line.contains("\"ERROR\"") {
                    eprintln!("[server] {line}");
                }
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .map_err(|_| anyhow!("storage-server did not log its port within 30 s"))?;
            if line.contains("storage-service listening") {
                let v: serde_json::Value = serde_json::from_str(&line)?;
                let port = v["fields"]["port"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("no port in {line}"))?;
                break port;
            }
        };
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmHWM` (peak resident set since start or the last reset) and `VmRSS`, in KiB.
    pub fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| anyhow!("no {name} in /proc/<pid>/status"))
        };
        Ok((field("VmHWM:")?, field("VmRSS:")?))
    }

    /// Resets the peak (`VmHWM`) to the current resident set (`clear_refs` 5).
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{}/clear_refs", self.pid()))?;
        f.write_all(b"5")?;
        Ok(())
    }
}

/// An HTTP client of the service, with tokens.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub client: Client,
    signer: Arc<JwtSigner>,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.to_owned(),
            client: Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(600))
                .build()?,
            signer: Arc::new(JwtSigner::new(&SignerConfig::hs256(SECRET))?),
        })
    }

    pub fn token(&self, user: &str) -> anyhow::Result<String> {
        Ok(self
            .signer
            .mint_token(user, None, Duration::from_secs(6 * 3600))?)
    }

    pub fn url(&self, route: &str) -> String {
        format!("{}{route}", self.base)
    }
}

/// Fails with the body when the status is not a success.
pub async fn ok(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    bail!("HTTP {status}: {body}")
}

/// Everything a scenario needs, started once per run.
#[derive(Debug)]
pub struct Bench {
    pub services: Services,
    pub database: Option<BenchDatabase>,
    pub server: Server,
    /// The server binary that runs.
    pub server_bin: PathBuf,
    /// The server's settings, as `K=V` ([`settings_of`] its environment).
    pub server_settings: Vec<String>,
    /// Kept alive for the server's project checks.
    pub _standin: ProjectStandin,
    pub api: Api,
}

impl Bench {
    pub async fn start(services: Services) -> anyhow::Result<Self> {
        let bin = tokio::task::spawn_blocking(server_binary).await??;
        let database = BenchDatabase::create(&services).await?;
        let standin = ProjectStandin::start().await;
        let server_vars = Server::env(&services, &database.url, &standin.url());
        Server::migrate(&bin, &server_vars)?;
        let server = Server::start(&bin, &server_vars)?;
        let api = Api::new(&server.base)?;
        Ok(Self {
            services,
            database: Some(database),
            server,
            server_bin: bin,
            server_settings: settings_of(&server_vars),
            _standin: standin,
            api,
        })
    }

    pub fn database_url(&self) -> &str {
        self.database.as_ref().map_or("", |d| d.url.as_str())
    }

    pub async fn finish(mut self) -> anyhow::Result<()> {
        drop(self.server);
        if let Some(db) = self.database.take() {
            db.drop_now().await?;
        }
        Ok(())
    }
}
