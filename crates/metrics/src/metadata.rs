//! [`MeteredMetadata`]: the metadata-store port, timed per operation and outcome.

use std::{sync::Arc, time::Duration, time::Instant};

use async_trait::async_trait;
use storage_domain::{
    model::{
        AuditEvent, AuditId, BucketKind, DeletionId, DirPath, FileId, FilePath, FileRecord, Lock,
        ObjectKey, PendingDeletion, UploadId, UploadReservation, Version, VersionId, VersionNumber,
        VersionSelector,
    },
    ports::{
        AcquireLock, AuditCursor, AuditScope, DeleteFile, DeliveryState, ListEntry, LockedFile,
        MetadataStore, NewVersion, OutboxEvent, PendingReview, PruneVersions, ReleaseLock,
        RepoError, ReviewCursor, ReviewTransition, SetArchived, SetPin, SetTags, Settlement,
    },
    rules::retention::RetentionRule,
};

use crate::{Metrics, names};

/// A [`MetadataStore`] that records the duration and outcome of every call of the store it
/// wraps in `storage_metadata_call_duration_seconds{operation, outcome}`. The operation is the
/// port method's name; the outcome `ok`, `refused` (a refusal the port documents: not found,
/// locked, conflict, …), `unavailable` or `error`.
pub struct MeteredMetadata {
    inner: Arc<dyn MetadataStore>,
    metrics: Metrics,
}

impl std::fmt::Debug for MeteredMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredMetadata").finish_non_exhaustive()
    }
}

impl MeteredMetadata {
    pub fn new(inner: Arc<dyn MetadataStore>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn record<T>(&self, operation: &'static str, result: &Result<T, RepoError>, started: Instant) {
        self.metrics.record_call(
            names::METADATA_CALL_DURATION,
            operation,
            outcome(result),
            started.elapsed(),
        );
    }
}

/// The outcome label of a metadata-store call.
fn outcome<T>(result: &Result<T, RepoError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(RepoError::Unavailable(_)) => "unavailable",
        Err(RepoError::Internal(_)) => "error",
        Err(
            RepoError::FileNotFound
            | RepoError::VersionNotFound
            | RepoError::UploadNotFound
            | RepoError::UploadAlreadyCompleted { .. }
            | RepoError::FileLocked(_)
            | RepoError::VersionConflict { .. }
            | RepoError::InvalidTransition(_)
            | RepoError::TooManyOpenUploads { .. },
        ) => "refused",
    }
}

/// The delegating methods: each times the wrapped store's call and records it under the
/// method's name.
macro_rules! metered {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        #[async_trait]
        impl MetadataStore for MeteredMetadata {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, RepoError> {
                    let started = Instant::now();
                    let result = self.inner.$name($($arg),*).await;
                    self.record(stringify!($name), &result, started);
                    result
                }
            )*
        }
    };
}

metered! {
    health() -> ();
    find_file(path: &FilePath) -> Option<FileRecord>;
    find_file_by_id(id: FileId) -> Option<FileRecord>;
    find_version(id: VersionId) -> Option<(FileRecord, Version)>;
    find_file_version(path: &FilePath, selector: VersionSelector) -> Option<(FileRecord, Option<Version>)>;
    list_versions(file_id: FileId, before: Option<VersionNumber>, limit: u32) -> Vec<Version>;
    list_children(dir: &DirPath, after: Option<String>, limit: u32) -> Vec<ListEntry>;
    list_locks(dir: &DirPath, after: Option<String>, limit: u32) -> Vec<LockedFile>;
    list_pending_reviews(dir: &DirPath, after: Option<ReviewCursor>, limit: u32) -> Vec<PendingReview>;
    list_audit(scope: &AuditScope, before: Option<AuditCursor>, limit: u32) -> Vec<AuditEvent>;
    find_reservation(id: UploadId) -> Option<UploadReservation>;
    create_reservation(reservation: &UploadReservation, max_open: Option<u32>) -> ();
    extend_reservation(id: UploadId, expires_at: chrono::DateTime<chrono::Utc>) -> ();
    abandon_reservation(id: UploadId) -> Option<PendingDeletion>;
    commit_version(cmd: NewVersion) -> (FileRecord, Version);
    acquire_lock(cmd: AcquireLock) -> Lock;
    release_lock(cmd: ReleaseLock) -> Option<Lock>;
    review_version(cmd: ReviewTransition) -> (FileRecord, Version);
    set_tags(cmd: SetTags) -> FileRecord;
    set_archived(cmd: SetArchived) -> FileRecord;
    delete_file(cmd: DeleteFile) -> Vec<PendingDeletion>;
    set_pin(cmd: SetPin) -> (FileRecord, Version);
    record_refusal(event: &AuditEvent, window: Duration) -> ();
    expire_reservations(keep_completed: Duration, limit: u32) -> u64;
    retention_candidates(
        bucket: BucketKind,
        rule: RetentionRule,
        after: Option<FileId>,
        limit: u32
    ) -> Vec<FileId>;
    prune_versions(cmd: PruneVersions) -> Vec<VersionNumber>;
    claim_deletions(lease: Duration, limit: u32) -> Vec<PendingDeletion>;
    forget_deletion(id: DeletionId) -> ();
    queue_deletions(
        objects: &[(BucketKind, ObjectKey)],
        not_before: Option<chrono::DateTime<chrono::Utc>>
    ) -> Vec<PendingDeletion>;
    trash_file(cmd: storage_domain::ports::TrashFile) -> storage_domain::model::TrashEntry;
    list_trash(
        dir: &DirPath,
        after: Option<storage_domain::ports::TrashCursor>,
        limit: u32
    ) -> Vec<storage_domain::model::TrashEntry>;
    find_trash(id: storage_domain::model::TrashId) -> Option<storage_domain::model::TrashEntry>;
    due_trash(retention: Duration, limit: u32) -> Vec<storage_domain::model::TrashEntry>;
    restore_trash(cmd: storage_domain::ports::RestoreTrash) -> FileRecord;
    purge_trash(cmd: storage_domain::ports::PurgeTrash) -> Vec<PendingDeletion>;
    audit_chain(bucket: Option<BucketKind>, after: Option<(FileId, u64)>, limit: u32) -> Vec<AuditEvent>;
    audit_unchained(bucket: Option<BucketKind>, after: Option<AuditId>, limit: u32) -> Vec<AuditEvent>;
    claim_events(lease: Duration, limit: u32) -> Vec<OutboxEvent>;
    settle_events(outcomes: Vec<(AuditId, Settlement)>) -> ();
    list_events(state: DeliveryState, limit: u32) -> Vec<OutboxEvent>;
    retry_events(ids: Option<Vec<AuditId>>) -> u64;
}
