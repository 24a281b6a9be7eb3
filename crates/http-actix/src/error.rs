//! Every error of the API, in the contract's JSON (spec §3), from one mapping table.
//!
//! [`status_of`] is the table: error code → HTTP status. [`ApiError::status`] applies it, with
//! the three refinements the contract names (416 for a range outside the file, 412 for a failed
//! `If-Match`), the `Retry-After` of a 429, and the two transport answers that have no code of their own (404 unknown route,
//! 405 wrong method, both `invalid_request`).

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use storage_domain::{ErrorCode, StorageError};

use crate::dto::ErrorBody;
use crate::request_id::RequestId;

/// The mapping table of the contract (spec §3): the HTTP status of each error code.
pub const fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::MissingJwtToken | ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::AccessDenied | ErrorCode::ProjectServiceUnavailable => StatusCode::FORBIDDEN,
        ErrorCode::InvalidPath | ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::BucketNotFound
        | ErrorCode::FileNotFound
        | ErrorCode::VersionNotFound
        | ErrorCode::UploadNotFound => StatusCode::NOT_FOUND,
        ErrorCode::FileLocked | ErrorCode::VersionConflict | ErrorCode::InvalidTransition => {
            StatusCode::CONFLICT
        }
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::MinioUnreachable | ErrorCode::DatabaseUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What went wrong.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Anything a use case or a parser of the domain answered.
    Domain(StorageError),
    /// A JSON body or the form fields of a multipart body over their limit.
    BodyTooLarge { limit: usize },
    /// No route has this path.
    NoRoute,
    /// The route exists with other methods.
    MethodNotAllowed { allow: &'static str },
}

/// An error answer: what went wrong, and the id of the request it answers.
#[derive(Debug)]
pub struct ApiError {
    failure: Failure,
    request_id: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail())
    }
}

impl ApiError {
    /// An error of the domain, answering request `request_id`.
    pub fn new(error: StorageError, request_id: impl Into<String>) -> Self {
        Self {
            failure: Failure::Domain(error),
            request_id: request_id.into(),
        }
    }

    pub(crate) fn from_failure(failure: Failure, request_id: impl Into<String>) -> Self {
        Self {
            failure,
            request_id: request_id.into(),
        }
    }

    /// An `invalid_request` answering `req`.
    pub(crate) fn invalid(req: &HttpRequest, detail: impl Into<String>) -> Self {
        Self::new(
            StorageError::InvalidRequest(detail.into()),
            RequestId::of(req),
        )
    }

    /// The contract's code.
    pub fn code(&self) -> ErrorCode {
        match &self.failure {
            Failure::Domain(e) => e.code(),
            Failure::BodyTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Failure::NoRoute | Failure::MethodNotAllowed { .. } => ErrorCode::InvalidRequest,
        }
    }

    /// The HTTP status: the table, refined.
    pub fn status(&self) -> StatusCode {
        match &self.failure {
            Failure::Domain(StorageError::RangeNotSatisfiable { .. }) => {
                StatusCode::RANGE_NOT_SATISFIABLE
            }
            Failure::Domain(StorageError::VersionConflict {
                precondition: true, ..
            }) => StatusCode::PRECONDITION_FAILED,
            Failure::NoRoute => StatusCode::NOT_FOUND,
            Failure::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Failure::Domain(_) | Failure::BodyTooLarge { .. } => status_of(self.code()),
        }
    }

    /// The human sentence of the body. For faults, the domain's `Display` is generic: the cause
    /// is only logged.
    fn detail(&self) -> String {
        match &self.failure {
            Failure::Domain(e) => e.to_string(),
            Failure::BodyTooLarge { limit } => {
                format!("the request body is larger than the limit of {limit} bytes")
            }
            Failure::NoRoute => "no such endpoint".to_owned(),
            Failure::MethodNotAllowed { allow } => {
                format!("this endpoint accepts only {allow}")
            }
        }
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The contract's body.
    pub fn body(&self) -> ErrorBody {
        let domain = match &self.failure {
            Failure::Domain(e) => Some(e),
            _ => None,
        };
        ErrorBody {
            status: "error".to_owned(),
            message: self.code().as_str().to_owned(),
            detail: self.detail(),
            request_id: self.request_id.clone(),
            lock: domain.and_then(StorageError::lock).map(Into::into),
            current_version: match domain {
                Some(StorageError::VersionConflict { current, .. }) => current.map(|v| v.get()),
                _ => None,
            },
        }
    }

    /// Logs the error: faults with `error!` and their cause, refusals at lower levels.
    pub(crate) fn log(&self) {
        let code = self.code();
        let cause = match &self.failure {
            Failure::Domain(e) => e.internal_cause(),
            _ => None,
        };
        if code.is_fault() {
            tracing::error!(
                request_id = %self.request_id,
                code = code.as_str(),
                cause = cause.unwrap_or("-"),
                "request failed"
            );
        } else if let Some(cause) = cause {
            tracing::warn!(request_id = %self.request_id, code = code.as_str(), cause, "request refused");
        } else {
            tracing::debug!(request_id = %self.request_id, code = code.as_str(), "request refused");
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut res = HttpResponse::build(self.status());
        match &self.failure {
            Failure::Domain(StorageError::RangeNotSatisfiable { size }) => {
                res.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
            }
            Failure::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, *allow));
            }
            Failure::Domain(e) => {
                if let Some(wait) = e.retry_after() {
                    res.insert_header((header::RETRY_AFTER, wait.as_secs().max(1).to_string()));
                }
            }
            _ => {}
        }
        tagged(res.json(self.body()), self.code())
    }
}

/// Marks an error answer with its code, for the metrics (read by the `Observe` middleware).
pub(crate) fn tagged(mut res: HttpResponse, code: ErrorCode) -> HttpResponse {
    res.extensions_mut().insert(code);
    res
}

/// `QueryConfig` error handler: a bad query string is `invalid_request`.
pub(crate) fn query_error(
    err: actix_web::error::QueryPayloadError,
    req: &HttpRequest,
) -> actix_web::Error {
    ApiError::invalid(req, format!("invalid query string: {err}")).into()
}

/// `PathConfig` error handler.
pub(crate) fn path_error(err: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    ApiError::invalid(req, format!("invalid path parameter: {err}")).into()
}

/// The answer of the scope's default service: no route has this path.
pub(crate) async fn no_route(req: HttpRequest) -> ApiError {
    ApiError::from_failure(Failure::NoRoute, RequestId::of(&req))
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use storage_domain::{
        PathError,
        model::{Lock, UserId, VersionNumber},
    };

    use super::*;

    /// One error of each code, with the status the contract gives it.
    fn one_of_each() -> Vec<(StorageError, u16)> {
        let lock = Lock {
            holder: UserId::new("bob").unwrap(),
            acquired_at: chrono::DateTime::UNIX_EPOCH,
            expires_at: chrono::DateTime::UNIX_EPOCH,
            base_version: VersionNumber::FIRST,
        };
        vec![
            (StorageError::MissingToken, 401),
            (StorageError::Unauthorized, 401),
            (StorageError::AccessDenied("no".into()), 403),
            (
                StorageError::ProjectServiceUnavailable {
                    cause: "secret-host:5001 refused".into(),
                    hint: None,
                },
                403,
            ),
            (StorageError::InvalidPath(PathError::DotSegment), 400),
            (StorageError::InvalidRequest("bad".into()), 400),
            (StorageError::BucketNotFound("x".into()), 404),
            (StorageError::FileNotFound, 404),
            (StorageError::VersionNotFound, 404),
            (StorageError::UploadNotFound, 404),
            (StorageError::FileLocked(Box::new(lock)), 409),
            (
                StorageError::VersionConflict {
                    detail: "stale".into(),
                    current: Some(VersionNumber::new(3).unwrap()),
                    precondition: false,
                },
                409,
            ),
            (StorageError::InvalidTransition("no".into()), 409),
            (StorageError::PayloadTooLarge { limit: 10 }, 413),
            (
                StorageError::TooManyRequests {
                    detail: "busy".into(),
                    retry_after: std::time::Duration::from_secs(3),
                },
                429,
            ),
            (
                StorageError::ObjectStoreUnavailable {
                    cause: "secret-host:3900 refused".into(),
                },
                503,
            ),
            (
                StorageError::DatabaseUnavailable {
                    cause: "password=secret".into(),
                },
                503,
            ),
            (
                StorageError::Internal {
                    cause: "secret panic".into(),
                },
                500,
            ),
        ]
    }

    #[test]
    fn every_code_has_its_status_and_the_contract_shape() {
        let cases = one_of_each();
        let mut codes: Vec<ErrorCode> = cases.iter().map(|(e, _)| e.code()).collect();
        codes.dedup();
        assert_eq!(
            codes,
            ErrorCode::ALL.to_vec(),
            "one case per code, in order"
        );
        for (err, status) in cases {
            let code = err.code();
            let api = ApiError::new(err, "rid-1");
            let res = api.error_response();
            assert_eq!(res.status().as_u16(), status, "{code}");
            let retry_after = res
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = res.into_body().try_into_bytes().unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["status"], "error", "{code}");
            assert_eq!(body["message"], code.as_str());
            assert_eq!(body["request_id"], "rid-1");
            let detail = body["detail"].as_str().unwrap();
            assert!(!detail.is_empty());
            assert!(!detail.contains("secret"), "{code} leaks: {detail}");
            assert_eq!(
                body.get("lock").is_some(),
                code == ErrorCode::FileLocked,
                "{code}"
            );
            if code == ErrorCode::FileLocked {
                assert_eq!(body["lock"]["holder"], "bob");
                assert_eq!(body["lock"]["base_version"], 1);
            }
            if code == ErrorCode::VersionConflict {
                assert_eq!(body["current_version"], 3);
            }
            assert_eq!(
                retry_after.as_deref(),
                (code == ErrorCode::TooManyRequests).then_some("3"),
                "{code}"
            );
        }
    }

    #[test]
    fn refinements_of_the_table() {
        let range = ApiError::new(StorageError::RangeNotSatisfiable { size: 42 }, "r");
        assert_eq!(range.code(), ErrorCode::InvalidRequest);
        let res = range.error_response();
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            res.headers().get(header::CONTENT_RANGE).unwrap(),
            "bytes */42"
        );

        let pre = ApiError::new(
            StorageError::VersionConflict {
                detail: "x".into(),
                current: None,
                precondition: true,
            },
            "r",
        );
        assert_eq!(pre.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(pre.code(), ErrorCode::VersionConflict);

        let big = ApiError::from_failure(Failure::BodyTooLarge { limit: 5 }, "r");
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(big.body().message, "payload_too_large");

        let allow = ApiError::from_failure(Failure::MethodNotAllowed { allow: "GET" }, "r");
        let res = allow.error_response();
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers().get(header::ALLOW).unwrap(), "GET");
    }
}
