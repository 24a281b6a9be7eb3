//! PostgreSQL stopped mid-run: requests answer `database_unavailable` within the outage bound
//! of docs/operations.md (2 s, checked plus `storage_test_support::timing::MARGIN`), with the
//! default settings; once it is back, the service serves again without a restart.

use std::{sync::Arc, time::Duration};

use reqwest::StatusCode;
use serde_json::json;
use storage_test_support::{project_standin::ProjectStandin, services::PgCluster, timing};

use super::{InProcess, eventually, shared_s3_vars};

/// How fast a request is answered while the database is down (docs/operations.md, "Outages").
const OUTAGE_BOUND: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_answers_database_unavailable_quickly_then_recovers() {
    let pg = Arc::new(
        tokio::task::spawn_blocking(PgCluster::start)
            .await
            .expect("start"),
    );
    storage_pg_diesel::run_migrations(pg.url())
        .await
        .expect("migrations");
    let standin = ProjectStandin::start().await;
    let app = InProcess::start(pg.url(), &standin.url(), &shared_s3_vars()).await;
    let api = &app.api;
    let path = "/users/alice/db/report.txt";

    let up = api.upload("alice", "users", path, b"first".to_vec()).await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);
    assert_eq!(
        api.metadata("alice", "users", path).await.status,
        StatusCode::OK
    );

    let stopping = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .expect("stop");

    // Reads, writes, listings and uploads: each 503 database_unavailable, fast.
    for round in 0..2 {
        let answers = [
            ("metadata", api.metadata("alice", "users", path).await),
            (
                "list",
                api.get(
                    "alice",
                    "/list",
                    &[("bucket", "users"), ("path", "/users/alice/db/")],
                )
                .await,
            ),
            (
                "lock",
                api.post("alice", "/lock", &json!({"bucket": "users", "path": path}))
                    .await,
            ),
            (
                "upload",
                api.upload("alice", "users", "/users/alice/db/new.txt", b"x".to_vec())
                    .await,
            ),
        ];
        for (what, answer) in answers {
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{what} (round {round}): {:?}",
                answer.body
            );
            assert_eq!(answer.code(), "database_unavailable", "{what}");
            timing::assert_within(
                &format!("{what} (round {round})"),
                answer.took,
                OUTAGE_BOUND,
            );
        }
    }
    let health = api.health().await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.code(), "database_unavailable", "{:?}", health.body);
    assert_eq!(health.body["database"], "unavailable", "{:?}", health.body);
    assert_eq!(health.body["object_store"], "ok", "{:?}", health.body);
    timing::assert_within("health", health.took, OUTAGE_BOUND);

    let starting = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || starting.restart())
        .await
        .expect("restart");

    // Back without restarting the service: the pool replaces its dead connections.
    eventually(Duration::from_secs(15), "metadata served again", || async {
        api.metadata("alice", "users", path).await.status == StatusCode::OK
    })
    .await;
    let lock = api
        .post("alice", "/lock", &json!({"bucket": "users", "path": path}))
        .await;
    assert_eq!(lock.status, StatusCode::OK, "{:?}", lock.body);
    let up = api
        .upload("alice", "users", "/users/alice/db/new.txt", b"x".to_vec())
        .await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);
    assert_eq!(api.health().await.status, StatusCode::OK);
    drop(app);
}
