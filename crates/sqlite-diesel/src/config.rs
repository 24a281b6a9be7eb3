//! Settings of the SQLite metadata store.

use std::time::Duration;

use storage_domain::rules::chain::AuditChain;

/// How many connections the store opens and how long it waits.
///
/// The store has one writer connection and a pool of readers (see the crate docs): writes queue
/// for the writer, reads run beside them on WAL snapshots.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Most read connections open at once.
    pub max_readers: usize,
    /// Longest wait for the writer or a free reader before answering `Unavailable` (writes that
    /// queue behind a busy writer end here).
    pub wait_timeout: Duration,
    /// SQLite's `busy_timeout`: longest wait for a database lock held by another connection
    /// (another process, a backup, a `migrate` run) before answering `Unavailable`.
    pub busy_timeout: Duration,
    /// Whether a change's event is queued for delivery (`EVENTS_ENABLED`, default true). Off,
    /// the audit trail and its chain are written the same, but no event waits in the outbox.
    pub publish_events: bool,
    /// Whether the events written are chained (`AUDIT_CHAIN`; on by default, off only to
    /// measure what the chain costs).
    pub audit_chain: AuditChain,
}

impl Default for SqliteConfig {
    /// Four readers, waits of five seconds.
    fn default() -> Self {
        Self {
            max_readers: 4,
            wait_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            publish_events: true,
            audit_chain: AuditChain::default(),
        }
    }
}
