//! The event ports (issue 17): where published events go ([`EventSink`]: a webhook
//! subscription, a NATS JetStream subject), and the outbox's view of a stored event.
//!
//! The outbox itself is the audit trail: [`MetadataStore`](super::MetadataStore) claims, settles,
//! lists and re-queues events (`claim_events`, `settle_event`, `list_events`, `retry_events`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::AuditEvent;
use crate::rules::events::EventMessage;

/// Where an event stands in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet taken by every sink; claimed by a dispatcher when due.
    Pending,
    Delivered,
    /// Given up after the configured number of attempts (a dead letter).
    Dead,
}

impl DeliveryState {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
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
}

/// What the dispatcher decided after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Delivered,
    /// Try again not before `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Give up: a dead letter.
    Dead {
        error: String,
    },
}

/// A sink refused or could not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A destination of events. Delivery is at least once: a sink may get the same event (the same
/// `id`) again after a failure or a dispatcher's crash, and must tell duplicates by the id.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// A name for logs and errors (a webhook's URL without its query, `nats`).
    fn name(&self) -> &str;

    /// Whether this sink takes this event at all (a subscription's filter).
    fn wants(&self, event: &EventMessage) -> bool;

    /// Sends one event (`body` is `event` serialised); `Ok` once the sink acknowledged it.
    async fn deliver(&self, event: &EventMessage, body: &[u8]) -> Result<(), SinkError>;
}
