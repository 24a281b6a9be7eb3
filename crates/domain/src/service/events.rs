//! Events (issue 17): the dispatcher that publishes the outbox (the audit trail's events) to
//! the sinks, and the walk of `audit verify`.
//!
//! The dispatcher claims due events as runs, a file's pending events in chain order (a lease,
//! `SKIP LOCKED` on PostgreSQL: several instances take disjoint files), sends each run's events
//! one after the other (the runs of different files side by side) to every sink that wants
//! them, and settles the pass at once: delivered, retried later (exponential backoff with
//! jitter) or dead after `max_attempts`. A failed event ends its file's run: the rest of the
//! run is released unattempted, so a file's events still go out in order.
//! Delivery is at least once: an event whose claim lapses (a dispatcher killed mid-delivery)
//! is claimed again and sent with the same id; a sink that took it before gets it twice.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};

use crate::model::{AuditId, BucketKind, FileId};
use crate::ports::{
    Clock, DeliveryState, EventSink, IdGenerator, MetadataStore, OutboxEvent, RepoError, Settlement,
};
use crate::rules::chain::{AuditKey, AuditKeyring, ChainFault, ChainVerifier, check_sealed};
use crate::rules::checkpoint::{CheckpointHead, CheckpointMatcher, CheckpointWriter};
use crate::rules::events::EventMessage;

/// Files whose runs a pass delivers at the same time (each run is sent in order, one event
/// after the other; a sink gets at most this many requests at once from one dispatcher).
pub const RUNS_IN_FLIGHT: usize = 32;

/// The dispatcher's settings (`EVENTS_*`, docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How long a claimed event is this dispatcher's before another may take it again; longer
    /// than a delivery can take (every sink's timeout).
    pub lease: Duration,
    /// Events claimed at once (of all files).
    pub batch: u32,
    /// The longest one delivery can take (every sink's timeout): a run's next event is sent
    /// only while it can end before the claim's lease does; the rest is released.
    pub delivery_timeout: Duration,
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
            batch: 500,
            delivery_timeout: Duration::from_secs(10),
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
    /// Claimed but not attempted: behind a failed event of their file, or out of lease.
    pub released: u64,
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

    /// Claims one batch and delivers it: each file's run in chain order, the files side by
    /// side; then settles every outcome in one call. Returns what it did; `claimed == batch`
    /// means more may be waiting.
    ///
    /// # Errors
    /// Store faults (a sink's failure is a retry, not an error).
    pub async fn run_once(&self) -> Result<DispatchReport, RepoError> {
        let claimed_at = self.clock.now();
        let claimed = self
            .metadata
            .claim_events(self.settings.lease, self.settings.batch)
            .await?;
        let mut report = DispatchReport {
            claimed: claimed.len() as u64,
            ..DispatchReport::default()
        };
        if claimed.is_empty() {
            return Ok(report);
        }
        let runs = runs(claimed);
        // At most RUNS_IN_FLIGHT files at once: a large batch of many files does not open as
        // many requests to each sink at the same moment.
        let sends: Vec<_> = runs
            .iter()
            .map(|run| self.deliver_run(run, claimed_at))
            .collect();
        let outcomes: Vec<_> = stream::iter(sends).buffered(RUNS_IN_FLIGHT).collect().await;
        let mut settled = Vec::with_capacity(report.claimed as usize);
        for (run, outcomes) in runs.iter().zip(outcomes) {
            for (event, settlement) in run.iter().zip(outcomes) {
                match &settlement {
                    Settlement::Delivered => report.delivered += 1,
                    Settlement::Retry { .. } => report.retried += 1,
                    Settlement::Dead { .. } => report.dead += 1,
                    Settlement::Released => report.released += 1,
                }
                settled.push((event.event.id, settlement));
            }
        }
        self.metadata.settle_events(settled).await?;
        Ok(report)
    }

    /// Delivers one file's run in order; the first failure ends it (the events after it are
    /// released), and so does the lease: an event is sent only if its delivery can end before
    /// the claim made at `claimed_at` lapses (else another dispatcher could take the file
    /// meanwhile). One settlement per event of `run`.
    async fn deliver_run(
        &self,
        run: &[OutboxEvent],
        claimed_at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Settlement> {
        let budget = self
            .settings
            .lease
            .saturating_sub(self.settings.delivery_timeout);
        let mut settled = Vec::with_capacity(run.len());
        let mut stopped = false;
        for event in run {
            let spent = (self.clock.now() - claimed_at).to_std().unwrap_or_default();
            if stopped || (!settled.is_empty() && spent >= budget) {
                settled.push(Settlement::Released);
                continue;
            }
            let settlement = match self.deliver(event).await {
                Ok(()) => Settlement::Delivered,
                Err((error, acked)) if event.attempts >= self.settings.max_attempts => {
                    Settlement::Dead { error, acked }
                }
                Err((error, acked)) => {
                    let delay = backoff(&self.settings, event.attempts, self.jitter());
                    let at = self.clock.now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    Settlement::Retry { at, error, acked }
                }
            };
            stopped = !matches!(settlement, Settlement::Delivered);
            settled.push(settlement);
        }
        settled
    }

    /// Sends one event to every sink that wants it and has not acknowledged it yet (an
    /// earlier attempt's). On a failure: the errors of those that failed (each named), and
    /// every sink that acknowledged it so far, sorted.
    async fn deliver(&self, event: &OutboxEvent) -> Result<(), (String, Vec<String>)> {
        let Some(message) = EventMessage::of(&event.event) else {
            return Ok(());
        };
        let wanted: Vec<&Arc<dyn EventSink>> = self
            .sinks
            .iter()
            .filter(|s| s.wants(&message) && !event.acked.iter().any(|a| a == s.name()))
            .collect();
        if wanted.is_empty() {
            // No sink takes it (none configured, or every one filters it out): nothing to
            // serialise or send.
            return Ok(());
        }
        let body = message.body();
        let results = join_all(wanted.iter().map(|s| s.deliver(&message, &body))).await;
        let mut acked = event.acked.clone();
        let mut errors = Vec::new();
        for (sink, result) in wanted.iter().zip(results) {
            match result {
                Ok(()) => acked.push(sink.name().to_owned()),
                Err(e) => errors.push(format!("{}: {e}", sink.name())),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            acked.sort();
            acked.dedup();
            Err((errors.join("; "), acked))
        }
    }
}

/// The claimed events as runs: one per file, in chain order (`seq`); the files in the order
/// their first event was claimed. An event with no file is a run of its own.
fn runs(claimed: Vec<OutboxEvent>) -> Vec<Vec<OutboxEvent>> {
    let mut runs: Vec<Vec<OutboxEvent>> = Vec::new();
    let mut index: std::collections::HashMap<FileId, usize> = std::collections::HashMap::new();
    for event in claimed {
        match event.event.file_id {
            Some(file) => match index.get(&file) {
                Some(&i) => runs[i].push(event),
                None => {
                    index.insert(file, runs.len());
                    runs.push(vec![event]);
                }
            },
            None => runs.push(vec![event]),
        }
    }
    for run in &mut runs {
        run.sort_by_key(|e| e.event.seq);
    }
    runs
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
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::model::{AuditAction, AuditOutcome, EventType, FilePath, UserId};
    use crate::ports::{MockClock, MockIdGenerator, MockMetadataStore, SinkError};

    /// A sink that records what it was sent, and refuses the events of `failing` (by seq).
    struct Sink {
        name: String,
        failing: Mutex<Vec<u64>>,
        sent: Mutex<Vec<(String, u64)>>,
    }

    impl Sink {
        fn new(name: &str, failing: &[u64]) -> Arc<Self> {
            Arc::new(Self {
                name: name.into(),
                failing: Mutex::new(failing.to_vec()),
                sent: Mutex::default(),
            })
        }

        fn sent(&self) -> Vec<(String, u64)> {
            self.sent.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl EventSink for Sink {
        fn name(&self) -> &str {
            &self.name
        }

        fn wants(&self, _: &EventMessage) -> bool {
            true
        }

        async fn deliver(&self, event: &EventMessage, _: &[u8]) -> Result<(), SinkError> {
            let file = event.file_id.clone().unwrap_or_default();
            let seq = event.data["seq"].as_u64().unwrap_or_default();
            self.sent.lock().unwrap().push((file, seq));
            if self.failing.lock().unwrap().contains(&seq) {
                Err(SinkError("503".into()))
            } else {
                Ok(())
            }
        }
    }

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).single().unwrap()
    }

    /// A pending event: `seq` of `file`'s chain (its `data` says the seq, for the sinks).
    fn pending(file: FileId, seq: u64, acked: &[&str]) -> OutboxEvent {
        OutboxEvent {
            event: crate::model::AuditEvent {
                id: AuditId::from_uuid(uuid::Uuid::from_u128(
                    file.as_uuid().as_u128() * 1000 + u128::from(seq),
                )),
                actor: UserId::new("alice").unwrap(),
                action: AuditAction::Lock,
                bucket: BucketKind::Projects,
                path: FilePath::parse(BucketKind::Projects, "/projects/p/a.txt").unwrap(),
                file_id: Some(file),
                version: None,
                outcome: AuditOutcome::Success,
                request_id: "r".into(),
                detail: None,
                at: at(),
                repeat_count: 1,
                last_repeat_at: None,
                event_type: Some(EventType::LockAcquired),
                data: Some(format!("{{\"seq\":{seq}}}")),
                seq: Some(seq),
                prev_hash: Some(String::new()),
                hash: Some(String::new()),
            },
            state: DeliveryState::Pending,
            attempts: 1,
            next_attempt_at: Some(at()),
            last_error: None,
            acked: acked.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// One pass over `claimed` with `sinks`: the settlements handed to the store, by seq.
    async fn pass(
        claimed: Vec<OutboxEvent>,
        sinks: Vec<Arc<dyn EventSink>>,
    ) -> (DispatchReport, Vec<(AuditId, Settlement)>) {
        let mut meta = MockMetadataStore::new();
        meta.expect_claim_events()
            .times(1)
            .return_once(move |_, _| Ok(claimed));
        let settled = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&settled);
        meta.expect_settle_events().times(1).returning(move |o| {
            into.lock().unwrap().extend(o);
            Ok(())
        });
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        let mut ids = MockIdGenerator::new();
        ids.expect_new_id().returning(uuid::Uuid::nil);
        let dispatcher = Dispatcher::new(
            Arc::new(meta),
            sinks,
            Arc::new(clock),
            Arc::new(ids),
            DispatchSettings::default(),
        );
        let report = dispatcher.run_once().await.unwrap();
        let settled = settled.lock().unwrap().clone();
        (report, settled)
    }

    #[test]
    fn a_run_goes_out_in_order_and_stops_at_its_first_failure() {
        futures::executor::block_on(run_in_order());
    }

    async fn run_in_order() {
        let (a, b) = (
            FileId::from_uuid(uuid::Uuid::from_u128(1)),
            FileId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let sink = Sink::new("hook", &[3]);
        // Claimed out of order: the dispatcher sends each file's run by seq.
        let claimed = vec![
            pending(a, 2, &[]),
            pending(b, 1, &[]),
            pending(a, 1, &[]),
            pending(a, 4, &[]),
            pending(a, 3, &[]),
            pending(b, 2, &[]),
        ];
        let sinks: Vec<Arc<dyn EventSink>> = vec![sink.clone()];
        let (report, settled) = pass(claimed, sinks).await;
        let sent: Vec<u64> = sink
            .sent()
            .into_iter()
            .filter(|(f, _)| *f == a.to_string())
            .map(|(_, s)| s)
            .collect();
        assert_eq!(sent, [1, 2, 3], "in order, nothing after the failure");
        assert_eq!(
            (
                report.claimed,
                report.delivered,
                report.retried,
                report.released
            ),
            (6, 4, 1, 1)
        );
        let of = |file: FileId, seq: u64| {
            let id = pending(file, seq, &[]).event.id;
            settled.iter().find(|(i, _)| *i == id).unwrap().1.clone()
        };
        assert_eq!(of(a, 1), Settlement::Delivered);
        assert_eq!(of(a, 2), Settlement::Delivered);
        assert!(
            matches!(of(a, 3), Settlement::Retry { .. }),
            "{:?}",
            of(a, 3)
        );
        assert_eq!(of(a, 4), Settlement::Released);
        assert_eq!(
            (of(b, 1), of(b, 2)),
            (Settlement::Delivered, Settlement::Delivered)
        );
    }

    /// A sink that counts the deliveries in flight (each waits for many turns of the executor).
    #[derive(Default)]
    struct Crowd {
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl EventSink for Crowd {
        fn name(&self) -> &str {
            "crowd"
        }

        fn wants(&self, _: &EventMessage) -> bool {
            true
        }

        async fn deliver(&self, _: &EventMessage, _: &[u8]) -> Result<(), SinkError> {
            use std::sync::atomic::Ordering::SeqCst;
            let inside = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(inside, SeqCst);
            // Long enough for every delivery allowed to start to start first.
            let mut turns = 0;
            std::future::poll_fn(|cx| {
                turns += 1;
                if turns > 1000 {
                    std::task::Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
            self.now.fetch_sub(1, SeqCst);
            Ok(())
        }
    }

    #[test]
    fn a_pass_sends_a_bounded_number_of_runs_at_once() {
        futures::executor::block_on(bounded_runs());
    }

    async fn bounded_runs() {
        let claimed: Vec<OutboxEvent> = (1..=100)
            .map(|f| pending(FileId::from_uuid(uuid::Uuid::from_u128(f)), 1, &[]))
            .collect();
        let crowd = Arc::new(Crowd::default());
        let sinks: Vec<Arc<dyn EventSink>> = vec![crowd.clone()];
        let (report, _) = pass(claimed, sinks).await;
        assert_eq!(report.delivered, 100);
        let most = crowd.most.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            most, RUNS_IN_FLIGHT,
            "runs of different files side by side, bounded"
        );
    }

    #[test]
    fn a_retry_goes_only_to_the_sinks_that_did_not_acknowledge() {
        futures::executor::block_on(retry_skips_acked());
    }

    async fn retry_skips_acked() {
        let file = FileId::from_uuid(uuid::Uuid::from_u128(7));
        let (up, down) = (
            Sink::new("https://up/", &[]),
            Sink::new("https://down/", &[1]),
        );
        let sinks: Vec<Arc<dyn EventSink>> = vec![up.clone(), down.clone()];
        let (_, settled) = pass(vec![pending(file, 1, &[])], sinks.clone()).await;
        let Settlement::Retry { error, acked, .. } = &settled[0].1 else {
            panic!("{settled:?}");
        };
        assert_eq!(acked, &["https://up/".to_owned()]);
        assert!(error.starts_with("https://down/: 503"), "{error}");
        // The retry: the sink that took it is not asked again.
        down.failing.lock().unwrap().clear();
        let (_, settled) = pass(vec![pending(file, 1, &["https://up/"])], sinks).await;
        assert_eq!(settled[0].1, Settlement::Delivered);
        assert_eq!(up.sent().len(), 1, "the healthy sink got it once");
        assert_eq!(down.sent().len(), 2);
    }

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
