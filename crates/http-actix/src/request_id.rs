//! `X-Request-Id`: one id per request, taken from the client when sane, else generated; echoed
//! in the response, in error bodies and in the request's tracing span.

use std::time::Instant;

use actix_web::{
    Error, HttpMessage, HttpRequest,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use tracing::Instrument;

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id accepted from a client.
const MAX_REQUEST_ID: usize = 128;

/// The id of the request being served (in the request's extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The id of `req`; a fresh one if the middleware did not run (never the case for routes
    /// registered by [`crate::configure`]).
    pub fn of(req: &HttpRequest) -> String {
        req.extensions()
            .get::<RequestId>()
            .map_or_else(generate, |id| id.0.clone())
    }
}

fn generate() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The client's id when it is 1 to 128 visible ASCII characters.
fn sane(value: Option<&HeaderValue>) -> Option<String> {
    let raw = value?.to_str().ok()?;
    let ok =
        !raw.is_empty() && raw.len() <= MAX_REQUEST_ID && raw.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| raw.to_owned())
}

pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = sane(req.headers().get(REQUEST_ID_HEADER)).unwrap_or_else(generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    // Handlers' errors are already responses here (actix renders them in the route), so every
    // answer of the scope passes below and gets the header.
    let mut res = next
        .call(req)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request served"
        );
    });
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(sane(Some(&v("abc-123"))), Some("abc-123".into()));
        assert_eq!(sane(Some(&v(""))), None);
        assert_eq!(sane(Some(&v("a b"))), None);
        assert_eq!(
            sane(Some(&HeaderValue::from_str(&"x".repeat(129)).unwrap())),
            None
        );
        assert_eq!(
            sane(Some(&HeaderValue::from_str(&"x".repeat(128)).unwrap())),
            Some("x".repeat(128))
        );
        assert_eq!(sane(None), None);
    }
}
