//! Pinned versions: `POST /versions/{id}/pin` and `/unpin` (issue 16). A pinned version is
//! kept whatever the retention rules say (`rules::retention`).

use super::{Need, StorageService};
use crate::error::StorageError;
use crate::model::{AuditAction, FileRecord, RequestContext, Version, VersionId};
use crate::ports::SetPin;
use crate::rules::Operation;
use crate::rules::retention::check_pin_label;

impl StorageService {
    /// `POST /versions/{id}/pin` (`label: Some`) and `/unpin` (`label: None`), action `write`
    /// on the version's file. Pinning a pinned version replaces its label; unpinning a version
    /// that is not pinned changes nothing (it is still audited). Refused as a change of tags: a
    /// lock held by someone else, an archived file.
    ///
    /// # Errors
    /// `invalid_request` (label), `version_not_found` (unknown id, or a file the caller may
    /// not read), access errors, `file_locked`, `invalid_transition` (archived), faults.
    pub async fn pin(
        &self,
        ctx: &RequestContext,
        version_id: VersionId,
        label: Option<&str>,
    ) -> Result<(FileRecord, Version), StorageError> {
        let label = check_pin_label(label)?;
        self.set_pin(ctx, version_id, Some(label)).await
    }

    /// `POST /versions/{id}/unpin`: as [`StorageService::pin`], clearing the label.
    ///
    /// # Errors
    /// As [`StorageService::pin`].
    pub async fn unpin(
        &self,
        ctx: &RequestContext,
        version_id: VersionId,
    ) -> Result<(FileRecord, Version), StorageError> {
        self.set_pin(ctx, version_id, None).await
    }

    async fn set_pin(
        &self,
        ctx: &RequestContext,
        version_id: VersionId,
        label: Option<String>,
    ) -> Result<(FileRecord, Version), StorageError> {
        let (file, _) = self
            .ports
            .metadata
            .find_version(version_id)
            .await?
            .ok_or(StorageError::VersionNotFound)?;
        let (op, action) = if label.is_some() {
            (Operation::Pin, AuditAction::Pin)
        } else {
            (Operation::Unpin, AuditAction::Unpin)
        };
        let mut need = Need::on(op, &file.path);
        need.file_id = Some(file.id);
        if let Err(refused) = self.authorize(ctx, &[need]).await {
            return Err(self.unless_readable(ctx, &file, refused).await);
        }
        let audit = self.audit_draft(ctx, action, &file.path, label.clone());
        Ok(self
            .ports
            .metadata
            .set_pin(SetPin {
                version_id,
                actor: ctx.user().clone(),
                label,
                audit,
            })
            .await?)
    }
}
