//! Configuration (spec §7): `APP_ENV` (alias `FLASK_ENV`) picks `.env.<env>`, real environment
//! variables win, the seed's variable names are kept. Secrets are `SecretString`s and never
//! logged. Production refuses to start on unsafe settings, naming the variable.

use std::{
    collections::HashMap, fmt, net::SocketAddr, path::PathBuf, str::FromStr, sync::Arc,
    time::Duration,
};

use secrecy::{ExposeSecret, SecretString};
use storage_domain::model::BucketKind;
use storage_domain::rules::chain::{AuditChain, AuditKey, AuditKeyring, DEVELOPMENT_KEY_ID};
use storage_domain::rules::retention::{RetentionPolicy, RetentionRule};
use storage_domain::service::TransferLimits;
use storage_jwt_auth::{JwtAlgorithm, JwtConfig};
use storage_project_rbac::ProjectServiceConfig;

/// The deployment environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Testing,
    Staging,
    Production,
}

impl AppEnv {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        Ok(match raw.trim().to_ascii_lowercase().as_str() {
            "" | "development" | "dev" => AppEnv::Development,
            "testing" | "test" => AppEnv::Testing,
            "staging" => AppEnv::Staging,
            "production" | "prod" => AppEnv::Production,
            other => {
                return Err(ConfigError::invalid(
                    "APP_ENV",
                    format!("'{other}' is not one of development, testing, staging, production"),
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Testing => "testing",
            AppEnv::Staging => "staging",
            AppEnv::Production => "production",
        }
    }

    /// The `.env` file this environment loads (`.env.test` for testing, as the seed did).
    pub fn env_file(self) -> &'static str {
        match self {
            AppEnv::Development => ".env.development",
            AppEnv::Testing => ".env.test",
            AppEnv::Staging => ".env.staging",
            AppEnv::Production => ".env.production",
        }
    }
}

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub fn invalid(variable: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Where variables come from: the process environment over the `.env.<env>` file.
#[derive(Clone, Default)]
pub struct Vars {
    values: HashMap<String, String>,
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vars")
            .field("count", &self.values.len())
            .finish_non_exhaustive()
    }
}

impl Vars {
    /// Variables from a map (tests).
    pub fn from_map(values: HashMap<String, String>) -> Self {
        Self { values }
    }

    /// The process environment, over the `.env.<env>` file of the environment it names (looked
    /// up in the working directory). Real environment variables win.
    ///
    /// # Errors
    /// An unreadable or malformed `.env` file, or a bad `APP_ENV`.
    pub fn from_process() -> Result<(Self, Option<PathBuf>), ConfigError> {
        let process: HashMap<String, String> = std::env::vars().collect();
        let env = app_env_of(&process)?;
        let file = PathBuf::from(env.env_file());
        let mut values = HashMap::new();
        let mut loaded = None;
        if file.exists() {
            let iter = dotenvy::from_path_iter(&file)
                .map_err(|e| ConfigError::invalid(env.env_file(), e.to_string()))?;
            for item in iter {
                let (k, v) =
                    item.map_err(|e| ConfigError::invalid(env.env_file(), e.to_string()))?;
                values.insert(k, v);
            }
            loaded = Some(file);
        }
        values.extend(process);
        Ok((Self { values }, loaded))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parsed<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError::invalid(name, format!("cannot parse '{raw}': {e}"))),
        }
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(ConfigError::invalid(
                name,
                format!("'{v}' is not a boolean"),
            )),
        }
    }

    fn seconds(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        self.parsed(name, default).map(Duration::from_secs)
    }

    fn millis(&self, name: &str, default: u64) -> Result<Duration, ConfigError> {
        self.parsed(name, default).map(Duration::from_millis)
    }

    fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name).map(|v| SecretString::from(v.to_owned()))
    }
}

/// A base64 audit key of `variable`, named `id`.
fn audit_key(variable: &str, id: &str, base64_key: &str) -> Result<AuditKey, ConfigError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_key.trim())
        .map_err(|_| {
            ConfigError::invalid(
                variable,
                "is not base64 (e.g. the output of `openssl rand -base64 32`)",
            )
        })?;
    AuditKey::new(id, bytes).map_err(|e| ConfigError::invalid(variable, e.to_string()))
}

/// `AUDIT_KEY` (base64 of at least 32 bytes) under `AUDIT_KEY_ID` (`k1`), and
/// `AUDIT_RETIRED_KEYS` (`<id>:<base64>,…`, for verification only): the audit keyring, and
/// whether the built-in development key stands in for a missing `AUDIT_KEY` (development and
/// testing only: `Config::check` refuses it in staging and production). Outside staging and
/// production the development key is also accepted when verifying (events written before a key
/// was configured).
fn audit_keys(vars: &Vars, env: AppEnv) -> Result<(AuditKeyring, bool), ConfigError> {
    let hosted = matches!(env, AppEnv::Staging | AppEnv::Production);
    let id = vars.get("AUDIT_KEY_ID").map_or("k1", str::trim);
    let (current, development) = match vars.secret("AUDIT_KEY") {
        Some(raw) => (audit_key("AUDIT_KEY", id, raw.expose_secret())?, false),
        // Refused by `Config::check` in staging and production.
        None => (AuditKey::development(), true),
    };
    if !development && current.id() == DEVELOPMENT_KEY_ID {
        return Err(ConfigError::invalid(
            "AUDIT_KEY_ID",
            format!("'{DEVELOPMENT_KEY_ID}' is the built-in development key's id"),
        ));
    }
    let mut retired = Vec::new();
    if let Some(raw) = vars.secret("AUDIT_RETIRED_KEYS") {
        for item in raw.expose_secret().split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let (id, key) = item.split_once(':').ok_or_else(|| {
                ConfigError::invalid(
                    "AUDIT_RETIRED_KEYS",
                    "must be a comma-separated list of <key id>:<base64 key>",
                )
            })?;
            if id.trim() == DEVELOPMENT_KEY_ID {
                return Err(ConfigError::invalid(
                    "AUDIT_RETIRED_KEYS",
                    format!("'{DEVELOPMENT_KEY_ID}' is the built-in development key's id"),
                ));
            }
            retired.push(audit_key("AUDIT_RETIRED_KEYS", id.trim(), key)?);
        }
    }
    if !hosted && !development {
        retired.push(AuditKey::development());
    }
    let keys = AuditKeyring::new(Arc::new(current), retired)
        .map_err(|e| ConfigError::invalid("AUDIT_RETIRED_KEYS", e.to_string()))?;
    Ok((keys, development))
}

/// The refusal of a missing `AUDIT_KEY` in staging and production.
fn audit_key_required(env: AppEnv) -> ConfigError {
    ConfigError::invalid(
        "AUDIT_KEY",
        format!(
            "required in {} (base64 of at least 32 random bytes, e.g. `openssl rand -base64 \
             32`): without it the audit chain would use the public development key, which \
             anyone with database access can recompute",
            env.as_str()
        ),
    )
}

/// A retention count or age: unset, or a whole number of at least 1.
fn retention_part(vars: &Vars, name: &str) -> Result<Option<u32>, ConfigError> {
    match vars.get(name) {
        None => Ok(None),
        Some(raw) => match raw.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ConfigError::invalid(
                name,
                format!("must be a whole number of at least 1 (or unset), not '{raw}'"),
            )),
        },
    }
}

/// `VERSION_KEEP_LAST`, `VERSION_KEEP_DAYS`, and per bucket `VERSION_KEEP_LAST_<BUCKET>`,
/// `VERSION_KEEP_DAYS_<BUCKET>` (`USERS`, `COMPANIES`, `PROJECTS`), each replacing the
/// default's part for its bucket.
fn retention_policy(vars: &Vars) -> Result<RetentionPolicy, ConfigError> {
    let rule = |suffix: &str| -> Result<RetentionRule, ConfigError> {
        Ok(RetentionRule {
            keep_last: retention_part(vars, &format!("VERSION_KEEP_LAST{suffix}"))?,
            keep_days: retention_part(vars, &format!("VERSION_KEEP_DAYS{suffix}"))?,
        })
    };
    let mut buckets = [RetentionRule::default(); 3];
    for (slot, bucket) in buckets.iter_mut().zip(BucketKind::ALL) {
        *slot = rule(&format!("_{}", bucket.as_str().to_ascii_uppercase()))?;
    }
    Ok(RetentionPolicy {
        default: rule("")?,
        buckets,
    })
}

fn app_env_of(values: &HashMap<String, String>) -> Result<AppEnv, ConfigError> {
    let raw = values
        .get("APP_ENV")
        .filter(|v| !v.trim().is_empty())
        .or_else(|| values.get("FLASK_ENV"))
        .map(String::as_str)
        .unwrap_or_default();
    AppEnv::parse(raw)
}

/// PostgreSQL settings (`DATABASE_URL`, `DB_*`).
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub pool_max_size: usize,
    pub pool_wait_timeout: Duration,
    pub pool_create_timeout: Duration,
    pub pool_recycle_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Object-store settings (`MINIO_*`).
#[derive(Debug, Clone)]
pub struct ObjectStoreSettings {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: SecretString,
    pub region: String,
    pub secure: bool,
    pub path_style: bool,
    pub bucket_users: String,
    pub bucket_companies: String,
    pub bucket_projects: String,
    pub create_buckets: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    /// `MINIO_PUBLIC_ENDPOINT`: the address presigned URLs are signed for (clients'), when
    /// it is not `endpoint` (the service's).
    pub public_endpoint: Option<String>,
    /// `MINIO_PUBLIC_SECURE` (default: `MINIO_SECURE`).
    pub public_secure: bool,
    /// `UPLOAD_BUFFER_BYTES`: the memory all proxy uploads of this instance share for their
    /// multipart parts (default 64 MiB: twelve 5 MiB parts).
    pub upload_buffer_bytes: u64,
    /// `UPLOAD_BUFFER_WAIT_SECONDS`: how long an upload waits for a part buffer before it is
    /// refused (`too_many_requests`) without a byte read (default 10).
    pub upload_buffer_wait: Duration,
    /// `DOWNLOAD_SEGMENT_BYTES`: reads longer than this go as consecutive ranged GETs of this
    /// size (default 8 MiB; 64 KiB to 1 GiB).
    pub download_segment_bytes: u64,
    /// `DOWNLOAD_PARALLEL_SEGMENTS`: segment GETs one read keeps in flight (default 1; 1 to 16;
    /// 1: one GET per read).
    pub download_parallel_segments: usize,
    /// `DOWNLOAD_READ_AHEAD_BYTES`: the memory all reads of this instance share for the
    /// segments they fetch ahead (default 64 MiB).
    pub download_read_ahead_bytes: u64,
}

impl ObjectStoreSettings {
    /// The download settings, each within its bounds (see `storage_s3_minio::S3Config`).
    fn validate_downloads(&self) -> Result<(), ConfigError> {
        use storage_s3_minio::{
            MAX_DOWNLOAD_PARALLEL_SEGMENTS, MAX_DOWNLOAD_SEGMENT_BYTES, MIN_DOWNLOAD_SEGMENT_BYTES,
        };
        if !(MIN_DOWNLOAD_SEGMENT_BYTES..=MAX_DOWNLOAD_SEGMENT_BYTES)
            .contains(&self.download_segment_bytes)
        {
            return Err(ConfigError::invalid(
                "DOWNLOAD_SEGMENT_BYTES",
                format!(
                    "must be {MIN_DOWNLOAD_SEGMENT_BYTES} to {MAX_DOWNLOAD_SEGMENT_BYTES} bytes"
                ),
            ));
        }
        if !(1..=MAX_DOWNLOAD_PARALLEL_SEGMENTS).contains(&self.download_parallel_segments) {
            return Err(ConfigError::invalid(
                "DOWNLOAD_PARALLEL_SEGMENTS",
                format!("must be 1 to {MAX_DOWNLOAD_PARALLEL_SEGMENTS}"),
            ));
        }
        if self.download_parallel_segments > 1
            && self.download_read_ahead_bytes < self.download_segment_bytes
        {
            return Err(ConfigError::invalid(
                "DOWNLOAD_READ_AHEAD_BYTES",
                "must hold at least one segment (DOWNLOAD_SEGMENT_BYTES) when DOWNLOAD_PARALLEL_SEGMENTS is above 1",
            ));
        }
        Ok(())
    }
}

/// Operations: metrics and shutdown (`METRICS_*`, `SHUTDOWN_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsSettings {
    /// `METRICS_ENABLED` (default true): record metrics and serve them.
    pub metrics_enabled: bool,
    /// `METRICS_BIND_ADDR`: a listener of its own for `GET /metrics`; `None`: served by the
    /// API's listener.
    pub metrics_bind_addr: Option<SocketAddr>,
    /// `SHUTDOWN_READINESS_DELAY_SECONDS` (default 5): after SIGTERM, how long readiness
    /// answers 503 while the listener still accepts, so that load balancers stop sending.
    pub readiness_delay: Duration,
    /// `SHUTDOWN_GRACE_SECONDS` (default 30): then, how long requests in flight (transfers
    /// included) have to finish before they are cut.
    pub shutdown_grace: Duration,
}

impl OpsSettings {
    fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let metrics_bind_addr = vars
            .get("METRICS_BIND_ADDR")
            .map(|raw| {
                raw.trim().parse::<SocketAddr>().map_err(|e| {
                    ConfigError::invalid("METRICS_BIND_ADDR", format!("cannot parse '{raw}': {e}"))
                })
            })
            .transpose()?;
        let settings = Self {
            metrics_enabled: vars.flag("METRICS_ENABLED", true)?,
            metrics_bind_addr,
            readiness_delay: vars.seconds("SHUTDOWN_READINESS_DELAY_SECONDS", 5)?,
            shutdown_grace: vars.seconds("SHUTDOWN_GRACE_SECONDS", 30)?,
        };
        if settings.metrics_bind_addr.is_some() && !settings.metrics_enabled {
            return Err(ConfigError::invalid(
                "METRICS_BIND_ADDR",
                "set while METRICS_ENABLED is false",
            ));
        }
        if settings.shutdown_grace.is_zero() {
            return Err(ConfigError::invalid(
                "SHUTDOWN_GRACE_SECONDS",
                "must be at least 1",
            ));
        }
        Ok(settings)
    }
}

/// Project-service settings (`PROJECT_SERVICE_URL`, `PROJECT_SERVICE_TIMEOUT_MS`).
#[derive(Debug, Clone)]
pub enum ProjectSettings {
    Remote(ProjectServiceConfig),
    /// A local policy file (`PROJECT_POLICY_FILE`, or `<DATA_DIR>/project-policy.json` in
    /// development when it exists): read at start-up, anything it does not list is denied.
    Policy(PathBuf),
    /// Nothing configured: every project check fails closed (`project_service_unavailable`),
    /// and the server says at start-up how to configure it.
    Unconfigured,
}

/// The file name of the development default policy under `DATA_DIR`.
pub const DEFAULT_POLICY_FILE: &str = "project-policy.json";
/// The embedded SQLite database under `DATA_DIR`.
pub const SQLITE_FILE: &str = "storage.sqlite3";
/// The embedded blob directory under `DATA_DIR`.
pub const OBJECTS_DIR: &str = "objects";

/// The embedded default (`DATA_DIR`, `PUBLIC_BASE_URL`, `LOCAL_PRESIGN_SECRET`).
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    /// Where the embedded stores and generated secrets live (default `./data`).
    pub data_dir: PathBuf,
    /// The service's public address, the base of local presigned URLs; `None`: derived from
    /// the listening address (`http://127.0.0.1:<port>` when listening on every interface).
    pub public_base_url: Option<String>,
    /// The key of local presigned URLs; `None`: generated once into `<data>/presign-secret`.
    pub presign_secret: Option<SecretString>,
}

impl EmbeddedSettings {
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(SQLITE_FILE)
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.data_dir.join(OBJECTS_DIR)
    }
}

/// Limits of the HTTP server and of the transfers through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// `HTTP_KEEP_ALIVE_SECONDS` (default 30): how long an idle keep-alive connection stays
    /// open.
    pub keep_alive: Duration,
    /// `HTTP_HEADER_TIMEOUT_SECONDS` (default 10): how long a client has to send a request's
    /// head (slower ones get 408 and the connection is closed).
    pub header_timeout: Duration,
    /// `BODY_IDLE_TIMEOUT_SECONDS` (default 30): a request body that sends nothing for this
    /// long is cut off, and nothing of it is kept.
    pub body_idle_timeout: Duration,
    /// `HTTP_WORKERS` (default: one per CPU core): threads serving HTTP requests, each with its
    /// own event loop.
    pub workers: Option<usize>,
}

impl HttpSettings {
    fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let settings = Self {
            keep_alive: vars.seconds("HTTP_KEEP_ALIVE_SECONDS", 30)?,
            header_timeout: vars.seconds("HTTP_HEADER_TIMEOUT_SECONDS", 10)?,
            body_idle_timeout: vars.seconds("BODY_IDLE_TIMEOUT_SECONDS", 30)?,
            workers: match vars.parsed::<usize>("HTTP_WORKERS", 0)? {
                0 => None,
                n => Some(n),
            },
        };
        for (name, value) in [
            ("HTTP_HEADER_TIMEOUT_SECONDS", settings.header_timeout),
            ("BODY_IDLE_TIMEOUT_SECONDS", settings.body_idle_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(name, "must be at least 1"));
            }
        }
        Ok(settings)
    }
}

fn transfer_limits(vars: &Vars) -> Result<TransferLimits, ConfigError> {
    let defaults = TransferLimits::default();
    let limits = TransferLimits {
        uploads: vars.parsed("MAX_CONCURRENT_UPLOADS", defaults.uploads)?,
        uploads_per_user: vars
            .parsed("MAX_CONCURRENT_UPLOADS_PER_USER", defaults.uploads_per_user)?,
        downloads: vars.parsed("MAX_CONCURRENT_DOWNLOADS", defaults.downloads)?,
        downloads_per_user: vars.parsed(
            "MAX_CONCURRENT_DOWNLOADS_PER_USER",
            defaults.downloads_per_user,
        )?,
        retry_after: vars.seconds(
            "TRANSFER_RETRY_AFTER_SECONDS",
            defaults.retry_after.as_secs(),
        )?,
    };
    for (name, value) in [
        ("MAX_CONCURRENT_UPLOADS", limits.uploads),
        ("MAX_CONCURRENT_UPLOADS_PER_USER", limits.uploads_per_user),
        ("MAX_CONCURRENT_DOWNLOADS", limits.downloads),
        (
            "MAX_CONCURRENT_DOWNLOADS_PER_USER",
            limits.downloads_per_user,
        ),
    ] {
        if value == 0 {
            return Err(ConfigError::invalid(name, "must be at least 1"));
        }
    }
    if limits.retry_after.is_zero() {
        return Err(ConfigError::invalid(
            "TRANSFER_RETRY_AFTER_SECONDS",
            "must be at least 1",
        ));
    }
    Ok(limits)
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: AppEnv,
    pub bind_addr: SocketAddr,
    /// `None`: the embedded SQLite database under `DATA_DIR`.
    pub database: Option<DatabaseSettings>,
    /// `None`: the embedded local directory under `DATA_DIR`.
    pub object_store: Option<ObjectStoreSettings>,
    pub embedded: EmbeddedSettings,
    pub project: ProjectSettings,
    /// `None` when no `JWT_SECRET`/`JWT_PUBLIC_KEY` is set: the server then refuses to serve.
    pub jwt: Option<JwtConfig>,
    pub max_upload_bytes: u64,
    pub presign_ttl: Duration,
    pub upload_grace: Duration,
    pub transfer_lease: Duration,
    pub lock_ttl: Duration,
    pub lock_max_ttl: Duration,
    pub allow_self_approval: bool,
    pub janitor_interval: Duration,
    pub json_logs: bool,
    pub ops: OpsSettings,
    /// `MAX_CONCURRENT_*`, `TRANSFER_RETRY_AFTER_SECONDS`: caps on the proxy transfers of this
    /// instance.
    pub transfer_limits: TransferLimits,
    /// `MAX_OPEN_UPLOADS_PER_USER`: presigned uploads one user may hold open at once, counted
    /// by the metadata store (so across instances).
    pub max_open_uploads_per_user: u32,
    /// `AUDIT_DENIED_WINDOW_SECONDS`: identical refusals within one fixed window of this
    /// length are recorded once, with a count (0: each is recorded).
    pub audit_denied_window: Duration,
    /// `TRASH_RETENTION_DAYS`: how long a trashed file stays in the trash before the janitor
    /// purges it (0: at its next pass).
    pub trash_retention_days: u32,
    /// `VERSION_KEEP_LAST`, `VERSION_KEEP_DAYS` and their per-bucket settings
    /// (`VERSION_KEEP_LAST_USERS`, `VERSION_KEEP_DAYS_PROJECTS`, …): the versions the janitor
    /// prunes. Unset: every version is kept.
    pub retention: RetentionPolicy,
    /// HTTP timeouts (`HTTP_*`, `BODY_IDLE_TIMEOUT_SECONDS`).
    pub http: HttpSettings,
    /// `CORS_ALLOWED_ORIGINS`: the web origins whose pages may call the API (normalised:
    /// `scheme://host[:port]`, lowercase, default port left out). Empty: no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// `UPLOAD_SPOOL_DIR`: where a proxy upload's file waits when it comes before `bucket` and
    /// `path` (default: the system's temporary directory).
    pub upload_spool_dir: PathBuf,
    /// Events (`WEBHOOKS_FILE`, `NATS_*`, `EVENTS_*`; docs/events.md).
    pub events: EventsSettings,
    /// `AUDIT_CHAIN` (`on`): whether the metadata store chains the audit events it writes,
    /// under the current audit key (`AUDIT_KEY`, `AUDIT_KEY_ID`). `off` exists to measure what
    /// the chain costs; production refuses it.
    pub audit_chain: AuditChain,
    /// The keys `audit verify` accepts: the current one and `AUDIT_RETIRED_KEYS` (in
    /// development and testing also the built-in development key).
    pub audit_keys: AuditKeyring,
    /// True when no `AUDIT_KEY` is set (development and testing): the chain uses the built-in
    /// development key, and the server warns at start.
    pub audit_development_key: bool,
    /// Length of `JWT_SECRET`, for the production check (the secret itself stays in `jwt`).
    jwt_secret_len: usize,
}

/// Where events go and how the dispatcher delivers them (docs/events.md).
#[derive(Debug, Clone)]
pub struct EventsSettings {
    /// `EVENTS_ENABLED` (true): whether changes queue their events for delivery and the server
    /// runs a dispatcher. Off, the audit trail (and its chain) is written as before, but no
    /// event waits in the outbox and nothing is published.
    pub enabled: bool,
    /// `WEBHOOKS_FILE`'s subscriptions (none when unset).
    pub webhooks: Vec<storage_event_sinks::Subscription>,
    /// `NATS_URL` (with `NATS_SUBJECT_PREFIX`, default `storage`, and `NATS_STREAM`, default
    /// `STORAGE_EVENTS`).
    pub nats: Option<storage_event_sinks::NatsConfig>,
    /// `EVENTS_POLL_MS` (500): how often an idle dispatcher looks for due events.
    pub poll_interval: Duration,
    /// `EVENTS_MAX_ATTEMPTS` (10), `EVENTS_BACKOFF_BASE_MS` (1000),
    /// `EVENTS_BACKOFF_MAX_SECONDS` (600), `EVENTS_LEASE_SECONDS` (60), `EVENTS_BATCH` (500).
    pub dispatch: storage_domain::service::events::DispatchSettings,
    /// `EVENTS_TIMEOUT_SECONDS` (10): one webhook request, or one NATS acknowledgement.
    pub timeout: Duration,
}

impl EventsSettings {
    fn from_vars(vars: &Vars, env: AppEnv) -> Result<Self, ConfigError> {
        let webhooks = match vars.get("WEBHOOKS_FILE") {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path.trim()).map_err(|e| {
                    ConfigError::invalid("WEBHOOKS_FILE", format!("cannot read {path}: {e}"))
                })?;
                let allow_http = matches!(env, AppEnv::Development | AppEnv::Testing);
                storage_event_sinks::parse_subscriptions(&text, allow_http)
                    .map_err(|e| ConfigError::invalid("WEBHOOKS_FILE", e))?
            }
        };
        let timeout = vars.seconds("EVENTS_TIMEOUT_SECONDS", 10)?;
        let nats = vars.get("NATS_URL").map(|url| {
            let prefix = vars.get("NATS_SUBJECT_PREFIX").unwrap_or("storage").trim();
            storage_event_sinks::NatsConfig {
                url: url.trim().to_owned(),
                subject_prefix: prefix.to_owned(),
                stream: vars
                    .get("NATS_STREAM")
                    .unwrap_or("STORAGE_EVENTS")
                    .trim()
                    .to_owned(),
                timeout,
            }
        });
        if let Some(n) = &nats
            && (n.subject_prefix.is_empty()
                || n.subject_prefix
                    .contains(|c: char| c.is_whitespace() || c == '*' || c == '>'))
        {
            return Err(ConfigError::invalid(
                "NATS_SUBJECT_PREFIX",
                "a subject prefix: tokens separated by dots, no spaces or wildcards",
            ));
        }
        let dispatch = storage_domain::service::events::DispatchSettings {
            lease: vars.seconds("EVENTS_LEASE_SECONDS", 60)?,
            batch: vars.parsed("EVENTS_BATCH", 500)?,
            delivery_timeout: timeout,
            max_attempts: vars.parsed("EVENTS_MAX_ATTEMPTS", 10)?,
            backoff_base: vars.millis("EVENTS_BACKOFF_BASE_MS", 1000)?,
            backoff_max: vars.seconds("EVENTS_BACKOFF_MAX_SECONDS", 600)?,
        };
        if dispatch.max_attempts == 0 || dispatch.batch == 0 {
            return Err(ConfigError::invalid(
                "EVENTS_MAX_ATTEMPTS",
                "EVENTS_MAX_ATTEMPTS and EVENTS_BATCH must be at least 1",
            ));
        }
        if dispatch.lease <= timeout {
            return Err(ConfigError::invalid(
                "EVENTS_LEASE_SECONDS",
                "must be longer than EVENTS_TIMEOUT_SECONDS (a claim outlives its delivery)",
            ));
        }
        Ok(Self {
            enabled: vars.flag("EVENTS_ENABLED", true)?,
            webhooks,
            nats,
            poll_interval: vars.millis("EVENTS_POLL_MS", 500)?,
            dispatch,
            timeout,
        })
    }
}

/// The longest `TRASH_RETENTION_DAYS` accepted.
const MAX_TRASH_RETENTION_DAYS: u32 = 3650;

impl Config {
    /// `TRASH_RETENTION_DAYS` as a duration.
    pub fn trash_retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.trash_retention_days) * 86_400)
    }

    /// Reads every variable, checks it, and refuses unsafe production settings.
    ///
    /// # Errors
    /// The first problem found, naming its variable.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let env = app_env_of(&vars.values)?;
        let database = vars
            .secret("DATABASE_URL")
            .map(|url| -> Result<_, ConfigError> {
                Ok(DatabaseSettings {
                    url,
                    pool_max_size: vars.parsed("DB_POOL_MAX_SIZE", 16)?,
                    pool_wait_timeout: vars.millis("DB_POOL_WAIT_TIMEOUT_MS", 2_000)?,
                    pool_create_timeout: vars.millis("DB_POOL_CREATE_TIMEOUT_MS", 3_000)?,
                    pool_recycle_timeout: vars.millis("DB_POOL_RECYCLE_TIMEOUT_MS", 1_000)?,
                    statement_timeout: vars.millis("DB_STATEMENT_TIMEOUT_MS", 10_000)?,
                })
            })
            .transpose()?;
        let object_store = match vars.get("MINIO_ENDPOINT") {
            None => None,
            Some(endpoint) => Some(ObjectStoreSettings {
                endpoint: endpoint.trim().to_owned(),
                access_key: vars
                    .get("MINIO_ACCESS_KEY")
                    .ok_or_else(|| {
                        ConfigError::invalid("MINIO_ACCESS_KEY", "required with MINIO_ENDPOINT")
                    })?
                    .to_owned(),
                secret_key: vars.secret("MINIO_SECRET_KEY").ok_or_else(|| {
                    ConfigError::invalid("MINIO_SECRET_KEY", "required with MINIO_ENDPOINT")
                })?,
                region: vars.get("MINIO_REGION").unwrap_or("us-east-1").to_owned(),
                secure: vars.flag("MINIO_SECURE", false)?,
                path_style: vars.flag("MINIO_PATH_STYLE", true)?,
                bucket_users: vars.get("MINIO_BUCKET_USERS").unwrap_or("users").to_owned(),
                bucket_companies: vars
                    .get("MINIO_BUCKET_COMPANIES")
                    .unwrap_or("companies")
                    .to_owned(),
                bucket_projects: vars
                    .get("MINIO_BUCKET_PROJECTS")
                    .unwrap_or("projects")
                    .to_owned(),
                create_buckets: vars.flag("MINIO_CREATE_BUCKETS", true)?,
                connect_timeout: vars.millis("MINIO_CONNECT_TIMEOUT_MS", 3_000)?,
                request_timeout: vars.millis("MINIO_REQUEST_TIMEOUT_MS", 30_000)?,
                idle_timeout: vars.millis("MINIO_IDLE_TIMEOUT_MS", 30_000)?,
                public_endpoint: vars
                    .get("MINIO_PUBLIC_ENDPOINT")
                    .map(|v| v.trim().to_owned()),
                public_secure: vars
                    .flag("MINIO_PUBLIC_SECURE", vars.flag("MINIO_SECURE", false)?)?,
                upload_buffer_bytes: vars.parsed("UPLOAD_BUFFER_BYTES", 64 * 1024 * 1024)?,
                upload_buffer_wait: vars.seconds("UPLOAD_BUFFER_WAIT_SECONDS", 10)?,
                download_segment_bytes: vars.parsed(
                    "DOWNLOAD_SEGMENT_BYTES",
                    storage_s3_minio::DEFAULT_DOWNLOAD_SEGMENT_BYTES,
                )?,
                download_parallel_segments: vars.parsed(
                    "DOWNLOAD_PARALLEL_SEGMENTS",
                    storage_s3_minio::DEFAULT_DOWNLOAD_PARALLEL_SEGMENTS,
                )?,
                download_read_ahead_bytes: vars.parsed(
                    "DOWNLOAD_READ_AHEAD_BYTES",
                    storage_s3_minio::DEFAULT_DOWNLOAD_READ_AHEAD_BYTES,
                )?,
            }),
        };
        let lookup = |name: &str| vars.get(name).map(str::to_owned);
        let data_dir = PathBuf::from(vars.get("DATA_DIR").unwrap_or("./data"));
        let project = match (
            vars.get("PROJECT_SERVICE_URL"),
            vars.get("PROJECT_POLICY_FILE"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    "PROJECT_POLICY_FILE",
                    "set PROJECT_SERVICE_URL or PROJECT_POLICY_FILE, not both",
                ));
            }
            (Some(_), None) => ProjectSettings::Remote(
                ProjectServiceConfig::from_lookup(lookup)
                    .map_err(|e| ConfigError::invalid("PROJECT_SERVICE_URL", e.to_string()))?,
            ),
            (None, Some(file)) => ProjectSettings::Policy(PathBuf::from(file.trim())),
            (None, None) => {
                let default = data_dir.join(DEFAULT_POLICY_FILE);
                if env == AppEnv::Development && default.is_file() {
                    ProjectSettings::Policy(default)
                } else {
                    ProjectSettings::Unconfigured
                }
            }
        };
        let public_base_url = vars
            .get("PUBLIC_BASE_URL")
            .map(|raw| {
                let url = raw.trim().trim_end_matches('/');
                let host = url
                    .strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"));
                match host {
                    Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => {
                        Ok(url.to_owned())
                    }
                    _ => Err(ConfigError::invalid(
                        "PUBLIC_BASE_URL",
                        format!("'{raw}' is not an http:// or https:// URL"),
                    )),
                }
            })
            .transpose()?;
        let presign_secret = vars.secret("LOCAL_PRESIGN_SECRET");
        if vars
            .get("LOCAL_PRESIGN_SECRET")
            .is_some_and(|s| s.len() < 32)
        {
            return Err(ConfigError::invalid(
                "LOCAL_PRESIGN_SECRET",
                "must be at least 32 bytes",
            ));
        }
        let any_jwt_key = JWT_KEY_VARS.iter().any(|name| vars.get(name).is_some());
        let jwt = if any_jwt_key {
            Some(
                JwtConfig::from_lookup(lookup)
                    .map_err(|e| ConfigError::invalid("JWT_SECRET", e.to_string()))?,
            )
        } else {
            None
        };
        let (audit_keys, audit_development_key) = audit_keys(vars, env)?;
        let config = Config {
            env,
            bind_addr: vars.parsed("BIND_ADDR", SocketAddr::from(([0, 0, 0, 0], 5000)))?,
            database,
            object_store,
            embedded: EmbeddedSettings {
                data_dir,
                public_base_url,
                presign_secret,
            },
            project,
            jwt,
            max_upload_bytes: vars.parsed("MAX_UPLOAD_BYTES", 5 * 1024 * 1024 * 1024)?,
            presign_ttl: vars.seconds("PRESIGN_TTL_SECONDS", 900)?,
            upload_grace: vars.seconds("UPLOAD_GRACE_SECONDS", 3_600)?,
            transfer_lease: vars.seconds("TRANSFER_LEASE_SECONDS", 300)?,
            lock_ttl: vars.seconds("LOCK_TTL_SECONDS", 86_400)?,
            lock_max_ttl: vars.seconds("LOCK_MAX_TTL_SECONDS", 30 * 86_400)?,
            allow_self_approval: vars.flag("ALLOW_SELF_APPROVAL", false)?,
            janitor_interval: vars.seconds("JANITOR_INTERVAL_SECONDS", 60)?,
            json_logs: vars.flag("LOG_JSON", env == AppEnv::Production)?,
            ops: OpsSettings::from_vars(vars)?,
            transfer_limits: transfer_limits(vars)?,
            max_open_uploads_per_user: vars.parsed("MAX_OPEN_UPLOADS_PER_USER", 100)?,
            audit_denied_window: vars.seconds("AUDIT_DENIED_WINDOW_SECONDS", 60)?,
            trash_retention_days: vars.parsed("TRASH_RETENTION_DAYS", 30)?,
            retention: retention_policy(vars)?,
            http: HttpSettings::from_vars(vars)?,
            cors_allowed_origins: vars
                .get("CORS_ALLOWED_ORIGINS")
                .map(parse_origins)
                .transpose()?
                .unwrap_or_default(),
            upload_spool_dir: vars
                .get("UPLOAD_SPOOL_DIR")
                .map_or_else(std::env::temp_dir, |d| PathBuf::from(d.trim())),
            events: EventsSettings::from_vars(vars, env)?,
            audit_chain: if vars.flag("AUDIT_CHAIN", true)? {
                AuditChain::On(Arc::clone(audit_keys.current()))
            } else {
                AuditChain::Off
            },
            audit_keys,
            audit_development_key,
            jwt_secret_len: vars.get("JWT_SECRET").map_or(0, str::len),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.max_open_uploads_per_user == 0 {
            return Err(ConfigError::invalid(
                "MAX_OPEN_UPLOADS_PER_USER",
                "must be at least 1",
            ));
        }
        if self.trash_retention_days > MAX_TRASH_RETENTION_DAYS {
            return Err(ConfigError::invalid(
                "TRASH_RETENTION_DAYS",
                "must be 0 to 3650 (ten years)",
            ));
        }
        if self.audit_denied_window > Duration::from_secs(86_400) {
            return Err(ConfigError::invalid(
                "AUDIT_DENIED_WINDOW_SECONDS",
                "must be at most 86400 (one day)",
            ));
        }
        if self.presign_ttl.is_zero() || self.presign_ttl > Duration::from_secs(7 * 86_400) {
            return Err(ConfigError::invalid(
                "PRESIGN_TTL_SECONDS",
                "must be 1 to 604800 (7 days)",
            ));
        }
        if self.lock_ttl.is_zero() || self.lock_ttl > self.lock_max_ttl {
            return Err(ConfigError::invalid(
                "LOCK_TTL_SECONDS",
                "must be 1 to LOCK_MAX_TTL_SECONDS",
            ));
        }
        if self.transfer_lease < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "TRANSFER_LEASE_SECONDS",
                "must be at least 1",
            ));
        }
        if let Some(metrics) = self.ops.metrics_bind_addr
            && metrics.port() != 0
            && metrics.port() == self.bind_addr.port()
        {
            return Err(ConfigError::invalid(
                "METRICS_BIND_ADDR",
                "must not use BIND_ADDR's port",
            ));
        }
        if self.max_upload_bytes == 0 {
            return Err(ConfigError::invalid(
                "MAX_UPLOAD_BYTES",
                "must be at least 1",
            ));
        }
        if self.object_store.is_some() && self.max_upload_bytes > storage_s3_minio::MAX_PUT_BYTES {
            return Err(ConfigError::invalid(
                "MAX_UPLOAD_BYTES",
                format!(
                    "at most {} with S3 (10000 parts of 5 MiB)",
                    storage_s3_minio::MAX_PUT_BYTES
                ),
            ));
        }
        if let Some(s3) = &self.object_store
            && s3.upload_buffer_bytes < storage_s3_minio::PART_SIZE as u64
        {
            return Err(ConfigError::invalid(
                "UPLOAD_BUFFER_BYTES",
                format!(
                    "must hold at least one part of {} bytes",
                    storage_s3_minio::PART_SIZE
                ),
            ));
        }
        if let Some(s3) = &self.object_store {
            s3.validate_downloads()?;
        }
        if self.env == AppEnv::Staging && self.audit_development_key {
            return Err(audit_key_required(self.env));
        }
        if self.env != AppEnv::Production {
            return Ok(());
        }
        // Production refuses what is only fit for a laptop.
        if !self.audit_chain.is_on() {
            return Err(ConfigError::invalid(
                "AUDIT_CHAIN",
                "off is refused in production (it leaves the audit trail without its chain; it \
                 exists only to measure the chain's cost outside production)",
            ));
        }
        if self.database.is_none() {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "required in production (the embedded SQLite default is for development only)",
            ));
        }
        if self.object_store.is_none() {
            return Err(ConfigError::invalid(
                "MINIO_ENDPOINT",
                "required in production (the embedded local directory is for development only)",
            ));
        }
        match &self.jwt {
            None => {
                return Err(ConfigError::invalid(
                    "JWT_SECRET",
                    "a JWT key is required in production (JWT_SECRET or JWT_PUBLIC_KEY)",
                ));
            }
            Some(jwt) if jwt.algorithm == JwtAlgorithm::Hs256 && self.jwt_secret_len < 32 => {
                return Err(ConfigError::invalid(
                    "JWT_SECRET",
                    "must be at least 32 bytes in production",
                ));
            }
            Some(_) => {}
        }
        if matches!(self.project, ProjectSettings::Unconfigured) {
            return Err(ConfigError::invalid(
                "PROJECT_SERVICE_URL",
                "required in production (or PROJECT_POLICY_FILE)",
            ));
        }
        if self.audit_development_key {
            return Err(audit_key_required(self.env));
        }
        Ok(())
    }

    /// True when one of the stores is the embedded default.
    pub fn uses_embedded(&self) -> bool {
        self.database.is_none() || self.object_store.is_none()
    }

    /// The base of local presigned URLs: `PUBLIC_BASE_URL`, else the listening address with
    /// `port` (`127.0.0.1` when listening on every interface).
    pub fn public_base_url(&self, port: u16) -> String {
        if let Some(url) = &self.embedded.public_base_url {
            return url.clone();
        }
        format!("http://{}", reachable_addr(self.bind_addr, port))
    }
}

/// The web origin of an `http(s)://` URL: `scheme://host[:port]`, lowercase, without the
/// scheme's default port; `None` when `raw` is not such a URL or has a path, query or fragment.
pub fn web_origin(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then(|| url.origin().ascii_serialization())
}

/// `CORS_ALLOWED_ORIGINS`: comma-separated exact origins.
fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    let mut origins: Vec<String> = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if item.contains('*') {
            return Err(ConfigError::invalid(
                "CORS_ALLOWED_ORIGINS",
                format!(
                    "'{item}': wildcards are refused, since browsers send the session cookie                      along (credentials are allowed): list each origin exactly, e.g.                      https://app.example.com"
                ),
            ));
        }
        let origin = web_origin(item).ok_or_else(|| {
            ConfigError::invalid(
                "CORS_ALLOWED_ORIGINS",
                format!(
                    "'{item}' is not a web origin (scheme://host[:port], http or https, no path)"
                ),
            )
        })?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// The address a local client reaches a server listening on `bind` (port `port`) at.
pub fn reachable_addr(bind: SocketAddr, port: u16) -> SocketAddr {
    let ip = match bind.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, port)
}

/// The JWT variables that configure a key.
const JWT_KEY_VARS: [&str; 3] = ["JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE"];

/// In development and testing, with no JWT key configured: the secret generated once into
/// `<DATA_DIR>/jwt-secret` (mode 0600) becomes `JWT_SECRET`, so that `serve` and `token` agree
/// with no configuration at all. Returns the file used, if any. Elsewhere (staging,
/// production) or with a key configured, `vars` is unchanged.
///
/// # Errors
/// A bad `APP_ENV`, or the file cannot be created or read (named as `DATA_DIR`).
pub fn with_generated_jwt_secret(mut vars: Vars) -> Result<(Vars, Option<PathBuf>), ConfigError> {
    let env = app_env_of(&vars.values)?;
    let configured = JWT_KEY_VARS.iter().any(|name| vars.get(name).is_some());
    if configured || !matches!(env, AppEnv::Development | AppEnv::Testing) {
        return Ok((vars, None));
    }
    let path = PathBuf::from(vars.get("DATA_DIR").unwrap_or("./data"))
        .join(crate::secrets::JWT_SECRET_FILE);
    let secret = crate::secrets::load_or_create(&path).map_err(|e| {
        ConfigError::invalid(
            "DATA_DIR",
            format!(
                "cannot create or read the development JWT secret {}: {e}",
                path.display()
            ),
        )
    })?;
    vars.values.insert("JWT_SECRET".to_owned(), secret);
    Ok((vars, Some(path)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars::from_map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_are_the_embedded_development_setup() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.env, AppEnv::Development);
        assert!(c.database.is_none() && c.object_store.is_none());
        assert_eq!(c.bind_addr.to_string(), "0.0.0.0:5000");
        assert_eq!(c.lock_ttl, Duration::from_secs(86_400));
        assert!(c.jwt.is_none());
        assert!(matches!(c.project, ProjectSettings::Unconfigured));
    }

    #[test]
    fn flask_env_is_an_alias() {
        let c = Config::from_vars(&vars(&[("FLASK_ENV", "testing")])).unwrap();
        assert_eq!(c.env, AppEnv::Testing);
        let c = Config::from_vars(&vars(&[
            ("FLASK_ENV", "testing"),
            ("APP_ENV", "staging"),
            ("AUDIT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        ]))
        .unwrap();
        assert_eq!(c.env, AppEnv::Staging);
    }

    #[test]
    fn production_refuses_unsafe_settings_naming_the_variable() {
        let base = [
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/storage"),
            ("MINIO_ENDPOINT", "minio:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PROJECT_SERVICE_URL", "http://project:5001"),
            ("AUDIT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        ];
        assert!(Config::from_vars(&vars(&base)).is_ok());
        for (drop, expected) in [
            ("DATABASE_URL", "DATABASE_URL"),
            ("MINIO_ENDPOINT", "MINIO_ENDPOINT"),
            ("JWT_SECRET", "JWT_SECRET"),
            ("PROJECT_SERVICE_URL", "PROJECT_SERVICE_URL"),
            ("AUDIT_KEY", "AUDIT_KEY"),
        ] {
            let v: Vec<_> = base.iter().copied().filter(|(k, _)| *k != drop).collect();
            let err = Config::from_vars(&vars(&v)).unwrap_err();
            assert_eq!(err.variable, expected, "{err}");
        }
        let mut weak = base.to_vec();
        weak.retain(|(k, _)| *k != "JWT_SECRET");
        weak.push(("JWT_SECRET", "short"));
        assert_eq!(
            Config::from_vars(&vars(&weak)).unwrap_err().variable,
            "JWT_SECRET"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (k, v) in [
            ("MAX_UPLOAD_BYTES", "lots"),
            ("BIND_ADDR", "nowhere"),
            ("APP_ENV", "moon"),
            ("LOCK_TTL_SECONDS", "0"),
        ] {
            let err = Config::from_vars(&vars(&[(k, v)])).unwrap_err();
            assert_eq!(err.variable, k, "{err}");
        }
        let err = Config::from_vars(&vars(&[("MINIO_ENDPOINT", "x:9000")])).unwrap_err();
        assert_eq!(err.variable, "MINIO_ACCESS_KEY");
        let err = Config::from_vars(&vars(&[
            ("MINIO_ENDPOINT", "x:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
            ("MINIO_SECURE", "maybe"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "MINIO_SECURE");
    }

    #[test]
    fn audit_chain_is_on_by_default_and_off_only_outside_production() {
        assert!(Config::from_vars(&vars(&[])).unwrap().audit_chain.is_on());
        for env in ["development", "testing", "staging"] {
            let c = Config::from_vars(&vars(&[
                ("APP_ENV", env),
                ("AUDIT_CHAIN", "off"),
                ("AUDIT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
            ]))
            .unwrap();
            assert!(!c.audit_chain.is_on(), "{env}");
        }
        let err = Config::from_vars(&vars(&[("AUDIT_CHAIN", "sometimes")])).unwrap_err();
        assert_eq!(err.variable, "AUDIT_CHAIN");
        let production = [
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/storage"),
            ("MINIO_ENDPOINT", "minio:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PROJECT_SERVICE_URL", "http://project:5001"),
            ("AUDIT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        ];
        let mut off = production.to_vec();
        off.push(("AUDIT_CHAIN", "off"));
        let err = Config::from_vars(&vars(&off)).unwrap_err();
        assert_eq!(err.variable, "AUDIT_CHAIN", "{err}");
        assert!(err.to_string().contains("production"), "{err}");
        let mut on = production.to_vec();
        on.push(("AUDIT_CHAIN", "on"));
        assert!(Config::from_vars(&vars(&on)).unwrap().audit_chain.is_on());
    }

    #[test]
    fn the_audit_key_is_required_in_staging_and_production_and_rotates() {
        const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        const OLD: &str = "b2xkLWtleS1vbGQta2V5LW9sZC1rZXktb2xkLWtleSE=";
        // Development and testing: the built-in key, flagged (the server warns).
        for env in ["development", "testing"] {
            let c = Config::from_vars(&vars(&[("APP_ENV", env)])).unwrap();
            assert!(c.audit_development_key, "{env}");
            assert_eq!(c.audit_keys.current().id(), DEVELOPMENT_KEY_ID);
        }
        // Staging: refused without it, naming it.
        let err = Config::from_vars(&vars(&[("APP_ENV", "staging")])).unwrap_err();
        assert_eq!(err.variable, "AUDIT_KEY", "{err}");
        assert!(err.to_string().contains("required in staging"), "{err}");
        let c = Config::from_vars(&vars(&[
            ("APP_ENV", "staging"),
            ("AUDIT_KEY", KEY),
            ("AUDIT_KEY_ID", "2026"),
            ("AUDIT_RETIRED_KEYS", &format!("2025:{OLD}")),
        ]))
        .unwrap();
        assert!(!c.audit_development_key);
        assert_eq!(c.audit_keys.current().id(), "2026");
        assert!(c.audit_keys.get("2025").is_some());
        assert!(
            c.audit_keys.get(DEVELOPMENT_KEY_ID).is_none(),
            "never the public key outside development and testing"
        );
        match &c.audit_chain {
            AuditChain::On(key) => assert_eq!(key.id(), "2026"),
            AuditChain::Off => panic!("on by default"),
        }
        assert!(!format!("{c:?}").contains(KEY), "the key is not shown");
        // Default id; the development key still verifies in development.
        let c = Config::from_vars(&vars(&[("AUDIT_KEY", KEY)])).unwrap();
        assert_eq!(c.audit_keys.current().id(), "k1");
        assert!(c.audit_keys.get(DEVELOPMENT_KEY_ID).is_some());
        // Bad values name their variable.
        for (pairs, variable) in [
            (vec![("AUDIT_KEY", "c2hvcnQ=")], "AUDIT_KEY"),
            (vec![("AUDIT_KEY", "not base64!")], "AUDIT_KEY"),
            (
                vec![("AUDIT_KEY", KEY), ("AUDIT_KEY_ID", "a:b")],
                "AUDIT_KEY",
            ),
            (
                vec![("AUDIT_KEY", KEY), ("AUDIT_KEY_ID", DEVELOPMENT_KEY_ID)],
                "AUDIT_KEY_ID",
            ),
            (
                vec![("AUDIT_KEY", KEY), ("AUDIT_RETIRED_KEYS", "nocolon")],
                "AUDIT_RETIRED_KEYS",
            ),
            (
                vec![
                    ("AUDIT_KEY", KEY),
                    ("AUDIT_RETIRED_KEYS", &format!("k1:{OLD}")),
                ],
                "AUDIT_RETIRED_KEYS",
            ),
        ] {
            let err = Config::from_vars(&vars(&pairs)).unwrap_err();
            assert_eq!(err.variable, variable, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn jwt_settings_come_from_the_jwt_crate() {
        assert!(Config::from_vars(&vars(&[])).unwrap().jwt.is_none());
        let c = Config::from_vars(&vars(&[("JWT_SECRET", "s3cret")])).unwrap();
        assert_eq!(c.jwt.unwrap().algorithm, JwtAlgorithm::Hs256);
        let err = Config::from_vars(&vars(&[("JWT_SECRET", "s"), ("JWT_ALGORITHM", "RS256")]))
            .unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET", "{err}");
    }

    #[test]
    fn embedded_settings_and_their_checks() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.embedded.data_dir, PathBuf::from("./data"));
        assert_eq!(
            c.embedded.sqlite_path(),
            PathBuf::from("./data/storage.sqlite3")
        );
        assert_eq!(c.embedded.objects_dir(), PathBuf::from("./data/objects"));
        assert!(c.uses_embedded());
        // The default base URL follows the port actually bound; 0.0.0.0 becomes 127.0.0.1.
        assert_eq!(c.public_base_url(5123), "http://127.0.0.1:5123");
        let c = Config::from_vars(&vars(&[("BIND_ADDR", "[::]:7000")])).unwrap();
        assert_eq!(c.public_base_url(7000), "http://[::1]:7000");
        let c = Config::from_vars(&vars(&[("BIND_ADDR", "10.1.2.3:7000")])).unwrap();
        assert_eq!(c.public_base_url(7000), "http://10.1.2.3:7000");
        let c = Config::from_vars(&vars(&[
            ("DATA_DIR", "/srv/storage"),
            ("PUBLIC_BASE_URL", "https://files.example.com/"),
            ("LOCAL_PRESIGN_SECRET", "0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap();
        assert_eq!(c.embedded.data_dir, PathBuf::from("/srv/storage"));
        assert_eq!(c.public_base_url(1), "https://files.example.com");
        assert!(c.embedded.presign_secret.is_some());
        for (k, v) in [
            ("PUBLIC_BASE_URL", "files.example.com"),
            ("PUBLIC_BASE_URL", "ftp://x"),
            ("PUBLIC_BASE_URL", "http://"),
            ("LOCAL_PRESIGN_SECRET", "short"),
        ] {
            let err = Config::from_vars(&vars(&[(k, v)])).unwrap_err();
            assert_eq!(err.variable, k, "{err}");
        }
    }

    #[test]
    fn each_store_is_chosen_on_its_own() {
        let only_db = Config::from_vars(&vars(&[("DATABASE_URL", "postgres://db/x")])).unwrap();
        assert!(only_db.database.is_some() && only_db.object_store.is_none());
        assert!(only_db.uses_embedded());
        let only_s3 = Config::from_vars(&vars(&[
            ("MINIO_ENDPOINT", "m:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
        ]))
        .unwrap();
        assert!(only_s3.database.is_none() && only_s3.object_store.is_some());
        assert!(only_s3.uses_embedded());
    }

    #[test]
    fn project_access_settings() {
        let c = Config::from_vars(&vars(&[("PROJECT_POLICY_FILE", "/etc/policy.json")])).unwrap();
        assert!(
            matches!(&c.project, ProjectSettings::Policy(p) if p == Path::new("/etc/policy.json"))
        );
        let err = Config::from_vars(&vars(&[
            ("PROJECT_POLICY_FILE", "/etc/policy.json"),
            ("PROJECT_SERVICE_URL", "http://project:5001"),
        ]))
        .unwrap_err();
        assert_eq!(err.variable, "PROJECT_POLICY_FILE");

        // In development, <DATA_DIR>/project-policy.json is used when it exists.
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let c = Config::from_vars(&vars(&[("DATA_DIR", data)])).unwrap();
        assert!(matches!(c.project, ProjectSettings::Unconfigured));
        std::fs::write(dir.path().join("project-policy.json"), r#"{"rules": []}"#).unwrap();
        let c = Config::from_vars(&vars(&[("DATA_DIR", data)])).unwrap();
        assert!(
            matches!(&c.project, ProjectSettings::Policy(p) if *p == dir.path().join("project-policy.json"))
        );
        // Not in another environment.
        let c = Config::from_vars(&vars(&[("DATA_DIR", data), ("APP_ENV", "testing")])).unwrap();
        assert!(matches!(c.project, ProjectSettings::Unconfigured));
    }

    #[test]
    fn production_accepts_a_policy_file_but_no_embedded_store() {
        let base = [
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://db/storage"),
            ("MINIO_ENDPOINT", "minio:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("PROJECT_POLICY_FILE", "/etc/storage/policy.json"),
            ("AUDIT_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
        ];
        assert!(Config::from_vars(&vars(&base)).is_ok());
        let lone_db: Vec<_> = base
            .iter()
            .copied()
            .filter(|(k, _)| !k.starts_with("MINIO"))
            .collect();
        assert_eq!(
            Config::from_vars(&vars(&lone_db)).unwrap_err().variable,
            "MINIO_ENDPOINT"
        );
    }

    #[test]
    fn the_development_jwt_secret_is_generated_once_under_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap();
        let (with, path) = with_generated_jwt_secret(vars(&[("DATA_DIR", data)])).unwrap();
        let path = path.unwrap();
        assert_eq!(path, dir.path().join("jwt-secret"));
        let secret = with.get("JWT_SECRET").unwrap().to_owned();
        let c = Config::from_vars(&with).unwrap();
        assert!(c.jwt.is_some());
        let (again, _) = with_generated_jwt_secret(vars(&[("DATA_DIR", data)])).unwrap();
        assert_eq!(again.get("JWT_SECRET"), Some(secret.as_str()));

        // A configured key, staging or production: nothing generated, nothing changed.
        let other = tempfile::tempdir().unwrap();
        let other_data = other.path().to_str().unwrap();
        for pairs in [
            vec![("DATA_DIR", other_data), ("JWT_SECRET", "mine")],
            vec![("DATA_DIR", other_data), ("JWT_PUBLIC_KEY", "pem")],
            vec![("DATA_DIR", other_data), ("APP_ENV", "staging")],
            vec![("DATA_DIR", other_data), ("APP_ENV", "production")],
        ] {
            let (out, path) = with_generated_jwt_secret(vars(&pairs)).unwrap();
            assert!(path.is_none(), "{pairs:?}");
            assert_eq!(
                out.get("JWT_SECRET"),
                pairs
                    .iter()
                    .find(|(k, _)| *k == "JWT_SECRET")
                    .map(|(_, v)| *v)
            );
        }
        assert!(!other.path().join("jwt-secret").exists());
    }

    #[test]
    fn operations_settings() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(
            c.ops,
            OpsSettings {
                metrics_enabled: true,
                metrics_bind_addr: None,
                readiness_delay: Duration::from_secs(5),
                shutdown_grace: Duration::from_secs(30),
            }
        );
        let c = Config::from_vars(&vars(&[
            ("METRICS_BIND_ADDR", "127.0.0.1:9464"),
            ("SHUTDOWN_READINESS_DELAY_SECONDS", "0"),
            ("SHUTDOWN_GRACE_SECONDS", "60"),
        ]))
        .unwrap();
        assert_eq!(c.ops.metrics_bind_addr, Some(([127, 0, 0, 1], 9464).into()));
        assert_eq!(c.ops.readiness_delay, Duration::ZERO);
        assert_eq!(c.ops.shutdown_grace, Duration::from_secs(60));
        for pairs in [
            vec![("METRICS_BIND_ADDR", "nowhere")],
            vec![("METRICS_BIND_ADDR", "0.0.0.0:5000")],
            vec![
                ("METRICS_BIND_ADDR", "0.0.0.0:9464"),
                ("METRICS_ENABLED", "false"),
            ],
        ] {
            let err = Config::from_vars(&vars(&pairs)).unwrap_err();
            assert_eq!(err.variable, "METRICS_BIND_ADDR", "{err}");
        }
        let err = Config::from_vars(&vars(&[("SHUTDOWN_GRACE_SECONDS", "0")])).unwrap_err();
        assert_eq!(err.variable, "SHUTDOWN_GRACE_SECONDS");
        let err = Config::from_vars(&vars(&[("METRICS_ENABLED", "perhaps")])).unwrap_err();
        assert_eq!(err.variable, "METRICS_ENABLED");
    }

    #[test]
    fn events_are_on_by_default_and_switch_off() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert!(c.events.enabled);
        assert_eq!(c.events.dispatch.batch, 500);
        for off in ["false", "0", "off", "NO"] {
            let c = Config::from_vars(&vars(&[("EVENTS_ENABLED", off)])).unwrap();
            assert!(!c.events.enabled, "{off}");
        }
        let c = Config::from_vars(&vars(&[("EVENTS_ENABLED", "true")])).unwrap();
        assert!(c.events.enabled);
        let err = Config::from_vars(&vars(&[("EVENTS_ENABLED", "maybe")])).unwrap_err();
        assert_eq!(err.variable, "EVENTS_ENABLED", "{err}");
    }

    #[test]
    fn trash_retention_defaults_to_30_days_and_is_bounded() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.trash_retention_days, 30);
        assert_eq!(c.trash_retention(), Duration::from_secs(30 * 86_400));
        let c = Config::from_vars(&vars(&[("TRASH_RETENTION_DAYS", "0")])).unwrap();
        assert_eq!(c.trash_retention(), Duration::ZERO);
        for bad in ["3651", "-1", "ten"] {
            let err = Config::from_vars(&vars(&[("TRASH_RETENTION_DAYS", bad)])).unwrap_err();
            assert!(
                err.to_string().contains("TRASH_RETENTION_DAYS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn version_retention_is_unset_by_default_and_set_per_bucket() {
        use storage_domain::model::BucketKind::{Companies, Projects, Users};
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.retention, RetentionPolicy::default());
        assert!(
            BucketKind::ALL
                .iter()
                .all(|b| c.retention.rule_for(*b).keeps_all())
        );
        let c = Config::from_vars(&vars(&[
            ("VERSION_KEEP_LAST", "10"),
            ("VERSION_KEEP_DAYS", " 30 "),
            ("VERSION_KEEP_LAST_PROJECTS", "3"),
            ("VERSION_KEEP_DAYS_USERS", "7"),
        ]))
        .unwrap();
        let rule = |keep_last, keep_days| RetentionRule {
            keep_last,
            keep_days,
        };
        assert_eq!(c.retention.rule_for(Users), rule(Some(10), Some(7)));
        assert_eq!(c.retention.rule_for(Companies), rule(Some(10), Some(30)));
        assert_eq!(c.retention.rule_for(Projects), rule(Some(3), Some(30)));
        for name in [
            "VERSION_KEEP_LAST",
            "VERSION_KEEP_DAYS",
            "VERSION_KEEP_LAST_COMPANIES",
            "VERSION_KEEP_DAYS_PROJECTS",
        ] {
            for bad in ["0", "-1", "three"] {
                let err = Config::from_vars(&vars(&[(name, bad)])).unwrap_err();
                assert_eq!(err.variable, name, "{err}");
            }
        }
    }

    #[test]
    fn transfer_limits_and_http_timeouts() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(c.transfer_limits, TransferLimits::default());
        assert_eq!(c.max_open_uploads_per_user, 100);
        assert_eq!(c.audit_denied_window, Duration::from_secs(60));
        assert_eq!(
            c.http,
            HttpSettings {
                keep_alive: Duration::from_secs(30),
                header_timeout: Duration::from_secs(10),
                body_idle_timeout: Duration::from_secs(30),
                workers: None,
            }
        );
        let c = Config::from_vars(&vars(&[
            ("MAX_CONCURRENT_UPLOADS", "3"),
            ("MAX_CONCURRENT_UPLOADS_PER_USER", "2"),
            ("MAX_CONCURRENT_DOWNLOADS", "9"),
            ("MAX_CONCURRENT_DOWNLOADS_PER_USER", "1"),
            ("TRANSFER_RETRY_AFTER_SECONDS", "7"),
            ("BODY_IDLE_TIMEOUT_SECONDS", "2"),
            ("HTTP_KEEP_ALIVE_SECONDS", "0"),
            ("HTTP_HEADER_TIMEOUT_SECONDS", "4"),
            ("HTTP_WORKERS", "3"),
            ("MAX_OPEN_UPLOADS_PER_USER", "3"),
            ("AUDIT_DENIED_WINDOW_SECONDS", "0"),
        ]))
        .unwrap();
        assert_eq!(c.max_open_uploads_per_user, 3);
        assert_eq!(c.audit_denied_window, Duration::ZERO);
        assert_eq!(
            c.transfer_limits,
            TransferLimits {
                uploads: 3,
                uploads_per_user: 2,
                downloads: 9,
                downloads_per_user: 1,
                retry_after: Duration::from_secs(7),
            }
        );
        assert_eq!(c.http.body_idle_timeout, Duration::from_secs(2));
        assert_eq!(c.http.keep_alive, Duration::ZERO);
        assert_eq!(c.http.header_timeout, Duration::from_secs(4));
        assert_eq!(c.http.workers, Some(3));
        let one_per_core = Config::from_vars(&vars(&[("HTTP_WORKERS", "0")])).unwrap();
        assert_eq!(one_per_core.http.workers, None);
        let err = Config::from_vars(&vars(&[("HTTP_WORKERS", "two")])).unwrap_err();
        assert_eq!(err.variable, "HTTP_WORKERS", "{err}");
        for name in [
            "MAX_CONCURRENT_UPLOADS",
            "MAX_CONCURRENT_UPLOADS_PER_USER",
            "MAX_CONCURRENT_DOWNLOADS",
            "MAX_CONCURRENT_DOWNLOADS_PER_USER",
            "TRANSFER_RETRY_AFTER_SECONDS",
            "BODY_IDLE_TIMEOUT_SECONDS",
            "HTTP_HEADER_TIMEOUT_SECONDS",
            "MAX_OPEN_UPLOADS_PER_USER",
        ] {
            let err = Config::from_vars(&vars(&[(name, "0")])).unwrap_err();
            assert_eq!(err.variable, name, "{err}");
        }
        let s3 = [
            ("MINIO_ENDPOINT", "minio:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
            ("UPLOAD_BUFFER_BYTES", "33554432"),
            ("UPLOAD_BUFFER_WAIT_SECONDS", "3"),
        ];
        let store = Config::from_vars(&vars(&s3)).unwrap().object_store.unwrap();
        assert_eq!(store.upload_buffer_bytes, 32 << 20);
        assert_eq!(store.upload_buffer_wait, Duration::from_secs(3));
        let mut small = s3.to_vec();
        small.retain(|(k, _)| *k != "UPLOAD_BUFFER_BYTES");
        small.push(("UPLOAD_BUFFER_BYTES", "1024"));
        let err = Config::from_vars(&vars(&small)).unwrap_err();
        assert_eq!(err.variable, "UPLOAD_BUFFER_BYTES", "{err}");
        let mut huge = s3.to_vec();
        huge.push(("MAX_UPLOAD_BYTES", "68719476736"));
        let err = Config::from_vars(&vars(&huge)).unwrap_err();
        assert_eq!(err.variable, "MAX_UPLOAD_BYTES", "{err}");
    }

    #[test]
    fn download_settings_are_read_and_checked() {
        let s3 = [
            ("MINIO_ENDPOINT", "minio:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
        ];
        let store = Config::from_vars(&vars(&s3)).unwrap().object_store.unwrap();
        assert_eq!(store.download_segment_bytes, 8 << 20);
        assert_eq!(store.download_parallel_segments, 1);
        assert_eq!(store.download_read_ahead_bytes, 64 << 20);
        let mut set = s3.to_vec();
        set.extend([
            ("DOWNLOAD_SEGMENT_BYTES", "65536"),
            ("DOWNLOAD_PARALLEL_SEGMENTS", "3"),
            ("DOWNLOAD_READ_AHEAD_BYTES", "131072"),
        ]);
        let store = Config::from_vars(&vars(&set))
            .unwrap()
            .object_store
            .unwrap();
        assert_eq!(store.download_segment_bytes, 64 << 10);
        assert_eq!(store.download_parallel_segments, 3);
        assert_eq!(store.download_read_ahead_bytes, 128 << 10);
        for (name, value) in [
            ("DOWNLOAD_SEGMENT_BYTES", "65535"),
            ("DOWNLOAD_SEGMENT_BYTES", "1073741825"),
            ("DOWNLOAD_PARALLEL_SEGMENTS", "0"),
            ("DOWNLOAD_PARALLEL_SEGMENTS", "17"),
        ] {
            let mut bad = s3.to_vec();
            bad.push((name, value));
            let err = Config::from_vars(&vars(&bad)).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}: {err}");
        }
        // Segments in flight need read-ahead memory of at least one segment.
        let mut bad = s3.to_vec();
        bad.extend([
            ("DOWNLOAD_PARALLEL_SEGMENTS", "2"),
            ("DOWNLOAD_READ_AHEAD_BYTES", "1024"),
        ]);
        let err = Config::from_vars(&vars(&bad)).unwrap_err();
        assert_eq!(err.variable, "DOWNLOAD_READ_AHEAD_BYTES", "{err}");
        // One GET per read needs no read-ahead memory.
        let mut one = s3.to_vec();
        one.extend([
            ("DOWNLOAD_PARALLEL_SEGMENTS", "1"),
            ("DOWNLOAD_READ_AHEAD_BYTES", "0"),
        ]);
        assert!(Config::from_vars(&vars(&one)).is_ok());
    }

    #[test]
    fn the_public_object_store_endpoint_defaults_to_the_private_ones_tls() {
        let s3 = [
            ("MINIO_ENDPOINT", "minio:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "s"),
        ];
        let c = Config::from_vars(&vars(&s3)).unwrap();
        let store = c.object_store.unwrap();
        assert_eq!(store.public_endpoint, None);
        assert!(!store.public_secure);
        let mut public = s3.to_vec();
        public.extend([
            ("MINIO_PUBLIC_ENDPOINT", "files.example.com"),
            ("MINIO_SECURE", "true"),
        ]);
        let store = Config::from_vars(&vars(&public))
            .unwrap()
            .object_store
            .unwrap();
        assert_eq!(store.public_endpoint.as_deref(), Some("files.example.com"));
        assert!(store.public_secure, "follows MINIO_SECURE");
        public.push(("MINIO_PUBLIC_SECURE", "false"));
        let store = Config::from_vars(&vars(&public))
            .unwrap()
            .object_store
            .unwrap();
        assert!(!store.public_secure);
    }

    #[test]
    fn cors_origins_are_exact_and_never_a_wildcard() {
        assert!(
            Config::from_vars(&vars(&[]))
                .unwrap()
                .cors_allowed_origins
                .is_empty()
        );
        let c = Config::from_vars(&vars(&[(
            "CORS_ALLOWED_ORIGINS",
            " https://App.Example.com , http://127.0.0.1:8080,https://app.example.com:443/",
        )]))
        .unwrap();
        assert_eq!(
            c.cors_allowed_origins,
            ["https://app.example.com", "http://127.0.0.1:8080"]
        );
        for bad in [
            "*",
            "https://*.example.com",
            "app.example.com",
            "https://app.example.com/path",
            "ftp://app.example.com",
            "https://user@app.example.com",
        ] {
            let err = Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", bad)])).unwrap_err();
            assert_eq!(err.variable, "CORS_ALLOWED_ORIGINS", "{bad}: {err}");
        }
        let err = Config::from_vars(&vars(&[("CORS_ALLOWED_ORIGINS", "*")])).unwrap_err();
        assert!(err.to_string().contains("wildcards are refused"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = Config::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("JWT_SECRET", "topsecretvalue"),
            ("MINIO_ENDPOINT", "m:9000"),
            ("MINIO_ACCESS_KEY", "k"),
            ("MINIO_SECRET_KEY", "minio-secret"),
            (
                "LOCAL_PRESIGN_SECRET",
                "presign-secret-0123456789abcdef0123",
            ),
        ]))
        .unwrap();
        let shown = format!("{c:?}");
        for secret in [
            "hunter2",
            "topsecretvalue",
            "minio-secret",
            "presign-secret-0123",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked");
        }
    }
}
