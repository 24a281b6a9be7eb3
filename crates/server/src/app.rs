//! The composition root: builds one adapter per port from the configuration, the domain's
//! service over them, and the HTTP server over that. The only place that names concrete
//! adapters.

use std::{net::TcpListener, path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretSlice};
use storage_domain::ports::EventSink;
use storage_domain::rules::chain::AuditChain;
use storage_domain::service::events::Dispatcher;
use storage_domain::{
    StorageError,
    model::Principal,
    ports::{
        AccessCheck, AccessDecision, BlobStore, Clock, MetadataStore, ProjectAccess,
        ProjectAccessError, ServiceUploadUrls, UuidV7Ids,
    },
    rules::LockTtl,
    service::{Ports, ServiceSettings, StorageService},
};
use storage_event_sinks::{NatsSink, WebhookSink};
use storage_http_actix::{
    ApiConfig, AppState, Authenticator, BrowserAccess, ComponentHealth, ConsoleConfig, HealthCheck,
    HealthReport, ServerConfig, SignedBlobEndpoint,
};
use storage_jwt_auth::JwtVerifier;
use storage_local_fs::{LocalBlobStore, LocalConfig, UrlSigner};
use storage_metrics::PoolProbe;
use storage_pg_diesel::{PgConfig, PgMetadataStore};
use storage_project_rbac::{HttpProjectAccess, PolicyProjectAccess};
use storage_s3_minio::{BucketNames, S3BlobStore, S3Config};
use storage_sqlite_diesel::{SqliteConfig, SqliteMetadataStore};

use crate::{
    config::{AppEnv, Config, DatabaseSettings, ObjectStoreSettings, ProjectSettings, web_origin},
    observability::{self, Observability},
    secrets,
    signed_blobs::SignedBlobRoutes,
};

/// Why the service could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("database: {0}")]
    Database(String),
    #[error("object store: {0}")]
    ObjectStore(String),
    #[error("project service: {0}")]
    Project(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// The clock of the running service: the system time and Tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// JWT verification as the HTTP adapter's authenticator.
struct JwtAuthenticator(JwtVerifier);

impl Authenticator for JwtAuthenticator {
    fn authenticate(
        &self,
        cookie_header: Option<&str>,
        authorization_header: Option<&str>,
    ) -> Result<Principal, StorageError> {
        self.0.authenticate(cookie_header, authorization_header)
    }
}

/// Project access when neither a project service nor a policy file is configured: every check
/// fails closed, saying how to configure it (never allow-all).
struct UnconfiguredProjects;

#[async_trait]
impl ProjectAccess for UnconfiguredProjects {
    async fn check(
        &self,
        _caller: &Principal,
        _check: &AccessCheck,
    ) -> Result<AccessDecision, ProjectAccessError> {
        Err(not_configured())
    }

    async fn check_batch(
        &self,
        _caller: &Principal,
        _checks: &[AccessCheck],
    ) -> Result<Vec<AccessDecision>, ProjectAccessError> {
        Err(not_configured())
    }
}

/// What to do when project access is not configured.
pub const PROJECT_ACCESS_HINT: &str = "project access is not configured: set PROJECT_SERVICE_URL \
     to the project service's base URL, or PROJECT_POLICY_FILE to a local policy file (see \
     docs/embedded.md)";

fn not_configured() -> ProjectAccessError {
    ProjectAccessError::NotConfigured(PROJECT_ACCESS_HINT.to_owned())
}

/// `/health`: asks the database and the object store, at once, each within 3 s.
struct AdapterHealth {
    metadata: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
}

#[async_trait]
impl HealthCheck for AdapterHealth {
    async fn check(&self) -> HealthReport {
        let budget = Duration::from_secs(3);
        let (db, store) = tokio::join!(
            tokio::time::timeout(budget, self.metadata.health()),
            tokio::time::timeout(budget, self.blobs.health()),
        );
        let component = |r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
            Ok(Ok(())) => ComponentHealth::Ok,
            Ok(Err(cause)) => ComponentHealth::Unavailable { cause },
            Err(_) => ComponentHealth::Unavailable {
                cause: "health check timed out".into(),
            },
        };
        HealthReport {
            database: component(db.map(|r| r.map_err(|e| e.to_string()))),
            object_store: component(store.map(|r| r.map_err(|e| e.to_string()))),
        }
    }
}

/// The adapters chosen by the configuration.
pub struct Adapters {
    pub metadata: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub projects: Arc<dyn ProjectAccess>,
    /// The service's own signed URLs, served by itself (`/blob/...`): every presigned URL of
    /// the embedded local directory; on S3, the upload URLs of uploads of unannounced size.
    pub signed_blobs: Option<Arc<dyn SignedBlobEndpoint>>,
    /// The domain's port to sign those upload URLs, where the blob store cannot bound an
    /// upload of unannounced size itself (S3).
    pub upload_urls: Option<Arc<dyn ServiceUploadUrls>>,
    /// The database's connection pools, by name, for the metrics.
    pub pools: Vec<(&'static str, PoolProbe)>,
    /// On PostgreSQL, the pools of the HTTP workers, one each (see [`WorkerPools`]).
    pub worker_pools: Option<WorkerPools>,
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapters").finish_non_exhaustive()
    }
}

pub(crate) fn pg_config(db: &DatabaseSettings, audit_chain: &AuditChain) -> PgConfig {
    let mut pg = PgConfig::new(db.url.expose_secret());
    pg.audit_chain = audit_chain.clone();
    pg.max_size = db.pool_max_size;
    pg.wait_timeout = db.pool_wait_timeout;
    pg.create_timeout = db.pool_create_timeout;
    pg.recycle_timeout = db.pool_recycle_timeout;
    pg.statement_timeout = db.statement_timeout;
    pg
}

fn s3_config(s3: &ObjectStoreSettings, presign_ttl: Duration) -> S3Config {
    let mut c = S3Config::new(
        s3.endpoint.clone(),
        s3.access_key.clone(),
        s3.secret_key.clone(),
        s3.region.clone(),
        BucketNames {
            users: s3.bucket_users.clone(),
            companies: s3.bucket_companies.clone(),
            projects: s3.bucket_projects.clone(),
        },
    );
    c.secure = s3.secure;
    c.path_style = s3.path_style;
    c.request_timeout = s3.request_timeout;
    c.connect_timeout = s3.connect_timeout;
    c.idle_timeout = s3.idle_timeout;
    c.presign_max_ttl = c.presign_max_ttl.max(presign_ttl);
    c.create_missing_buckets = s3.create_buckets;
    c.public_endpoint = s3.public_endpoint.clone();
    c.public_secure = s3.public_secure;
    c.upload_buffer_bytes = s3.upload_buffer_bytes;
    c.upload_buffer_wait = s3.upload_buffer_wait;
    c.download_segment_bytes = s3.download_segment_bytes;
    c.download_parallel_segments = s3.download_parallel_segments;
    c.download_read_ahead_bytes = s3.download_read_ahead_bytes;
    c
}

impl Adapters {
    /// Connects every adapter the configuration names; each store left unconfigured is the
    /// embedded default under `DATA_DIR` (a lone `DATABASE_URL` gives PostgreSQL and the local
    /// directory; a lone `MINIO_ENDPOINT`, SQLite and S3). `public_base_url` is the base of the
    /// local store's presigned URLs.
    ///
    /// # Errors
    /// A [`StartError`] naming the part that could not start.
    pub async fn connect(config: &Config, public_base_url: &str) -> Result<Self, StartError> {
        if config.uses_embedded() {
            let dir = config.embedded.data_dir.clone();
            tokio::fs::create_dir_all(&dir).await.map_err(|e| {
                StartError::Config(format!(
                    "DATA_DIR: cannot create the data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let (metadata, pools, worker_pools): (Arc<dyn MetadataStore>, _, _) = match &config.database
        {
            Some(db) => {
                let shares = pool_shares(db.pool_max_size, http_workers(config));
                let mut shared = pg_config(db, &config.audit_chain);
                shared.publish_events = config.events.enabled;
                let worker_pools = shares.map(|(main, each)| {
                    shared.max_size = main;
                    let mut per_worker = shared.clone();
                    per_worker.max_size = each;
                    WorkerPools::new(per_worker)
                });
                let pg = Arc::new(
                    PgMetadataStore::new(&shared)
                        .map_err(|e| StartError::Database(e.to_string()))?,
                );
                let probe = Arc::clone(&pg);
                let workers = worker_pools.clone();
                let pools: Vec<(&'static str, PoolProbe)> = vec![(
                    "postgres",
                    Arc::new(move || {
                        let mut all = observability::figures(probe.pool_status());
                        if let Some(workers) = &workers {
                            workers.add_figures(&mut all);
                        }
                        all
                    }),
                )];
                (pg as Arc<dyn MetadataStore>, pools, worker_pools)
            }
            None => {
                let (store, pools) = embedded_metadata(config).await?;
                (store, pools, None)
            }
        };
        let BlobAdapters {
            blobs,
            signed_blobs,
            upload_urls,
        } = blob_adapters(config, public_base_url).await?;
        let projects: Arc<dyn ProjectAccess> = match &config.project {
            ProjectSettings::Remote(p) => {
                Arc::new(HttpProjectAccess::new(p).map_err(|e| StartError::Project(e.to_string()))?)
            }
            ProjectSettings::Policy(path) => {
                let path = path.clone();
                let policy = tokio::task::spawn_blocking(move || PolicyProjectAccess::load(&path))
                    .await
                    .map_err(|e| StartError::Project(e.to_string()))?
                    .map_err(|e| StartError::Config(format!("PROJECT_POLICY_FILE: {e}")))?;
                if policy.rule_count() == 0 {
                    tracing::warn!(
                        "the project policy file has no rule: every project request is denied"
                    );
                }
                Arc::new(policy)
            }
            ProjectSettings::Unconfigured => {
                tracing::warn!(
                    "{PROJECT_ACCESS_HINT}; until then every request on the projects bucket is \
                     denied (project_service_unavailable)"
                );
                Arc::new(UnconfiguredProjects)
            }
        };
        Ok(Self {
            metadata,
            blobs,
            projects,
            signed_blobs: Some(signed_blobs),
            upload_urls,
            pools,
            worker_pools,
        })
    }
}

/// The HTTP workers' PostgreSQL pools: one per worker thread, opened by the worker as it starts.
///
/// A pooled connection is driven by a task on the runtime where it was opened (tokio-postgres's
/// connection future). With one pool for the whole service, a query from one HTTP worker went
/// through a connection opened on another thread, often the main runtime's (the janitor's
/// first pass): each statement crossed threads twice (a wake-up through the kernel, a context
/// switch each way). A pool per worker keeps each connection on the thread that uses it. The
/// janitor, `/health` and start-up keep the shared pool.
#[derive(Debug, Clone)]
pub struct WorkerPools {
    config: PgConfig,
    opened: Arc<std::sync::Mutex<Vec<PgMetadataStore>>>,
}

impl WorkerPools {
    fn new(config: PgConfig) -> Self {
        Self {
            config,
            opened: Arc::default(),
        }
    }

    /// A pool for the calling worker (no connection is opened yet).
    ///
    /// # Errors
    /// When the pool settings are refused.
    pub fn open(&self) -> Result<Arc<dyn MetadataStore>, StartError> {
        let store =
            PgMetadataStore::new(&self.config).map_err(|e| StartError::Database(e.to_string()))?;
        self.opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(store.clone());
        Ok(Arc::new(store))
    }

    /// Adds the workers' pools' figures to `all`.
    fn add_figures(&self, all: &mut storage_metrics::PoolFigures) {
        let opened = self
            .opened
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for pool in opened.iter() {
            let f = observability::figures(pool.pool_status());
            all.max_size += f.max_size;
            all.size += f.size;
            all.idle += f.idle;
            all.waiting += f.waiting;
        }
    }
}

/// The HTTP worker threads the server runs: `HTTP_WORKERS`, else one per core (as actix).
pub fn http_workers(config: &Config) -> usize {
    config.http.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
}

/// How `DB_POOL_MAX_SIZE` connections are shared between the shared pool (the janitor,
/// `/health`) and each of `workers` worker pools: `(shared, each)`, the shared pool getting
/// at least [`SHARED_POOL_MIN`] and what the even split leaves over, so that the pools
/// together never open more than `max_size`. `None` (one pool for everything) when a worker's
/// share would be below two connections.
pub fn pool_shares(max_size: usize, workers: usize) -> Option<(usize, usize)> {
    let each = max_size.checked_sub(SHARED_POOL_MIN)? / workers.max(1);
    (each >= 2).then(|| (max_size - each * workers.max(1), each))
}

/// The shared pool's fewest connections: the janitor's and a health check's.
const SHARED_POOL_MIN: usize = 2;

/// The blob store and the service's own signed URLs over it.
struct BlobAdapters {
    blobs: Arc<dyn BlobStore>,
    signed_blobs: Arc<dyn SignedBlobEndpoint>,
    upload_urls: Option<Arc<dyn ServiceUploadUrls>>,
}

/// S3 when configured, with the service's own URLs for uploads of unannounced size (PUT only);
/// else the embedded local directory, all of whose URLs are the service's own.
async fn blob_adapters(config: &Config, public_base_url: &str) -> Result<BlobAdapters, StartError> {
    match &config.object_store {
        Some(s3) => {
            let store: Arc<dyn BlobStore> = Arc::new(
                S3BlobStore::connect(s3_config(s3, config.presign_ttl))
                    .await
                    .map_err(|e| StartError::ObjectStore(e.to_string()))?,
            );
            let signer = service_url_signer(config, s3, public_base_url)?;
            Ok(BlobAdapters {
                blobs: store.clone(),
                signed_blobs: Arc::new(SignedBlobRoutes::uploads(signer.clone(), store)),
                upload_urls: Some(Arc::new(signer)),
            })
        }
        None => {
            let local = Arc::new(local_store(config, public_base_url).await?);
            let signer = local.signer().clone();
            Ok(BlobAdapters {
                blobs: local.clone(),
                signed_blobs: Arc::new(SignedBlobRoutes::uploads_and_downloads(signer, local)),
                upload_urls: None,
            })
        }
    }
}

/// The key of the service's own upload URLs on S3 (those of uploads of unannounced size):
/// `LOCAL_PRESIGN_SECRET` when set, else derived from `MINIO_SECRET_KEY`, which every instance
/// of a deployment shares (so a URL signed by one is served by any), and whose rotation ends
/// these URLs as it ends the store's own.
fn service_url_signer(
    config: &Config,
    s3: &ObjectStoreSettings,
    public_base_url: &str,
) -> Result<UrlSigner, StartError> {
    let signer = match &config.embedded.presign_secret {
        Some(secret) => UrlSigner::new(
            secret.expose_secret().as_bytes(),
            public_base_url,
            config.presign_ttl,
        ),
        None => UrlSigner::derived(
            s3.secret_key.expose_secret().as_bytes(),
            public_base_url,
            config.presign_ttl,
        ),
    };
    signer.map_err(|e| StartError::Config(format!("LOCAL_PRESIGN_SECRET: {e}")))
}

/// The embedded metadata store: SQLite at `<DATA_DIR>/storage.sqlite3`, created and migrated
/// on open (PostgreSQL, by contrast, is only migrated by `storage-server migrate`).
async fn embedded_metadata(
    config: &Config,
) -> Result<(Arc<dyn MetadataStore>, Vec<(&'static str, PoolProbe)>), StartError> {
    let path = config.embedded.sqlite_path();
    let shown = path.display().to_string();
    let sqlite = SqliteConfig {
        publish_events: config.events.enabled,
        audit_chain: config.audit_chain.clone(),
        ..SqliteConfig::default()
    };
    let store = Arc::new(
        SqliteMetadataStore::open(&shown, sqlite)
            .await
            .map_err(|e| StartError::Database(format!("embedded SQLite store {shown}: {e}")))?,
    );
    let (writer, readers) = (Arc::clone(&store), Arc::clone(&store));
    let pools: Vec<(&'static str, PoolProbe)> = vec![
        (
            "sqlite_writer",
            Arc::new(move || observability::figures(writer.writer_pool_status())),
        ),
        (
            "sqlite_readers",
            Arc::new(move || observability::figures(readers.reader_pool_status())),
        ),
    ];
    Ok((store, pools))
}

/// The embedded blob store: the local directory `<DATA_DIR>/objects`, its presigned URLs
/// signed with `LOCAL_PRESIGN_SECRET` or the key kept in `<DATA_DIR>/presign-secret`.
async fn local_store(config: &Config, public_base_url: &str) -> Result<LocalBlobStore, StartError> {
    let secret: Vec<u8> = match &config.embedded.presign_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            let path = config.embedded.data_dir.join(secrets::PRESIGN_SECRET_FILE);
            let shown = path.display().to_string();
            tokio::task::spawn_blocking(move || secrets::load_or_create(&path))
                .await
                .map_err(|e| StartError::ObjectStore(e.to_string()))?
                .map_err(|e| {
                    StartError::Config(format!(
                        "DATA_DIR: cannot create or read the presign key {shown}: {e}"
                    ))
                })?
                .into_bytes()
        }
    };
    let root = config.embedded.objects_dir();
    LocalBlobStore::open(LocalConfig {
        root,
        public_base_url: public_base_url.to_owned(),
        presign_secret: SecretSlice::from(secret),
        presign_max_ttl: config.presign_ttl,
    })
    .await
    .map_err(|e| StartError::ObjectStore(e.to_string()))
}

/// One line per store, for the start-up banner.
pub fn describe_stores(config: &Config) -> Vec<(&'static str, String)> {
    let shown = |p: &Path| p.display().to_string();
    vec![
        (
            "metadata",
            match &config.database {
                Some(_) => "PostgreSQL (DATABASE_URL)".to_owned(),
                None => format!("SQLite {}", shown(&config.embedded.sqlite_path())),
            },
        ),
        (
            "objects",
            match &config.object_store {
                Some(s3) => format!("S3 {} (MINIO_ENDPOINT)", s3.endpoint),
                None => format!("local directory {}", shown(&config.embedded.objects_dir())),
            },
        ),
        (
            "projects",
            match &config.project {
                ProjectSettings::Remote(_) => "project service (PROJECT_SERVICE_URL)".to_owned(),
                ProjectSettings::Policy(path) => format!("policy file {}", shown(path)),
                ProjectSettings::Unconfigured => {
                    "not configured: every project request is denied (set PROJECT_SERVICE_URL or PROJECT_POLICY_FILE)".to_owned()
                }
            },
        ),
    ]
}

/// The domain's settings from the configuration.
pub fn service_settings(config: &Config) -> ServiceSettings {
    ServiceSettings {
        max_upload_bytes: config.max_upload_bytes,
        presign_ttl: config.presign_ttl,
        upload_grace: config.upload_grace,
        transfer_lease: config.transfer_lease,
        lock_ttl: LockTtl {
            default: config.lock_ttl,
            max: config.lock_max_ttl,
        },
        allow_self_approval: config.allow_self_approval,
        transfer_limits: config.transfer_limits,
        max_open_uploads_per_user: config.max_open_uploads_per_user,
        audit_denied_window: config.audit_denied_window,
        trash_retention: config.trash_retention(),
        retention: config.retention,
        ..ServiceSettings::default()
    }
}

/// The use cases over the adapters.
pub fn storage_service(adapters: &Adapters, config: &Config) -> StorageService {
    StorageService::new(
        Ports {
            metadata: adapters.metadata.clone(),
            blobs: adapters.blobs.clone(),
            projects: adapters.projects.clone(),
            clock: Arc::new(TokioClock),
            ids: Arc::new(UuidV7Ids),
            upload_urls: adapters.upload_urls.clone(),
        },
        service_settings(config),
    )
}

/// A running service: the HTTP server, the janitor, and the metrics (their listener when
/// `METRICS_BIND_ADDR` is set, and their upkeep).
pub struct Application {
    port: u16,
    public_base_url: String,
    server: actix_web::dev::Server,
    janitor: tokio::task::JoinHandle<()>,
    /// The dispatcher's task; none with `EVENTS_ENABLED=false`.
    events: Option<tokio::task::JoinHandle<()>>,
    observability: Observability,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the adapters, binds `config.bind_addr` (port 0 picks a free port) and builds the
    /// server. When `shutdown` completes, readiness answers 503 for
    /// `SHUTDOWN_READINESS_DELAY_SECONDS` while the listener still accepts, then the listener
    /// closes and requests in flight get `SHUTDOWN_GRACE_SECONDS` to finish. Must run inside a
    /// Tokio runtime.
    ///
    /// # Errors
    /// A [`StartError`] naming what is missing or unreachable.
    pub async fn build(
        config: Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Self, StartError> {
        let jwt = config.jwt.as_ref().ok_or_else(|| {
            StartError::Config(
                "JWT_SECRET (or JWT_PUBLIC_KEY) is not set: no token could be verified".into(),
            )
        })?;
        let verifier = JwtVerifier::new(jwt).map_err(|e| StartError::Config(e.to_string()))?;
        let bind_error = |source| StartError::Bind {
            addr: config.bind_addr.to_string(),
            source,
        };
        // Bind first: the local store's presigned URLs need the port (BIND_ADDR may say 0).
        let listener = TcpListener::bind(config.bind_addr).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let public_base_url = config.public_base_url(port);
        let adapters = Adapters::connect(&config, &public_base_url).await?;
        let observability = Observability::new(&config)?;
        let adapters = observability.meter(adapters);
        let service = storage_service(&adapters, &config);
        let health = AdapterHealth {
            metadata: adapters.metadata.clone(),
            blobs: adapters.blobs.clone(),
        };
        let api = ApiConfig {
            browser: BrowserAccess {
                allowed_origins: config.cors_allowed_origins.clone(),
                public_origin: config
                    .embedded
                    .public_base_url
                    .as_deref()
                    .and_then(|url| web_origin(&format!("{}/", origin_part(url)))),
                ..BrowserAccess::default()
            },
            spool_dir: config.upload_spool_dir.clone(),
            body_idle_timeout: config.http.body_idle_timeout,
            console: ConsoleConfig {
                direct_origins: direct_upload_origins(&config, &public_base_url),
            },
            ..ApiConfig::default()
        };
        let mut state = AppState::new(
            service.clone(),
            Arc::new(JwtAuthenticator(verifier)),
            Arc::new(health),
            api,
        );
        if let Some(signed) = adapters.signed_blobs.clone() {
            state = state.with_signed_blobs(signed);
        }
        let state = observability.serve(state);
        let server_config = ServerConfig {
            shutdown_timeout: config.ops.shutdown_grace,
            keep_alive: config.http.keep_alive,
            client_request_timeout: config.http.header_timeout,
            workers: Some(http_workers(&config)),
            ..ServerConfig::default()
        };
        let worker_pools = adapters.worker_pools.clone();
        let metered = observability.metrics().cloned();
        let make_state = move || {
            let Some(pools) = &worker_pools else {
                return state.clone();
            };
            match pools.open() {
                Ok(store) => {
                    let store = observability::meter_metadata(metered.as_ref(), store);
                    let service = state.service().with_metadata(store);
                    state.clone().with_service(service)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "this HTTP worker uses the shared database pool");
                    state.clone()
                }
            }
        };
        warn_about_limits(&config);
        warn_about_service_urls(&config, &public_base_url);
        let shutdown = observability.drain_after(shutdown, config.ops.readiness_delay);
        let server = storage_http_actix::build_server_per_worker(
            listener,
            make_state,
            &server_config,
            shutdown,
        )
        .map_err(bind_error)?;
        // `EVENTS_ENABLED=false`: the stores queue no event, and no dispatcher runs.
        let events = if config.events.enabled {
            let dispatcher = dispatcher(&config, adapters.metadata.clone())
                .await
                .map_err(StartError::Config)?;
            Some(tokio::spawn(events_loop(
                dispatcher,
                config.events.poll_interval,
            )))
        } else {
            tracing::info!("events are off (EVENTS_ENABLED=false): no dispatcher");
            None
        };
        let janitor = tokio::spawn(janitor_loop(
            service,
            config.janitor_interval,
            observability.metrics().cloned(),
        ));
        Ok(Self {
            port,
            public_base_url,
            server,
            janitor,
            events,
            observability,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base of the local store's presigned URLs (`PUBLIC_BASE_URL` or derived).
    pub fn public_base_url(&self) -> &str {
        &self.public_base_url
    }

    /// The port of the metrics listener (`METRICS_BIND_ADDR`), when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.observability.metrics_port()
    }

    /// Serves until the shutdown future completes and in-flight requests are done.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.janitor.abort();
        if let Some(events) = &self.events {
            events.abort();
        }
        self.observability.stop().await;
        tracing::info!("stopped");
        result
    }
}

/// Says when the upload cap lets uploads alone take every database connection: each upload
/// holds one for its reads and its commit, and requests beyond the pool wait
/// (`DB_POOL_WAIT_TIMEOUT_MS`) then fail with `database_unavailable`.
fn warn_about_limits(config: &Config) {
    if let Some(db) = &config.database
        && config.transfer_limits.uploads as usize >= db.pool_max_size
    {
        tracing::warn!(
            max_concurrent_uploads = config.transfer_limits.uploads,
            db_pool_max_size = db.pool_max_size,
            "MAX_CONCURRENT_UPLOADS is not below DB_POOL_MAX_SIZE: a burst of uploads can take \
             every database connection at once (see docs/operations.md, Sizing)"
        );
    }
}

/// The origins of the presigned URLs the service hands out, where the console sends bytes
/// straight from the browser: the S3 endpoint the URLs are signed for (one origin per bucket
/// with virtual-host addressing), or the local store's public base.
fn direct_upload_origins(config: &Config, public_base_url: &str) -> Vec<String> {
    let origin = |url: &str| web_origin(&format!("{}/", origin_part(url)));
    let Some(s3) = &config.object_store else {
        return origin(public_base_url).into_iter().collect();
    };
    let Some(base) = s3_config(s3, config.presign_ttl).presign_url().ok() else {
        return Vec::new();
    };
    if s3.path_style {
        return origin(&base).into_iter().collect();
    }
    let (scheme, host) = base.split_once("://").unwrap_or(("http", base.as_str()));
    [&s3.bucket_users, &s3.bucket_companies, &s3.bucket_projects]
        .into_iter()
        .filter_map(|bucket| origin(&format!("{scheme}://{bucket}.{host}")))
        .collect()
}

/// Says when, on S3 in staging or production, the service's own upload URLs (presigns without
/// a size) are based on an address derived from `BIND_ADDR`, which clients elsewhere may not
/// reach.
fn warn_about_service_urls(config: &Config, public_base_url: &str) {
    if config.object_store.is_some()
        && config.embedded.public_base_url.is_none()
        && matches!(config.env, AppEnv::Staging | AppEnv::Production)
    {
        tracing::warn!(
            public_base_url,
            "PUBLIC_BASE_URL is not set: presigned uploads without a size get upload URLs to the \
             service at this derived address; set it to the address clients reach the service \
             by (see docs/operations.md, Presigned URLs and the public endpoint)"
        );
    }
}

/// `scheme://authority` of a URL (`PUBLIC_BASE_URL` may carry a path).
fn origin_part(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

/// The event dispatcher of this configuration: a webhook sink per subscription of
/// `WEBHOOKS_FILE`, and the NATS JetStream sink when `NATS_URL` is set (connected, its stream
/// created if missing, when it first delivers). With no sink, delivered events are only marked
/// so.
///
/// # Errors
/// A webhook client that cannot be built.
pub async fn dispatcher(
    config: &Config,
    metadata: Arc<dyn MetadataStore>,
) -> Result<Dispatcher, String> {
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    for subscription in &config.events.webhooks {
        sinks.push(Arc::new(WebhookSink::new(
            subscription.clone(),
            config.events.timeout,
        )?));
    }
    if let Some(nats) = &config.events.nats {
        // Connected by the dispatcher's first delivery, never while the server starts: NATS
        // down (or slow to resolve) neither stops nor delays the service, and its events wait
        // in the outbox.
        sinks.push(Arc::new(NatsSink::new(nats)));
    }
    Ok(Dispatcher::new(
        metadata,
        sinks,
        Arc::new(TokioClock),
        Arc::new(UuidV7Ids),
        config.events.dispatch,
    ))
}

/// Delivers the outbox: a pass at once after a pass that claimed a full batch or delivered
/// anything (a busy file's next events are likely waiting), else every `poll`. A failed pass
/// (the database down) is logged and tried again after `poll`. Runs on its own task: a slow
/// receiver delays only later events, never a request.
async fn events_loop(dispatcher: Dispatcher, poll: Duration) {
    // After a pass that delivered something without filling its batch, the next one waits
    // this long (at most `poll`): events written meanwhile go out together, so a steady
    // stream of changes costs one claim and one settlement per few events, not per event.
    let linger = EVENTS_LINGER.min(poll);
    loop {
        let pause = match dispatcher.run_once().await {
            Ok(report) if report.claimed == u64::from(dispatcher.settings().batch) => {
                tracing::debug!(?report, "events pass");
                continue;
            }
            Ok(report) if report.delivered > 0 => {
                tracing::debug!(?report, "events pass");
                linger
            }
            Ok(report) => {
                if report.claimed > 0 {
                    tracing::debug!(?report, "events pass");
                }
                poll
            }
            Err(e) => {
                tracing::warn!(error = %e, "events pass failed");
                poll
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// See [`events_loop`].
const EVENTS_LINGER: Duration = Duration::from_millis(50);

/// Runs the janitor every `interval`; a failed pass is logged and retried at the next tick.
/// Each pass is counted in the metrics, when there are.
async fn janitor_loop(
    service: StorageService,
    interval: Duration,
    metrics: Option<storage_metrics::Metrics>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let started = std::time::Instant::now();
        let pass = service.run_janitor_once().await;
        if let Some(metrics) = &metrics {
            metrics.record_janitor_pass(pass.as_ref().map_err(|_| ()), started.elapsed());
        }
        match pass {
            Ok(report) if report == Default::default() => {}
            Ok(report) => tracing::info!(?report, "janitor pass"),
            Err(e) => tracing::warn!(error = %e, cause = e.internal_cause(), "janitor pass failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pool_shares;

    #[test]
    fn pool_shares_never_exceed_the_setting() {
        // (DB_POOL_MAX_SIZE, workers) -> (shared pool, each worker's pool)
        assert_eq!(pool_shares(16, 2), Some((2, 7)));
        assert_eq!(pool_shares(7, 2), Some((3, 2)));
        assert_eq!(pool_shares(16, 1), Some((2, 14)));
        assert_eq!(pool_shares(16, 0), Some((2, 14)));
        assert_eq!(pool_shares(40, 6), Some((4, 6)));
        // Too few for a worker's share of two: one pool, as before.
        assert_eq!(pool_shares(5, 2), None);
        assert_eq!(pool_shares(1, 1), None);
        assert_eq!(pool_shares(16, 8), None);
        for max in 0..64 {
            for workers in 1..12 {
                if let Some((shared, each)) = pool_shares(max, workers) {
                    assert_eq!(shared + each * workers, max, "{max} over {workers} workers");
                    assert!(shared >= 2 && each >= 2, "{max} over {workers} workers");
                }
            }
        }
    }
}
