//! The caller of a request: authenticated, with the request id, as the use cases want it.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web::Data};
use storage_domain::{
    StorageError,
    model::{ForwardedCredentials, RequestContext},
};

use crate::{AppState, error::ApiError, request_id::RequestId};

/// The authenticated caller. Put it first among a handler's arguments: authentication is then
/// decided before the query or body is looked at.
#[derive(Debug)]
pub(crate) struct Caller(pub RequestContext);

impl Caller {
    /// Wraps a use case's error with this request's id.
    pub fn fail(&self, error: StorageError) -> ApiError {
        ApiError::new(error, self.0.request_id.clone())
    }
}

/// A header's value; present but not visible ASCII counts as a bad credential.
fn header_str(req: &HttpRequest, name: header::HeaderName) -> Result<Option<&str>, StorageError> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().map_err(|_| StorageError::Unauthorized))
        .transpose()
}

fn authenticate(req: &HttpRequest) -> Result<RequestContext, StorageError> {
    let state = req
        .app_data::<Data<AppState>>()
        .ok_or_else(|| StorageError::Internal {
            cause: "AppState is not registered".into(),
        })?;
    let cookie = header_str(req, header::COOKIE)?;
    let authorization = header_str(req, header::AUTHORIZATION)?;
    let mut principal = state.authenticator().authenticate(cookie, authorization)?;
    if principal.credentials == ForwardedCredentials::default() {
        principal.credentials = ForwardedCredentials {
            cookie: cookie.map(str::to_owned),
            authorization: authorization.map(str::to_owned),
        };
    }
    let ctx = RequestContext::new(principal, RequestId::of(req));
    Ok(match state.config().browser.cross_site_refusal(req) {
        Some(reason) => ctx.from_untrusted_origin(reason),
        None => ctx,
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            authenticate(req)
                .map(Caller)
                .map_err(|e| ApiError::new(e, RequestId::of(req))),
        )
    }
}
