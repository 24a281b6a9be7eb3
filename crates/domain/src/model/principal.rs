//! The caller of a use case.

use std::fmt;

use super::{CompanyId, UserId};

/// The credentials the caller presented, kept only to be forwarded to the project service (spec
/// §2: "the caller's cookie (and bearer header) forwarded"). Their `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ForwardedCredentials {
    /// The value for a `Cookie` header (e.g. `access_token=<jwt>`).
    pub cookie: Option<String>,
    /// The value for an `Authorization` header (e.g. `Bearer <jwt>`).
    pub authorization: Option<String>,
}

impl fmt::Debug for ForwardedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardedCredentials")
            .field("cookie", &self.cookie.as_ref().map(|_| "<redacted>"))
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// An authenticated caller: who they are, the company they act for, and what to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub company_id: Option<CompanyId>,
    pub credentials: ForwardedCredentials,
}

impl Principal {
    pub fn new(user_id: UserId, company_id: Option<CompanyId>) -> Self {
        Self {
            user_id,
            company_id,
            credentials: ForwardedCredentials::default(),
        }
    }

    #[must_use]
    pub fn with_credentials(mut self, credentials: ForwardedCredentials) -> Self {
        self.credentials = credentials;
        self
    }
}

/// What every use case receives besides its own input: the caller and the request id that
/// ties logs, error bodies and audit events together.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    pub request_id: String,
    /// Set when the request may have been sent by the caller's browser on behalf of another
    /// web site (ambient credentials on a cross-site change): the sentence says why. Such a
    /// request carries none of the caller's authority: every access check refuses it.
    pub untrusted_origin: Option<String>,
}

impl RequestContext {
    pub fn new(principal: Principal, request_id: impl Into<String>) -> Self {
        Self {
            principal,
            request_id: request_id.into(),
            untrusted_origin: None,
        }
    }

    /// Marks the request as coming from an untrusted origin, for `reason` (see
    /// [`RequestContext::untrusted_origin`]).
    #[must_use]
    pub fn from_untrusted_origin(mut self, reason: impl Into<String>) -> Self {
        self.untrusted_origin = Some(reason.into());
        self
    }

    pub fn user(&self) -> &UserId {
        &self.principal.user_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_in_debug() {
        let creds = ForwardedCredentials {
            cookie: Some("access_token=secret".into()),
            authorization: Some("Bearer secret".into()),
        };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
