//! A real HTTP stand-in for the external project service (seed: "Endpoints requis du service
//! Project"), for tests of every crate and for `deploy/` (binary `project-standin`).
//!
//! It answers `POST …/check-file-access` and `POST …/check-file-access/batch` (under any path
//! prefix) from rules the test sets: allow or deny per user, project and action. The user is the
//! `sub` of the JWT forwarded in the cookie (or, failing that, the bearer header), decoded
//! **without** verification: checking the token is the storage service's job, not the stand-in's.
//! A request without a readable token answers 401. Anything not allowed by a rule is denied.
//!
//! It can misbehave on demand ([`Mode`]) and records every request it receives
//! ([`ProjectStandin::requests`]). It stops when dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The user rules apply to when a rule names this user: anyone with a readable token.
pub const ANY_USER: &str = "*";

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Answers from the rules.
    #[default]
    Normal,
    /// Waits this long, then answers from the rules.
    Slow(Duration),
    /// Answers `500 Internal Server Error`.
    Status500,
    /// Answers `200` with a body that is not JSON.
    Garbage,
    /// Reads the request, then closes the connection without answering.
    Close,
    /// Answers `200` with a valid-looking JSON body of about 1 MiB.
    Oversized,
    /// Batch only: answers one result fewer than the checks asked (single checks are normal).
    BatchShort,
    /// Batch only: answers as many results as asked, but the first names another project.
    BatchMismatch,
    /// Batch only: answers as many results as asked, but the last names another action.
    BatchWrongAction,
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `POST`, …
    pub method: String,
    /// The request path, prefix included (`/api/check-file-access`).
    pub path: String,
    /// Every header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Cookie` header.
    pub fn cookie(&self) -> Option<&str> {
        self.header("cookie")
    }

    /// The `Authorization` header.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One rule of the stand-in's JSON rules file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The token's `sub`, or [`ANY_USER`].
    pub user: String,
    /// The project id.
    pub project: String,
    /// The actions (`read`, `write`, `delete`, `lock`, `validate`) the rule decides.
    pub actions: Vec<String>,
    /// Allow (`true`) or deny (`false`).
    pub allowed: bool,
    /// Role returned with an allowed answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The rules file read by the `project-standin` binary: `{"rules":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesFile {
    /// The rules, applied in order (a user-specific rule beats an [`ANY_USER`] rule).
    #[serde(default)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Decision {
    allowed: bool,
    role: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    /// (user, project, action) → decision.
    rules: Mutex<HashMap<(String, String, String), Decision>>,
    mode: Mutex<Mode>,
    requests: Mutex<Vec<RecordedRequest>>,
    cookie_name: Mutex<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not make the stand-in panic too.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running stand-in. Dropping it stops the server and its connections.
#[derive(Debug)]
pub struct ProjectStandin {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for ProjectStandin {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the server task: aborting it aborts
        // them all.
        self.server.abort();
    }
}

impl ProjectStandin {
    /// Starts a stand-in on a random port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound (test support: a test cannot go on without it).
    pub async fn start() -> Self {
        match Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(standin) => standin,
            Err(e) => panic!("project stand-in: cannot bind 127.0.0.1: {e}"),
        }
    }

    /// Starts a stand-in on `addr` (port 0 for a random port).
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        *lock(&state.cookie_name) = "access_token".to_owned();
        let server = tokio::spawn(serve(listener, Arc::clone(&state)));
        Ok(Self {
            addr,
            state,
            server,
        })
    }

    /// The base URL (`http://127.0.0.1:<port>`), to be used as `PROJECT_SERVICE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the stand-in listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the name of the cookie the user's token is read from (default `access_token`).
    pub fn set_cookie_name(&self, name: &str) {
        name.clone_into(&mut lock(&self.state.cookie_name));
    }

    /// Allows `user` (a token `sub`, or [`ANY_USER`]) to do `action` on `project`.
    pub fn allow(&self, user: &str, project: &str, action: &str) {
        self.set_rule(
            user,
            project,
            action,
            Decision {
                allowed: true,
                role: None,
            },
        );
    }

    /// Allows, answering `role` with the decision.
    pub fn allow_with_role(&self, user: &str, project: &str, action: &str, role: &str) {
        self.set_rule(
            user,
            project,
            action,
            Decision {
                allowed: true,
                role: Some(role.to_owned()),
            },
        );
    }

    /// Denies `user` `action` on `project` (the default without a rule; useful to override an
    /// [`ANY_USER`] rule or an earlier `allow`).
    pub fn deny(&self, user: &str, project: &str, action: &str) {
        self.set_rule(
            user,
            project,
            action,
            Decision {
                allowed: false,
                role: None,
            },
        );
    }

    /// Loads every rule of a rules file.
    pub fn load_rules(&self, rules: &RulesFile) {
        for rule in &rules.rules {
            for action in &rule.actions {
                let decision = Decision {
                    allowed: rule.allowed,
                    role: rule.role.clone(),
                };
                self.set_rule(&rule.user, &rule.project, action, decision);
            }
        }
    }

    /// Removes every rule (everything is denied again).
    pub fn clear_rules(&self) {
        lock(&self.state.rules).clear();
    }

    /// Changes how the stand-in answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.state.mode) = mode;
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }

    fn set_rule(&self, user: &str, project: &str, action: &str, decision: Decision) {
        lock(&self.state.rules).insert(
            (user.to_owned(), project.to_owned(), action.to_owned()),
            decision,
        );
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: wait a moment instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&state), req));
            // Errors here are the client going away or `Mode::Close`: nothing to do.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

/// The error a handler returns to make hyper drop the connection without answering.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closing the connection on purpose")
    }
}

impl std::error::Error for CloseConnection {}

type Answer = Result<Response<Full<Bytes>>, CloseConnection>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(CloseConnection),
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    lock(&state.requests).push(recorded.clone());

    let mode = *lock(&state.mode);
    match mode {
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::Status500 => {
            return Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "boom"}),
            ));
        }
        Mode::Garbage => {
            return Ok(raw(StatusCode::OK, Bytes::from_static(b"<html>not json{{")));
        }
        Mode::Close => return Err(CloseConnection),
        Mode::Oversized => {
            let reason = "x".repeat(1024 * 1024);
            return Ok(respond(
                StatusCode::OK,
                json!({"allowed": true, "reason": reason}),
            ));
        }
        Mode::Normal | Mode::BatchShort | Mode::BatchMismatch | Mode::BatchWrongAction => {}
    }

    if recorded.method != "POST" {
        return Ok(respond(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "method_not_allowed"}),
        ));
    }
    let batch = recorded.path.ends_with("/check-file-access/batch");
    if !batch && !recorded.path.ends_with("/check-file-access") {
        return Ok(respond(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found"}),
        ));
    }
    let cookie_name = lock(&state.cookie_name).clone();
    let Some(user) = caller(&recorded, &cookie_name) else {
        return Ok(respond(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing_jwt_token"}),
        ));
    };
    let body = recorded.json();
    if batch {
        let Some(checks) = body.get("checks").and_then(Value::as_array) else {
            return Ok(respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "checks_required"}),
            ));
        };
        let mut results = Vec::with_capacity(checks.len());
        for check in checks {
            let Some((project, action)) = parse_check(check) else {
                return Ok(respond(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid_check"}),
                ));
            };
            let decision = decide(&state, &user, project, action);
            let mut result =
                json!({"project_id": project, "action": action, "allowed": decision.allowed});
            if let Some(role) = decision.role {
                result["role"] = json!(role);
            }
            results.push(result);
        }
        match mode {
            Mode::BatchShort => {
                results.pop();
            }
            Mode::BatchMismatch => {
                if let Some(first) = results.first_mut() {
                    first["project_id"] = json!("some-other-project");
                }
            }
            Mode::BatchWrongAction => {
                if let Some(last) = results.last_mut() {
                    let other = if last["action"] == "read" {
                        "write"
                    } else {
                        "read"
                    };
                    last["action"] = json!(other);
                }
            }
            _ => {}
        }
        Ok(respond(StatusCode::OK, json!({ "results": results })))
    } else {
        let Some((project, action)) = parse_check(&body) else {
            return Ok(respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_check"}),
            ));
        };
        let decision = decide(&state, &user, project, action);
        let answer = if decision.allowed {
            match decision.role {
                Some(role) => json!({"allowed": true, "role": role}),
                None => json!({"allowed": true}),
            }
        } else {
            json!({"allowed": false, "reason": "insufficient_permissions"})
        };
        Ok(respond(StatusCode::OK, answer))
    }
}

const ACTIONS: [&str; 5] = ["read", "write", "delete", "lock", "validate"];

fn parse_check(check: &Value) -> Option<(&str, &str)> {
    let project = check.get("project_id")?.as_str()?;
    let action = check.get("action")?.as_str()?;
    ACTIONS.contains(&action).then_some((project, action))
}

fn decide(state: &State, user: &str, project: &str, action: &str) -> Decision {
    let rules = lock(&state.rules);
    let key = |u: &str| (u.to_owned(), project.to_owned(), action.to_owned());
    rules
        .get(&key(user))
        .or_else(|| rules.get(&key(ANY_USER)))
        .cloned()
        .unwrap_or(Decision {
            allowed: false,
            role: None,
        })
}

/// The `sub` of the token in the forwarded cookie, else in the bearer header. Not verified.
fn caller(req: &RecordedRequest, cookie_name: &str) -> Option<String> {
    let from_cookie = req.cookie().and_then(|header| {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| name.trim() == cookie_name)
            .map(|(_, value)| value.trim().to_owned())
    });
    let from_bearer = req.authorization().and_then(|header| {
        let (scheme, token) = header.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
    });
    [from_cookie, from_bearer]
        .into_iter()
        .flatten()
        .find_map(|token| unverified_sub(&token))
}

/// Decodes a JWT's claims without checking anything and returns its `sub`.
pub fn unverified_sub(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = raw(status, Bytes::from(body.to_string()));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn raw(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
