//! An HTTP/1.1 proxy in front of an S3 server (the test Garage) that fails chosen requests.
//!
//! Every request is forwarded as it came (method, path, query, headers, `Host` included, so
//! SigV4 signatures stay valid; body streamed), unless a [`Rule`] matches it: then the proxy
//! reads the request's body and answers the rule's [`Fault`] itself, without the store seeing
//! anything. Each rule fails a given number of matching requests (or all of them). The proxy
//! records every request it saw and whether it failed it ([`FaultProxy::seen`]).
//!
//! ```ignore
//! let proxy = FaultProxy::start(garage_addr).await;
//! proxy.fail(Rule::upload_part(None).times(1), Fault::Status(503));
//! // an S3 client configured with `proxy.endpoint()` sees its first UploadPart answered 503
//! ```
//!
//! It stops when dropped.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{
    Request, Response, StatusCode, Uri, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use tokio::{net::TcpListener, task::JoinHandle};

/// What the proxy does instead of forwarding a matched request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers this status with an S3-style XML error body.
    Status(u16),
    /// Closes the connection without answering (after reading the request).
    HangUp,
}

/// Which requests a rule fails, and how many of them.
#[derive(Debug, Clone)]
pub struct Rule {
    method: Option<String>,
    /// `Some(None)`: any `UploadPart`; `Some(Some(n))`: part `n` only.
    part: Option<Option<u32>>,
    /// Requests whose `Range` header starts `bytes=<n>-`.
    range_from: Option<u64>,
    /// How many matching requests are still to fail (`None`: every one).
    remaining: Option<u32>,
}

impl Rule {
    /// `UploadPart` requests (`PUT` with `partNumber` and `uploadId` in the query), of part
    /// `part` only when given.
    pub fn upload_part(part: Option<u32>) -> Self {
        Self {
            method: Some("PUT".to_owned()),
            part: Some(part),
            range_from: None,
            remaining: None,
        }
    }

    /// `GET` requests of the bytes from `first` (`Range: bytes=<first>-…`).
    pub fn get_range_from(first: u64) -> Self {
        Self {
            method: Some("GET".to_owned()),
            part: None,
            range_from: Some(first),
            remaining: None,
        }
    }

    /// Fails only the first `n` matching requests, then lets them through.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, seen: &Seen) -> bool {
        if self.remaining == Some(0) {
            return false;
        }
        if self.method.as_ref().is_some_and(|m| *m != seen.method) {
            return false;
        }
        if let Some(first) = self.range_from
            && seen.range_first() != Some(first)
        {
            return false;
        }
        match self.part {
            None => true,
            Some(wanted) => {
                seen.has_query("uploadId")
                    && seen
                        .part_number()
                        .is_some_and(|n| wanted.is_none_or(|w| w == n))
            }
        }
    }
}

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The fault answered instead of forwarding, if any.
    pub failed: Option<Fault>,
}

impl Seen {
    fn has_query(&self, name: &str) -> bool {
        self.query
            .split('&')
            .any(|kv| kv.split('=').next() == Some(name))
    }

    /// The first byte a `Range: bytes=<first>-…` header asks for.
    pub fn range_first(&self) -> Option<u64> {
        self.range
            .as_deref()?
            .strip_prefix("bytes=")?
            .split('-')
            .next()?
            .parse()
            .ok()
    }

    /// The `partNumber` of an `UploadPart` request.
    pub fn part_number(&self) -> Option<u32> {
        self.query
            .split('&')
            .find_map(|kv| kv.strip_prefix("partNumber="))
            .and_then(|n| n.parse().ok())
    }

    /// An `UploadPart` request (`PUT` with `partNumber` and `uploadId`).
    pub fn is_upload_part(&self) -> bool {
        self.method == "PUT" && self.has_query("uploadId") && self.part_number().is_some()
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<(Rule, Fault)>,
    seen: Vec<Seen>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault proxy: hang-up")
    }
}

impl std::error::Error for HangUp {}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("fault proxy: cannot bind 127.0.0.1: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("fault proxy: no local address: {e}"),
        };
        let state = Arc::new(Mutex::new(State::default()));
        let client: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build_http();
        let server = tokio::spawn(serve(listener, target, client, Arc::clone(&state)));
        Self {
            addr,
            state,
            server,
        }
    }

    /// `127.0.0.1:<port>`: the endpoint to give the S3 client.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Adds a rule: matching requests get `fault` instead of the store's answer.
    pub fn fail(&self, rule: Rule, fault: Fault) {
        lock(&self.state).rules.push((rule, fault));
    }

    /// Removes every rule: from now on everything is forwarded.
    pub fn heal(&self) {
        lock(&self.state).rules.clear();
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    client: Client<HttpConnector, Incoming>,
    state: Arc<Mutex<State>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or the like: try again shortly, without spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let (client, state) = (client.clone(), Arc::clone(&state));
        tokio::spawn(async move {
            let service =
                service_fn(move |req| handle(req, target, client.clone(), Arc::clone(&state)));
            // Errors are the client going away or a `Fault::HangUp`: nothing to do.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    target: SocketAddr,
    client: Client<HttpConnector, Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<ProxyBody>, HangUp> {
    let mut seen = Seen {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or_default().to_owned(),
        range: req
            .headers()
            .get(hyper::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        failed: None,
    };
    let fault = {
        let mut state = lock(&state);
        let fault = state
            .rules
            .iter_mut()
            .find(|(rule, _)| rule.matches(&seen))
            .map(|(rule, fault)| {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                *fault
            });
        seen.failed = fault;
        state.seen.push(seen);
        fault
    };
    match fault {
        Some(fault) => {
            // Read the whole request first, so the client always gets to read the answer.
            let _ = req.into_body().collect().await;
            match fault {
                Fault::HangUp => Err(HangUp),
                Fault::Status(code) => Ok(fault_response(code)),
            }
        }
        None => Ok(forward(req, target, client).await),
    }
}

fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn fault_response(code: u16) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InjectedFault</Code>\
         <Message>fault proxy: answered {code} instead of the store</Message></Error>"
    );
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}

/// Sends the request on to `target` unchanged (the `Host` header stays the client's).
async fn forward(
    mut req: Request<Incoming>,
    target: SocketAddr,
    client: Client<HttpConnector, Incoming>,
) -> Response<ProxyBody> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let uri: Uri = match format!("http://{target}{path_and_query}").parse() {
        Ok(uri) => uri,
        Err(_) => return fault_response(400),
    };
    *req.uri_mut() = uri;
    match client.request(req).await {
        Ok(response) => response.map(BodyExt::boxed),
        // The store is unreachable: what a gateway answers.
        Err(_) => fault_response(502),
    }
}
