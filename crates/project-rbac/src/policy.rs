//! Project access from a local policy file (`PROJECT_POLICY_FILE`), for running without a
//! project service.
//!
//! The file is JSON: a list of rules, each naming a user (`sub`), a project (the owner id of
//! `/projects/<project>/…`) and the actions allowed; `"*"` matches any user or any project.
//! Anything no rule allows is denied; there is no rule that allows every action implicitly
//! (each action is listed).
//!
//! ```json
//! {
//!   "rules": [
//!     { "user": "alice", "project": "5678", "actions": ["read", "write", "delete", "lock"] },
//!     { "user": "bob",   "project": "5678", "actions": ["read", "validate"] },
//!     { "user": "*",     "project": "demo", "actions": ["read"] }
//!   ]
//! }
//! ```
//!
//! The file is read once, at start-up: an unreadable or malformed file (unknown field, unknown
//! action, empty user, bad project id, no action) is an error that names it.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use async_trait::async_trait;
use serde::Deserialize;
use storage_domain::{
    model::{OwnerId, Principal},
    ports::{AccessCheck, AccessDecision, ProjectAccess, ProjectAccessError, ProjectAction},
};

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the project policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the project policy file {origin} is malformed: {reason}")]
    Malformed { origin: String, reason: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    user: String,
    project: String,
    actions: Vec<String>,
}

/// `"*"` or one exact value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
}

impl Pattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(v) => v == value,
        }
    }
}

#[derive(Debug, Clone)]
struct Rule {
    user: Pattern,
    project: Pattern,
    actions: BTreeSet<ProjectAction>,
}

/// The [`ProjectAccess`] adapter over a policy file. Decisions are made in memory: no timeout,
/// no error, no cache to go stale (the file is read once).
#[derive(Debug, Clone)]
pub struct PolicyProjectAccess {
    rules: Vec<Rule>,
    origin: String,
}

impl PolicyProjectAccess {
    /// Reads and checks the policy file at `path` (a blocking read: call it at start-up).
    ///
    /// # Errors
    /// [`PolicyError`]: the file cannot be read, or is malformed.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Parses a policy; `origin` names it in errors and denials.
    ///
    /// # Errors
    /// [`PolicyError::Malformed`], naming the rule at fault.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let malformed = |reason: String| PolicyError::Malformed {
            origin: origin.to_owned(),
            reason,
        };
        let raw: RawPolicy = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let n = i + 1;
            let user = match rule.user.trim() {
                "" => return Err(malformed(format!("rule {n}: 'user' is empty"))),
                "*" => Pattern::Any,
                user => Pattern::Exact(user.to_owned()),
            };
            let project = match rule.project.trim() {
                "*" => Pattern::Any,
                project => Pattern::Exact(
                    OwnerId::new(project)
                        .map_err(|e| malformed(format!("rule {n}: 'project': {e}")))?
                        .as_str()
                        .to_owned(),
                ),
            };
            if rule.actions.is_empty() {
                return Err(malformed(format!("rule {n}: 'actions' is empty")));
            }
            let actions = rule
                .actions
                .iter()
                .map(|a| {
                    ProjectAction::parse(a.trim()).ok_or_else(|| {
                        malformed(format!(
                            "rule {n}: unknown action '{a}' (read, write, delete, lock, validate)"
                        ))
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()?;
            rules.push(Rule {
                user,
                project,
                actions,
            });
        }
        Ok(Self {
            rules,
            origin: origin.to_owned(),
        })
    }

    /// How many rules the policy has.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The decision for `user` on `check`: allowed when one rule matches the user, the project
    /// and lists the action.
    pub fn decide(&self, user: &str, check: &AccessCheck) -> AccessDecision {
        let allowed = self.rules.iter().any(|rule| {
            rule.user.matches(user)
                && rule.project.matches(check.project_id.as_str())
                && rule.actions.contains(&check.action)
        });
        if allowed {
            AccessDecision::Allowed { role: None }
        } else {
            AccessDecision::Denied {
                reason: Some(format!(
                    "no rule of the project policy file {} gives '{}' on project {} to {user}",
                    self.origin,
                    check.action.as_str(),
                    check.project_id
                )),
            }
        }
    }
}

#[async_trait]
impl ProjectAccess for PolicyProjectAccess {
    async fn check(
        &self,
        caller: &Principal,
        check: &AccessCheck,
    ) -> Result<AccessDecision, ProjectAccessError> {
        Ok(self.decide(caller.user_id.as_str(), check))
    }

    async fn check_batch(
        &self,
        caller: &Principal,
        checks: &[AccessCheck],
    ) -> Result<Vec<AccessDecision>, ProjectAccessError> {
        Ok(checks
            .iter()
            .map(|check| self.decide(caller.user_id.as_str(), check))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use storage_domain::model::UserId;

    use super::*;

    const EXAMPLE: &str = r#"{
      "rules": [
        { "user": "alice", "project": "5678", "actions": ["read", "write", "delete", "lock"] },
        { "user": "bob",   "project": "5678", "actions": ["read", "validate"] },
        { "user": "*",     "project": "demo", "actions": ["read"] },
        { "user": "ops",   "project": "*",    "actions": ["read"] }
      ]
    }"#;

    fn check(project: &str, action: ProjectAction) -> AccessCheck {
        AccessCheck {
            project_id: OwnerId::new(project).unwrap(),
            action,
            file_id: None,
        }
    }

    fn caller(user: &str) -> Principal {
        Principal::new(UserId::new(user).unwrap(), None)
    }

    #[test]
    fn rules_allow_what_they_list_and_nothing_else() {
        let p = PolicyProjectAccess::from_json(EXAMPLE, "policy.json").unwrap();
        assert_eq!(p.rule_count(), 4);
        let allowed = |user: &str, project: &str, action| {
            p.decide(user, &check(project, action)).is_allowed()
        };
        use ProjectAction::*;
        for action in [Read, Write, Delete, Lock] {
            assert!(allowed("alice", "5678", action), "{action:?}");
        }
        assert!(!allowed("alice", "5678", Validate));
        assert!(allowed("bob", "5678", Validate));
        assert!(!allowed("bob", "5678", Write));
        assert!(!allowed("alice", "9999", Read), "another project");
        assert!(!allowed("mallory", "5678", Read), "an unlisted user");
        assert!(allowed("mallory", "demo", Read), "'*' user");
        assert!(!allowed("mallory", "demo", Write));
        assert!(allowed("ops", "anything", Read), "'*' project");
        assert!(!allowed("ops", "anything", Delete));
        // Exact matches only: no prefix, no case folding.
        assert!(!allowed("Alice", "5678", Read));
        assert!(!allowed("alice", "56789", Read));
    }

    #[test]
    fn an_empty_policy_denies_everything_with_a_reason() {
        let p = PolicyProjectAccess::from_json(r#"{"rules": []}"#, "p.json").unwrap();
        for action in ProjectAction::ALL {
            match p.decide("alice", &check("5678", action)) {
                AccessDecision::Denied { reason: Some(r) } => {
                    assert!(r.contains("p.json") && r.contains(action.as_str()), "{r}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_port_answers_batches_in_order() {
        let p = PolicyProjectAccess::from_json(EXAMPLE, "policy.json").unwrap();
        let checks = [
            check("5678", ProjectAction::Read),
            check("5678", ProjectAction::Validate),
            check("demo", ProjectAction::Read),
        ];
        let decisions = p.check_batch(&caller("alice"), &checks).await.unwrap();
        let allowed: Vec<bool> = decisions.iter().map(AccessDecision::is_allowed).collect();
        assert_eq!(allowed, [true, false, true]);
        assert!(
            p.check(&caller("bob"), &checks[1])
                .await
                .unwrap()
                .is_allowed()
        );
    }

    #[test]
    fn malformed_policies_are_refused_naming_the_problem() {
        for (text, needle) in [
            ("not json", "policy.json"),
            (r#"{"rule": []}"#, "rule"),
            (
                r#"{"rules": [{"user": "a", "project": "p", "actions": ["read"], "extra": 1}]}"#,
                "extra",
            ),
            (
                r#"{"rules": [{"user": "", "project": "p", "actions": ["read"]}]}"#,
                "rule 1: 'user' is empty",
            ),
            (
                r#"{"rules": [{"user": "a", "project": "p/q", "actions": ["read"]}]}"#,
                "rule 1: 'project'",
            ),
            (
                r#"{"rules": [{"user": "a", "project": "p", "actions": []}]}"#,
                "rule 1: 'actions' is empty",
            ),
            (
                r#"{"rules": [{"user": "a", "project": "p", "actions": ["read"]}, {"user": "a", "project": "p", "actions": ["admin"]}]}"#,
                "rule 2: unknown action 'admin'",
            ),
            (
                r#"{"rules": [{"user": "a", "project": "p", "actions": ["*"]}]}"#,
                "unknown action '*'",
            ),
            (r#"{"rules": [{"user": "a", "project": "p"}]}"#, "actions"),
        ] {
            let err = PolicyProjectAccess::from_json(text, "policy.json").unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains(needle), "{text}: {shown}");
            assert!(shown.contains("policy.json"), "{shown}");
        }
    }

    #[test]
    fn an_unreadable_file_names_its_path() {
        let err = PolicyProjectAccess::load(Path::new("/nonexistent/policy.json")).unwrap_err();
        assert!(matches!(err, PolicyError::Read { .. }));
        assert!(
            err.to_string().contains("/nonexistent/policy.json"),
            "{err}"
        );
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../docs/project-policy.example.json");
        PolicyProjectAccess::from_json(doc, "docs/project-policy.example.json").unwrap();
    }
}
