//! The event ports (issue 17): where published events go ([`EventSink`]: a webhook
//! subscription, a NATS JetStream subject), and the outbox's view of a stored event.
//!
//! The outbox is kept by the metadata store beside the audit trail: an event that publishes is
//! written with the change, queued in the same transaction, and leaves the outbox once every
//! sink took it (the audit trail keeps it; nothing of its delivery is written there).
//! [`MetadataStore`](super::MetadataStore) claims, settles, lists and re-queues queued events
//! (`claim_events`, `settle_events`, `list_events`, `retry_events`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::AuditEvent;
use crate::rules::events::EventMessage;

/// Where an event stands in the outbox (a delivered event is no longer in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet taken by every sink; claimed by a dispatcher when due.
    Pending,
    /// Given up after the configured number of attempts (a dead letter).
    Dead,
}

impl DeliveryState {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Dead => "dead",
        }
    }
}

/// A stored event with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub event: AuditEvent,
    pub state: DeliveryState,
    /// Attempts so far (a claim counts one).
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The sinks that acknowledged it ([`EventSink::name`]), sorted: a retry skips them.
    pub acked: Vec<String>,
}

/// What the dispatcher decided after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Delivered,
    /// Try again not before `at`. `acked`: every sink that acknowledged the event so far
    /// (those of earlier attempts included), sorted; the retry goes to the others only.
    Retry {
        at: DateTime<Utc>,
        error: String,
        acked: Vec<String>,
    },
    /// Give up: a dead letter (`error` names the sinks that failed; `acked` as for `Retry`,
    /// so `storage-server events retry` sends it again to the failed sinks only).
    Dead {
        error: String,
        acked: Vec<String>,
    },
    /// Not attempted (an earlier event of its file failed in the same run, or the run ran out
    /// of lease): back in the queue as it was, the claim's attempt not counted, due as before.
    Released,
}

/// A sink refused or could not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A destination of events. Delivery is at least once: a sink may get the same event (the same
/// `id`) again after a failure or a dispatcher's crash, and must tell duplicates by the id.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// The sink's name, for logs and errors, and its identity in the outbox's per-sink
    /// delivery state (`OutboxEvent::acked`): stable across restarts and unique among the
    /// sinks (a webhook's URL without its query, `nats:<stream>`).
    fn name(&self) -> &str;

    /// Whether this sink takes this event at all (a subscription's filter).
    fn wants(&self, event: &EventMessage) -> bool;

    /// Sends one event (`body` is `event` serialised); `Ok` once the sink acknowledged it.
    async fn deliver(&self, event: &EventMessage, body: &[u8]) -> Result<(), SinkError>;
}
