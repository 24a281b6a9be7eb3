//! Fixtures for the use cases' unit tests: mocks of every port and sample entities.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::{Ports, ServiceSettings, StorageService};
use crate::model::{
    BucketKind, CompanyId, FileId, FilePath, FileRecord, FileStatus, Lock, ObjectKey, Principal,
    RequestContext, Tags, UserId, Version, VersionId, VersionNumber, VersionStatus,
};
use crate::ports::{
    MockBlobStore, MockClock, MockIdGenerator, MockMetadataStore, MockProjectAccess,
    MockServiceUploadUrls, ServiceUploadUrls,
};

/// Mocks of every port; set expectations, then [`Mocks::service`].
pub(crate) struct Mocks {
    pub meta: MockMetadataStore,
    pub blobs: MockBlobStore,
    pub projects: MockProjectAccess,
    /// Answers [`now`]; no sleep unless a test expects one.
    pub clock: MockClock,
    pub settings: ServiceSettings,
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0)
        .single()
        .unwrap_or_default()
}

impl Mocks {
    pub fn new() -> Self {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        Self {
            meta: MockMetadataStore::new(),
            blobs: MockBlobStore::new(),
            projects: MockProjectAccess::new(),
            clock,
            settings: ServiceSettings {
                max_upload_bytes: 1000,
                ..ServiceSettings::default()
            },
        }
    }

    pub fn service(self) -> StorageService {
        self.build(None)
    }

    /// The service with upload URLs of its own (for uploads a store cannot bound).
    pub fn service_with_upload_urls(self, urls: MockServiceUploadUrls) -> StorageService {
        self.build(Some(Arc::new(urls)))
    }

    fn build(self, upload_urls: Option<Arc<dyn ServiceUploadUrls>>) -> StorageService {
        let mut ids = MockIdGenerator::new();
        let counter = Arc::new(AtomicU64::new(1));
        ids.expect_new_id().returning(move || {
            Uuid::from_u128(u128::from(counter.fetch_add(1, Ordering::Relaxed)))
        });
        StorageService::new(
            Ports {
                metadata: Arc::new(self.meta),
                blobs: Arc::new(self.blobs),
                projects: Arc::new(self.projects),
                clock: Arc::new(self.clock),
                ids: Arc::new(ids),
                upload_urls,
            },
            self.settings,
        )
    }
}

pub(crate) fn user(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

pub(crate) fn ctx(user_id: &str, company: Option<&str>) -> RequestContext {
    RequestContext::new(
        Principal::new(user(user_id), company.map(|c| CompanyId::new(c).unwrap())),
        "req-1",
    )
}

pub(crate) fn path(bucket: BucketKind, raw: &str) -> FilePath {
    FilePath::parse(bucket, raw).unwrap()
}

pub(crate) fn n(v: u32) -> VersionNumber {
    VersionNumber::new(v).unwrap()
}

pub(crate) fn file(p: &FilePath, version: u32) -> FileRecord {
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
        size: 3,
        content_type: "text/plain".into(),
        sha256: "ab".repeat(32),
        created_at: now(),
        updated_at: now(),
    }
}

pub(crate) fn version_of(f: &FileRecord, number: u32, status: VersionStatus) -> Version {
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

pub(crate) fn lock_by(holder: &str, base: u32) -> Lock {
    Lock {
        holder: user(holder),
        acquired_at: now(),
        expires_at: now() + chrono::TimeDelta::hours(1),
        base_version: n(base),
    }
}
