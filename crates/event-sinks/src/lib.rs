//! Event sinks (issue 17): the [`EventSink`](storage_domain::ports::EventSink) port over HTTP
//! webhooks signed as Standard Webhooks ([`webhook`]) and over NATS JetStream ([`nats`]), and the
//! subscriptions file (`WEBHOOKS_FILE`, [`subscriptions`]).

pub mod nats;
pub mod subscriptions;
pub mod webhook;

pub use nats::{NatsConfig, NatsSink};
pub use subscriptions::{Subscription, parse_subscriptions};
pub use webhook::{WebhookSink, sign};
