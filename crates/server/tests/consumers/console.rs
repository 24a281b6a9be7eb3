//! The web console in headless Chromium (`tests/consumers/console.mjs`): an author and a
//! reviewer in two browser contexts run the seed's workflows by clicking, once on the embedded
//! default (SQLite, local directory, project policy file) and once on PostgreSQL + Garage with
//! the project-service stand-in. The screenshots of each step are written under
//! `target/tmp/console-<store>/` (cargo's `CARGO_TARGET_TMPDIR`).

use std::{collections::HashMap, path::PathBuf, process::Command, time::Duration};

use storage_domain::model::BucketKind;
use storage_jwt_auth::{JwtSigner, SignerConfig};
use storage_server::{
    app::Application,
    config::{Config, Vars},
};
use storage_test_support::{
    env::require,
    s3::{allow_browser_origins, s3_config_from_env},
};

use crate::{
    repo_root, run,
    support::{App, Options},
};

/// The folder of one run's screenshots, emptied first.
fn shots(store: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{store}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Runs the script against `base` with the two people's tokens.
async fn click_through(store: &str, base: &str, tokens: (String, String), users_route: &str) {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        repo_root().join("tests/consumers/console.mjs"),
        work.path().join("console.mjs"),
    )
    .expect("copy the script");
    std::os::unix::fs::symlink(
        require("TEST_CONSUMER_NODE_MODULES"),
        work.path().join("node_modules"),
    )
    .expect("link node_modules");
    let shots = shots(store);
    let mut node = Command::new("node");
    node.arg(work.path().join("console.mjs"))
        .current_dir(work.path())
        .env("CHROMIUM", require("TEST_CONSUMER_CHROMIUM"))
        .env("BASE", base)
        .env("AUTHOR_TOKEN", tokens.0)
        .env("REVIEWER_TOKEN", tokens.1)
        .env("SHOTS", &shots)
        .env("STORE", store)
        .env("USERS_ROUTE", users_route)
        .env("HOME", work.path());
    let ran = run(node, work.path(), "console", Duration::from_secs(180)).await;
    ran.assert_success(&format!("the console on {store}"));
    assert!(ran.stdout.contains("passed, 0 failed"), "{}", ran.stdout);
    let taken = std::fs::read_dir(&shots).expect("screenshots").count();
    assert!(taken >= 12, "{taken} screenshots in {}", shots.display());
    eprintln!(
        "console on {store}: {:.1}s, screenshots in {}\n{}",
        ran.elapsed.as_secs_f64(),
        shots.display(),
        ran.stdout
    );
}

const POLICY: &str = r#"{"rules": [
  {"user": "alice", "project": "5678", "actions": ["read", "write", "delete", "lock", "validate"]},
  {"user": "bob", "project": "5678", "actions": ["read", "write", "lock"]}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_the_workflows_on_the_embedded_default() {
    let data = tempfile::tempdir().expect("temp dir");
    std::fs::write(data.path().join("project-policy.json"), POLICY).expect("policy file");
    let secret = "console-test-secret-0123456789abcdef";
    let vars: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATA_DIR", data.path().display().to_string()),
        ("JWT_SECRET", secret.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&Vars::from_map(vars)).expect("config");
    assert!(
        config.uses_embedded(),
        "nothing configured: the embedded default"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Application::build(config, async move {
        let _ = stopped.await;
    })
    .await
    .expect("the embedded default starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped());
    let signer = JwtSigner::new(&SignerConfig::hs256(secret)).expect("signer");
    let token = |user: &str| {
        signer
            .mint_token(user, None, Duration::from_secs(3600))
            .expect("token")
    };
    // The local store's presigned URLs are the service's own /blob routes: same origin.
    click_through("embedded", &base, (token("bob"), token("alice")), "direct").await;
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_the_workflows_on_postgresql_and_garage() {
    let app = App::start_with(Options::default().var("MAX_UPLOAD_BYTES", 16 * 1024 * 1024)).await;
    for action in ["read", "write", "lock"] {
        app.standin.allow("bob", "5678", action);
    }
    for action in ["read", "write", "delete", "lock", "validate"] {
        app.standin.allow("alice", "5678", action);
    }
    // Garage lets the console's origin PUT to the projects bucket (not to users, whose uploads
    // then go through the service: both ways are exercised).
    allow_browser_origins(
        &s3_config_from_env(),
        BucketKind::Projects,
        std::slice::from_ref(&app.base),
    )
    .await;
    click_through(
        "postgresql-garage",
        &app.base,
        (app.token("bob"), app.token("alice")),
        "proxy",
    )
    .await;
}
