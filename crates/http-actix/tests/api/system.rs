//! `/health`, `/version`, `/config`, `/openapi.json`, `/docs`, and the checked-in document.

use actix_web::test;
use storage_http_actix::{ComponentHealth, HealthReport};

use crate::support::*;

#[actix_web::test]
async fn health_is_200_when_everything_answers() {
    let app = Setup::new().app().await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "database": "ok", "object_store": "ok"})
    );
}

#[actix_web::test]
async fn health_is_503_naming_the_failing_component() {
    let mut setup = Setup::new();
    setup.health = HealthReport {
        database: ComponentHealth::Ok,
        object_store: ComponentHealth::Unavailable {
            cause: "connect to secret-host:3900 refused".into(),
        },
    };
    let app = setup.app().await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
    let body = error_body(res, 503, "minio_unreachable").await;
    assert_eq!(body["database"], "ok");
    assert_eq!(body["object_store"], "unavailable");
    assert!(!body.to_string().contains("secret"));

    let mut setup = Setup::new();
    setup.health = HealthReport {
        database: ComponentHealth::Unavailable { cause: "x".into() },
        object_store: ComponentHealth::Unavailable { cause: "y".into() },
    };
    let app = setup.app().await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
    let body = error_body(res, 503, "database_unavailable").await;
    assert_eq!(body["database"], "unavailable");
    assert_eq!(body["object_store"], "unavailable");
}

#[actix_web::test]
async fn version_and_config_need_no_token() {
    let mut setup = Setup::new();
    setup.settings.max_upload_bytes = 12_345;
    let app = setup.app().await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/version").to_request()).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["service"], "storage-service");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["api_version"], "1");

    let res = test::call_service(&app, test::TestRequest::get().uri("/config").to_request()).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(
        body["buckets"],
        serde_json::json!(["users", "companies", "projects"])
    );
    assert_eq!(body["max_upload_bytes"], 12_345);
    assert_eq!(body["presign_ttl_seconds"], 900);
    assert_eq!(body["lock_ttl_seconds"], 86_400);
    assert_eq!(body["api_version"], "1");
}

#[actix_web::test]
async fn the_document_and_the_docs_page_are_served() {
    let app = Setup::new().app().await;
    let res = test::call_service(
        &app,
        test::TestRequest::get().uri("/openapi.json").to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let doc = json_of(res).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (route, method) in [
        ("/health", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
        ("/version", "get"),
        ("/config", "get"),
        ("/list", "get"),
        ("/metadata", "get"),
        ("/metadata", "patch"),
        ("/upload/presign", "post"),
        ("/upload/complete", "post"),
        ("/upload/proxy", "post"),
        ("/download/presign", "post"),
        ("/download/proxy", "get"),
        ("/copy", "post"),
        ("/lock", "post"),
        ("/unlock", "post"),
        ("/locks", "get"),
        ("/versions", "get"),
        ("/versions/commit", "post"),
        ("/versions/{version_id}/approve", "post"),
        ("/versions/{version_id}/reject", "post"),
        ("/versions/{version_id}/submit", "post"),
        ("/archive", "post"),
        ("/unarchive", "post"),
        ("/delete", "delete"),
        ("/audit", "get"),
    ] {
        assert!(
            paths.get(route).and_then(|p| p.get(method)).is_some(),
            "{method} {route} is not documented"
        );
    }
    for schema in ["FileDto", "VersionDto", "ErrorBody", "LockDto"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema}"
        );
    }

    let res = test::call_service(&app, test::TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(res.status(), 200);
    let html = test::read_body(res).await;
    assert!(String::from_utf8_lossy(&html).contains("api-reference"));
}

/// The console: the same page for every view (deep links), its assets, each under the strict
/// policy; an unknown asset and another method answer in the contract's shape.
#[actix_web::test]
async fn the_console_is_served_under_a_strict_policy() {
    let app = Setup::new().app().await;
    for (uri, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/", "text/html; charset=utf-8"),
        (
            "/console/browse/projects/5678/docs%20and%20notes/",
            "text/html; charset=utf-8",
        ),
        ("/console/assets/app.js", "text/javascript; charset=utf-8"),
        ("/console/assets/console.css", "text/css; charset=utf-8"),
    ] {
        let res = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), 200, "{uri}");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{uri}");
        let policy = header("content-security-policy");
        assert!(
            policy.contains("default-src 'none'")
                && policy.contains("script-src 'self';")
                && !policy.contains("unsafe"),
            "{uri}: {policy}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{uri}");
    }
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/console/assets/missing.js")
            .to_request(),
    )
    .await;
    error_body(res, 404, "invalid_request").await;
    let res =
        test::call_service(&app, test::TestRequest::post().uri("/console").to_request()).await;
    error_body(res, 405, "invalid_request").await;
}
