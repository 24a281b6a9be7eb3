//! What operators use: `/health/live`, `/health/ready` (draining included), `GET /metrics`
//! when the telemetry is served on this listener, and what the [`Telemetry`] is told: each
//! request by route template (never the raw path) and status with its error code, and the
//! bytes of proxy transfers.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use actix_web::{App, http::header, test};
use futures::StreamExt;
use storage_domain::{ErrorCode, model::BucketKind, ports::ByteStream};
use storage_http_actix::{
    ComponentHealth, HealthReport, Readiness, ServedRequest, Telemetry, TransferDirection,
    configure,
};

use crate::{support::*, transfer};

/// A request as the telemetry saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    route: String,
    status: u16,
    error: Option<ErrorCode>,
}

/// Records what it is told; counts transfer bytes by direction.
#[derive(Default)]
struct Recording {
    requests: Mutex<Vec<Seen>>,
    uploaded: Arc<AtomicU64>,
    downloaded: Arc<AtomicU64>,
    transfers: Mutex<Vec<(TransferDirection, BucketKind)>>,
}

impl Telemetry for Recording {
    fn request_served(&self, r: &ServedRequest<'_>) {
        self.requests.lock().unwrap().push(Seen {
            method: r.method.to_owned(),
            route: r.route.to_owned(),
            status: r.status,
            error: r.error,
        });
    }

    fn transfer(
        &self,
        direction: TransferDirection,
        bucket: BucketKind,
        body: ByteStream,
    ) -> ByteStream {
        self.transfers.lock().unwrap().push((direction, bucket));
        let counter = Arc::clone(match direction {
            TransferDirection::Upload => &self.uploaded,
            TransferDirection::Download => &self.downloaded,
        });
        Box::pin(body.inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                counter.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
        }))
    }

    fn render(&self) -> String {
        "# TYPE test_total counter\ntest_total 1\n".to_owned()
    }
}

fn seen(method: &str, route: &str, status: u16, error: Option<ErrorCode>) -> Seen {
    Seen {
        method: method.to_owned(),
        route: route.to_owned(),
        status,
        error,
    }
}

#[actix_web::test]
async fn liveness_asks_nothing_and_readiness_follows_the_dependencies_and_draining() {
    let mut setup = Setup::new();
    setup.health = HealthReport {
        database: ComponentHealth::Unavailable {
            cause: "secret-host refused".into(),
        },
        object_store: ComponentHealth::Ok,
    };
    let readiness = Readiness::default();
    let state = setup.state().with_readiness(readiness.clone());
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let get = |uri: &'static str| test::TestRequest::get().uri(uri).to_request();

    let res = test::call_service(&app, get("/health/live")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(json_of(res).await, serde_json::json!({"status": "ok"}));
    let res = test::call_service(&app, get("/health/ready")).await;
    let body = error_body(res, 503, "database_unavailable").await;
    assert_eq!(body["database"], "unavailable");
    assert!(!body.to_string().contains("secret"));

    readiness.start_draining();
    let res = test::call_service(&app, get("/health/ready")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(
        json_of(res).await,
        serde_json::json!({"status": "draining"})
    );
    // Liveness stays 200 while draining: the orchestrator must not kill a draining instance.
    let res = test::call_service(&app, get("/health/live")).await;
    assert_eq!(res.status(), 200);

    let state = Setup::new().state();
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let res = test::call_service(&app, get("/health/ready")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        json_of(res).await,
        serde_json::json!({"status": "ok", "database": "ok", "object_store": "ok"})
    );
}

#[actix_web::test]
async fn metrics_are_served_here_only_when_asked() {
    let telemetry = Arc::new(Recording::default());
    let state = Setup::new().state().with_telemetry(telemetry.clone(), true);
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        test::read_body(res).await,
        "# TYPE test_total counter\ntest_total 1\n"
    );

    // On a separate listener (METRICS_BIND_ADDR): the API's /metrics is no route.
    let state = Setup::new()
        .state()
        .with_telemetry(telemetry.clone(), false);
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    error_body(res, 404, "invalid_request").await;
    let last = telemetry.requests.lock().unwrap().last().cloned();
    assert_eq!(
        last,
        Some(seen(
            "GET",
            "unmatched",
            404,
            Some(ErrorCode::InvalidRequest)
        ))
    );
}

#[actix_web::test]
async fn requests_are_reported_by_route_template_status_and_code() {
    let telemetry = Arc::new(Recording::default());
    let mut setup = Setup::new();
    setup.meta.expect_find_version().returning(|_| Ok(None));
    let state = setup.state().with_telemetry(telemetry.clone(), true);
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let version_id = uuid::Uuid::now_v7();
    for req in [
        test::TestRequest::get().uri("/health/live"),
        test::TestRequest::get().uri("/list?bucket=users&path=/users/alice/"),
        test::TestRequest::post()
            .uri(&format!("/versions/{version_id}/approve"))
            .insert_header((header::AUTHORIZATION, ALICE))
            .set_json(serde_json::json!({})),
        test::TestRequest::delete().uri("/list"),
        test::TestRequest::get().uri("/users/alice/secret-plan.txt"),
    ] {
        test::call_service(&app, req.to_request()).await;
    }
    let requests = telemetry.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![
            seen("GET", "/health/live", 200, None),
            seen("GET", "/list", 401, Some(ErrorCode::MissingJwtToken)),
            seen(
                "POST",
                "/versions/{version_id}/approve",
                404,
                Some(ErrorCode::VersionNotFound)
            ),
            seen("DELETE", "/list", 405, Some(ErrorCode::InvalidRequest)),
            seen("GET", "unmatched", 404, Some(ErrorCode::InvalidRequest)),
        ]
    );
}

#[actix_web::test]
async fn proxy_transfers_are_metered_by_bucket_and_direction() {
    let telemetry = Arc::new(Recording::default());
    let mut setup = Setup::new();
    transfer::accept_new_file(&mut setup);
    setup.blobs = Arc::new(RecordingBlobs::default());
    let state = setup.state().with_telemetry(telemetry.clone(), false);
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let content = vec![7u8; 640];
    let body = transfer::multipart(
        &[("bucket", "users"), ("path", "/users/alice/m.bin")],
        Some((&content, "application/octet-stream")),
    );
    let res = test::call_service(&app, transfer::upload_request(body).to_request()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(telemetry.uploaded.load(Ordering::SeqCst), 640);

    let state = transfer::download_setup(1)
        .state()
        .with_telemetry(telemetry.clone(), false);
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let req = test::TestRequest::get()
        .uri(transfer::DOWNLOAD)
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(test::read_body(res).await.len(), 10);
    assert_eq!(telemetry.downloaded.load(Ordering::SeqCst), 10);
    assert_eq!(
        *telemetry.transfers.lock().unwrap(),
        vec![
            (TransferDirection::Upload, BucketKind::Users),
            (TransferDirection::Download, BucketKind::Users),
        ]
    );
}
