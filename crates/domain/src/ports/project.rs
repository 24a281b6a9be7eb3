//! The project-access port: asks the external project service whether a caller may act on a
//! project (spec §2 and the seed's "Endpoints requis du service Project").

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{FileId, OwnerId, Principal};

/// The actions the project service knows (spec §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectAction {
    /// Download, list, metadata, versions, presign download, audit.
    Read,
    /// Upload, copy into, commit into, tags.
    Write,
    /// Permanent removal.
    Delete,
    /// Lock, unlock.
    Lock,
    /// Approve, reject, force-unlock, archive.
    Validate,
}

impl ProjectAction {
    pub const ALL: [ProjectAction; 5] = [
        ProjectAction::Read,
        ProjectAction::Write,
        ProjectAction::Delete,
        ProjectAction::Lock,
        ProjectAction::Validate,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ProjectAction::Read => "read",
            ProjectAction::Write => "write",
            ProjectAction::Delete => "delete",
            ProjectAction::Lock => "lock",
            ProjectAction::Validate => "validate",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

/// One question to the project service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessCheck {
    pub project_id: OwnerId,
    pub action: ProjectAction,
    /// The file concerned, when it is known (for the project service's audit logs).
    pub file_id: Option<FileId>,
}

/// The project service's answer to one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDecision {
    Allowed { role: Option<String> },
    Denied { reason: Option<String> },
}

impl AccessDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, AccessDecision::Allowed { .. })
    }
}

/// Why the project service could not answer. Every variant denies access (fail closed) and
/// becomes `project_service_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectAccessError {
    #[error("project service timed out")]
    Timeout,
    #[error("project service unreachable: {0}")]
    Unreachable(String),
    #[error("project service answered HTTP {0}")]
    BadStatus(u16),
    #[error("project service answered a malformed body: {0}")]
    Malformed(String),
    #[error("project service is not configured: {0}")]
    NotConfigured(String),
}

/// Asks whether the caller may act on a project.
///
/// Error contract:
/// - MUST answer within its configured budget (2 s by default) or return
///   [`ProjectAccessError::Timeout`];
/// - MUST return an error, never a decision, for a non-2xx answer, a malformed body, or a batch
///   answer that does not match the checks asked (fail closed);
/// - MUST forward the caller's credentials ([`Principal::credentials`]);
/// - MUST NOT cache answers (the project service caches).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ProjectAccess: Send + Sync {
    /// One check.
    async fn check(
        &self,
        caller: &Principal,
        check: &AccessCheck,
    ) -> Result<AccessDecision, ProjectAccessError>;

    /// Several checks in one round trip; the answers come in the order of `checks`.
    async fn check_batch(
        &self,
        caller: &Principal,
        checks: &[AccessCheck],
    ) -> Result<Vec<AccessDecision>, ProjectAccessError>;
}
