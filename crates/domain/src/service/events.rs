//! Events (issue 17): the dispatcher that publishes the outbox (the audit trail's events) to
//! the sinks, and the walk of `audit verify`.
//!
//! The dispatcher claims due events (a lease, `SKIP LOCKED` on PostgreSQL: several instances
//! take disjoint events), sends each to every sink that wants it, and settles it: delivered,
//! retried later (exponential backoff with jitter) or dead after `max_attempts`. A file's
//! events go out in order (the store claims none while an earlier one of its file is pending).
//! Delivery is at least once: an event whose claim lapses (a dispatcher killed mid-delivery)
//! is claimed again and sent with the same id; a sink that took it before gets it twice.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::model::{AuditId, BucketKind, FileId};
use crate::ports::{
    Clock, DeliveryState, EventSink, IdGenerator, MetadataStore, OutboxEvent, RepoError, Settlement,
};
use crate::rules::chain::{AuditKey, AuditKeyring, ChainFault, ChainVerifier, check_sealed};
use crate::rules::checkpoint::{CheckpointHead, CheckpointMatcher, CheckpointWriter};
use crate::rules::events::EventMessage;

/// The dispatcher's settings (`EVENTS_*`, docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How long a claimed event is this dispatcher's before another may take it again; longer
    /// than a delivery can take (every sink's timeout).
    pub lease: Duration,
    /// Events claimed at once.
    pub batch: u32,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
    /// The first retry's delay; doubled on each attempt, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            batch: 50,
            max_attempts: 10,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
        }
    }
}

/// The delay before attempt `attempts + 1`: `base · 2^(attempts−1)`, at most `max`, of which
/// the upper half is random ("equal jitter": never less than half the step, so retries of many
/// events spread out without coming back at once). `unit` is a random number in `[0, 1)`.
pub fn backoff(settings: &DispatchSettings, attempts: u32, unit: f64) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let step = settings
        .backoff_base
        .saturating_mul(1_u32 << exp)
        .min(settings.backoff_max);
    let half = step / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// What one dispatch pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub claimed: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
}

/// Publishes the outbox to the sinks.
pub struct Dispatcher {
    metadata: Arc<dyn MetadataStore>,
    sinks: Vec<Arc<dyn EventSink>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    settings: DispatchSettings,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        sinks: Vec<Arc<dyn EventSink>>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            metadata,
            sinks,
            clock,
            ids,
            settings,
        }
    }

    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }

    /// A random number in `[0, 1)` from a fresh id's random bits (UUIDv7's last 62 bits).
    fn jitter(&self) -> f64 {
        let bits = self.ids.new_id().as_u128() as u64 & ((1_u64 << 52) - 1);
        bits as f64 / (1_u64 << 52) as f64
    }

    /// Claims one batch and delivers it. Returns what it did; `claimed == batch` means more may
    /// be waiting.
    ///
    /// # Errors
    /// Store faults (a sink's failure is a retry, not an error).
    pub async fn run_once(&self) -> Result<DispatchReport, RepoError> {
        let claimed = self
            .metadata
            .claim_events(self.settings.lease, self.settings.batch)
            .await?;
        let mut report = DispatchReport {
            claimed: claimed.len() as u64,
            ..DispatchReport::default()
        };
        // Each claimed event is of another file (the store claims one per file at a time):
        // they go out side by side.
        let outcomes = join_all(claimed.iter().map(|e| self.deliver(e))).await;
        for (event, outcome) in claimed.iter().zip(outcomes) {
            let settlement = match outcome {
                Ok(()) => {
                    report.delivered += 1;
                    Settlement::Delivered
                }
                Err(error) if event.attempts >= self.settings.max_attempts => {
                    report.dead += 1;
                    Settlement::Dead { error }
                }
                Err(error) => {
                    report.retried += 1;
                    let delay = backoff(&self.settings, event.attempts, self.jitter());
                    let at = self.clock.now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    Settlement::Retry { at, error }
                }
            };
            self.metadata
                .settle_event(event.event.id, settlement)
                .await?;
        }
        Ok(report)
    }

    /// Sends one event to every sink that wants it; the errors of those that failed.
    async fn deliver(&self, event: &OutboxEvent) -> Result<(), String> {
        let Some(message) = EventMessage::of(&event.event) else {
            return Ok(());
        };
        let body = message.body();
        let wanted: Vec<&Arc<dyn EventSink>> =
            self.sinks.iter().filter(|s| s.wants(&message)).collect();
        let results = join_all(wanted.iter().map(|s| s.deliver(&message, &body))).await;
        let errors: Vec<String> = wanted
            .iter()
            .zip(results)
            .filter_map(|(s, r)| r.err().map(|e| format!("{}: {e}", s.name())))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Dead letters, oldest first (`storage-server events list`).
///
/// # Errors
/// Store faults.
pub async fn dead_letters(
    metadata: &dyn MetadataStore,
    limit: u32,
) -> Result<Vec<OutboxEvent>, RepoError> {
    metadata.list_events(DeliveryState::Dead, limit).await
}

/// What `audit verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Chains walked and chained events checked.
    pub chains: u64,
    pub chained: u64,
    /// Refusals whose seal was checked.
    pub sealed: u64,
    /// Events recorded before the chain (nothing to check).
    pub unsealed_before_chain: u64,
    /// Every fault, in walk order (by file, then position; then the refusals): the first is
    /// the first altered, removed or reordered event.
    pub faults: Vec<ChainFault>,
    /// With a checkpoint: the checkpointed chains compared.
    pub checkpointed: u64,
}

const VERIFY_PAGE: u32 = 500;

/// Walks every audit chain (of `bucket` when given), then the sealed refusals, checking each
/// hash under `keys` (the current audit key and the retired ones).
///
/// # Errors
/// Store faults.
pub async fn verify_audit(
    metadata: &dyn MetadataStore,
    bucket: Option<BucketKind>,
    keys: &AuditKeyring,
) -> Result<AuditReport, RepoError> {
    verify_audit_against(metadata, bucket, keys, std::iter::empty()).await
}

/// [`verify_audit`], comparing the chains with a checkpoint's heads as well (read one at a
/// time, in file id order: `rules::checkpoint::checkpoint_heads` of a checkpoint already
/// checked): each checkpointed chain gone, shorter than its checkpointed head, or whose
/// checkpointed event changed is a fault, in walk order.
///
/// # Errors
/// Store faults.
pub async fn verify_audit_against(
    metadata: &dyn MetadataStore,
    bucket: Option<BucketKind>,
    keys: &AuditKeyring,
    checkpoint: impl Iterator<Item = CheckpointHead> + Send,
) -> Result<AuditReport, RepoError> {
    let mut report = AuditReport::default();
    let mut verifier = ChainVerifier::new(keys);
    let mut matcher = CheckpointMatcher::new(checkpoint);
    let mut after: Option<(FileId, u64)> = None;
    loop {
        let page = metadata.audit_chain(bucket, after, VERIFY_PAGE).await?;
        for event in &page {
            if let Err(fault) = verifier.push(event) {
                report.faults.push(fault);
            }
            report.faults.extend(matcher.observe(event));
        }
        match page.last() {
            Some(last) if page.len() == VERIFY_PAGE as usize => {
                after = last.file_id.zip(last.seq);
            }
            _ => break,
        }
        if after.is_none() {
            break;
        }
    }
    report.faults.extend(matcher.finish());
    report.checkpointed = matcher.compared;
    report.chains = verifier.chains;
    report.chained = verifier.events;
    let mut after: Option<AuditId> = None;
    loop {
        let page = metadata.audit_unchained(bucket, after, VERIFY_PAGE).await?;
        for event in &page {
            if event.hash.is_none() {
                report.unsealed_before_chain += 1;
                continue;
            }
            report.sealed += 1;
            if let Err(fault) = check_sealed(event, keys) {
                report.faults.push(fault);
            }
        }
        match page.last() {
            Some(last) if page.len() == VERIFY_PAGE as usize => after = Some(last.id),
            _ => break,
        }
    }
    Ok(report)
}

/// Takes a checkpoint of every audit chain (of `bucket` when given) under `key`, at `time`:
/// hands each line to `out` as it is made (the header, one line per chain in file id order,
/// the MAC), reading the chains a page at a time. Returns the chains written.
///
/// # Errors
/// Store faults.
pub async fn audit_checkpoint(
    metadata: &dyn MetadataStore,
    bucket: Option<BucketKind>,
    key: &AuditKey,
    time: String,
    out: &mut dyn FnMut(String),
) -> Result<u64, RepoError> {
    let (mut writer, header) =
        CheckpointWriter::start(key, time, bucket.map(|b| b.as_str().to_owned()));
    out(header);
    let mut head: Option<CheckpointHead> = None;
    let mut after: Option<(FileId, u64)> = None;
    loop {
        let page = metadata.audit_chain(bucket, after, VERIFY_PAGE).await?;
        for event in &page {
            let (Some(file_id), Some(seq)) = (event.file_id, event.seq) else {
                continue;
            };
            if let Some(h) = head.take_if(|h| h.file_id != file_id) {
                out(writer.head(&h));
            }
            head = Some(CheckpointHead {
                file_id,
                seq,
                hash: event.hash.clone().unwrap_or_default(),
            });
        }
        match page.last() {
            Some(last) if page.len() == VERIFY_PAGE as usize => {
                after = last.file_id.zip(last.seq);
            }
            _ => break,
        }
        if after.is_none() {
            break;
        }
    }
    if let Some(h) = head {
        out(writer.head(&h));
    }
    let chains = writer.chains;
    out(writer.finish());
    Ok(chains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound_with_equal_jitter() {
        let s = DispatchSettings {
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            ..DispatchSettings::default()
        };
        assert_eq!(backoff(&s, 1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&s, 1, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&s, 3, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(&s, 3, 0.5), Duration::from_secs(6));
        assert_eq!(backoff(&s, 20, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&s, u32::MAX, 0.0), Duration::from_secs(30));
    }
}
