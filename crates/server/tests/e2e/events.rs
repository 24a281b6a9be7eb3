//! Events over real HTTP (issue 17): every type reaches a webhook receiver that checks its
//! Standard Webhooks signature with the reference crate; a receiver down is retried, then
//! served once back; a dispatcher killed mid-delivery leaves the event to the next one, which
//! sends it with the same `webhook-id`; two instances deliver each event to each sink; a dead
//! letter is listed and re-queued by `storage-server events list|retry`; with one of two
//! receivers down, a retry goes to the failed one only; a busy file's backlog goes out in runs;
//! `EVENTS_ENABLED=false` publishes nothing.

// A test: a call that fails is a failed test, reported by the panic of `unwrap`.
#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use storage_domain::service::events::Dispatcher;
use storage_server::config::{Config, Vars};
use storage_test_support::webhook_receiver::{ReceiverMode, WebhookReceiver, new_secret};

use crate::support::{App, Options, id_of, put_presigned, vars};

/// A `WEBHOOKS_FILE` subscribing every receiver (all events), and the options of an app
/// delivering quickly.
fn subscribed(receivers: &[(&WebhookReceiver, &str)], dir: &std::path::Path) -> Options {
    let subs: Vec<Value> = receivers
        .iter()
        .map(|(r, secret)| json!({"url": r.url(), "secret": secret}))
        .collect();
    let file = dir.join("webhooks.json");
    std::fs::write(&file, serde_json::to_vec(&subs).unwrap()).unwrap();
    Options::default()
        .var("WEBHOOKS_FILE", file.display())
        .var("EVENTS_POLL_MS", 50)
        .var("EVENTS_BACKOFF_BASE_MS", 100)
        .var("EVENTS_BACKOFF_MAX_SECONDS", 1)
        .var("EVENTS_TIMEOUT_SECONDS", 2)
        .var("EVENTS_LEASE_SECONDS", 3)
}

/// The app's variables (its database, project service and Garage).
fn app_vars(app: &App) -> HashMap<String, String> {
    vars(
        &app.db,
        &app.standin,
        &storage_test_support::env::require("TEST_S3_ENDPOINT"),
    )
    .into_iter()
    .collect()
}

/// The variables of another instance on `app`'s database, subscribing the receivers of
/// `webhooks_file`.
fn vars_of(app: &App, webhooks_file: &std::path::Path) -> HashMap<String, String> {
    let mut map = app_vars(app);
    map.insert("WEBHOOKS_FILE".into(), webhooks_file.display().to_string());
    map
}

/// A dispatcher on `app`'s database, built from the app's variables as another instance would
/// build its own (vars → `Config` → `Adapters::connect` → `app::dispatcher`), subscribing the
/// receivers of `webhooks_file`.
async fn dispatcher_of(app: &App, webhooks_file: &std::path::Path) -> Dispatcher {
    let config = Config::from_vars(&Vars::from_map(vars_of(app, webhooks_file))).unwrap();
    let adapters = storage_server::app::Adapters::connect(&config, "http://127.0.0.1:1")
        .await
        .unwrap();
    storage_server::app::dispatcher(&config, adapters.metadata.clone())
        .await
        .unwrap()
}

/// The event ids the receiver accepted, each with its body.
fn accepted(
    deliveries: &[storage_test_support::webhook_receiver::Delivery],
) -> HashMap<String, Value> {
    deliveries
        .iter()
        .filter(|d| d.accepted)
        .map(|d| (d.id.clone(), d.body.clone()))
        .collect()
}

/// The success events of `path` in `/audit` (id → type).
async fn audited(app: &App, path: &str) -> HashMap<String, String> {
    let body = app.user("alice").audit(path).await.ok();
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "success")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["event_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const DIR: &str = "/projects/5678/events/";

#[tokio::test]
async fn every_type_is_delivered_signed() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    let tmp = tempfile::tempdir().unwrap();
    // Retention in the users bucket only (bob's `kept.txt` below), by the test's janitor pass:
    // the service's own janitor runs at start, then not for a day.
    let app = App::start_with(
        subscribed(&[(&receiver, &secret)], tmp.path())
            .var("ALLOW_SELF_APPROVAL", "false")
            .var("VERSION_KEEP_LAST_USERS", 1)
            .var("JANITOR_INTERVAL_SECONDS", 86_400),
    )
    .await;
    app.allow("bob", "5678", &["read", "write", "lock"]);
    app.allow(
        "alice",
        "5678",
        &["read", "write", "lock", "validate", "delete"],
    );
    let (alice, bob) = (app.user("alice"), app.user("bob"));
    let path = format!("{DIR}a.txt");

    let v1 = id_of(&bob.upload(&path, "one").await.ok());
    let v2 = id_of(&bob.upload(&path, "two").await.ok());
    let presigned = bob
        .presign_upload(&path, json!({"content_type": "text/plain", "size": 5}))
        .await
        .ok();
    assert!(
        put_presigned(&app, &presigned, b"three".to_vec())
            .await
            .is_success()
    );
    let v3 = id_of(
        &bob.complete(presigned["upload_id"].as_str().unwrap())
            .await
            .ok(),
    );
    bob.submit(&v3).await.ok();
    alice.approve(&v3, None).await.ok();
    bob.submit(&v2).await.ok();
    alice.reject(&v2, Some("not this one")).await.ok();
    bob.lock(&path).await.ok();
    bob.unlock(&path).await.ok();
    bob.lock(&path).await.ok();
    alice.force_unlock(&path, "bob is away").await.ok();
    alice.set_tags(&path, json!({"stage": "final"})).await.ok();
    alice
        .post(&format!("/versions/{v1}/restore"), json!({}))
        .await
        .ok();
    for route in ["/archive", "/unarchive"] {
        alice
            .post(route, json!({"bucket": "projects", "path": path}))
            .await
            .ok();
    }
    let trail = audited(&app, &path).await;
    alice.delete(&path).await.ok();

    // The trash: trashed, restored, trashed again and purged.
    let trashed = format!("{DIR}t.txt");
    let at = json!({"bucket": "projects", "path": trashed});
    bob.upload(&trashed, "t").await.ok();
    let first = alice.post("/trash", at.clone()).await.ok()["entry"]["trash_id"].clone();
    alice
        .post("/trash/restore", json!({"trash_id": first}))
        .await
        .ok();
    let second = alice.post("/trash", at).await.ok()["entry"]["trash_id"].clone();
    alice
        .delete_at("/trash", &[("trash_id", second.as_str().unwrap())])
        .await
        .ok();

    // Pins and retention (one version kept in `users`): version 2 pinned, unpinned, then
    // pruned with version 1 by the janitor once version 3 is the latest.
    let kept = "/users/bob/events/kept.txt";
    bob.upload(kept, "1").await.ok();
    let k2 = id_of(&bob.upload(kept, "2").await.ok());
    bob.post(&format!("/versions/{k2}/pin"), json!({"label": "release"}))
        .await
        .ok();
    bob.post(&format!("/versions/{k2}/unpin"), json!({}))
        .await
        .ok();
    bob.upload(kept, "3").await.ok();
    app.run_janitor().await;
    // The 15 changes above and the delete; 5 of the trash; 7 of pins and retention.
    let expected = 16 + 5 + 7;

    let seen = receiver
        .wait_for(Duration::from_secs(20), "every event", |d| {
            accepted(d).len() >= expected
        })
        .await;
    assert!(seen.iter().all(|d| d.verified), "every signature verifies");
    let got = accepted(&seen);
    assert_eq!(got.len(), expected, "each event once: {got:#?}");
    let types: HashSet<&str> = got.values().map(|b| b["type"].as_str().unwrap()).collect();
    let all: HashSet<&str> = storage_domain::model::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    assert_eq!(types, all, "every type");
    // Each event is an audited change, under the audit event's id, in the documented shape.
    for (id, t) in &trail {
        let body = &got[id];
        assert_eq!(body["type"], t.as_str(), "{body}");
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["path"], path.as_str());
        assert_eq!(body["bucket"], "projects");
        for key in ["time", "actor", "file_id", "version", "request_id", "data"] {
            assert!(body.get(key).is_some(), "{key} in {body}");
        }
    }
    let forced = got.values().find(|b| b["type"] == "lock.forced").unwrap();
    assert_eq!(
        (
            &forced["actor"],
            &forced["data"]["holder"],
            &forced["data"]["detail"]
        ),
        (&json!("alice"), &json!("bob"), &json!("bob is away"))
    );
    let completed = got
        .values()
        .find(|b| b["type"] == "upload.completed")
        .unwrap();
    assert_eq!(
        (&completed["version"], &completed["data"]["size"]),
        (&json!(3), &json!(5))
    );
    // The trash's and retention's events, with their data, in each file's order.
    let of = |p: &str| -> Vec<&Value> {
        seen.iter()
            .filter(|d| d.accepted && d.body["path"] == p)
            .map(|d| &d.body)
            .collect()
    };
    let trash_events = of(&trashed);
    let types: Vec<&str> = trash_events
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "file.created",
            "file.trashed",
            "file.restored",
            "file.trashed",
            "file.purged"
        ]
    );
    let data: Vec<&Value> = trash_events.iter().map(|b| &b["data"]).collect();
    assert_eq!(
        (&data[1]["trash_id"], &data[1]["versions"], &data[1]["size"]),
        (&first, &json!(1), &json!(1))
    );
    assert_eq!(
        (
            &data[2]["trash_id"],
            &data[2]["on_conflict"],
            &data[2]["path"]
        ),
        (&first, &json!("fail"), &json!(trashed))
    );
    assert_eq!(
        (&data[4]["trash_id"], &data[4]["versions"]),
        (&second, &json!(1))
    );
    let kept_events = of(kept);
    let typed = |t: &str| -> Vec<&Value> {
        kept_events
            .iter()
            .filter(|b| b["type"] == t)
            .map(|b| &b["data"])
            .collect()
    };
    assert_eq!(
        typed("version.pinned")
            .iter()
            .map(|d| (&d["version_id"], &d["label"]))
            .collect::<Vec<_>>(),
        [(&json!(k2), &json!("release"))]
    );
    assert_eq!(typed("version.unpinned")[0]["label"], Value::Null);
    let pruned: Vec<(u64, &Value, &Value)> = kept_events
        .iter()
        .filter(|b| b["type"] == "version.pruned")
        .map(|b| {
            (
                b["version"].as_u64().unwrap(),
                &b["data"]["rule"]["keep_last"],
                &b["actor"],
            )
        })
        .collect();
    assert_eq!(
        pruned,
        [
            (1, &json!(1), &json!("janitor")),
            (2, &json!(1), &json!("janitor"))
        ]
    );
    // A file's events arrive in its chain's order.
    let order: Vec<u64> = seen
        .iter()
        .filter(|d| d.accepted)
        .map(|d| d.body["version"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(order.first(), Some(&1), "{order:?}");
}

#[tokio::test]
async fn a_receiver_down_is_retried_then_delivered() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    receiver.set_mode(ReceiverMode::Fail(503));
    let tmp = tempfile::tempdir().unwrap();
    let app = App::start_with(subscribed(&[(&receiver, &secret)], tmp.path())).await;
    let alice = app.user("alice");
    alice.upload("/users/alice/down.txt", "x").await.ok();
    alice.lock("/users/alice/down.txt").await.ok();
    let failed = receiver
        .wait_for(Duration::from_secs(10), "two failed attempts", |d| {
            d.iter().filter(|d| !d.accepted).count() >= 2
        })
        .await;
    let first = failed[0].id.clone();
    assert!(
        failed.iter().all(|d| d.id == first),
        "the file's first event, again and again (the next waits behind it)"
    );
    receiver.set_mode(ReceiverMode::Accept);
    let seen = receiver
        .wait_for(Duration::from_secs(10), "both events once back", |d| {
            accepted(d).len() >= 2
        })
        .await;
    let ok: Vec<&str> = seen
        .iter()
        .filter(|d| d.accepted)
        .map(|d| d.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(ok, ["file.created", "lock.acquired"], "in order");
    assert_eq!(
        seen.iter().find(|d| d.accepted).unwrap().id,
        first,
        "the same webhook-id"
    );
}

/// Per-sink delivery state: with one of two receivers down, the healthy one takes each event
/// once (a retry goes to the sinks that did not acknowledge it only), and the other gets them
/// all, in order, once it is back.
#[tokio::test]
async fn a_retry_goes_only_to_the_receiver_that_failed() {
    let (s1, s2) = (new_secret(), new_secret());
    let (up, down) = (
        WebhookReceiver::start(&s1).await,
        WebhookReceiver::start(&s2).await,
    );
    down.set_mode(ReceiverMode::Fail(503));
    let tmp = tempfile::tempdir().unwrap();
    let app = App::start_with(subscribed(&[(&up, &s1), (&down, &s2)], tmp.path())).await;
    let alice = app.user("alice");
    let path = "/users/alice/half-down.txt";
    alice.upload(path, "x").await.ok();
    for _ in 0..2 {
        alice.lock(path).await.ok();
        alice.unlock(path).await.ok();
    }
    down.wait_for(Duration::from_secs(10), "three failed attempts", |d| {
        d.iter().filter(|d| !d.accepted).count() >= 3
    })
    .await;
    down.set_mode(ReceiverMode::Accept);
    let got = down
        .wait_for(Duration::from_secs(15), "all five once back", |d| {
            accepted(d).len() >= 5
        })
        .await;
    let order: Vec<String> = got
        .iter()
        .filter(|d| d.accepted)
        .map(|d| d.body["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        [
            "file.created",
            "lock.acquired",
            "lock.released",
            "lock.acquired",
            "lock.released"
        ],
        "in order"
    );
    let healthy = up
        .wait_for(Duration::from_secs(10), "all five", |d| {
            accepted(d).len() >= 5
        })
        .await;
    // A moment for any stray retry to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let healthy = up.deliveries().len().max(healthy.len());
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for d in up.deliveries() {
        *per_id.entry(d.id.clone()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 5);
    assert!(
        per_id.values().all(|n| *n == 1),
        "the healthy receiver got each event exactly once: {per_id:?} ({healthy} deliveries)"
    );
    assert_eq!(
        accepted(&got).keys().collect::<HashSet<_>>(),
        per_id.keys().collect()
    );
}

/// `EVENTS_ENABLED=false`: the changes are audited and chained as before (`/audit` shows each
/// with its type and hash), but nothing is published: a subscribed receiver gets nothing.
#[tokio::test]
async fn events_off_publish_nothing_and_audit_as_before() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    let tmp = tempfile::tempdir().unwrap();
    let options = subscribed(&[(&receiver, &secret)], tmp.path()).var("EVENTS_ENABLED", "false");
    let app = App::start_with(options).await;
    let alice = app.user("alice");
    let path = "/users/alice/quiet.txt";
    alice.upload(path, "x").await.ok();
    alice.lock(path).await.ok();
    alice.unlock(path).await.ok();
    let body = alice.audit(path).await.ok();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 3, "{body}");
    for e in events {
        assert!(e["event_type"].is_string(), "{e}");
        // Chained as with events on: `<key id>:<hex HMAC-SHA256>`.
        let hex = e["hash"].as_str().and_then(|h| h.split_once(':'));
        assert_eq!(hex.map(|(_, hex)| hex.len()), Some(64), "{e}");
    }
    // Several polls of a dispatcher (EVENTS_POLL_MS=50), were there one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.deliveries().len(), 0, "nothing published");
    // Nor queued: a dispatcher on the same database finds nothing to claim.
    let dispatcher = dispatcher_of(&app, &tmp.path().join("webhooks.json")).await;
    assert_eq!(
        dispatcher.run_once().await.unwrap().claimed,
        0,
        "nothing queued"
    );
}

/// A busy file's backlog is delivered at the rate its receiver answers, not one event per poll:
/// 200 events of one file (100 lock+unlock) reach the receiver in order within seconds, with
/// the default poll of 500 ms (claiming one event per file per pass, it took 100 s).
#[tokio::test]
async fn a_busy_file_is_delivered_in_runs() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    let tmp = tempfile::tempdir().unwrap();
    let options = subscribed(&[(&receiver, &secret)], tmp.path()).var("EVENTS_POLL_MS", 500);
    let app = App::start_with(options).await;
    let alice = app.user("alice");
    let path = "/users/alice/busy.txt";
    alice.upload(path, "x").await.ok();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        alice.lock(path).await.ok();
        alice.unlock(path).await.ok();
    }
    let made = started.elapsed();
    let at_made = accepted(&receiver.deliveries()).len();
    let seen = receiver
        .wait_for(Duration::from_secs(30), "201 events", |d| {
            accepted(d).len() >= 201
        })
        .await;
    let took = started.elapsed();
    let rate = 201.0 / took.as_secs_f64();
    let backlog = 201 - at_made;
    let drain = (took - made).as_secs_f64();
    eprintln!(
        "busy file: 201 events made in {made:?} ({at_made} delivered meanwhile), all delivered \
         after {took:?} ({rate:.0} events/s overall; the last {backlog} in {drain:.3} s)"
    );
    let types: Vec<&str> = seen
        .iter()
        .filter(|d| d.accepted)
        .map(|d| d.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(types[0], "file.created");
    for (i, t) in types[1..].iter().enumerate() {
        let expected = if i % 2 == 0 {
            "lock.acquired"
        } else {
            "lock.released"
        };
        assert_eq!(*t, expected, "event {i} out of order");
    }
    assert!(
        took < Duration::from_secs(20),
        "201 events of one file took {took:?} to deliver"
    );
}

/// A measurement, not a check (`cargo nextest run -p storage-server --test e2e
/// measure_busy_file_drain --run-ignored only --success-output immediate`): the rate at which a
/// dispatcher drains a backlog of 401 events of one file to a webhook receiver (in this
/// process, debug build). The app's own dispatcher stays idle (a poll of ten minutes: its first
/// pass ran before any event).
#[tokio::test]
#[ignore = "a measurement"]
async fn measure_busy_file_drain() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    let tmp = tempfile::tempdir().unwrap();
    let options = subscribed(&[(&receiver, &secret)], tmp.path()).var("EVENTS_POLL_MS", 600_000);
    let app = App::start_with(options).await;
    let alice = app.user("alice");
    let path = "/users/alice/backlog.txt";
    alice.upload(path, "x").await.ok();
    for _ in 0..200 {
        alice.lock(path).await.ok();
        alice.unlock(path).await.ok();
    }
    assert_eq!(
        receiver.deliveries().len(),
        0,
        "the app's dispatcher stayed idle"
    );
    let dispatcher = dispatcher_of(&app, &tmp.path().join("webhooks.json")).await;
    let started = std::time::Instant::now();
    let mut passes = 0;
    loop {
        let report = dispatcher.run_once().await.unwrap();
        if report.claimed == 0 {
            break;
        }
        passes += 1;
    }
    let took = started.elapsed();
    let got = accepted(&receiver.deliveries()).len();
    eprintln!(
        "drain: {got} events of one file in {took:?}, {passes} passes (EVENTS_BATCH {}), \
         {:.0} events/s",
        dispatcher.settings().batch,
        got as f64 / took.as_secs_f64()
    );
    assert_eq!(got, 401);
}

/// `storage-server` run with the app's configuration and `extra`.
fn server_command(app: &App, extra: &[(&str, String)], args: &[&str]) -> Command {
    let mut env = app_vars(app);
    for (k, v) in extra {
        env.insert((*k).to_owned(), v.clone());
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storage-server"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env)
        .current_dir(std::env::temp_dir());
    cmd
}

// Several threads: the receiver serves while this test waits on the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_mid_delivery_is_followed_by_the_same_webhook_id() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    receiver.set_mode(ReceiverMode::Hang);
    let tmp = tempfile::tempdir().unwrap();
    // The app's own dispatcher (no sink) ran its first pass at start and then waits an hour:
    // the binary below is the one that delivers, and is killed.
    let app = App::start_with(Options::default().var("EVENTS_POLL_MS", 3_600_000)).await;
    app.user("alice")
        .upload("/users/alice/killed.txt", "x")
        .await
        .ok();
    let file = tmp.path().join("webhooks.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!([{"url": receiver.url(), "secret": secret}])).unwrap(),
    )
    .unwrap();
    let hooks = [
        ("WEBHOOKS_FILE", file.display().to_string()),
        ("EVENTS_TIMEOUT_SECONDS", "5".to_owned()),
        ("EVENTS_LEASE_SECONDS", "8".to_owned()),
        ("EVENTS_POLL_MS", "50".to_owned()),
    ];
    let mut child = server_command(&app, &hooks, &["events"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held = receiver
        .wait_for(Duration::from_secs(20), "the held delivery", |d| {
            !d.is_empty()
        })
        .await;
    let claimed_by = std::time::Instant::now() + Duration::from_secs(8);
    child.kill().unwrap();
    child.wait().unwrap();
    receiver.set_mode(ReceiverMode::Accept);
    // Claimed for 8 s by the killed dispatcher: the next one takes it once the lease lapsed.
    let out = server_command(&app, &hooks, &["events", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        accepted(&receiver.deliveries()).is_empty(),
        "not before the lease lapsed"
    );
    tokio::time::sleep_until((claimed_by + Duration::from_millis(500)).into()).await;
    let out = server_command(&app, &hooks, &["events", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = receiver.deliveries();
    let ok: Vec<&str> = seen
        .iter()
        .filter(|d| d.accepted)
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(
        ok,
        [held[0].id.as_str()],
        "redelivered with the same webhook-id: {seen:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn two_instances_deliver_each_event_to_each_sink() {
    let (s1, s2) = (new_secret(), new_secret());
    let (r1, r2) = (
        WebhookReceiver::start(&s1).await,
        WebhookReceiver::start(&s2).await,
    );
    let tmp = tempfile::tempdir().unwrap();
    let options = subscribed(&[(&r1, &s1), (&r2, &s2)], tmp.path());
    let app = App::start_with(options.clone()).await;
    // A second instance on the same database, dispatching too.
    let mut map = vars_of(&app, &tmp.path().join("webhooks.json"));
    map.insert("EVENTS_POLL_MS".into(), "50".into());
    let config = Config::from_vars(&Vars::from_map(map)).unwrap();
    let second = storage_server::app::Application::build(config, std::future::pending())
        .await
        .unwrap();
    let second = tokio::spawn(second.run_until_stopped());
    let alice = app.user("alice");
    for i in 0..10 {
        let path = format!("/users/alice/two/{i}.txt");
        alice.upload(&path, "x").await.ok();
        alice.lock(&path).await.ok();
    }
    for r in [&r1, &r2] {
        let seen = r
            .wait_for(Duration::from_secs(20), "twenty events", |d| {
                accepted(d).len() >= 20
            })
            .await;
        assert!(seen.iter().all(|d| d.verified));
        assert_eq!(accepted(&seen).len(), 20);
    }
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_listed_and_retried() {
    let secret = new_secret();
    let receiver = WebhookReceiver::start(&secret).await;
    receiver.set_mode(ReceiverMode::Fail(500));
    let tmp = tempfile::tempdir().unwrap();
    let app = App::start_with(
        subscribed(&[(&receiver, &secret)], tmp.path()).var("EVENTS_MAX_ATTEMPTS", 2),
    )
    .await;
    app.user("alice")
        .upload("/users/alice/dead.txt", "x")
        .await
        .ok();
    let id = audited(&app, "/users/alice/dead.txt")
        .await
        .into_keys()
        .next()
        .unwrap();
    crate::support::eventually("the event is dead", || async {
        crate::support::count(&app, "SELECT 1 FROM event_outbox WHERE delivery = 'dead'").await == 1
    })
    .await;
    assert_eq!(receiver.deliveries().len(), 2, "two attempts");
    let list = server_command(&app, &[], &["events", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success()
            && text.contains(&id)
            && text.contains("attempts=2")
            && text.contains("500"),
        "{text}"
    );
    receiver.set_mode(ReceiverMode::Accept);
    let retry = server_command(&app, &[], &["events", "retry", &id])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&retry.stdout).contains("1 dead letters queued again"),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let seen = receiver
        .wait_for(Duration::from_secs(10), "the retried event", |d| {
            !accepted(d).is_empty()
        })
        .await;
    assert_eq!(accepted(&seen).into_keys().collect::<Vec<_>>(), [id]);
    let list = server_command(&app, &[], &["events", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("0 dead letters"));
}

#[tokio::test]
async fn events_reach_nats_jetstream_with_their_ids() {
    let Some(nats) = storage_test_support::nats::nats_server() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no NATS server: install the Debian package nats-server, or run one with JetStream on 127.0.0.1:4222"
        );
        eprintln!("SKIPPED: no nats-server binary and nothing on 127.0.0.1:4222 (CI is not set)");
        return;
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (prefix, stream) = (format!("e2e{tag}"), format!("E2E_{tag}"));
    let app = App::start_with(
        Options::default()
            .var("NATS_URL", &nats.url)
            .var("NATS_SUBJECT_PREFIX", &prefix)
            .var("NATS_STREAM", &stream)
            .var("EVENTS_POLL_MS", 50),
    )
    .await;
    let alice = app.user("alice");
    alice.upload("/users/alice/nats.txt", "x").await.ok();
    alice.lock("/users/alice/nats.txt").await.ok();
    let trail = audited(&app, "/users/alice/nats.txt").await;

    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.unwrap());
    let mut got = Vec::new();
    for _ in 0..200 {
        if let Ok(mut s) = js.get_stream(&stream).await
            && s.info().await.unwrap().state.messages >= 2
        {
            for seq in 1..=2 {
                got.push(s.get_raw_message(seq).await.unwrap());
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 2, "two events in the stream");
    for (m, want_type) in got.iter().zip(["file.created", "lock.acquired"]) {
        assert_eq!(m.subject.as_str(), format!("{prefix}.users.{want_type}"));
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap()
            .as_str()
            .to_owned();
        assert_eq!(trail[&id], want_type, "Nats-Msg-Id is the audit event's id");
        let body: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            (&body["id"], &body["type"]),
            (&json!(id), &json!(want_type))
        );
    }
    js.delete_stream(&stream).await.unwrap();
}
