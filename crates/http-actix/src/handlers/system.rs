//! `GET /health`, `/health/live`, `/health/ready`, `/metrics`, `/version`, `/config` and
//! `/openapi.json`: no token needed.

use actix_web::{HttpRequest, HttpResponse};
use storage_domain::StorageError;

use super::{State, ok};
use crate::{
    dto::{
        Bucket, ConfigResponse, DRAINING, ErrorBody, HealthResponse, OK, ProbeResponse,
        VersionResponse,
    },
    error::{ApiError, tagged},
    health::{ComponentHealth, HealthReport},
    request_id::RequestId,
    telemetry::METRICS_CONTENT_TYPE,
};

/// The state of the database and the object store.
///
/// A failing dependency answers 503 with the error body of its code (`database_unavailable`
/// first, else `minio_unreachable`) and the two fields `database` and `object_store`.
#[utoipa::path(
    get, path = "/health", operation_id = "get_health", tag = "system", security(()),
    responses(
        (status = 200, description = "Every dependency answers", body = HealthResponse),
        (status = 503, description = "A dependency is down: the error body, plus `database` and `object_store`", body = ErrorBody),
    )
)]
pub(crate) async fn health(req: HttpRequest, state: State) -> HttpResponse {
    let report = state.health().check().await;
    health_answer(&report, RequestId::of(&req))
}

/// `/health`'s answer to `report`.
fn health_answer(report: &HealthReport, request_id: String) -> HttpResponse {
    let fault = match (&report.database, &report.object_store) {
        (ComponentHealth::Unavailable { cause }, _) => Some(StorageError::DatabaseUnavailable {
            cause: cause.clone(),
        }),
        (_, ComponentHealth::Unavailable { cause }) => Some(StorageError::ObjectStoreUnavailable {
            cause: cause.clone(),
        }),
        _ => None,
    };
    let database = report.database.as_str();
    let object_store = report.object_store.as_str();
    match fault {
        None => ok(HealthResponse {
            status: OK.to_owned(),
            database: database.to_owned(),
            object_store: object_store.to_owned(),
        }),
        Some(fault) => {
            let error = ApiError::new(fault, request_id);
            error.log();
            let mut body = serde_json::to_value(error.body()).unwrap_or_default();
            if let Some(map) = body.as_object_mut() {
                map.insert("database".into(), database.into());
                map.insert("object_store".into(), object_store.into());
            }
            tagged(HttpResponse::build(error.status()).json(body), error.code())
        }
    }
}

/// Liveness: the process serves requests. Asks no dependency (an outage of PostgreSQL or the
/// object store must not get instances restarted), and stays 200 while draining.
#[utoipa::path(
    get, path = "/health/live", operation_id = "get_health_live", tag = "system", security(()),
    responses((status = 200, description = "The process serves", body = ProbeResponse))
)]
pub(crate) async fn live() -> HttpResponse {
    ok(ProbeResponse {
        status: OK.to_owned(),
    })
}

/// Readiness: the database and the object store answer and the instance is not shutting down.
///
/// While draining (after SIGTERM) it answers 503 `{"status":"draining"}` without asking the
/// dependencies; otherwise it answers as `GET /health`.
#[utoipa::path(
    get, path = "/health/ready", operation_id = "get_health_ready", tag = "system", security(()),
    responses(
        (status = 200, description = "Ready: every dependency answers", body = HealthResponse),
        (status = 503, description = "Draining (`{\"status\":\"draining\"}`), or a dependency is down (the error body of `/health`)", body = ErrorBody),
    )
)]
pub(crate) async fn ready(req: HttpRequest, state: State) -> HttpResponse {
    if state.readiness().is_draining() {
        return HttpResponse::ServiceUnavailable().json(ProbeResponse {
            status: DRAINING.to_owned(),
        });
    }
    let report = state.health().check().await;
    health_answer(&report, RequestId::of(&req))
}

/// The metrics in the Prometheus text format, when they are served on this listener (without
/// `METRICS_BIND_ADDR`; with it, on that listener only). No token: keep the port private.
#[utoipa::path(
    get, path = "/metrics", operation_id = "get_metrics", tag = "system", security(()),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
pub(crate) async fn metrics(state: State) -> HttpResponse {
    let text = state.telemetry().map(|t| t.render()).unwrap_or_default();
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(text)
}

/// The service's name and version.
#[utoipa::path(
    get, path = "/version", operation_id = "get_version", tag = "system", security(()),
    responses((status = 200, description = "Name and versions", body = VersionResponse))
)]
pub(crate) async fn version(state: State) -> HttpResponse {
    let config = state.config();
    ok(VersionResponse {
        status: OK.to_owned(),
        service: config.service_name.clone(),
        version: config.version.clone(),
        api_version: config.api_version.clone(),
    })
}

/// The public settings.
#[utoipa::path(
    get, path = "/config", operation_id = "get_config", tag = "system", security(()),
    responses((status = 200, description = "Public settings", body = ConfigResponse))
)]
pub(crate) async fn config(state: State) -> HttpResponse {
    let settings = state.service().settings();
    let config = state.config();
    ok(ConfigResponse {
        status: OK.to_owned(),
        buckets: vec![Bucket::Users, Bucket::Companies, Bucket::Projects],
        max_upload_bytes: settings.max_upload_bytes,
        presign_ttl_seconds: settings.presign_ttl.as_secs(),
        lock_ttl_seconds: settings.lock_ttl.default.as_secs(),
        max_lock_ttl_seconds: settings.lock_ttl.max.as_secs(),
        max_open_uploads_per_user: settings.max_open_uploads_per_user,
        trash_retention_days: settings.trash_retention.as_secs() / 86_400,
        retention: (&settings.retention).into(),
        api_version: config.api_version.clone(),
        version: config.version.clone(),
    })
}

/// This document (OpenAPI 3.1). A browsable page is at `/docs`.
#[utoipa::path(
    get, path = "/openapi.json", operation_id = "get_openapi", tag = "system", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub(crate) async fn openapi_document(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi().to_owned())
}
