//! A Python client generated from `docs/openapi.yaml` runs the seed's workflows.

use std::{process::Command, time::Duration};

use crate::{repo_root, run, support::App, venv_tool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_runs_the_seven_workflows_and_every_operation() {
    let app = App::start().await;
    app.allow(
        "alice",
        "5678",
        &["read", "write", "delete", "lock", "validate"],
    );
    app.allow("bob", "5678", &["read", "write", "lock", "validate"]);
    let work = tempfile::tempdir().expect("temp dir");
    let consumers = repo_root().join("tests/consumers");

    let mut generate = Command::new(venv_tool("openapi-python-client"));
    generate
        .arg("generate")
        .arg("--path")
        .arg(repo_root().join("docs/openapi.yaml"))
        .arg("--output-path")
        .arg(work.path().join("storage_client"))
        .arg("--meta")
        .arg("none")
        .arg("--config")
        .arg(consumers.join("openapi-python-client.yaml"));
    let generated = run(generate, work.path(), "generate", Duration::from_secs(60)).await;
    generated.assert_success("openapi-python-client generate");
    assert!(
        !generated.stdout.contains("Warning") && !generated.stderr.contains("Warning"),
        "the generator skipped parts of the document:\n{}\n{}",
        generated.stdout,
        generated.stderr
    );

    let mut workflows = Command::new(venv_tool("python"));
    workflows
        .arg(consumers.join("workflows.py"))
        .env("PYTHONPATH", work.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("STORAGE_API", &app.base)
        .env("TOKEN_ALICE", app.token("alice"))
        .env("TOKEN_BOB", app.token("bob"))
        .env("TOKEN_CAROL", app.company_token("carol", "acme"));
    let ran = run(workflows, work.path(), "workflows", Duration::from_secs(60)).await;
    ran.assert_success("the workflows through the generated client");
    assert!(ran.stdout.contains("10 passed, 0 failed"), "{}", ran.stdout);
    eprintln!(
        "generated client: generation {:.1}s, workflows {:.1}s\n{}",
        generated.elapsed.as_secs_f64(),
        ran.elapsed.as_secs_f64(),
        ran.stdout
    );
}
