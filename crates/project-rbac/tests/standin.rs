//! The adapter against the project-service stand-in, over real HTTP on loopback.
//!
//! Every failure mode must answer a `ProjectAccessError` within the 2 s budget (plus the margin
//! of `storage_test_support::timing`); a slow service (5 s) is cut by the budget: not before it,
//! and within it plus the margin. Run with `--nocapture` to see the measured times.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "test helpers outside #[test] functions; the measured times are printed for the report"
)]

use std::future::Future;
use std::time::{Duration, Instant};

use storage_domain::model::{FileId, ForwardedCredentials, OwnerId, Principal, UserId};
use storage_domain::ports::{
    AccessCheck, AccessDecision, ProjectAccess, ProjectAccessError, ProjectAction,
};
use storage_jwt_auth::{JwtSigner, SignerConfig};
use storage_project_rbac::{HttpProjectAccess, ProjectServiceConfig};
use storage_test_support::{
    project_standin::{Mode, ProjectStandin},
    timing,
};

/// The budget of a call to the project service (the spec's 2 s, the adapter's default).
const BUDGET: Duration = Duration::from_secs(2);
const SLOW: Duration = Duration::from_secs(5);

/// A caller whose forwarded credentials hold a real token for `user`, as the JWT verifier
/// would build them.
fn caller(user: &str) -> Principal {
    let token = JwtSigner::new(&SignerConfig::hs256("standin-test-secret"))
        .unwrap()
        .mint_token(user, None, Duration::from_secs(300))
        .unwrap();
    Principal::new(UserId::new(user).unwrap(), None).with_credentials(ForwardedCredentials {
        cookie: Some(format!("access_token={token}")),
        authorization: Some(format!("Bearer {token}")),
    })
}

fn check(project: &str, action: ProjectAction) -> AccessCheck {
    AccessCheck {
        project_id: OwnerId::new(project).unwrap(),
        action,
        file_id: None,
    }
}

fn adapter(base_url: &str) -> HttpProjectAccess {
    // The default configuration: the 2 s budget of the spec.
    HttpProjectAccess::new(&ProjectServiceConfig::new(base_url)).unwrap()
}

async fn timed<T>(label: &str, fut: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = fut.await;
    let elapsed = start.elapsed();
    println!(
        "[elapsed] {label}: {:.1} ms",
        elapsed.as_secs_f64() * 1000.0
    );
    timing::assert_within(label, elapsed, BUDGET);
    (out, elapsed)
}

// ---- decisions -----------------------------------------------------------------------------

#[tokio::test]
async fn allow_and_deny_are_honoured_per_action_and_user() {
    let standin = ProjectStandin::start().await;
    standin.allow("alice", "p1", "read");
    standin.allow_with_role("alice", "p1", "write", "member");
    standin.deny("alice", "p1", "delete");
    let access = adapter(&standin.url());
    let alice = caller("alice");

    let read = access
        .check(&alice, &check("p1", ProjectAction::Read))
        .await
        .unwrap();
    assert_eq!(read, AccessDecision::Allowed { role: None });
    let write = access
        .check(&alice, &check("p1", ProjectAction::Write))
        .await
        .unwrap();
    assert_eq!(
        write,
        AccessDecision::Allowed {
            role: Some("member".into())
        }
    );
    let delete = access
        .check(&alice, &check("p1", ProjectAction::Delete))
        .await
        .unwrap();
    assert!(!delete.is_allowed(), "{delete:?}");
    // No rule: denied.
    let lock = access
        .check(&alice, &check("p1", ProjectAction::Lock))
        .await
        .unwrap();
    assert!(!lock.is_allowed());
    let other_project = access
        .check(&alice, &check("p2", ProjectAction::Read))
        .await
        .unwrap();
    assert!(!other_project.is_allowed());
    // Rules are per user: bob gets nothing from alice's rules.
    let bob = access
        .check(&caller("bob"), &check("p1", ProjectAction::Read))
        .await
        .unwrap();
    assert_eq!(
        bob,
        AccessDecision::Denied {
            reason: Some("insufficient_permissions".into())
        }
    );
    // No caching: a rule change shows at the next call.
    standin.deny("alice", "p1", "read");
    let read = access
        .check(&alice, &check("p1", ProjectAction::Read))
        .await
        .unwrap();
    assert!(!read.is_allowed());
    assert_eq!(standin.requests().len(), 7);
}

#[tokio::test]
async fn batch_checks_answer_in_order() {
    let standin = ProjectStandin::start().await;
    standin.allow("alice", "p1", "read");
    standin.allow("alice", "p2", "validate");
    let access = adapter(&standin.url());
    let file = FileId::from_uuid(uuid_v4());
    let checks = [
        check("p1", ProjectAction::Read),
        check("p2", ProjectAction::Write),
        AccessCheck {
            file_id: Some(file),
            ..check("p2", ProjectAction::Validate)
        },
        check("p1", ProjectAction::Delete),
    ];
    let decisions = access.check_batch(&caller("alice"), &checks).await.unwrap();
    let allowed: Vec<bool> = decisions.iter().map(AccessDecision::is_allowed).collect();
    assert_eq!(allowed, [true, false, true, false]);

    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/check-file-access/batch");
    let body = requests[0].json();
    let sent = body["checks"].as_array().unwrap();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[2]["action"], "validate");
    assert_eq!(sent[2]["file_id"], file.to_string());
    assert!(sent[0].get("file_id").is_none());

    // An empty batch asks nothing.
    assert!(
        access
            .check_batch(&caller("alice"), &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(standin.requests().len(), 1);
}

fn uuid_v4() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

#[tokio::test]
async fn cookie_and_bearer_are_forwarded_with_the_seed_body() {
    let standin = ProjectStandin::start().await;
    standin.allow("alice", "p1", "lock");
    let access = adapter(&standin.url());
    let alice = caller("alice");
    let file = FileId::from_uuid(uuid_v4());
    let decision = access
        .check(
            &alice,
            &AccessCheck {
                file_id: Some(file),
                ..check("p1", ProjectAction::Lock)
            },
        )
        .await
        .unwrap();
    assert!(decision.is_allowed());

    let requests = standin.requests();
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/check-file-access");
    assert_eq!(request.cookie(), alice.credentials.cookie.as_deref());
    assert_eq!(
        request.authorization(),
        alice.credentials.authorization.as_deref()
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        serde_json::json!({"project_id": "p1", "action": "lock", "file_id": file.to_string()})
    );
}

#[tokio::test]
async fn bearer_alone_identifies_the_caller() {
    let standin = ProjectStandin::start().await;
    standin.allow("carol", "p1", "read");
    let access = adapter(&standin.url());
    let mut carol = caller("carol");
    carol.credentials.cookie = None;
    assert!(
        access
            .check(&carol, &check("p1", ProjectAction::Read))
            .await
            .unwrap()
            .is_allowed()
    );
    let requests = standin.requests();
    assert_eq!(requests[0].cookie(), None);
    assert!(requests[0].authorization().unwrap().starts_with("Bearer "));
}

#[tokio::test]
async fn base_url_with_a_path_prefix_works() {
    let standin = ProjectStandin::start().await;
    standin.allow("alice", "p1", "read");
    let access = adapter(&format!("{}/api", standin.url()));
    let alice = caller("alice");
    assert!(
        access
            .check(&alice, &check("p1", ProjectAction::Read))
            .await
            .unwrap()
            .is_allowed()
    );
    let batch = access
        .check_batch(&alice, &[check("p1", ProjectAction::Read)])
        .await
        .unwrap();
    assert!(batch[0].is_allowed());
    let paths: Vec<String> = standin.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/api/check-file-access", "/api/check-file-access/batch"]
    );
}

// ---- failure modes: every one is an error, within the budget -------------------------------

async fn failing_single(
    standin: &ProjectStandin,
    mode: Mode,
    label: &str,
) -> (ProjectAccessError, Duration) {
    standin.allow("alice", "p1", "read");
    standin.set_mode(mode);
    let access = adapter(&standin.url());
    let (result, elapsed) = timed(
        label,
        access.check(&caller("alice"), &check("p1", ProjectAction::Read)),
    )
    .await;
    (
        result.expect_err("a failure mode must not give a decision"),
        elapsed,
    )
}

async fn failing_batch(
    standin: &ProjectStandin,
    mode: Mode,
    label: &str,
) -> (ProjectAccessError, Duration) {
    standin.allow("alice", "p1", "read");
    standin.allow("alice", "p2", "write");
    standin.set_mode(mode);
    let access = adapter(&standin.url());
    let checks = [
        check("p1", ProjectAction::Read),
        check("p2", ProjectAction::Write),
    ];
    let (result, elapsed) = timed(label, access.check_batch(&caller("alice"), &checks)).await;
    (
        result.expect_err("a failure mode must not give decisions"),
        elapsed,
    )
}

#[tokio::test]
async fn slow_service_times_out_within_budget() {
    let standin = ProjectStandin::start().await;
    let (err, elapsed) = failing_single(&standin, Mode::Slow(SLOW), "slow 5 s (single)").await;
    assert_eq!(err, ProjectAccessError::Timeout);
    timing::assert_not_before("slow 5 s (single)", elapsed, BUDGET);
}

#[tokio::test]
async fn slow_service_times_out_within_budget_for_a_batch() {
    let standin = ProjectStandin::start().await;
    let (err, elapsed) = failing_batch(&standin, Mode::Slow(SLOW), "slow 5 s (batch)").await;
    assert_eq!(err, ProjectAccessError::Timeout);
    timing::assert_not_before("slow 5 s (batch)", elapsed, BUDGET);
}

#[tokio::test]
async fn status_500_is_an_error() {
    let standin = ProjectStandin::start().await;
    let (err, _) = failing_single(&standin, Mode::Status500, "500 (single)").await;
    assert_eq!(err, ProjectAccessError::BadStatus(500));
    let (err, _) = failing_batch(&standin, Mode::Status500, "500 (batch)").await;
    assert_eq!(err, ProjectAccessError::BadStatus(500));
}

#[tokio::test]
async fn garbage_body_is_an_error() {
    let standin = ProjectStandin::start().await;
    let (err, _) = failing_single(&standin, Mode::Garbage, "garbage (single)").await;
    assert!(matches!(err, ProjectAccessError::Malformed(_)), "{err:?}");
    let (err, _) = failing_batch(&standin, Mode::Garbage, "garbage (batch)").await;
    assert!(matches!(err, ProjectAccessError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn oversized_body_is_an_error() {
    let standin = ProjectStandin::start().await;
    let (err, _) = failing_single(&standin, Mode::Oversized, "oversized 1 MiB body").await;
    assert!(matches!(err, ProjectAccessError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn closed_connection_is_an_error() {
    let standin = ProjectStandin::start().await;
    let (err, _) = failing_single(&standin, Mode::Close, "connection closed (single)").await;
    assert!(matches!(err, ProjectAccessError::Unreachable(_)), "{err:?}");
    let (err, _) = failing_batch(&standin, Mode::Close, "connection closed (batch)").await;
    assert!(matches!(err, ProjectAccessError::Unreachable(_)), "{err:?}");
    // The client recovers once the service does (no poisoned pooled connection).
    standin.set_mode(Mode::Normal);
    let access = adapter(&standin.url());
    assert!(
        access
            .check(&caller("alice"), &check("p1", ProjectAction::Read))
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn refused_connection_is_an_error() {
    // A port nobody listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let access = adapter(&format!("http://127.0.0.1:{port}"));
    let alice = caller("alice");
    let (result, _) = timed(
        "connection refused (single)",
        access.check(&alice, &check("p1", ProjectAction::Read)),
    )
    .await;
    let err = result.unwrap_err();
    assert!(matches!(err, ProjectAccessError::Unreachable(_)), "{err:?}");
    let checks = [check("p1", ProjectAction::Read)];
    let (result, _) = timed(
        "connection refused (batch)",
        access.check_batch(&alice, &checks),
    )
    .await;
    assert!(
        matches!(result, Err(ProjectAccessError::Unreachable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn batch_with_wrong_count_is_an_error() {
    let standin = ProjectStandin::start().await;
    let (err, _) = failing_batch(&standin, Mode::BatchShort, "batch wrong count").await;
    assert!(matches!(err, ProjectAccessError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn batch_with_mismatched_entries_is_an_error() {
    let standin = ProjectStandin::start().await;
    let (err, _) = failing_batch(&standin, Mode::BatchMismatch, "batch mismatched entry").await;
    assert!(matches!(err, ProjectAccessError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn batch_with_a_mismatched_action_is_an_error() {
    let standin = ProjectStandin::start().await;
    let (err, _) = failing_batch(&standin, Mode::BatchWrongAction, "batch mismatched action").await;
    assert!(matches!(err, ProjectAccessError::Malformed(_)), "{err:?}");
}

#[tokio::test]
async fn missing_credentials_are_an_error_not_a_decision() {
    // The stand-in answers 401 without a token, as the real service would.
    let standin = ProjectStandin::start().await;
    standin.allow("*", "p1", "read");
    let access = adapter(&standin.url());
    let anonymous = Principal::new(UserId::new("alice").unwrap(), None);
    let (result, _) = timed(
        "401 without credentials",
        access.check(&anonymous, &check("p1", ProjectAction::Read)),
    )
    .await;
    assert_eq!(result, Err(ProjectAccessError::BadStatus(401)));
}

#[tokio::test]
async fn a_shorter_configured_budget_is_honoured() {
    let standin = ProjectStandin::start().await;
    standin.set_mode(Mode::Slow(SLOW));
    let config = ProjectServiceConfig {
        timeout: Duration::from_millis(300),
        ..ProjectServiceConfig::new(standin.url())
    };
    let access = HttpProjectAccess::new(&config).unwrap();
    let start = Instant::now();
    let result = access
        .check(&caller("alice"), &check("p1", ProjectAction::Read))
        .await;
    let elapsed = start.elapsed();
    assert_eq!(result, Err(ProjectAccessError::Timeout));
    timing::assert_timed_out("a 300 ms budget", elapsed, config.timeout);
}
