//! Private service instances for fault tests: a PostgreSQL cluster and a Garage node of a test's
//! own, which it may stop and start again without disturbing the tests that share the services
//! of `tests/run.sh`.
//!
//! Both are started by the project's shell functions (`tests/support/postgres.sh` `pg_start`,
//! `tests/support/garage.sh` `garage_start`), each in a temporary directory of its own and on
//! free ports. Every shell step is bounded in time. Dropping the value stops the service and
//! removes its directory, also when the test fails.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use storage_s3_minio::{BucketNames, S3Config};

/// `tests/support/` of this repository.
pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/support")
}

/// A fresh temporary directory under `$TMPDIR` (or `/tmp`).
fn temp_dir(what: &str) -> PathBuf {
    let base = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let dir = base.join(format!(
        "storage-service-fault-{what}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Runs `bash -c SCRIPT _ ARGS…` with the support scripts' directory as `$SUPPORT`, and the
/// `TEST_*` variables of the shared services removed (so `pg_start` starts a cluster of its own).
/// Returns its standard output; panics on failure or after `timeout`.
fn bash(script: &str, args: &[&str], extra_env: &[(&str, &str)], timeout: Duration) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .arg("_")
        .args(args)
        .env("SUPPORT", support_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("TEST_") || name == "SVC_PORTS_TAKEN" || name.starts_with("PG_") {
            cmd.env_remove(name);
        }
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run bash: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("shell step timed out after {timeout:?}: {script}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("waiting for bash failed: {e}"),
        }
    }
    // The pipes are small: the scripts print a few lines at most.
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let status = child
        .wait()
        .unwrap_or_else(|e| panic!("waiting for bash failed: {e}"));
    assert!(
        status.success(),
        "shell step failed ({status}): {script}\nstdout: {out}\nstderr: {err}"
    );
    out
}

/// `NAME=value` lines of a script's output, as a lookup.
fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no {name} in the shell's output: {out}"))
}

/// True while process `pid` exists and is not a zombie.
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Sends `signal` to `pid` (through `kill(1)`: this crate forbids unsafe code).
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Stops `pid` (TERM, then KILL after `grace`) and waits until it is gone.
fn stop_pid(pid: u32, grace: Duration) {
    if !pid_alive(pid) {
        return;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while pid_alive(pid) {
        if Instant::now() >= deadline {
            signal(pid, "KILL");
            let kill_deadline = Instant::now() + Duration::from_secs(5);
            while pid_alive(pid) && Instant::now() < kill_deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when something accepts TCP connections on `127.0.0.1:port`.
fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A PostgreSQL cluster of one test (`pg_start` of `tests/support/postgres.sh`).
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    url: String,
    bin_dir: String,
    os_user: String,
}

impl PgCluster {
    /// Starts a cluster in a new temporary directory, on a free port.
    ///
    /// # Panics
    /// When PostgreSQL cannot be started (its binaries missing, …).
    pub fn start() -> Self {
        let dir = temp_dir("pg");
        let out = bash(
            r#"source "$SUPPORT/postgres.sh"
pg_start "$1" >&2
printf 'URL=%s\nBIN=%s\nUSER=%s\n' "$TEST_DATABASE_URL" "$PG_BIN_DIR" "$PG_OS_USER""#,
            &[&dir.to_string_lossy()],
            &[],
            Duration::from_secs(60),
        );
        Self {
            url: field(&out, "URL"),
            bin_dir: field(&out, "BIN"),
            os_user: field(&out, "USER"),
            dir,
        }
    }

    /// The superuser URL (database `postgres`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of database `name` on this cluster.
    pub fn url_of(&self, name: &str) -> String {
        let mut url = url::Url::parse(&self.url)
            .unwrap_or_else(|e| panic!("bad cluster URL {}: {e}", self.url));
        url.set_path(&format!("/{name}"));
        url.to_string()
    }

    fn pg_ctl(&self, action: &str) {
        let dir = self.dir.join("postgres");
        bash(
            r#"source "$SUPPORT/postgres.sh"
PG_BIN_DIR=$2; PG_OS_USER=$3
cd "$1"
case "$4" in
  stop) pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$1/data" -m fast -w -t 20 stop >&2 ;;
  start) pg_as_owner "$PG_BIN_DIR/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 30 start >&2 ;;
esac"#,
            &[&dir.to_string_lossy(), &self.bin_dir, &self.os_user, action],
            &[],
            Duration::from_secs(40),
        );
    }

    /// Stops the cluster (`pg_ctl stop -m fast`: sessions are cut).
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Starts the stopped cluster again, on the same port and data.
    pub fn restart(&self) {
        self.pg_ctl("start");
    }

    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("postgres/data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            // SIGINT is PostgreSQL's fast shutdown.
            if pid_alive(pid) {
                signal(pid, "INT");
                let deadline = Instant::now() + Duration::from_secs(10);
                while pid_alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                stop_pid(pid, Duration::from_secs(1));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A single-node Garage of one test (`garage_start` of `tests/support/garage.sh`).
#[derive(Debug)]
pub struct GarageNode {
    dir: PathBuf,
    bin: String,
    config_file: String,
    log_file: String,
    /// The first process, started by the script (not our child).
    first_pid: Option<u32>,
    /// A process restarted by [`restart`](Self::restart) (our child).
    restarted: Option<Child>,
    /// The S3 endpoint (`http://127.0.0.1:<port>`).
    pub endpoint: String,
    pub port: u16,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket_users: String,
    pub bucket_companies: String,
    pub bucket_projects: String,
}

impl GarageNode {
    /// Starts a node with a fresh key and the three buckets in a new temporary directory.
    ///
    /// # Panics
    /// When Garage cannot be started.
    pub fn start() -> Self {
        let dir = temp_dir("garage");
        let out = bash(
            r#"source "$SUPPORT/garage.sh"
garage_start "$1" >&2
for v in TEST_S3_ENDPOINT TEST_S3_PORT TEST_S3_REGION TEST_S3_ACCESS_KEY TEST_S3_SECRET_KEY \
         TEST_S3_BUCKET_USERS TEST_S3_BUCKET_COMPANIES TEST_S3_BUCKET_PROJECTS \
         TEST_GARAGE_CONFIG TEST_GARAGE_LOG TEST_GARAGE_PID GARAGE_BIN; do
    printf '%s=%s\n' "$v" "${!v}"
done"#,
            &[&dir.to_string_lossy()],
            &[],
            Duration::from_secs(90),
        );
        let port = field(&out, "TEST_S3_PORT");
        Self {
            dir,
            bin: field(&out, "GARAGE_BIN"),
            config_file: field(&out, "TEST_GARAGE_CONFIG"),
            log_file: field(&out, "TEST_GARAGE_LOG"),
            first_pid: field(&out, "TEST_GARAGE_PID").parse().ok(),
            restarted: None,
            endpoint: field(&out, "TEST_S3_ENDPOINT"),
            port: port
                .parse()
                .unwrap_or_else(|e| panic!("bad port {port}: {e}")),
            region: field(&out, "TEST_S3_REGION"),
            access_key: field(&out, "TEST_S3_ACCESS_KEY"),
            secret_key: field(&out, "TEST_S3_SECRET_KEY"),
            bucket_users: field(&out, "TEST_S3_BUCKET_USERS"),
            bucket_companies: field(&out, "TEST_S3_BUCKET_COMPANIES"),
            bucket_projects: field(&out, "TEST_S3_BUCKET_PROJECTS"),
        }
    }

    /// The adapter's configuration for this node (buckets not created: they exist).
    pub fn s3_config(&self) -> S3Config {
        let mut config = S3Config::new(
            self.endpoint.clone(),
            self.access_key.clone(),
            SecretString::from(self.secret_key.clone()),
            self.region.clone(),
            BucketNames {
                users: self.bucket_users.clone(),
                companies: self.bucket_companies.clone(),
                projects: self.bucket_projects.clone(),
            },
        );
        config.create_missing_buckets = false;
        config
    }

    /// Stops the node and waits until its S3 port is closed.
    pub fn stop(&mut self) {
        if let Some(pid) = self.first_pid.take() {
            stop_pid(pid, Duration::from_secs(10));
        }
        if let Some(mut child) = self.restarted.take() {
            stop_pid(child.id(), Duration::from_secs(10));
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while port_open(self.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the stopped node again (same configuration, keys and data) and waits until its
    /// S3 API answers.
    ///
    /// # Panics
    /// When it does not answer within 30 s.
    pub fn restart(&mut self) {
        assert!(
            self.first_pid.is_none() && self.restarted.is_none(),
            "restart a stopped node only"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log_file));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        let child = Command::new(&self.bin)
            .args(["-c", &self.config_file, "server"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin));
        self.restarted = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !port_open(self.port) {
            assert!(
                Instant::now() < deadline,
                "Garage did not come back within 30 s (log: {})",
                self.log_file
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for GarageNode {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
