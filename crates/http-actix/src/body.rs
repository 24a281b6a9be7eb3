//! JSON request bodies, read with a size limit and refused in the contract's shape.
//!
//! An empty body reads as `{}`, so endpoints whose fields are all optional (`/versions/{id}/
//! approve`, `/submit`) accept a bare `POST`; a missing required field is `invalid_request`.
//! A non-empty body must say `Content-Type: application/json`: a web page of another site can
//! send `text/plain` or a form without asking the browser's CORS preflight first, JSON not.

use actix_web::{
    FromRequest, HttpRequest,
    dev::Payload,
    http::header,
    web::{Bytes, BytesMut},
};
use futures_util::{StreamExt, future::LocalBoxFuture};
use serde::de::DeserializeOwned;

use crate::{
    AppState,
    error::{ApiError, Failure},
    request_id::RequestId,
};

/// A JSON body deserialised into `T`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/json")
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let limit = req
                .app_data::<actix_web::web::Data<AppState>>()
                .map_or(64 * 1024, |s| s.config().json_limit_bytes);
            let too_large =
                || ApiError::from_failure(Failure::BodyTooLarge { limit }, RequestId::of(&req));
            let json = req
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|ct| ct.to_str().is_ok_and(is_json));
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit as u64) {
                return Err(too_large());
            }
            let mut buf = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk: Bytes = chunk.map_err(|e| {
                    ApiError::invalid(&req, format!("the request body could not be read: {e}"))
                })?;
                if buf.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            let raw: &[u8] = if buf.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else if json {
                &buf
            } else {
                return Err(ApiError::invalid(
                    &req,
                    "the body must be JSON, sent with Content-Type: application/json",
                ));
            };
            serde_json::from_slice(raw)
                .map(JsonBody)
                .map_err(|e| ApiError::invalid(&req, format!("invalid JSON body: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("application/merge-patch+json"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("multipart/form-data; boundary=x"));
    }
}
