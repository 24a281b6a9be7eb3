//! Authentication, abstracted: the composition root provides the implementation (the JWT
//! verifier of `storage-jwt-auth`).

use storage_domain::{StorageError, model::Principal};

/// Turns a request's credentials into the caller.
///
/// Contract:
/// - no token in either header: [`StorageError::MissingToken`] (401 `missing_jwt_token`);
/// - a bad, expired or wrongly signed token: [`StorageError::Unauthorized`] (401
///   `unauthorized`);
/// - it must not block (no I/O): it runs on the request's worker thread.
///
/// When the returned principal carries no [`ForwardedCredentials`], the adapter attaches the
/// request's `Cookie` and `Authorization` headers as received, so the project service is always
/// asked with the caller's credentials (spec §2).
///
/// [`ForwardedCredentials`]: storage_domain::model::ForwardedCredentials
pub trait Authenticator: Send + Sync {
    /// `cookie_header` is the raw `Cookie` header, `authorization_header` the raw
    /// `Authorization` header (e.g. `Bearer <jwt>`).
    fn authenticate(
        &self,
        cookie_header: Option<&str>,
        authorization_header: Option<&str>,
    ) -> Result<Principal, StorageError>;
}
