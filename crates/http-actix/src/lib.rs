#![doc = include_str!("../README.md")]

mod auth;
mod body;
mod browser;
mod console;
mod context;
pub mod dto;
pub mod error;
mod handlers;
mod health;
mod idle;
mod openapi;
mod range;
mod request_id;
mod server;
pub mod signed;
mod spool;
mod telemetry;

use std::sync::Arc;

use actix_web::web;
use storage_domain::service::StorageService;

pub use auth::Authenticator;
pub use browser::{BrowserAccess, EXPOSED_HEADERS};
pub use console::{CONSOLE_PATH, ConsoleConfig};
pub use error::{ApiError, status_of};
pub use health::{ComponentHealth, HealthCheck, HealthReport, Readiness};
pub use openapi::{ApiDoc, openapi_json, openapi_yaml};
pub use request_id::{REQUEST_ID_HEADER, RequestId};
pub use server::{
    ServerConfig, build_metrics_server, build_server, build_server_per_worker, serve,
};
pub use signed::{
    SIGNED_BLOB_PREFIX, SignatureRefused, SignedBlobEndpoint, SignedBlobGrant, SignedBlobRequest,
    SignedBlobs,
};
pub use telemetry::{
    METRICS_CONTENT_TYPE, ServedRequest, Telemetry, TransferDirection, UNMATCHED_ROUTE,
};

/// Settings of the HTTP layer itself. What `GET /config` shows about uploads, presigned URLs
/// and locks comes from the [`StorageService`]'s settings, so the two cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Shown by `GET /version`.
    pub service_name: String,
    /// Shown by `GET /version` and `GET /config`.
    pub version: String,
    /// The contract's version, shown by `GET /version` and `GET /config`.
    pub api_version: String,
    /// Largest JSON request body; larger ones answer 413 `payload_too_large`.
    pub json_limit_bytes: usize,
    /// Largest total size of the non-file fields of a multipart upload (`bucket`, `path`,
    /// `tags`, …); the file itself is limited by the service's `max_upload_bytes`.
    pub form_fields_limit_bytes: usize,
    /// Browser front-ends: CORS and the cross-site check.
    pub browser: BrowserAccess,
    /// Where a proxy upload's `file` is spooled when it comes before `bucket` and `path`.
    pub spool_dir: std::path::PathBuf,
    /// `BODY_IDLE_TIMEOUT_SECONDS`: a request body (proxy upload, signed PUT) that sends
    /// nothing for this long is cut off, and nothing of it is kept.
    pub body_idle_timeout: std::time::Duration,
    /// The web console at `/console`.
    pub console: ConsoleConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            service_name: "storage-service".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            api_version: API_VERSION.to_owned(),
            json_limit_bytes: 64 * 1024,
            form_fields_limit_bytes: 64 * 1024,
            browser: BrowserAccess::default(),
            spool_dir: std::env::temp_dir(),
            body_idle_timeout: std::time::Duration::from_secs(30),
            console: ConsoleConfig::default(),
        }
    }
}

/// The version of the contract this adapter implements.
pub const API_VERSION: &str = "1";

/// Everything the handlers need; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Clone)]
struct StateInner {
    service: StorageService,
    auth: Arc<dyn Authenticator>,
    health: Arc<dyn HealthCheck>,
    config: ApiConfig,
    openapi_json: String,
    signed_blobs: Option<SignedBlobs>,
    telemetry: Option<Arc<dyn Telemetry>>,
    /// `GET /metrics` is served by this listener (not a separate one).
    serve_metrics: bool,
    readiness: Readiness,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("service", &self.inner.service)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(
        service: StorageService,
        auth: Arc<dyn Authenticator>,
        health: Arc<dyn HealthCheck>,
        config: ApiConfig,
    ) -> Self {
        Self {
            inner: Arc::new(StateInner {
                service,
                auth,
                health,
                config,
                openapi_json: openapi_json(),
                signed_blobs: None,
                telemetry: None,
                serve_metrics: false,
                readiness: Readiness::default(),
            }),
        }
    }

    /// Serves the service's own signed URLs (the local directory's, or on S3 the upload URLs
    /// of uploads of unannounced size) at `PUT|GET /blob/{bucket}/{key...}`, with the
    /// service's upload limit.
    #[must_use]
    pub fn with_signed_blobs(self, endpoint: Arc<dyn SignedBlobEndpoint>) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.signed_blobs = Some(
            SignedBlobs::new(endpoint, inner.service.settings().max_upload_bytes)
                .checking_uploads(inner.service.clone())
                .with_body_idle_timeout(inner.config.body_idle_timeout),
        );
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Reports requests and transfers to `telemetry`; with `serve_metrics`, also serves its
    /// exposition at `GET /metrics` (without, the server exposes it on a listener of its own).
    #[must_use]
    pub fn with_telemetry(self, telemetry: Arc<dyn Telemetry>, serve_metrics: bool) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.telemetry = Some(telemetry);
        inner.serve_metrics = serve_metrics;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// This state over another service (the same configuration, telemetry and readiness), the
    /// signed blob routes' upload checks included: for a state per HTTP worker (see
    /// [`build_server_per_worker`]).
    #[must_use]
    pub fn with_service(self, service: StorageService) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.signed_blobs = inner
            .signed_blobs
            .take()
            .map(|blobs| blobs.checking_uploads(service.clone()));
        inner.service = service;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// `GET /health/ready` follows `readiness` (the server flips it on SIGTERM).
    #[must_use]
    pub fn with_readiness(self, readiness: Readiness) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.readiness = readiness;
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn telemetry(&self) -> Option<&Arc<dyn Telemetry>> {
        self.inner.telemetry.as_ref()
    }

    pub(crate) fn serves_metrics(&self) -> bool {
        self.inner.serve_metrics && self.inner.telemetry.is_some()
    }

    pub(crate) fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }

    /// Wraps a transfer's body for the telemetry, if any.
    pub(crate) fn metered(
        &self,
        direction: TransferDirection,
        bucket: storage_domain::model::BucketKind,
        body: storage_domain::ports::ByteStream,
    ) -> storage_domain::ports::ByteStream {
        match &self.inner.telemetry {
            Some(telemetry) => telemetry.transfer(direction, bucket, body),
            None => body,
        }
    }

    pub(crate) fn signed_blobs(&self) -> Option<&SignedBlobs> {
        self.inner.signed_blobs.as_ref()
    }

    pub fn service(&self) -> &StorageService {
        &self.inner.service
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub(crate) fn authenticator(&self) -> &dyn Authenticator {
        self.inner.auth.as_ref()
    }

    pub(crate) fn health(&self) -> &dyn HealthCheck {
        self.inner.health.as_ref()
    }

    pub(crate) fn openapi(&self) -> &str {
        &self.inner.openapi_json
    }
}

/// Registers every route of the contract, `/openapi.json`, `/docs` and the console, the request-id
/// middleware, the extractor error handlers and the JSON 404/405 answers, all inside one scope
/// at the root. Use it as `App::new().configure(|cfg| configure(cfg, state.clone()))`.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    handlers::register(cfg, state);
}

/// Registers only the signed blob routes (`PUT|GET /blob/{bucket}/{key...}`) with the
/// request-id middleware: for a server that serves nothing else (tests of a blob store).
pub fn configure_signed_blobs(cfg: &mut web::ServiceConfig, blobs: SignedBlobs) {
    handlers::register_signed_blobs(cfg, blobs);
}
