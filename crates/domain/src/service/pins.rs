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

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use crate::error::StorageError;
    use crate::model::{AuditAction, AuditOutcome, BucketKind::*, FileId, VersionStatus};
    use crate::rules::retention::{RetentionPolicy, RetentionRule};
    use crate::service::test_support::*;

    /// The store answers `find_version` with version 1 of bob's file at version 2.
    fn fixture() -> (Mocks, crate::model::Version) {
        let mut m = Mocks::new();
        let f = file(&path(Users, "/users/bob/plan.txt"), 2);
        let v = version_of(&f, 1, VersionStatus::Draft);
        let (f2, v2) = (f.clone(), v.clone());
        m.meta
            .expect_find_version()
            .returning(move |_| Ok(Some((f2.clone(), v2.clone()))));
        (m, v)
    }

    #[test]
    fn a_bad_label_is_refused_before_any_lookup() {
        let svc = Mocks::new().service();
        let id = crate::model::VersionId::from_uuid(uuid::Uuid::from_u128(7));
        for bad in [None, Some(""), Some("a\tb")] {
            let err = block_on(svc.pin(&ctx("bob", None), id, bad)).unwrap_err();
            assert!(matches!(err, StorageError::InvalidRequest(_)), "{err:?}");
        }
    }

    #[test]
    fn pin_and_unpin_record_the_label_and_their_audit_action() {
        let (mut m, v) = fixture();
        m.meta
            .expect_set_pin()
            .withf(|cmd| {
                cmd.label.as_deref() == Some("release")
                    && cmd.audit.action == AuditAction::Pin
                    && cmd.audit.detail.as_deref() == Some("release")
            })
            .times(1)
            .returning(|_| Err(crate::ports::RepoError::VersionNotFound));
        m.meta
            .expect_set_pin()
            .withf(|cmd| cmd.label.is_none() && cmd.audit.action == AuditAction::Unpin)
            .times(1)
            .returning(|_| Err(crate::ports::RepoError::VersionNotFound));
        let svc = m.service();
        let err = block_on(svc.pin(&ctx("bob", None), v.id, Some(" release "))).unwrap_err();
        assert!(matches!(err, StorageError::VersionNotFound), "{err:?}");
        let err = block_on(svc.unpin(&ctx("bob", None), v.id)).unwrap_err();
        assert!(matches!(err, StorageError::VersionNotFound), "{err:?}");
    }

    #[test]
    fn a_pin_on_a_version_the_caller_may_not_read_is_not_found() {
        let (mut m, v) = fixture();
        m.meta
            .expect_record_refusal()
            .withf(|e, _| e.action == AuditAction::Pin && e.outcome == AuditOutcome::Denied)
            .times(1)
            .returning(|_, _| Ok(()));
        m.meta.expect_set_pin().never();
        let err = block_on(m.service().pin(&ctx("mallory", None), v.id, Some("mine"))).unwrap_err();
        assert!(matches!(err, StorageError::VersionNotFound), "{err:?}");
    }

    #[test]
    fn the_janitor_prunes_only_buckets_with_a_rule_each_candidate_once() {
        let mut m = Mocks::new();
        let rule = RetentionRule {
            keep_last: Some(3),
            keep_days: None,
        };
        m.settings.retention = RetentionPolicy {
            default: RetentionRule::default(),
            buckets: [RetentionRule::default(), RetentionRule::default(), rule],
        };
        m.meta.expect_expire_reservations().returning(|_, _| Ok(0));
        // The trash's step (issue 16's trash, merged beside): nothing due.
        m.meta.expect_due_trash().returning(|_, _| Ok(vec![]));
        let candidates = [1_u128, 2].map(|i| FileId::from_uuid(uuid::Uuid::from_u128(i)));
        m.meta
            .expect_retention_candidates()
            .withf(move |b, r, after, _| *b == Projects && *r == rule && after.is_none())
            .times(1)
            .returning(move |_, _, _, _| Ok(candidates.to_vec()));
        m.meta
            .expect_prune_versions()
            .withf(move |cmd| {
                candidates.contains(&cmd.file_id)
                    && cmd.rule == rule
                    && cmd.actor.as_str() == "janitor"
                    && !cmd.audit_ids.is_empty()
            })
            .times(2)
            .returning(|cmd| {
                Ok(if cmd.file_id.as_uuid().as_u128() == 1 {
                    vec![n(1), n(2)]
                } else {
                    vec![]
                })
            });
        m.meta.expect_claim_deletions().returning(|_, _| Ok(vec![]));
        let report = block_on(m.service().run_janitor_once()).unwrap();
        assert_eq!(report.versions_pruned, 2);
    }
}
