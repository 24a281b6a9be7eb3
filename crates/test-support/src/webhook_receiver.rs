//! A webhook receiver for the events tests (issue 17): an HTTP server that checks every
//! delivery's Standard Webhooks signature with the `standardwebhooks` crate (the reference
//! implementation, independent of the service's signer), records it, and answers as told
//! ([`ReceiverMode`]): 200, an error status, or never (a hung receiver). It stops when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceiverMode {
    /// `200` for a delivery whose signature verifies (`401` otherwise).
    #[default]
    Accept,
    /// This status, whatever came.
    Fail(u16),
    /// Never answers (holds the request until the sender gives up).
    Hang,
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `webhook-id`.
    pub id: String,
    /// Its signature verified with the subscription's secret.
    pub verified: bool,
    /// The receiver answered 2xx.
    pub accepted: bool,
    /// The body, parsed.
    pub body: Value,
}

#[derive(Debug, Default)]
struct State {
    mode: Mutex<ReceiverMode>,
    deliveries: Mutex<Vec<Delivery>>,
}

/// The receiver.
#[derive(Debug)]
pub struct WebhookReceiver {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fresh `whsec_…` secret (32 random bytes).
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: Vec<u8> = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .copied()
        .collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

impl WebhookReceiver {
    /// Starts a receiver on 127.0.0.1 checking signatures with `secret` (`whsec_…`).
    ///
    /// # Panics
    /// When it cannot bind, or the secret is not one.
    pub async fn start(secret: &str) -> Self {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap_or_else(|e| panic!("webhook receiver: cannot bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("webhook receiver: {e}"));
        let webhook = Arc::new(
            standardwebhooks::Webhook::new(secret)
                .unwrap_or_else(|e| panic!("webhook receiver: bad secret: {e}")),
        );
        let state = Arc::new(State::default());
        let server = tokio::spawn(serve(listener, Arc::clone(&state), webhook));
        Self {
            addr,
            state,
            server,
        }
    }

    /// The URL to subscribe.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set_mode(&self, mode: ReceiverMode) {
        *self
            .state
            .mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Every request so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many requests arrived so far (without copying them).
    pub fn count(&self) -> usize {
        self.state
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// How many of them failed the signature check.
    pub fn unverified(&self) -> usize {
        self.state
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|d| !d.verified)
            .count()
    }

    /// Waits until `done` holds for the deliveries so far, at most `timeout`; returns them.
    ///
    /// # Panics
    /// When `timeout` passes first, with what arrived.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let start = std::time::Instant::now();
        loop {
            let seen = self.deliveries();
            if done(&seen) {
                return seen;
            }
            if start.elapsed() > timeout {
                let ids: Vec<(String, bool, Value)> = seen
                    .iter()
                    .map(|d| (d.id.clone(), d.accepted, d.body["type"].clone()))
                    .collect();
                panic!("webhook receiver: {what} not seen within {timeout:?}; got {ids:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, webhook: Arc<standardwebhooks::Webhook>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (state, webhook) = (Arc::clone(&state), Arc::clone(&webhook));
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let (state, webhook) = (Arc::clone(&state), Arc::clone(&webhook));
                async move { handle(req, &state, &webhook).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    req: Request<Incoming>,
    state: &State,
    webhook: &standardwebhooks::Webhook,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let verified = webhook.verify(&body, &headers).is_ok();
    let mode = *state.mode.lock().unwrap_or_else(PoisonError::into_inner);
    let status = match mode {
        ReceiverMode::Accept if verified => StatusCode::OK,
        ReceiverMode::Accept => StatusCode::UNAUTHORIZED,
        ReceiverMode::Fail(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        ReceiverMode::Hang => StatusCode::OK,
    };
    let delivery = Delivery {
        id: headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        verified,
        accepted: status.is_success() && mode != ReceiverMode::Hang,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    state
        .deliveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(delivery);
    if mode == ReceiverMode::Hang {
        std::future::pending::<()>().await;
    }
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(b"ok")))
        .unwrap_or_default())
}
