//! The review workflow: submit, approve, reject (four-eyes).

use super::{Need, StorageService, check_text};
use crate::error::StorageError;
use crate::model::{AuditAction, FileRecord, RequestContext, Version, VersionId};
use crate::ports::ReviewTransition;
use crate::rules::{Operation, ReviewDecision, check_four_eyes, review_transition};

impl StorageService {
    /// `POST /versions/{id}/submit|approve|reject`. Only a `draft` version can be submitted and
    /// only a `pending_validation` one approved or rejected; rejecting needs a comment; the
    /// author cannot approve their own version unless self-approval is allowed. Of two
    /// concurrent decisions exactly one wins; the other gets `invalid_transition`.
    ///
    /// # Errors
    /// `invalid_request` (reject without comment), `version_not_found`, access errors (also
    /// the four-eyes rule), `invalid_transition`, faults.
    pub async fn review(
        &self,
        ctx: &RequestContext,
        version_id: VersionId,
        decision: ReviewDecision,
        comment: Option<String>,
    ) -> Result<(FileRecord, Version), StorageError> {
        let comment = check_text("comment", comment.as_deref())?;
        if decision == ReviewDecision::Reject && comment.is_none() {
            return Err(StorageError::invalid("rejecting a version needs a comment"));
        }
        let (file, version) = self
            .ports
            .metadata
            .find_version(version_id)
            .await?
            .ok_or(StorageError::VersionNotFound)?;
        let (op, action) = match decision {
            ReviewDecision::Submit => (Operation::Submit, AuditAction::Submit),
            ReviewDecision::Approve => (Operation::Approve, AuditAction::Approve),
            ReviewDecision::Reject => (Operation::Reject, AuditAction::Reject),
        };
        let mut need = Need::on(op, &file.path);
        need.file_id = Some(file.id);
        if let Err(refused) = self.authorize(ctx, &[need]).await {
            return Err(self.unless_readable(ctx, &file, refused).await);
        }
        check_four_eyes(
            decision,
            &version.author,
            ctx.user(),
            self.settings.allow_self_approval,
        )?;
        let to = review_transition(version.status, decision)?;
        let audit = self.audit_draft(ctx, action, &file.path, comment.clone());
        Ok(self
            .ports
            .metadata
            .review_version(ReviewTransition {
                version_id,
                from: decision.from_status(),
                to,
                reviewer: (decision != ReviewDecision::Submit).then(|| ctx.user().clone()),
                comment,
                audit,
            })
            .await?)
    }

    /// A refusal on a version reached by its id: `version_not_found` when the caller may not
    /// even read its file (as for an unknown id: the id reveals nothing), the refusal itself
    /// otherwise. The refused attempt was audited on the file either way (by `authorize`).
    pub(super) async fn unless_readable(
        &self,
        ctx: &RequestContext,
        file: &FileRecord,
        refused: StorageError,
    ) -> StorageError {
        if !matches!(refused, StorageError::AccessDenied(_)) {
            return refused;
        }
        let mut read = Need::on(Operation::ReadMetadata, &file.path);
        read.file_id = Some(file.id);
        match self.check_access(ctx, &[read]).await {
            Ok(()) => refused,
            Err(_) => StorageError::VersionNotFound,
        }
    }
}
