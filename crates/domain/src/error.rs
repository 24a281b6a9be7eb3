//! The domain's errors and their stable codes (spec §3).
//!
//! The domain never speaks HTTP: it names *what* went wrong with an [`ErrorCode`]; the inbound
//! adapter alone decides which status code a code becomes.

use std::fmt;

use serde::Serialize;

use crate::model::{Lock, VersionNumber};

/// The stable, machine-readable codes of the contract (spec §3). `as_str` is the wire value of
/// the error body's `message` field; it never changes once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MissingJwtToken,
    Unauthorized,
    AccessDenied,
    ProjectServiceUnavailable,
    InvalidPath,
    InvalidRequest,
    BucketNotFound,
    FileNotFound,
    VersionNotFound,
    UploadNotFound,
    FileLocked,
    VersionConflict,
    InvalidTransition,
    PayloadTooLarge,
    TooManyRequests,
    MinioUnreachable,
    DatabaseUnavailable,
    InternalError,
}

impl ErrorCode {
    /// Every code, in the order of the contract's table.
    pub const ALL: [ErrorCode; 18] = [
        ErrorCode::MissingJwtToken,
        ErrorCode::Unauthorized,
        ErrorCode::AccessDenied,
        ErrorCode::ProjectServiceUnavailable,
        ErrorCode::InvalidPath,
        ErrorCode::InvalidRequest,
        ErrorCode::BucketNotFound,
        ErrorCode::FileNotFound,
        ErrorCode::VersionNotFound,
        ErrorCode::UploadNotFound,
        ErrorCode::FileLocked,
        ErrorCode::VersionConflict,
        ErrorCode::InvalidTransition,
        ErrorCode::PayloadTooLarge,
        ErrorCode::TooManyRequests,
        ErrorCode::MinioUnreachable,
        ErrorCode::DatabaseUnavailable,
        ErrorCode::InternalError,
    ];

    /// The wire value (`"file_locked"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingJwtToken => "missing_jwt_token",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ProjectServiceUnavailable => "project_service_unavailable",
            ErrorCode::InvalidPath => "invalid_path",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::BucketNotFound => "bucket_not_found",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::VersionNotFound => "version_not_found",
            ErrorCode::UploadNotFound => "upload_not_found",
            ErrorCode::FileLocked => "file_locked",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::MinioUnreachable => "minio_unreachable",
            ErrorCode::DatabaseUnavailable => "database_unavailable",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// True for the codes that report a fault of the service or its dependencies rather than of
    /// the request. Their detail text is generic; the cause is logged, never returned.
    pub const fn is_fault(self) -> bool {
        matches!(
            self,
            ErrorCode::MinioUnreachable | ErrorCode::DatabaseUnavailable | ErrorCode::InternalError
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a path was refused; the text is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with '/'")]
    NotAbsolute,
    #[error("the path has an empty segment ('//')")]
    EmptySegment,
    #[error("the path has a '.' or '..' segment")]
    DotSegment,
    #[error("the path contains a backslash")]
    Backslash,
    #[error("the path contains a control character")]
    ControlCharacter,
    #[error("the path is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("a path segment is longer than {max} bytes")]
    SegmentTooLong { max: usize },
    #[error("the owner id must be one non-empty segment of [A-Za-z0-9_-]")]
    InvalidOwner,
    #[error("the path names no file after the owner id")]
    NoFileName,
    #[error("a directory path must end with '/'")]
    NotADirectory,
    #[error("a file path must not end with '/'")]
    NotAFile,
    #[error("the path's first segment '{path_bucket}' does not match the bucket '{bucket}'")]
    BucketMismatch { bucket: String, path_bucket: String },
}

/// Everything a use case can answer instead of a result. Each variant has one stable
/// [`ErrorCode`]; the `Display` text is the one human sentence of the error body (never internal
/// details for faults: those travel in `cause`, for logs only).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no access token was presented")]
    MissingToken,
    #[error("the access token is invalid or expired")]
    Unauthorized,
    #[error("{0}")]
    AccessDenied(String),
    #[error("the project service could not be asked; access is denied{}", hint_suffix(.hint))]
    ProjectServiceUnavailable {
        cause: String,
        /// A sentence safe to show the caller (how to configure project access when none is);
        /// `None` for faults, whose cause stays in the logs.
        hint: Option<String>,
    },
    #[error("{0}")]
    InvalidPath(#[from] PathError),
    #[error("{0}")]
    InvalidRequest(String),
    /// A `Range` outside the object (`invalid_request`; HTTP answers it with 416).
    #[error("the requested range lies outside the {size} bytes of the file")]
    RangeNotSatisfiable { size: u64 },
    #[error("unknown bucket '{0}'")]
    BucketNotFound(String),
    #[error("no such file")]
    FileNotFound,
    #[error("no such version")]
    VersionNotFound,
    #[error("no such upload, or it has expired")]
    UploadNotFound,
    #[error("the file is locked by {}", .0.holder)]
    FileLocked(Box<Lock>),
    #[error("{detail}")]
    VersionConflict {
        detail: String,
        /// The latest version number the store had, when known.
        current: Option<VersionNumber>,
        /// True when the failed condition came from an `If-Match` precondition.
        precondition: bool,
    },
    #[error("{0}")]
    InvalidTransition(String),
    #[error("the upload is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// A limit of this instance is reached (concurrent transfers, upload buffers): nothing was
    /// done; the same request may be sent again after `retry_after`.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after: std::time::Duration,
    },
    #[error("the object store is unreachable")]
    ObjectStoreUnavailable { cause: String },
    #[error("the database is unavailable")]
    DatabaseUnavailable { cause: String },
    #[error("internal error")]
    Internal { cause: String },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
}

impl StorageError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::MissingToken => ErrorCode::MissingJwtToken,
            StorageError::Unauthorized => ErrorCode::Unauthorized,
            StorageError::AccessDenied(_) => ErrorCode::AccessDenied,
            StorageError::ProjectServiceUnavailable { .. } => ErrorCode::ProjectServiceUnavailable,
            StorageError::InvalidPath(_) => ErrorCode::InvalidPath,
            StorageError::InvalidRequest(_) | StorageError::RangeNotSatisfiable { .. } => {
                ErrorCode::InvalidRequest
            }
            StorageError::BucketNotFound(_) => ErrorCode::BucketNotFound,
            StorageError::FileNotFound => ErrorCode::FileNotFound,
            StorageError::VersionNotFound => ErrorCode::VersionNotFound,
            StorageError::UploadNotFound => ErrorCode::UploadNotFound,
            StorageError::FileLocked(_) => ErrorCode::FileLocked,
            StorageError::VersionConflict { .. } => ErrorCode::VersionConflict,
            StorageError::InvalidTransition(_) => ErrorCode::InvalidTransition,
            StorageError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            StorageError::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            StorageError::ObjectStoreUnavailable { .. } => ErrorCode::MinioUnreachable,
            StorageError::DatabaseUnavailable { .. } => ErrorCode::DatabaseUnavailable,
            StorageError::Internal { .. } => ErrorCode::InternalError,
        }
    }

    /// The internal cause of a fault, for logs. `None` for request errors.
    pub fn internal_cause(&self) -> Option<&str> {
        match self {
            StorageError::ProjectServiceUnavailable { cause, .. }
            | StorageError::ObjectStoreUnavailable { cause }
            | StorageError::DatabaseUnavailable { cause }
            | StorageError::Internal { cause } => Some(cause),
            _ => None,
        }
    }

    /// How long to wait before sending the request again, for `too_many_requests`.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            StorageError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The lock to include in a `file_locked` body.
    pub fn lock(&self) -> Option<&Lock> {
        match self {
            StorageError::FileLocked(lock) => Some(lock),
            _ => None,
        }
    }

    pub(crate) fn denied(detail: impl Into<String>) -> Self {
        StorageError::AccessDenied(detail.into())
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        StorageError::InvalidRequest(detail.into())
    }

    pub(crate) fn internal(cause: impl Into<String>) -> Self {
        StorageError::Internal {
            cause: cause.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn project_service_errors_show_only_their_hint() {
        let fault = StorageError::ProjectServiceUnavailable {
            cause: "10.0.0.7:5001 refused".into(),
            hint: None,
        };
        assert_eq!(
            fault.to_string(),
            "the project service could not be asked; access is denied"
        );
        let unconfigured = StorageError::ProjectServiceUnavailable {
            cause: "not configured".into(),
            hint: Some("set PROJECT_SERVICE_URL".into()),
        };
        assert_eq!(
            unconfigured.to_string(),
            "the project service could not be asked; access is denied (set PROJECT_SERVICE_URL)"
        );
    }

    #[test]
    fn fault_errors_do_not_show_their_cause() {
        let err = StorageError::DatabaseUnavailable {
            cause: "password=hunter2".into(),
        };
        assert_eq!(err.to_string(), "the database is unavailable");
        assert_eq!(err.internal_cause(), Some("password=hunter2"));
        assert!(err.code().is_fault());
        assert!(!ErrorCode::FileLocked.is_fault());
    }
}
