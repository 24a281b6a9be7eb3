//! Operations over real HTTP: the Prometheus metrics a workload moves (scraped from `/metrics`
//! and read with a Prometheus text parser), the metrics listener of its own, readiness while
//! PostgreSQL is cut off, and presigned URLs signed for `MINIO_PUBLIC_ENDPOINT`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use storage_domain::ErrorCode;
use storage_test_support::{
    project_standin::Mode,
    prometheus::{self, Exposition},
};

use crate::support::{App, Options, Proxy, garage_addr, put_presigned};

/// The exposition at `url`, parsed strictly; every family is the service's.
async fn scrape(app: &App, url: &str) -> Exposition {
    let res = app.client.get(url).send().await.expect("scrape");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let exposition = prometheus::parse(&res.text().await.expect("exposition"));
    for series in &exposition.series {
        assert!(series.name.starts_with("storage_"), "{}", series.name);
    }
    exposition
}

/// A counter's or gauge's value (summed over the series whose labels include `labels`), or a
/// histogram's count.
fn value(scrape: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape.sum(name, labels)
}

fn request(method: &str, route: &str, status: &str) -> [(&'static str, String); 3] {
    [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_owned()),
    ]
}

fn requests(scrape: &Exposition, method: &str, route: &str, status: &str) -> f64 {
    let labels = request(method, route, status);
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    value(scrape, "storage_http_requests_total", &labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_moves_the_metrics_it_must() {
    let app = App::start_with(Options::default().var("DB_POOL_MAX_SIZE", 7)).await;
    let metrics = format!("{}/metrics", app.base);
    app.allow("alice", "p1", &["read", "write"]);
    let alice = app.user("alice");
    let bob = app.user("bob");
    let users_file = vec![b'u'; 3000];
    let project_file = vec![b'p'; 1234];

    alice
        .upload("/users/alice/m/a.bin", users_file.clone())
        .await
        .ok();
    alice
        .upload("/projects/p1/m/b.bin", project_file.clone())
        .await
        .ok();
    let got = alice.download("/users/alice/m/a.bin", "latest").await;
    assert_eq!(got.bytes, users_file);
    alice
        .metadata("/users/alice/m/none.txt")
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    bob.upload("/projects/p1/m/c.bin", b"no".to_vec())
        .await
        .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    alice
        .approve(&uuid::Uuid::now_v7().to_string(), None)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::VersionNotFound);
    app.standin.set_mode(Mode::Status500);
    alice
        .metadata("/projects/p1/m/b.bin")
        .await
        .err(StatusCode::FORBIDDEN, ErrorCode::ProjectServiceUnavailable);
    app.standin.set_mode(Mode::Normal);
    let res = app
        .client
        .get(format!("{}/users/alice/secret-plans.txt", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .client
        .delete(format!("{}/lock", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    let m = scrape(&app, &metrics).await;
    // Requests per route template and status.
    assert_eq!(requests(&m, "POST", "/upload/proxy", "200"), 2.0);
    assert_eq!(requests(&m, "POST", "/upload/proxy", "403"), 1.0);
    assert_eq!(requests(&m, "GET", "/download/proxy", "200"), 1.0);
    assert_eq!(requests(&m, "GET", "/metadata", "404"), 1.0);
    assert_eq!(requests(&m, "GET", "/metadata", "403"), 1.0);
    assert_eq!(requests(&m, "GET", "unmatched", "404"), 1.0);
    assert_eq!(requests(&m, "DELETE", "/lock", "405"), 1.0);
    assert_eq!(
        requests(&m, "POST", "/versions/{version_id}/approve", "404"),
        1.0
    );
    let upload_ok = request("POST", "/upload/proxy", "200");
    let upload_ok: Vec<(&str, &str)> = upload_ok.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        value(&m, "storage_http_request_duration_seconds", &upload_ok),
        2.0,
        "the duration histogram counts the same requests"
    );
    // Never a raw path, a user or an id in a label.
    for series in &m.series {
        for (name, label) in &series.labels {
            assert!(
                !label.contains("alice") && !label.contains("secret") && !label.contains("p1"),
                "{}{{{name}={label}}}",
                series.name
            );
        }
    }
    // Errors by contract code.
    let errors = |code: &str| value(&m, "storage_http_errors_total", &[("code", code)]);
    assert_eq!(errors("file_not_found"), 1.0);
    assert_eq!(errors("version_not_found"), 1.0);
    assert_eq!(errors("access_denied"), 1.0);
    assert_eq!(errors("project_service_unavailable"), 1.0);
    assert_eq!(errors("invalid_request"), 2.0, "the 404 and the 405");
    assert_eq!(errors("file_locked"), 0.0);
    // Bytes, by bucket and direction.
    let bytes = |name: &str, bucket: &str| value(&m, name, &[("bucket", bucket)]);
    assert_eq!(bytes("storage_uploaded_bytes_total", "users"), 3000.0);
    assert_eq!(bytes("storage_uploaded_bytes_total", "projects"), 1234.0);
    assert_eq!(bytes("storage_downloaded_bytes_total", "users"), 3000.0);
    assert_eq!(bytes("storage_downloaded_bytes_total", "projects"), 0.0);
    assert_eq!(value(&m, "storage_transfers_in_flight", &[]), 0.0);
    // Project-service outcomes.
    let checks = |outcome: &str| value(&m, "storage_project_checks_total", &[("outcome", outcome)]);
    assert!(checks("allowed") >= 1.0, "{}", checks("allowed"));
    assert_eq!(checks("denied"), 1.0);
    assert_eq!(checks("unavailable"), 1.0);
    assert_eq!(
        value(
            &m,
            "storage_project_check_duration_seconds",
            &[("outcome", "unavailable")]
        ),
        1.0
    );
    // Store calls by operation and outcome.
    let metadata = |op: &str, outcome: &str| {
        value(
            &m,
            "storage_metadata_call_duration_seconds",
            &[("operation", op), ("outcome", outcome)],
        )
    };
    assert_eq!(metadata("commit_version", "ok"), 2.0);
    assert!(metadata("find_file", "ok") >= 3.0);
    let objects = |op: &str, outcome: &str| {
        value(
            &m,
            "storage_object_store_call_duration_seconds",
            &[("operation", op), ("outcome", outcome)],
        )
    };
    assert_eq!(objects("put", "ok"), 2.0);
    assert_eq!(objects("get", "ok"), 1.0);
    // The pool, as deadpool reports it.
    let pool = [("pool", "postgres")];
    assert_eq!(value(&m, "storage_db_pool_max_size", &pool), 7.0);
    let (size, idle) = (
        value(&m, "storage_db_pool_size", &pool),
        value(&m, "storage_db_pool_idle", &pool),
    );
    assert!((1.0..=7.0).contains(&size), "{size}");
    assert!(idle <= size, "{idle} > {size}");
    assert_eq!(value(&m, "storage_db_pool_waiting", &pool), 0.0);
    assert_eq!(value(&m, "storage_draining", &[]), 0.0);

    // The scrape itself is counted, at the next scrape.
    let again = scrape(&app, &metrics).await;
    assert_eq!(requests(&again, "GET", "/metrics", "200"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_a_listener_of_their_own_or_off() {
    let app = App::start_with(Options::default().var("METRICS_BIND_ADDR", "127.0.0.1:0")).await;
    let own = app.metrics_base.clone().expect("a metrics listener");
    assert_ne!(own, app.base);
    app.user("alice").list("/users/alice/").await.ok();
    let res = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "not on the API's port");
    let m = scrape(&app, &format!("{own}/metrics")).await;
    assert_eq!(requests(&m, "GET", "/list", "200"), 1.0);
    assert_eq!(
        requests(&m, "GET", "unmatched", "404"),
        1.0,
        "the API's /metrics"
    );
    let res = app.client.get(format!("{own}/list")).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the listener serves metrics only"
    );

    let off = App::start_with(Options::default().var("METRICS_ENABLED", "false")).await;
    assert!(off.metrics_base.is_none());
    let res = off
        .client
        .get(format!("{}/metrics", off.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// Polls `url` until it answers `status` (at most `within`); returns the last body.
async fn until_status(app: &App, url: &str, status: StatusCode, within: Duration) -> Json {
    let deadline = Instant::now() + within;
    loop {
        let res = app.client.get(url).send().await.expect("probe");
        let got = res.status();
        let body: Json = res.json().await.unwrap_or(Json::Null);
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {got} after {within:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_database_is_cut_off_and_recovers() {
    let app = App::start().await;
    let ready = format!("{}/health/ready", app.base);
    let live = format!("{}/health/live", app.base);
    let body = until_status(&app, &ready, StatusCode::OK, Duration::from_secs(5)).await;
    assert_eq!(
        body,
        json!({"status": "ok", "database": "ok", "object_store": "ok"})
    );

    app.db.cut_off().await;
    let body = until_status(
        &app,
        &ready,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(body["message"], "database_unavailable", "{body}");
    assert_eq!(body["database"], "unavailable");
    assert_eq!(body["object_store"], "ok");
    // Liveness asks nothing: the process still serves.
    let res = app.client.get(&live).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    app.db.restore().await;
    let body = until_status(&app, &ready, StatusCode::OK, Duration::from_secs(15)).await;
    assert_eq!(body["database"], "ok");
    app.user("alice").list("/users/alice/").await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_are_signed_for_the_public_endpoint() {
    // Clients reach Garage as 127.0.0.2:<port> (a forwarder on another loopback address); the
    // service reaches it at MINIO_ENDPOINT (127.0.0.1:<garage port>).
    let public = Proxy::start_on("127.0.0.2", garage_addr()).await;
    let public_addr = public.addr().to_string();
    let app = App::start_with(Options::default().var("MINIO_PUBLIC_ENDPOINT", &public_addr)).await;
    let alice = app.user("alice");
    let path = "/users/alice/public/report.txt";
    let content = b"signed for the name clients use".to_vec();

    let presigned = alice
        .presign_upload(
            path,
            json!({"content_type": "text/plain", "size": content.len()}),
        )
        .await
        .ok();
    let url = presigned["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("http://{public_addr}/")),
        "signed for the public endpoint: {url}"
    );
    // SigV4 signs the Host header: the same URL under the service's own name is refused.
    let private = format!("http://{}", garage_addr());
    let elsewhere = url.replacen(&format!("http://{public_addr}"), &private, 1);
    let res = app
        .client
        .put(&elsewhere)
        .header("Content-Type", "text/plain")
        .body(content.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{elsewhere}");
    assert_eq!(
        put_presigned(&app, &presigned, content.clone()).await,
        StatusCode::OK
    );
    let upload_id = presigned["upload_id"].as_str().expect("upload id");
    // Completing reads the object through MINIO_ENDPOINT.
    let done = alice.complete(upload_id).await.ok();
    assert_eq!(done["file"]["size"], content.len());

    let download = alice.presign_download(path, json!("latest")).await.ok();
    let url = download["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("http://{public_addr}/")), "{url}");
    let res = app.client.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().to_vec(), content);

    // The service never uses the public address: with it gone, the service still works.
    public.cut().await;
    let res = app
        .client
        .get(format!("{}/health/ready", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got = alice.download(path, "latest").await;
    assert_eq!(got.bytes, content);
}
