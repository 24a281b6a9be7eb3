//! Browser front-ends: CORS for the origins allowed to call the API from a web page, and the
//! cross-site check that keeps other sites from acting with the caller's cookie.
//!
//! A page on another origin can make the caller's browser send a request with the cookie
//! attached (a form post, a `no-cors` fetch). Such a request cannot carry an `Authorization`
//! header or a JSON body without a CORS preflight, which only the allowed origins pass; so a
//! state-changing request authenticated by the cookie alone must come from the service's own
//! origin or an allowed one. See `docs/security.md`.

use std::time::Duration;

use actix_cors::Cors;
use actix_web::{
    Error, HttpRequest,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, header},
    middleware::Next,
};

use storage_domain::StorageError;

use crate::error::ApiError;

/// Which web origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserAccess {
    /// `CORS_ALLOWED_ORIGINS`: exact origins (`https://app.example.com`, lowercase, no path).
    /// Empty: no CORS headers at all.
    pub allowed_origins: Vec<String>,
    /// The service's own public origin (from `PUBLIC_BASE_URL`), when it is configured; the
    /// origin a request came in on (scheme and `Host`) counts as the service's own too.
    pub public_origin: Option<String>,
    /// How long a browser may cache a preflight answer.
    pub preflight_max_age: Duration,
}

impl Default for BrowserAccess {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            public_origin: None,
            preflight_max_age: Duration::from_secs(600),
        }
    }
}

/// The response headers a page on an allowed origin may read.
pub const EXPOSED_HEADERS: [&str; 6] = [
    "ETag",
    "Content-Disposition",
    "Content-Range",
    "Content-Length",
    "Accept-Ranges",
    "X-Request-Id",
];

/// The request headers a page on an allowed origin may send.
const ALLOWED_HEADERS: [&str; 7] = [
    "Authorization",
    "Content-Type",
    "X-Request-Id",
    "If-Match",
    "If-None-Match",
    "If-Range",
    "Range",
];

impl BrowserAccess {
    /// The CORS middleware for these origins, or `None` when no origin is allowed (then no
    /// response carries a CORS header and a preflight is answered like any other `OPTIONS`).
    pub(crate) fn cors(&self) -> Option<Cors> {
        if self.allowed_origins.is_empty() {
            return None;
        }
        let mut cors = Cors::default()
            .allowed_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allowed_headers(ALLOWED_HEADERS)
            .expose_headers(EXPOSED_HEADERS)
            .supports_credentials()
            .max_age(usize::try_from(self.preflight_max_age.as_secs()).unwrap_or(usize::MAX))
            // Requests from other origins are served without CORS headers (the browser keeps
            // their answers from the page); changes among them are refused by the cross-site
            // check, not here.
            .block_on_origin_mismatch(false);
        for origin in &self.allowed_origins {
            cors = cors.allowed_origin(origin);
        }
        Some(cors)
    }

    fn trusts(&self, origin: &str, req: &HttpRequest) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) || self.public_origin.as_ref() == Some(&origin) {
            return true;
        }
        let info = req.connection_info();
        let own = format!("{}://{}", info.scheme(), info.host()).to_ascii_lowercase();
        origin == own
    }

    /// Why this request may not act with the caller's authority, if it may not: a
    /// state-changing request authenticated by the cookie alone (no bearer token) whose
    /// `Origin` is neither the service's own nor allowed, or, without `Origin`, that the
    /// browser marks `Sec-Fetch-Site: cross-site`.
    pub(crate) fn cross_site_refusal(&self, req: &HttpRequest) -> Option<String> {
        let changes = matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if !changes || has_bearer(req) {
            return None;
        }
        let headers = req.headers();
        match headers.get(header::ORIGIN) {
            Some(origin) => {
                let shown = origin.to_str().unwrap_or("(not ASCII)");
                (!self.trusts(shown, req)).then(|| {
                    format!(
                        "this change was sent with the session cookie from the web page of \
                         origin {shown}, which is neither this service's origin nor one of \
                         CORS_ALLOWED_ORIGINS; send it from an allowed origin, or with an \
                         Authorization: Bearer token"
                    )
                })
            }
            None => headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
                .then(|| {
                    "this change was sent with the session cookie by a web page of another site \
                     (Sec-Fetch-Site: cross-site); send it from an allowed origin, or with an \
                     Authorization: Bearer token"
                        .to_owned()
                }),
        }
    }
}

/// `Authorization: Bearer …`: a header no browser adds on its own, and that a page on another
/// origin can only send after a preflight its origin passes.
fn has_bearer(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
}

/// Renders a refused preflight (actix-cors answers plain text) as the contract's error body.
pub(crate) async fn preflight_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let res = next.call(req).await?.map_into_boxed_body();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    if !preflight || !res.status().is_client_error() || is_json {
        return Ok(res);
    }
    let (http_req, res) = res.into_parts();
    let reason = actix_web::body::to_bytes(res.into_body())
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let request_id = crate::request_id::RequestId::of(&http_req);
    let error = ApiError::new(
        StorageError::InvalidRequest(format!(
            "CORS preflight refused: {}",
            reason.trim().trim_end_matches('.')
        )),
        request_id,
    );
    let response = actix_web::ResponseError::error_response(&error);
    Ok(ServiceResponse::new(http_req, response))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn access() -> BrowserAccess {
        BrowserAccess {
            allowed_origins: vec!["http://app.example".into()],
            public_origin: Some("https://files.example".into()),
            ..BrowserAccess::default()
        }
    }

    #[test]
    fn which_requests_are_refused() {
        let a = access();
        let post = |origin: Option<&str>| {
            let mut r = TestRequest::post()
                .uri("/lock")
                .insert_header((header::HOST, "127.0.0.1:5000"));
            if let Some(o) = origin {
                r = r.insert_header((header::ORIGIN, o));
            }
            r
        };
        let refused = |r: TestRequest| a.cross_site_refusal(&r.to_http_request());
        assert!(refused(post(Some("http://evil.example"))).is_some());
        assert!(refused(post(Some("null"))).is_some());
        // Allowed, public and the origin the request came in on; case does not matter.
        assert!(refused(post(Some("http://app.example"))).is_none());
        assert!(refused(post(Some("HTTP://APP.EXAMPLE"))).is_none());
        assert!(refused(post(Some("https://files.example"))).is_none());
        assert!(refused(post(Some("http://127.0.0.1:5000"))).is_none());
        assert!(refused(post(Some("http://127.0.0.1:5001"))).is_some());
        // A bearer token: not a request another site can make a browser send.
        assert!(
            refused(
                post(Some("http://evil.example"))
                    .insert_header((header::AUTHORIZATION, "Bearer x"))
            )
            .is_none()
        );
        // Basic credentials a browser may add by itself do not count.
        assert!(
            refused(
                post(Some("http://evil.example"))
                    .insert_header((header::AUTHORIZATION, "Basic eDp5"))
            )
            .is_some()
        );
        // No Origin: curl and other services; a browser's own cross-site marker still counts.
        assert!(refused(post(None)).is_none());
        assert!(refused(post(None).insert_header(("Sec-Fetch-Site", "cross-site"))).is_some());
        assert!(refused(post(None).insert_header(("Sec-Fetch-Site", "same-origin"))).is_none());
        // Reads are not changes.
        let get = TestRequest::get()
            .uri("/metadata")
            .insert_header((header::ORIGIN, "http://evil.example"));
        assert!(refused(get).is_none());
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            let r = TestRequest::default()
                .method(method)
                .insert_header((header::ORIGIN, "http://evil.example"));
            assert!(refused(r).is_some());
        }
    }

    #[test]
    fn no_allowed_origin_means_no_cors() {
        assert!(BrowserAccess::default().cors().is_none());
        assert!(access().cors().is_some());
    }
}
