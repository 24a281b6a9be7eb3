//! Project-service access adapter (hyper client): implements the domain's
//! [`ProjectAccess`] port over HTTP (spec §2, seed "Endpoints requis du service Project").
//!
//! - `POST {PROJECT_SERVICE_URL}/check-file-access` with `{"project_id","action","file_id"?}`,
//!   answered by `{"allowed": bool, "role"?, "reason"?}`;
//! - `POST {PROJECT_SERVICE_URL}/check-file-access/batch` with `{"checks":[…]}`, answered by
//!   `{"results":[{"project_id","action","allowed"}…]}` in the order asked.
//!
//! The caller's cookie and bearer header are forwarded. Each call has one **total** budget
//! (connect, send, wait, read the body): `PROJECT_SERVICE_TIMEOUT_MS`, 2 s by default. The
//! adapter fails closed: a timeout, a connection error, a non-2xx status, a malformed or
//! oversized body, or a batch answer that does not match the checks asked is a
//! [`ProjectAccessError`], never a decision. Nothing is cached.

pub mod policy;

pub use policy::{PolicyError, PolicyProjectAccess};

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storage_domain::model::{FileId, Principal};
use storage_domain::ports::{
    AccessCheck, AccessDecision, ProjectAccess, ProjectAccessError, ProjectAction,
};

/// The budget of one call when `PROJECT_SERVICE_TIMEOUT_MS` is not set (spec §2).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest answer body read. An access decision is a few hundred bytes; a batch of a
/// hundred checks a few KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// How to reach the project service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectServiceConfig {
    /// `http://host:port`, optionally with a path prefix (`http://host:5001/api`).
    pub base_url: String,
    /// The total budget of one call.
    pub timeout: Duration,
    /// The largest answer body read; a larger one is a malformed answer.
    pub max_body_bytes: usize,
}

impl ProjectServiceConfig {
    /// A configuration with the default budget and body cap.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Reads `PROJECT_SERVICE_URL` (required) and `PROJECT_SERVICE_TIMEOUT_MS` (default 2000)
    /// through `lookup` (for example `|name| std::env::var(name).ok()`).
    ///
    /// # Errors
    /// [`ProjectConfigError`] naming the variable that is missing or invalid.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProjectConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let base_url = get("PROJECT_SERVICE_URL").ok_or(ProjectConfigError::Missing {
            var: "PROJECT_SERVICE_URL",
        })?;
        let timeout = match get("PROJECT_SERVICE_TIMEOUT_MS") {
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(ProjectConfigError::Invalid {
                        var: "PROJECT_SERVICE_TIMEOUT_MS",
                        reason: format!("'{raw}' is not a positive number of milliseconds"),
                    });
                }
            },
            None => DEFAULT_TIMEOUT,
        };
        Ok(Self {
            base_url: base_url.trim().to_owned(),
            timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }
}

/// Why the adapter could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectConfigError {
    /// A required variable is not set.
    #[error("{var} is not set")]
    Missing { var: &'static str },
    /// A variable is set to something unusable.
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// The [`ProjectAccess`] adapter: a pooled HTTP/1.1 client (hyper-util legacy client).
#[derive(Clone)]
pub struct HttpProjectAccess {
    client: Client<HttpConnector, Full<Bytes>>,
    single_url: Uri,
    batch_url: Uri,
    timeout: Duration,
    max_body_bytes: usize,
}

impl fmt::Debug for HttpProjectAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProjectAccess")
            .field("single_url", &self.single_url)
            .field("batch_url", &self.batch_url)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl HttpProjectAccess {
    /// Builds the adapter. Makes no request: an unreachable service shows at the first check.
    ///
    /// # Errors
    /// [`ProjectConfigError::Invalid`] for a base URL that is not `http://host[:port][/prefix]`
    /// (`https` is not supported: the project service is reached on the internal network) or a
    /// zero timeout.
    pub fn new(config: &ProjectServiceConfig) -> Result<Self, ProjectConfigError> {
        let invalid = |reason: String| ProjectConfigError::Invalid {
            var: "PROJECT_SERVICE_URL",
            reason,
        };
        let base: Uri = config
            .base_url
            .parse()
            .map_err(|e| invalid(format!("'{}' is not a URL: {e}", config.base_url)))?;
        if base.scheme_str() != Some("http") {
            return Err(invalid(format!(
                "'{}' must start with http://",
                config.base_url
            )));
        }
        let Some(authority) = base.authority() else {
            return Err(invalid(format!("'{}' names no host", config.base_url)));
        };
        if base.query().is_some() || authority.as_str().contains('@') {
            return Err(invalid(format!(
                "'{}' must not carry a query or credentials",
                config.base_url
            )));
        }
        if config.timeout.is_zero() {
            return Err(ProjectConfigError::Invalid {
                var: "PROJECT_SERVICE_TIMEOUT_MS",
                reason: "must be more than zero".into(),
            });
        }
        let prefix = base.path().trim_end_matches('/');
        let url = |suffix: &str| -> Result<Uri, ProjectConfigError> {
            format!("http://{authority}{prefix}{suffix}")
                .parse()
                .map_err(|e| invalid(format!("cannot build the check URL: {e}")))
        };
        let single_url = url("/check-file-access")?;
        let batch_url = url("/check-file-access/batch")?;

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(32)
            .build(connector);
        Ok(Self {
            client,
            single_url,
            batch_url,
            timeout: config.timeout,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Posts `body` to `url` with the caller's credentials and returns the answer's JSON body,
    /// all within the call's budget.
    async fn post(
        &self,
        url: &Uri,
        caller: &Principal,
        body: Vec<u8>,
    ) -> Result<Bytes, ProjectAccessError> {
        let request = self.request(url, caller, body)?;
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(ProjectAccessError::Timeout),
        }
    }

    fn request(
        &self,
        url: &Uri,
        caller: &Principal,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>, ProjectAccessError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let credentials = &caller.credentials;
        for (name, value) in [
            (COOKIE, &credentials.cookie),
            (AUTHORIZATION, &credentials.authorization),
        ] {
            if let Some(value) = value {
                // The value came from a request header, so it is a valid header value; if not,
                // deny rather than call without credentials.
                let mut value = HeaderValue::from_str(value).map_err(|_| {
                    ProjectAccessError::Unreachable(format!("unusable forwarded {name} header"))
                })?;
                value.set_sensitive(true);
                request = request.header(name, value);
            }
        }
        request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProjectAccessError::Unreachable(format!("cannot build the request: {e}")))
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Bytes, ProjectAccessError> {
        let response = self.client.request(request).await.map_err(|e| {
            let kind = if e.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            ProjectAccessError::Unreachable(format!("{kind}: {}", error_chain(&e)))
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ProjectAccessError::BadStatus(status.as_u16()));
        }
        let body = Limited::new(response.into_body(), self.max_body_bytes);
        match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(ProjectAccessError::Malformed(format!(
                    "body larger than {} bytes",
                    self.max_body_bytes
                )))
            }
            Err(e) => Err(ProjectAccessError::Unreachable(format!(
                "reading the body: {e}"
            ))),
        }
    }
}

/// A `Display` of an error and its sources, for the logged cause.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One check as the project service reads it.
#[derive(Debug, Serialize)]
struct CheckBody<'a> {
    project_id: &'a str,
    action: ProjectAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_id: Option<FileId>,
}

impl<'a> From<&'a AccessCheck> for CheckBody<'a> {
    fn from(check: &'a AccessCheck) -> Self {
        Self {
            project_id: check.project_id.as_str(),
            action: check.action,
            file_id: check.file_id,
        }
    }
}

#[derive(Debug, Serialize)]
struct BatchBody<'a> {
    checks: Vec<CheckBody<'a>>,
}

/// `{"allowed": bool, "role"?, "reason"?}`. `allowed` must be a boolean; `role` and `reason`
/// are informative and kept only when they are strings.
#[derive(Debug, Deserialize)]
struct Answer {
    allowed: bool,
    #[serde(default)]
    role: Option<Value>,
    #[serde(default)]
    reason: Option<Value>,
}

impl Answer {
    fn into_decision(self) -> AccessDecision {
        let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
        if self.allowed {
            AccessDecision::Allowed {
                role: text(self.role),
            }
        } else {
            AccessDecision::Denied {
                reason: text(self.reason),
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct BatchAnswer {
    results: Vec<BatchResult>,
}

#[derive(Debug, Deserialize)]
struct BatchResult {
    project_id: String,
    action: String,
    #[serde(flatten)]
    answer: Answer,
}

fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, ProjectAccessError> {
    serde_json::to_vec(body)
        .map_err(|e| ProjectAccessError::Unreachable(format!("cannot encode the request: {e}")))
}

fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, ProjectAccessError> {
    serde_json::from_slice(body).map_err(|e| ProjectAccessError::Malformed(e.to_string()))
}

#[async_trait]
impl ProjectAccess for HttpProjectAccess {
    async fn check(
        &self,
        caller: &Principal,
        check: &AccessCheck,
    ) -> Result<AccessDecision, ProjectAccessError> {
        let body = encode(&CheckBody::from(check))?;
        let answer = self.post(&self.single_url, caller, body).await?;
        Ok(parse::<Answer>(&answer)?.into_decision())
    }

    async fn check_batch(
        &self,
        caller: &Principal,
        checks: &[AccessCheck],
    ) -> Result<Vec<AccessDecision>, ProjectAccessError> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let body = encode(&BatchBody {
            checks: checks.iter().map(CheckBody::from).collect(),
        })?;
        let answer = self.post(&self.batch_url, caller, body).await?;
        let answer: BatchAnswer = parse(&answer)?;
        if answer.results.len() != checks.len() {
            return Err(ProjectAccessError::Malformed(format!(
                "{} results for {} checks",
                answer.results.len(),
                checks.len()
            )));
        }
        checks
            .iter()
            .zip(answer.results)
            .enumerate()
            .map(|(i, (check, result))| {
                if result.project_id != check.project_id.as_str()
                    || result.action != check.action.as_str()
                {
                    return Err(ProjectAccessError::Malformed(format!(
                        "result {i} answers ({}, {}) for the check ({}, {})",
                        result.project_id,
                        result.action,
                        check.project_id,
                        check.action.as_str()
                    )));
                }
                Ok(result.answer.into_decision())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_with_prefix_builds_both_urls() {
        let access =
            HttpProjectAccess::new(&ProjectServiceConfig::new("http://host:5001/api/")).unwrap();
        assert_eq!(
            access.single_url.to_string(),
            "http://host:5001/api/check-file-access"
        );
        assert_eq!(
            access.batch_url.to_string(),
            "http://host:5001/api/check-file-access/batch"
        );
        let access =
            HttpProjectAccess::new(&ProjectServiceConfig::new("http://host:5001")).unwrap();
        assert_eq!(
            access.single_url.to_string(),
            "http://host:5001/check-file-access"
        );
    }

    #[test]
    fn unusable_base_urls_are_refused() {
        for url in [
            "https://host",
            "host:5001",
            "http://host/?a=1",
            "http://u:p@host",
            "",
            "ftp://x",
        ] {
            let err = HttpProjectAccess::new(&ProjectServiceConfig::new(url));
            assert!(err.is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn config_reads_the_variables() {
        let vars = [
            ("PROJECT_SERVICE_URL", "http://p:5001"),
            ("PROJECT_SERVICE_TIMEOUT_MS", "750"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let config = ProjectServiceConfig::from_lookup(lookup).unwrap();
        assert_eq!(config.base_url, "http://p:5001");
        assert_eq!(config.timeout, Duration::from_millis(750));
        let missing = ProjectServiceConfig::from_lookup(|_| None).unwrap_err();
        assert!(missing.to_string().contains("PROJECT_SERVICE_URL"));
        let bad = ProjectServiceConfig::from_lookup(|name| match name {
            "PROJECT_SERVICE_URL" => Some("http://p".into()),
            _ => Some("soon".into()),
        })
        .unwrap_err();
        assert!(bad.to_string().contains("PROJECT_SERVICE_TIMEOUT_MS"));
    }

    #[test]
    fn the_single_check_body_matches_the_seed() {
        let check = AccessCheck {
            project_id: storage_domain::model::OwnerId::new("p-1").unwrap(),
            action: ProjectAction::Validate,
            file_id: None,
        };
        let json = serde_json::to_value(CheckBody::from(&check)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"project_id": "p-1", "action": "validate"})
        );
    }
}
