//! The service used the way its consumers use it, against the real server (PostgreSQL, Garage,
//! the project-service stand-in, as `e2e`):
//!
//! - `generated_client`: a Python client generated from `docs/openapi.yaml` by
//!   openapi-python-client runs the seed's seven workflows and every other operation;
//! - `schemathesis`: schemathesis fuzzes every operation from the document (examples, coverage,
//!   fuzzing and stateful phases) and finds no server error, no answer outside the document, no
//!   schema-valid request refused;
//! - `browser`: headless Chromium on a page of another origin: cookie, CORS, `FormData` upload,
//!   presigned uploads straight to Garage and to the local store, download name, lock; and the
//!   same page from an origin that is not allowed changes nothing;
//! - `console`: the web console (`/console`) in headless Chromium, an author and a reviewer
//!   clicking through the seed's workflows, on the embedded default and on PostgreSQL + Garage.
//!
//! The tools come from `tests/run.sh` (`tests/support/consumers.sh`, which installs and caches
//! them and exports `TEST_CONSUMER_*`); run these tests through it.

#![expect(clippy::expect_used, reason = "test helpers outside #[test] functions")]

#[allow(dead_code, reason = "the e2e harness; these tests use part of it")]
#[path = "../e2e/support.rs"]
mod support;

mod browser;
mod console;
mod generated_client;
mod schemathesis;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use storage_test_support::env::require;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A program of the consumer tools' Python venv.
pub fn venv_tool(name: &str) -> PathBuf {
    Path::new(&require("TEST_CONSUMER_VENV"))
        .join("bin")
        .join(name)
}

/// What a finished tool printed.
#[derive(Debug)]
pub struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// Panics with the tool's output unless it succeeded.
    #[track_caller]
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.success,
            "{what} failed after {:.1}s\n--- stdout\n{}\n--- stderr\n{}",
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `command` to its end (killed after `budget`), its output kept in files of `dir` (a
/// pipe could fill up and stall it), without blocking the runtime.
pub async fn run(mut command: Command, dir: &Path, name: &str, budget: Duration) -> Ran {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    let stdout = std::fs::File::create(&out_path).expect("stdout file");
    let stderr = std::fs::File::create(&err_path).expect("stderr file");
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > budget {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let mut stderr = read(&err_path);
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {budget:?})"));
    }
    Ran {
        success: status.is_some_and(|s| s.success()),
        stdout: read(&out_path),
        stderr,
        elapsed: started.elapsed(),
    }
}
