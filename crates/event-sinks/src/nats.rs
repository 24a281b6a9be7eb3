//! NATS JetStream: each event is published to `<prefix>.<bucket>.<type>` (e.g.
//! `storage.projects.version.approved`) with `Nats-Msg-Id` = the event id, so JetStream drops a
//! retry of a message it already stored (within the stream's duplicate window); the publish
//! counts once JetStream acknowledged it. The stream (`NATS_STREAM`, subjects `<prefix>.>`) is
//! created when missing. A server that cannot be reached does not stop the service: the sink
//! connects when it first delivers, and until then each delivery fails and is retried like any
//! other (the events wait in the outbox).

use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use storage_domain::ports::{EventSink, SinkError};
use storage_domain::rules::events::EventMessage;

/// `NATS_URL`, `NATS_SUBJECT_PREFIX`, `NATS_STREAM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub url: String,
    pub subject_prefix: String,
    pub stream: String,
    /// How long a publish waits for JetStream's acknowledgement.
    pub timeout: Duration,
}

/// The JetStream sink.
pub struct NatsSink {
    name: String,
    prefix: String,
    config: NatsConfig,
    context: tokio::sync::OnceCell<jetstream::Context>,
    timeout: Duration,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// A sink that connects (and creates the stream) when it first delivers.
    pub fn new(config: &NatsConfig) -> Self {
        Self {
            name: format!("nats:{}", config.stream),
            prefix: config.subject_prefix.clone(),
            config: config.clone(),
            context: tokio::sync::OnceCell::new(),
            timeout: config.timeout,
        }
    }

    /// Connects and makes sure the stream exists.
    ///
    /// # Errors
    /// The server cannot be reached, or the stream cannot be read or created.
    pub async fn connect(config: &NatsConfig) -> Result<Self, String> {
        let sink = Self::new(config);
        sink.context().await?;
        Ok(sink)
    }

    /// The JetStream context, connected once.
    async fn context(&self) -> Result<&jetstream::Context, String> {
        self.context
            .get_or_try_init(|| async {
                let config = &self.config;
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(config.timeout)
                    .connect(&config.url)
                    .await
                    .map_err(|e| format!("NATS {}: {e}", config.url))?;
                let context = jetstream::new(client);
                context
                    .get_or_create_stream(jetstream::stream::Config {
                        name: config.stream.clone(),
                        subjects: vec![format!("{}.>", config.subject_prefix)],
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| format!("NATS stream {}: {e}", config.stream))?;
                Ok(context)
            })
            .await
    }

    /// The subject of an event.
    pub fn subject(&self, event: &EventMessage) -> String {
        subject(&self.prefix, event)
    }
}

/// `<prefix>.<bucket>.<type>`.
pub fn subject(prefix: &str, event: &EventMessage) -> String {
    format!("{prefix}.{}.{}", event.bucket, event.event_type.as_str())
}

#[async_trait]
impl EventSink for NatsSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants(&self, _: &EventMessage) -> bool {
        true
    }

    async fn deliver(&self, event: &EventMessage, body: &[u8]) -> Result<(), SinkError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.as_str());
        let publish = async {
            self.context()
                .await
                .map_err(SinkError)?
                .publish_with_headers(self.subject(event), headers, body.to_vec().into())
                .await
                .map_err(|e| SinkError(format!("publish: {e}")))?
                .await
                .map_err(|e| SinkError(format!("not acknowledged: {e}")))
        };
        match tokio::time::timeout(self.timeout, publish).await {
            Ok(Ok(_ack)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SinkError("timed out".into())),
        }
    }
}
