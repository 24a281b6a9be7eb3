//! `GET /health`, `/version`, `/config` and `/openapi.json`: no token needed.

use actix_web::{HttpRequest, HttpResponse};
use storage_domain::StorageError;

use super::{State, ok};
use crate::{
    dto::{Bucket, ConfigResponse, ErrorBody, HealthResponse, OK, VersionResponse},
    error::ApiError,
    health::ComponentHealth,
    request_id::RequestId,
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
    let request_id = RequestId::of(&req);
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
            HttpResponse::build(error.status()).json(body)
        }
    }
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
