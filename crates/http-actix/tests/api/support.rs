//! Fixtures: a test authenticator, a health probe, port doubles, sample entities.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use actix_http::Request;
use actix_web::{
    App,
    body::BoxBody,
    dev::{Service, ServiceResponse},
    test,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use storage_domain::{
    PathError, StorageError,
    model::{
        BucketKind, CompanyId, FileId, FilePath, FileRecord, FileStatus, Lock, ObjectKey,
        Principal, Tags, UserId, Version, VersionId, VersionNumber, VersionStatus,
    },
    ports::{
        BlobError, BlobMeta, BlobRead, BlobStore, ByteRange, ByteStream, Clock, MockBlobStore,
        MockMetadataStore, MockProjectAccess, PresignGetOptions, PresignedRequest, PutOutcome,
        UuidV7Ids,
    },
    service::{Ports, ServiceSettings, StorageService},
};
use storage_http_actix::{
    ApiConfig, AppState, Authenticator, ComponentHealth, HealthCheck, HealthReport, configure,
};
use uuid::Uuid;

/// `Authorization: Bearer user:<id>[:<company>]` authenticates, and so does the cookie
/// `access_token=user:<id>` (which wins, as with the real verifier); `Bearer fail:<code>`
/// answers the error of that code (to drive every code through the HTTP stack); no header is a
/// missing token; anything else is a bad token.
pub struct TestAuth;

pub fn error_of(code: &str) -> Option<StorageError> {
    let lock = lock_by("bob", 2);
    Some(match code {
        "missing_jwt_token" => StorageError::MissingToken,
        "unauthorized" => StorageError::Unauthorized,
        "access_denied" => StorageError::AccessDenied("denied for the test".into()),
        "project_service_unavailable" => StorageError::ProjectServiceUnavailable {
            cause: "secret-host refused".into(),
            hint: None,
        },
        "invalid_path" => StorageError::InvalidPath(PathError::DotSegment),
        "invalid_request" => StorageError::InvalidRequest("bad input".into()),
        "bucket_not_found" => StorageError::BucketNotFound("nope".into()),
        "file_not_found" => StorageError::FileNotFound,
        "version_not_found" => StorageError::VersionNotFound,
        "upload_not_found" => StorageError::UploadNotFound,
        "file_locked" => StorageError::FileLocked(Box::new(lock)),
        "version_conflict" => StorageError::VersionConflict {
            detail: "stale".into(),
            current: Some(n(4)),
            precondition: false,
        },
        "invalid_transition" => StorageError::InvalidTransition("not now".into()),
        "payload_too_large" => StorageError::PayloadTooLarge { limit: 7 },
        "too_many_requests" => StorageError::TooManyRequests {
            detail: "too busy".into(),
            retry_after: std::time::Duration::from_secs(4),
        },
        "minio_unreachable" => StorageError::ObjectStoreUnavailable {
            cause: "secret-host:3900 refused".into(),
        },
        "database_unavailable" => StorageError::DatabaseUnavailable {
            cause: "password=secret".into(),
        },
        "internal_error" => StorageError::Internal {
            cause: "secret stack trace".into(),
        },
        _ => return None,
    })
}

impl Authenticator for TestAuth {
    fn authenticate(
        &self,
        cookie: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Principal, StorageError> {
        let from_cookie = cookie.and_then(|c| {
            c.split(';')
                .find_map(|pair| pair.trim().strip_prefix("access_token="))
        });
        let token = match (from_cookie, authorization) {
            (Some(token), _) => token,
            (None, Some(raw)) => raw
                .strip_prefix("Bearer ")
                .ok_or(StorageError::Unauthorized)?,
            (None, None) => return Err(StorageError::MissingToken),
        };
        if let Some(code) = token.strip_prefix("fail:") {
            return Err(error_of(code).unwrap_or(StorageError::Unauthorized));
        }
        let rest = token
            .strip_prefix("user:")
            .ok_or(StorageError::Unauthorized)?;
        let mut parts = rest.split(':');
        let user = UserId::new(parts.next().unwrap_or_default())
            .map_err(|_| StorageError::Unauthorized)?;
        let company = parts
            .next()
            .map(|c| CompanyId::new(c).map_err(|_| StorageError::Unauthorized))
            .transpose()?;
        Ok(Principal::new(user, company))
    }
}

/// A health probe answering a fixed report.
pub struct FixedHealth(pub HealthReport);

#[async_trait]
impl HealthCheck for FixedHealth {
    async fn check(&self) -> HealthReport {
        self.0.clone()
    }
}

pub fn healthy() -> HealthReport {
    HealthReport {
        database: ComponentHealth::Ok,
        object_store: ComponentHealth::Ok,
    }
}

/// A clock at a fixed instant whose timer never fires (the upload heartbeat then never runs;
/// a mock's `sleep` would return at once and spin).
pub struct FixedClock;

#[async_trait]
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }

    async fn sleep(&self, _duration: std::time::Duration) {
        futures::future::pending::<()>().await;
    }
}

/// A blob store that really reads what `put` is given, as a store would, and records it.
#[derive(Default)]
pub struct RecordingBlobs {
    pub bytes: AtomicU64,
    pub chunks: AtomicU64,
    pub data: Mutex<Vec<u8>>,
    pub deletes: AtomicU64,
}

#[async_trait]
impl BlobStore for RecordingBlobs {
    async fn put(
        &self,
        _bucket: BucketKind,
        _key: &ObjectKey,
        _content_type: &str,
        mut body: ByteStream,
    ) -> Result<PutOutcome, BlobError> {
        let mut size = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Source)?;
            size += chunk.len() as u64;
            self.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            self.chunks.fetch_add(1, Ordering::SeqCst);
            self.data.lock().unwrap().extend_from_slice(&chunk);
        }
        Ok(PutOutcome { size, etag: None })
    }

    async fn get(
        &self,
        _: BucketKind,
        _: &ObjectKey,
        _: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError> {
        Err(BlobError::Other("RecordingBlobs only records puts".into()))
    }

    async fn head(&self, _: BucketKind, _: &ObjectKey) -> Result<BlobMeta, BlobError> {
        Err(BlobError::Other("RecordingBlobs only records puts".into()))
    }

    async fn copy(
        &self,
        _: BucketKind,
        _: &ObjectKey,
        _: BucketKind,
        _: &ObjectKey,
    ) -> Result<(), BlobError> {
        Err(BlobError::Other("RecordingBlobs only records puts".into()))
    }

    async fn delete(&self, _: BucketKind, _: &ObjectKey) -> Result<(), BlobError> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn presign_put(
        &self,
        _: BucketKind,
        _: &ObjectKey,
        _: &str,
        _: Option<u64>,
        _: std::time::Duration,
    ) -> Result<PresignedRequest, BlobError> {
        Err(BlobError::Other("RecordingBlobs only records puts".into()))
    }

    async fn presign_get(
        &self,
        _: BucketKind,
        _: &ObjectKey,
        _: &PresignGetOptions,
        _: std::time::Duration,
    ) -> Result<PresignedRequest, BlobError> {
        Err(BlobError::Other("RecordingBlobs only records puts".into()))
    }

    async fn health(&self) -> Result<(), BlobError> {
        Ok(())
    }
}

/// The ports of one test; set expectations, then build the state.
pub struct Setup {
    pub meta: MockMetadataStore,
    pub blobs: Arc<dyn BlobStore>,
    pub projects: MockProjectAccess,
    pub settings: ServiceSettings,
    pub health: HealthReport,
    pub config: ApiConfig,
}

impl Setup {
    pub fn new() -> Self {
        Self {
            meta: MockMetadataStore::new(),
            blobs: Arc::new(MockBlobStore::new()),
            projects: MockProjectAccess::new(),
            settings: ServiceSettings {
                max_upload_bytes: 1000,
                ..ServiceSettings::default()
            },
            health: healthy(),
            config: ApiConfig::default(),
        }
    }

    pub fn with_blobs(mut self, blobs: impl BlobStore + 'static) -> Self {
        self.blobs = Arc::new(blobs);
        self
    }

    pub fn state(self) -> AppState {
        let service = StorageService::new(
            Ports {
                metadata: Arc::new(self.meta),
                blobs: self.blobs,
                projects: Arc::new(self.projects),
                clock: Arc::new(FixedClock),
                ids: Arc::new(UuidV7Ids),
                upload_urls: None,
            },
            self.settings,
        );
        AppState::new(
            service,
            Arc::new(TestAuth),
            Arc::new(FixedHealth(self.health)),
            self.config,
        )
    }

    /// The application as `configure` registers it.
    pub async fn app(
        self,
    ) -> impl Service<Request, Response = ServiceResponse<BoxBody>, Error = actix_web::Error> {
        let state = self.state();
        test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await
    }
}

/// The JSON body of a response.
pub async fn json_of(res: ServiceResponse<BoxBody>) -> serde_json::Value {
    let bytes = test::read_body(res).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// Asserts the contract's error body and returns it.
pub async fn error_body(
    res: ServiceResponse<BoxBody>,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    let header_id = res
        .headers()
        .get("x-request-id")
        .expect("X-Request-Id on every answer")
        .to_str()
        .unwrap()
        .to_owned();
    let body = json_of(res).await;
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["message"], code, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body["request_id"], header_id.as_str(), "{body}");
    body
}

pub const ALICE: &str = "Bearer user:alice";

pub fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().unwrap()
}

pub fn n(v: u32) -> VersionNumber {
    VersionNumber::new(v).unwrap()
}

pub fn user(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

pub fn path(raw: &str) -> FilePath {
    let bucket = raw.split('/').nth(1).unwrap();
    FilePath::parse_request(bucket, raw).unwrap()
}

pub fn file(p: &FilePath, version: u32) -> FileRecord {
    FileRecord {
        id: FileId::from_uuid(Uuid::from_u128(0xF11E)),
        path: p.clone(),
        created_by: user("alice"),
        version: n(version),
        validated_version: None,
        status: FileStatus::Draft,
        lock: None,
        tags: Tags::new(),
        checkout: None,
        size: 10,
        content_type: "text/plain".into(),
        sha256: "ab".repeat(32),
        created_at: now(),
        updated_at: now(),
    }
}

pub fn version_of(f: &FileRecord, number: u32, status: VersionStatus) -> Version {
    let id = VersionId::from_uuid(Uuid::from_u128(0xBEEF + u128::from(number)));
    Version {
        id,
        file_id: f.id,
        number: n(number),
        size: f.size,
        sha256: f.sha256.clone(),
        content_type: f.content_type.clone(),
        author: user("alice"),
        message: None,
        status,
        reviewed_by: None,
        reviewed_at: None,
        review_comment: None,
        created_at: now(),
        object_key: ObjectKey::for_version(f.path.owner(), id),
        restored_from: None,
        pinned: None,
    }
}

pub fn lock_by(holder: &str, base: u32) -> Lock {
    Lock {
        holder: user(holder),
        acquired_at: now(),
        expires_at: now() + chrono::TimeDelta::hours(1),
        base_version: n(base),
    }
}
