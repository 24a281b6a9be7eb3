//! Connection settings of the PostgreSQL metadata store.

use std::time::Duration;

use secrecy::SecretString;
use storage_domain::rules::chain::AuditChain;

/// How to reach PostgreSQL and how long to wait for it.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`; kept secret (never logged).
    pub url: SecretString,
    /// Most connections the pool opens.
    pub max_size: usize,
    /// Longest wait for a free connection before answering `Unavailable`.
    pub wait_timeout: Duration,
    /// Longest time to open a new connection.
    pub create_timeout: Duration,
    /// Longest time to check a returned connection before reuse.
    pub recycle_timeout: Duration,
    /// `statement_timeout` set on every connection: no statement (lock waits included) runs
    /// longer.
    pub statement_timeout: Duration,
    /// Whether a change's event is queued for delivery (`EVENTS_ENABLED`, default true). Off,
    /// the audit trail and its chain are written the same, but no event waits in the outbox.
    pub publish_events: bool,
    /// Whether the events written are chained (`AUDIT_CHAIN`; on by default, off only to
    /// measure what the chain costs).
    pub audit_chain: AuditChain,
}

impl PgConfig {
    /// Defaults suited to a service: 16 connections, waits of a few seconds.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            publish_events: true,
            audit_chain: AuditChain::default(),
        }
    }
}
