//! The routes of the contract (spec §5), registered in one scope at the root.

mod blob;
mod collab;
mod files;
mod pins;
mod system;
mod transfer;
mod trash;

pub(crate) use collab::*;
pub(crate) use files::*;
pub(crate) use pins::*;
pub(crate) use system::*;
pub(crate) use transfer::*;
pub(crate) use trash::*;

use actix_web::{
    HttpRequest, HttpResponse, Resource,
    middleware::{Condition, from_fn},
    web::{self, PathConfig, QueryConfig},
};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_scalar::{Scalar, Servable};

use crate::{
    AppState, browser,
    error::{self, ApiError, Failure},
    openapi::ApiDoc,
    request_id::{self, RequestId},
    signed::SignedBlobs,
    telemetry::Observe,
};

pub(crate) type State = web::Data<AppState>;

/// `200` with a JSON body.
pub(crate) fn ok<T: Serialize>(body: T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// A resource whose other methods answer 405 in the contract's shape.
pub(crate) fn resource(path: &str, allow: &'static str) -> Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::from_failure(
            Failure::MethodNotAllowed { allow },
            RequestId::of(&req),
        ))
    }))
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(error::no_route(req).await)
}

/// The signed blob routes (any method: the endpoint refuses what it did not sign).
fn signed_blob_resource() -> Resource {
    web::resource(format!(
        "{}/{{bucket}}/{{key:.+}}",
        crate::signed::SIGNED_BLOB_PREFIX
    ))
    .default_service(web::to(blob::signed_blob))
}

/// Only the signed blob routes, with the request-id middleware (see `configure_signed_blobs`).
pub(crate) fn register_signed_blobs(cfg: &mut web::ServiceConfig, blobs: SignedBlobs) {
    let scope = web::scope("")
        .wrap(from_fn(request_id::middleware))
        .app_data(web::Data::new(blobs))
        .service(signed_blob_resource())
        .default_service(web::to(no_route));
    cfg.service(scope);
}

pub(crate) fn register(cfg: &mut web::ServiceConfig, state: AppState) {
    let telemetry = state.telemetry().cloned();
    let signed_blobs = state.signed_blobs().cloned().map(|mut blobs| {
        blobs.telemetry = telemetry.clone();
        blobs
    });
    let serves_metrics = state.serves_metrics();
    let cors = state.config().browser.cors();
    let console = crate::console::resources(&state.config().console);
    let mut scope = web::scope("")
        // CORS answers preflights (every route, `/blob` included) before routing; the request
        // id wraps it, so its answers carry an id too.
        .wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()))
        .wrap(from_fn(browser::preflight_errors))
        .wrap(from_fn(request_id::middleware))
        // Outermost: sees every answer of the scope, 404 and 405 included.
        .wrap(Observe(telemetry))
        .app_data(web::Data::new(state))
        .app_data(QueryConfig::default().error_handler(error::query_error))
        .app_data(PathConfig::default().error_handler(error::path_error))
        .service(resource("/health", "GET").route(web::get().to(health)))
        .service(resource("/health/live", "GET").route(web::get().to(live)))
        .service(resource("/health/ready", "GET").route(web::get().to(ready)))
        .service(resource("/version", "GET").route(web::get().to(version)))
        .service(resource("/config", "GET").route(web::get().to(config)))
        .service(resource("/openapi.json", "GET").route(web::get().to(openapi_document)))
        .service(Scalar::with_url("/docs", ApiDoc::openapi()))
        .service(resource("/list", "GET").route(web::get().to(list)))
        .service(
            resource("/metadata", "GET, PATCH")
                .route(web::get().to(get_metadata))
                .route(web::patch().to(patch_metadata)),
        )
        .service(resource("/upload/presign", "POST").route(web::post().to(presign_upload)))
        .service(resource("/upload/complete", "POST").route(web::post().to(complete_upload)))
        .service(resource("/upload/proxy", "POST").route(web::post().to(upload_proxy)))
        .service(resource("/download/presign", "POST").route(web::post().to(presign_download)))
        .service(resource("/download/proxy", "GET").route(web::get().to(download_proxy)))
        .service(resource("/copy", "POST").route(web::post().to(copy)))
        .service(resource("/lock", "POST").route(web::post().to(lock)))
        .service(resource("/unlock", "POST").route(web::post().to(unlock)))
        .service(resource("/locks", "GET").route(web::get().to(locks)))
        .service(resource("/versions", "GET").route(web::get().to(versions)))
        .service(resource("/reviews", "GET").route(web::get().to(reviews)))
        .service(resource("/versions/commit", "POST").route(web::post().to(commit)))
        .service(resource("/versions/{version_id}/approve", "POST").route(web::post().to(approve)))
        .service(resource("/versions/{version_id}/reject", "POST").route(web::post().to(reject)))
        .service(resource("/versions/{version_id}/submit", "POST").route(web::post().to(submit)))
        .service(resource("/versions/{version_id}/restore", "POST").route(web::post().to(restore)))
        .service(resource("/versions/{version_id}/pin", "POST").route(web::post().to(pin)))
        .service(resource("/versions/{version_id}/unpin", "POST").route(web::post().to(unpin)))
        .service(resource("/archive", "POST").route(web::post().to(archive)))
        .service(resource("/unarchive", "POST").route(web::post().to(unarchive)))
        .service(resource("/delete", "DELETE").route(web::delete().to(delete)))
        .service(resource("/audit", "GET").route(web::get().to(audit)))
        .service(
            resource("/trash", "GET, POST, DELETE")
                .route(web::get().to(list_trash))
                .route(web::post().to(trash))
                .route(web::delete().to(purge_trash)),
        )
        .service(resource("/trash/restore", "POST").route(web::post().to(restore_from_trash)))
        .service(console);
    if serves_metrics {
        scope = scope.service(resource("/metrics", "GET").route(web::get().to(metrics)));
    }
    if let Some(blobs) = signed_blobs {
        scope = scope
            .app_data(web::Data::new(blobs))
            .service(signed_blob_resource());
    }
    cfg.service(scope.default_service(web::to(no_route)));
}
