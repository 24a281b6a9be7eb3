//! The janitor: reclaims expired upload reservations and retries owed object deletions. Safe
//! on several instances at once (the store hands each deletion to one claimer at a time).

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
}

const BATCH: u32 = 100;
/// How long a claimed deletion is reserved for this janitor before another may retry it.
const CLAIM_LEASE: Duration = Duration::from_secs(300);
/// Upper bound of batches per pass, so one pass always ends.
const MAX_BATCHES: usize = 100;

impl StorageService {
    /// One pass: queue the objects of expired reservations and of trash entries past their
    /// retention, then delete queued objects.
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
