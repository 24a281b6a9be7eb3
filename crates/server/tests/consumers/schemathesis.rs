//! schemathesis against the live server, from the document it serves.

use std::{process::Command, time::Duration};

use std::collections::BTreeMap;

use crate::{
    repo_root, run,
    support::{App, Options, Upload},
    venv_tool,
};

/// Examples per operation in the fuzzing phase (the examples, coverage and stateful phases
/// come on top). `SCHEMATHESIS_MAX_EXAMPLES` raises it for a longer run by hand.
const MAX_EXAMPLES: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_on_any_operation() {
    // The fuzzer acts as one user (alice): she may review her own versions, so that the links
    // from an upload to its submission and approval lead somewhere.
    // The document shows the default upload limit; the e2e harness lowers it. The fuzzer
    // presigns uploads it never completes, all as alice: the open-upload cap is set above what
    // it sends, so that no 429 (a refusal it cannot expect) answers a valid request.
    let app = App::start_with(
        Options::default()
            .var("ALLOW_SELF_APPROVAL", "true")
            .var("MAX_UPLOAD_BYTES", "5368709120")
            .var("MAX_OPEN_UPLOADS_PER_USER", "100000"),
    )
    .await;
    app.allow(
        "alice",
        "5678",
        &["read", "write", "delete", "lock", "validate"],
    );
    // What the document's examples name exists, so they reach the operations' logic.
    let alice = app.user("alice");
    for path in [
        "/users/alice/notes/todo.txt",
        "/users/alice/notes/obsolete.txt",
        "/users/alice/reports/2025.pdf",
        "/users/alice/work/spec.pdf",
        "/projects/5678/docs/spec.pdf",
    ] {
        alice
            .upload_with(Upload::new(path, b"hello, world".to_vec()))
            .await
            .ok();
    }
    // Versions the review routes can act on (the document's example id names none).
    let mut seeded = Vec::new();
    for (op, submitted) in [
        ("approve_version", true),
        ("reject_version", true),
        ("submit_version", false),
        ("restore_version", false),
        ("pin_version", false),
        ("unpin_version", false),
    ] {
        let up = alice
            .upload_with(Upload::new(
                &format!("/users/alice/review/{op}.txt"),
                b"to review".to_vec(),
            ))
            .await
            .ok();
        let id = crate::support::id_of(&up);
        if submitted {
            alice.submit(&id).await.ok();
        }
        seeded.push(format!("{op}={id}"));
    }
    // The trash: the file `trash_file`'s example names, and an entry each for the examples of
    // `restore_from_trash` and `purge_trash` (their ids are passed like the versions').
    alice
        .upload_with(Upload::new(
            "/users/alice/drafts/trash-me.txt",
            b"to trash".to_vec(),
        ))
        .await
        .ok();
    for op in ["restore_from_trash", "purge_trash"] {
        let path = format!("/users/alice/drafts/{op}.txt");
        alice
            .upload_with(Upload::new(&path, b"in the trash".to_vec()))
            .await
            .ok();
        let entry = alice
            .post(
                "/trash",
                serde_json::json!({"bucket": "users", "path": path}),
            )
            .await
            .ok();
        let id = entry["entry"]["trash_id"].as_str().expect("trash_id");
        seeded.push(format!("{op}={id}"));
    }
    // The unarchive example names a file of its own, archived (the archive example's is not:
    // run side by side, the two examples then each succeed whatever their order).
    alice
        .upload_with(Upload::new(
            "/users/alice/reports/2024.pdf",
            b"last year".to_vec(),
        ))
        .await
        .ok();
    alice
        .post(
            "/archive",
            serde_json::json!({"bucket": "users", "path": "/users/alice/reports/2024.pdf"}),
        )
        .await;
    // The commit example (keep_lock: true, so it can be repeated) needs alice's lock.
    alice.lock("/projects/5678/docs/spec.pdf").await.ok();
    let work = tempfile::tempdir().expect("temp dir");
    let status_log = work.path().join("statuses.log");
    let consumers = repo_root().join("tests/consumers");
    let max_examples = std::env::var("SCHEMATHESIS_MAX_EXAMPLES")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(MAX_EXAMPLES);
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| "20260101".to_owned());

    let mut st = Command::new(venv_tool("st"));
    st.arg("--config-file")
        .arg(consumers.join("schemathesis.toml"))
        .arg("--no-color")
        .arg("run")
        .arg(format!("{}/openapi.json", app.base))
        .arg("--url")
        .arg(&app.base)
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", app.token("alice")))
        .arg("--phases")
        .arg("examples,coverage,fuzzing,stateful")
        .arg("--max-examples")
        .arg(max_examples.to_string())
        .arg("--seed")
        .arg(&seed)
        .arg("--workers")
        .arg("2")
        .arg("--request-timeout")
        .arg("10")
        .arg("--report")
        .arg("junit")
        .arg("--report-dir")
        .arg(work.path())
        .current_dir(work.path())
        .env("PYTHONPATH", &consumers)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("SCHEMATHESIS_STATUS_LOG", &status_log)
        .env("SCHEMATHESIS_VERSIONS", seeded.join(","));
    let ran = run(st, work.path(), "schemathesis", Duration::from_secs(110)).await;
    ran.assert_success("schemathesis");

    // Every operation of the document was served at least once: none stayed stuck at 404 or
    // at refusals for lack of usable data.
    let log = std::fs::read_to_string(&status_log).expect("the hooks logged the answers");
    let mut statuses: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    // Per operation, how many answers of each status, code and path (see `_why` in hooks.py).
    let mut answers: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for line in log.lines() {
        let (op, answer) = line.split_once(' ').expect("<operationId> <status> <why>");
        let status = answer.split(' ').next().expect("status");
        statuses
            .entry(op)
            .or_default()
            .push(status.parse().expect("status"));
        *answers.entry(op).or_default().entry(answer).or_default() += 1;
    }
    let document: serde_json::Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("document")
        .json()
        .await
        .expect("JSON");
    let mut never_served = Vec::new();
    for item in document["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("operations").values() {
            let id = op["operationId"].as_str().expect("operationId");
            if id == "get_openapi" {
                // The document itself: schemathesis reads it, it does not test it.
                continue;
            }
            let served = statuses
                .get(id)
                .is_some_and(|s| s.iter().any(|code| (200..300).contains(code)));
            if !served {
                // Each answer's status, code and path, and how many times: what kept it from a 2xx.
                never_served.push(format!("{id}: {:#?}", answers.get(id)));
            }
        }
    }
    assert!(
        never_served.is_empty(),
        "operations never served (2xx) during the run: {never_served:#?}"
    );
    eprintln!(
        "schemathesis: {:.1}s (seed {seed}, {max_examples} examples)\n{}\nanswers: {answers:#?}",
        ran.elapsed.as_secs_f64(),
        ran.stdout
    );
}
