//! The janitor: reclaims expired upload reservations and retries owed object deletions. Safe
//! on several instances at once (the store hands each deletion to one claimer at a time).

use super::trash::JANITOR_ACTOR;
use std::time::Duration;

use super::StorageService;
use crate::error::StorageError;

/// What one janitor pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JanitorReport {
    /// Expired reservations whose objects were queued for deletion.
    pub reservations_expired: u64,
    /// Objects deleted from the blob store.
    pub objects_deleted: u64,
    /// Deletions that failed and stay queued.
    pub deletions_failed: u64,
    /// Trash entries purged once `TRASH_RETENTION_DAYS` had passed (their objects queued).
    pub trash_purged: u64,
    /// Versions pruned under the retention rules (their objects queued for deletion).
    pub versions_pruned: u64,
}

const BATCH: u32 = 100;
/// How long a claimed deletion is reserved for this janitor before another may retry it.
const CLAIM_LEASE: Duration = Duration::from_secs(300);
/// Upper bound of batches per pass, so one pass always ends.
const MAX_BATCHES: usize = 100;

impl StorageService {
    /// One pass: queue the objects of expired reservations and of trash entries past their
    /// retention, prune versions under the retention rules (queuing their objects), then delete
    /// queued objects.
    ///
    /// # Errors
    /// Database faults. Object-store faults are counted in the report and retried next pass.
    pub async fn run_janitor_once(&self) -> Result<JanitorReport, StorageError> {
        let mut report = JanitorReport::default();
        for _ in 0..MAX_BATCHES {
            let n = self
                .ports
                .metadata
                .expire_reservations(self.settings.keep_completed_uploads, BATCH)
                .await?;
            report.reservations_expired += n;
            if n < u64::from(BATCH) {
                break;
            }
        }
        report.trash_purged = self.purge_expired_trash().await?;
        report.versions_pruned = self.prune_versions().await?;
        for _ in 0..MAX_BATCHES {
            let claimed = self
                .ports
                .metadata
                .claim_deletions(CLAIM_LEASE, BATCH)
                .await?;
            if claimed.is_empty() {
                break;
            }
            let full = claimed.len() == BATCH as usize;
            for pending in claimed {
                match self
                    .ports
                    .blobs
                    .delete(pending.bucket, &pending.object_key)
                    .await
                {
                    Ok(()) => {
                        self.ports.metadata.forget_deletion(pending.id).await?;
                        report.objects_deleted += 1;
                    }
                    Err(_) => report.deletions_failed += 1,
                }
            }
            if !full {
                break;
            }
        }
        Ok(report)
    }
}

/// The most versions one unit of work prunes (the rest at the next).
const PRUNE_PER_FILE: usize = 64;

impl StorageService {
    /// The retention step of a pass: for each bucket whose rule prunes, the files that may
    /// have versions to prune, a page at a time, each pruned by one unit of work of the store
    /// (which decides, under the file's row lock, with `rules::retention::versions_to_prune`).
    /// Returns how many versions were pruned.
    async fn prune_versions(&self) -> Result<u64, StorageError> {
        use crate::model::{AuditId, BucketKind, UserId};
        use crate::ports::PruneVersions;

        let actor = UserId::new(JANITOR_ACTOR)?;
        let request_id = format!("janitor-{}", self.ports.ids.new_id());
        let mut pruned = 0_u64;
        for bucket in BucketKind::ALL {
            let rule = self.settings.retention.rule_for(bucket);
            if rule.keeps_all() {
                continue;
            }
            let mut after = None;
            for _ in 0..MAX_BATCHES {
                let files = self
                    .ports
                    .metadata
                    .retention_candidates(bucket, rule, after, BATCH)
                    .await?;
                for file_id in &files {
                    let audit_ids = (0..PRUNE_PER_FILE)
                        .map(|_| AuditId::from_uuid(self.ports.ids.new_id()))
                        .collect();
                    let gone = self
                        .ports
                        .metadata
                        .prune_versions(PruneVersions {
                            file_id: *file_id,
                            rule,
                            audit_ids,
                            actor: actor.clone(),
                            request_id: request_id.clone(),
                        })
                        .await?;
                    pruned += gone.len() as u64;
                }
                after = files.last().copied();
                if files.len() < BATCH as usize {
                    break;
                }
            }
        }
        Ok(pruned)
    }
}
