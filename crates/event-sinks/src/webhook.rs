//! Webhooks signed as Standard Webhooks: a `POST` of the event's JSON with `webhook-id` (the
//! event id, the same on every retry), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
//! base64 part of the subscription's `whsec_…` secret. A 2xx answer is delivered; anything
//! else, a timeout or a refused connection is a failure the dispatcher retries. The answer's
//! body is read up to [`BODY_CAP`] bytes (to name the failure), never further; redirects are
//! not followed.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use storage_domain::ports::{EventSink, SinkError};
use storage_domain::rules::events::{EventFilter, EventMessage};

use crate::subscriptions::Subscription;

/// What is read of a receiver's answer, at most.
pub const BODY_CAP: usize = 4096;

/// The `webhook-signature` value (`v1,<base64>`) of a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// One subscription's endpoint.
pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    key: Vec<u8>,
    filter: EventFilter,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink for `subscription`; each request is bounded by `timeout` (connection included).
    ///
    /// # Errors
    /// The HTTP client could not be built (TLS roots).
    pub fn new(subscription: Subscription, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("storage-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Self {
            name: crate::subscriptions::sink_name(&subscription.url),
            url: subscription.url,
            key: subscription.key,
            filter: subscription.filter,
            client,
        })
    }
}

#[async_trait]
impl EventSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants(&self, event: &EventMessage) -> bool {
        self.filter.matches(event)
    }

    async fn deliver(&self, event: &EventMessage, body: &[u8]) -> Result<(), SinkError> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let signature = sign(&self.key, &event.id, timestamp, body);
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| SinkError(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // Read a little of the answer to name the failure, never more.
        let mut stream = response.bytes_stream();
        let mut head = Vec::new();
        while head.len() < BODY_CAP {
            match stream.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                _ => break,
            }
        }
        head.truncate(BODY_CAP);
        let text: String = String::from_utf8_lossy(&head)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        Err(SinkError(format!("answered {status}: {text}")))
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        format!("request failed: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The test vector of the Standard Webhooks specification.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
