//! Server-side copies: `/copy` (with the checkout of a project file into a workspace) and
//! `/versions/commit` (a workspace file back into the project as a version for review).

use super::transfer::precheck_write;
use super::{Need, StorageService, UploadResult, check_text};
use crate::error::StorageError;
use crate::model::{
    AuditAction, BucketKind, FilePath, FileRecord, RequestContext, UploadKind, VersionId,
    VersionSelector, VersionStatus,
};
use crate::ports::{Checkout, Expectation, NewVersion, WriteMode};
use crate::rules::{Operation, ensure_writable, store::check_commit};

/// `POST /copy`.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    pub source: FilePath,
    pub target: FilePath,
    /// Add a version to an existing target instead of refusing.
    pub overwrite: bool,
}

/// `POST /versions/commit`.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub source: FilePath,
    pub target: FilePath,
    pub message: Option<String>,
    pub keep_lock: bool,
}

/// `POST /versions/{version_id}/restore`.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub version_id: VersionId,
    pub message: Option<String>,
    /// `If-Match`.
    pub expected: Option<Expectation>,
}

/// A copy from `projects` into the caller's own `users` workspace checks the source out: the
/// source gets locked for the caller, on the version copied, and the copy carries the checkout
/// ticket (spec §5).
fn is_checkout(req: &CopyRequest) -> bool {
    req.source.bucket() == BucketKind::Projects && req.target.bucket() == BucketKind::Users
}

impl StorageService {
    /// `POST /copy`: copies the source's latest version to the target inside the blob store
    /// (no bytes through the service). Into a workspace, the source is locked for the caller
    /// with the copied version as `base_version`, in the same unit of work.
    ///
    /// # Errors
    /// Access errors, `file_not_found` (source), `file_locked` (source checked out by
    /// someone else, or target locked), `version_conflict` (target exists and `overwrite` is
    /// false), `invalid_transition` (archived target), faults.
    pub async fn copy(
        &self,
        ctx: &RequestContext,
        req: CopyRequest,
    ) -> Result<UploadResult, StorageError> {
        if req.source == req.target {
            return Err(StorageError::invalid("source and target are the same file"));
        }
        let checkout = is_checkout(&req);
        let mut needs = vec![
            Need::on(Operation::CopyFrom, &req.source),
            Need::on(Operation::CopyInto, &req.target),
        ];
        if checkout {
            needs.push(Need::on(Operation::Checkout, &req.source));
        }
        self.authorize(ctx, &needs).await?;

        let (source, version) = self
            .file_version(&req.source, VersionSelector::Latest)
            .await?;
        if checkout && let Some(lock) = source.lock_held_by_other(ctx.user()) {
            return Err(StorageError::FileLocked(Box::new(lock.clone())));
        }
        let target = self.ports.metadata.find_file(&req.target).await?;
        if let Some(existing) = &target {
            if !req.overwrite {
                return Err(StorageError::VersionConflict {
                    detail: format!(
                        "{} already exists (version {}); set overwrite to add a version",
                        req.target, existing.version
                    ),
                    current: Some(existing.version),
                    precondition: false,
                });
            }
            ensure_writable(existing.status)?;
            if let Some(lock) = existing.lock_held_by_other(ctx.user()) {
                return Err(StorageError::FileLocked(Box::new(lock.clone())));
            }
        }

        let checkout_cmd = checkout.then(|| Checkout {
            file_id: source.id,
            path: source.path.clone(),
            base_version: version.number,
            ttl: self.settings.lock_ttl.default,
            audit: self.audit_draft(
                ctx,
                AuditAction::Checkout,
                &req.source,
                Some(format!("checked out to {}", req.target)),
            ),
        });
        let cmd = |reservation: &crate::model::UploadReservation| NewVersion {
            reservation: reservation.id,
            completes: None,
            path: req.target.clone(),
            new_file_id: self.new_file_id(),
            version_id: reservation.version_id,
            object_key: reservation.object_key.clone(),
            size: version.size,
            sha256: version.sha256.clone(),
            content_type: version.content_type.clone(),
            author: ctx.user().clone(),
            message: Some(format!(
                "copied from {} version {}",
                req.source, version.number
            )),
            status: VersionStatus::Draft,
            tags: target.is_none().then(|| source.tags.clone()),
            mode: WriteMode::Upsert {
                expected: None,
                overwrite: req.overwrite,
            },
            checkout: checkout_cmd.clone(),
            audit: self.audit_draft(
                ctx,
                AuditAction::Copy,
                &req.target,
                Some(format!("from {} version {}", req.source, version.number)),
            ),
        };
        self.copy_object_as_version(ctx, &source, &version, &req.target, cmd)
            .await
    }

    /// `POST /versions/commit`: the workspace file becomes the target's next version, pending
    /// validation. A workspace copy made by a checkout of the target carries its ticket: the
    /// target must still be at the ticket's version, whatever happened to the lock since (a
    /// newer version by anyone, the caller included, is a conflict). The caller must also hold
    /// the target's lock; a source without a ticket for the target needs the lock to have been
    /// taken on the target's latest version. The lock is released unless `keep_lock`; the
    /// ticket moves to the new version.
    ///
    /// # Errors
    /// Access errors, `invalid_request` (no message), `file_not_found`, `invalid_transition`
    /// (no lock held, archived), `file_locked`, `version_conflict` (stale ticket or base),
    /// faults.
    pub async fn commit(
        &self,
        ctx: &RequestContext,
        req: CommitRequest,
    ) -> Result<UploadResult, StorageError> {
        let message = check_text("message", req.message.as_deref())?
            .ok_or_else(|| StorageError::invalid("a commit needs a message"))?;
        if req.source == req.target {
            return Err(StorageError::invalid("source and target are the same file"));
        }
        self.authorize(
            ctx,
            &[
                Need::on(Operation::CommitFrom, &req.source),
                Need::on(Operation::CommitInto, &req.target),
            ],
        )
        .await?;
        let (source, version) = self
            .file_version(&req.source, VersionSelector::Latest)
            .await?;
        let target = self.existing_file(&req.target).await?;
        ensure_writable(target.status)?;
        check_commit(&target, ctx.user(), source.checkout.as_ref())?;

        let cmd = |reservation: &crate::model::UploadReservation| NewVersion {
            reservation: reservation.id,
            completes: None,
            path: req.target.clone(),
            new_file_id: target.id,
            version_id: reservation.version_id,
            object_key: reservation.object_key.clone(),
            size: version.size,
            sha256: version.sha256.clone(),
            content_type: version.content_type.clone(),
            author: ctx.user().clone(),
            message: Some(message.clone()),
            status: VersionStatus::PendingValidation,
            tags: None,
            mode: WriteMode::Commit {
                keep_lock: req.keep_lock,
                source: source.id,
            },
            checkout: None,
            audit: self.audit_draft(
                ctx,
                AuditAction::Commit,
                &req.target,
                Some(format!("from {} version {}", req.source, version.number)),
            ),
        };
        self.copy_object_as_version(ctx, &source, &version, &req.target, cmd)
            .await
    }

    /// `POST /versions/{version_id}/restore`: the version's bytes become the next version of
    /// its file (a draft by the caller, `restored_from` its number), copied inside the blob
    /// store to a key of its own; nothing is removed or renumbered. As an upload: refused for
    /// an archived file, a lock held by someone else, a failed `If-Match`.
    ///
    /// # Errors
    /// `invalid_request` (message), `version_not_found` (unknown id, or a file the caller may
    /// not read), access errors, `invalid_transition` (archived), `file_locked`,
    /// `version_conflict`, faults.
    pub async fn restore(
        &self,
        ctx: &RequestContext,
        req: RestoreRequest,
    ) -> Result<UploadResult, StorageError> {
        let message = check_text("message", req.message.as_deref())?;
        let (file, version) = self
            .ports
            .metadata
            .find_version(req.version_id)
            .await?
            .ok_or(StorageError::VersionNotFound)?;
        let mut need = Need::on(Operation::Restore, &file.path);
        need.file_id = Some(file.id);
        if let Err(refused) = self.authorize(ctx, &[need]).await {
            return Err(self.unless_readable(ctx, &file, refused).await);
        }
        precheck_write(ctx, Some(&file), req.expected)?;
        let from = version.number;
        let cmd = |reservation: &crate::model::UploadReservation| NewVersion {
            reservation: reservation.id,
            completes: None,
            path: file.path.clone(),
            new_file_id: file.id,
            version_id: reservation.version_id,
            object_key: reservation.object_key.clone(),
            size: version.size,
            sha256: version.sha256.clone(),
            content_type: version.content_type.clone(),
            author: ctx.user().clone(),
            message: Some(message.unwrap_or_else(|| format!("restored from version {from}"))),
            status: VersionStatus::Draft,
            tags: None,
            mode: WriteMode::Restore {
                file: file.id,
                from,
                expected: req.expected,
            },
            checkout: None,
            audit: self.audit_draft(
                ctx,
                AuditAction::Restore,
                &file.path,
                Some(format!("from version {from}")),
            ),
        };
        self.copy_object_as_version(ctx, &file, &version, &file.path, cmd)
            .await
    }

    /// Reserves a key for the target, copies the source version's object to it inside the
    /// store, then records the version (built by `cmd`); discards the copy on any failure.
    async fn copy_object_as_version(
        &self,
        ctx: &RequestContext,
        source: &FileRecord,
        version: &crate::model::Version,
        target: &FilePath,
        cmd: impl FnOnce(&crate::model::UploadReservation) -> NewVersion,
    ) -> Result<UploadResult, StorageError> {
        let reservation = self.new_reservation(
            ctx,
            UploadKind::Copy,
            target,
            version.content_type.clone(),
            self.settings.transfer_lease,
        );
        self.ports
            .metadata
            .create_reservation(&reservation, None)
            .await?;
        let copied = self
            .with_heartbeat(
                &reservation,
                None,
                self.ports.blobs.copy(
                    source.bucket(),
                    &version.object_key,
                    target.bucket(),
                    &reservation.object_key,
                ),
            )
            .await;
        if let Err(e) = copied {
            self.discard_reservation(&reservation).await;
            return Err(e.into());
        }
        let cmd = cmd(&reservation);
        self.commit_or_discard(&reservation, cmd).await
    }
}
