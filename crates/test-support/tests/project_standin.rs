//! The stand-in itself: the library API over raw HTTP, and the `project-standin` binary.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use storage_test_support::project_standin::{ProjectStandin, unverified_sub};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An unsigned token for `sub`: the stand-in does not verify tokens.
fn token(sub: &str) -> String {
    let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.sig",
        part(serde_json::json!({"alg":"HS256"})),
        part(serde_json::json!({"sub": sub}))
    )
}

/// Posts `body` to `path` with one raw HTTP/1.1 request and returns (status, body).
async fn post(addr: &str, path: &str, cookie: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn unverified_sub_reads_the_claims() {
    assert_eq!(unverified_sub(&token("alice")).as_deref(), Some("alice"));
    assert_eq!(unverified_sub("not-a-token"), None);
    assert_eq!(unverified_sub("a.%%%.c"), None);
}

#[tokio::test]
async fn answers_from_rules_and_records_requests() {
    let standin = ProjectStandin::start().await;
    standin.allow("*", "p1", "read");
    standin.deny("mallory", "p1", "read");
    let addr = standin.addr().to_string();
    let body = r#"{"project_id":"p1","action":"read"}"#;

    let (status, answer) = post(
        &addr,
        "/check-file-access",
        &format!("access_token={}", token("alice")),
        body,
    )
    .await;
    assert_eq!((status, answer["allowed"].as_bool()), (200, Some(true)));
    let (status, answer) = post(
        &addr,
        "/check-file-access",
        &format!("access_token={}", token("mallory")),
        body,
    )
    .await;
    assert_eq!((status, answer["allowed"].as_bool()), (200, Some(false)));
    let (status, _) = post(&addr, "/check-file-access", "other=1", body).await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &addr,
        "/check-file-access",
        &format!("access_token={}", token("a")),
        r#"{"project_id":"p1","action":"fly"}"#,
    )
    .await;
    assert_eq!(status, 400);

    let requests = standin.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests[0].cookie().unwrap().starts_with("access_token="));
    assert_eq!(requests[0].json()["project_id"], "p1");
}

#[tokio::test]
async fn stops_when_dropped() {
    let standin = ProjectStandin::start().await;
    let addr = standin.addr();
    drop(standin);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still listening after drop"
    );
}

#[tokio::test]
async fn the_binary_serves_rules_from_the_environment() {
    let rules = r#"{"rules":[{"user":"alice","project":"p9","actions":["read","write"],"allowed":true,"role":"owner"}]}"#;
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_project-standin"))
            .args(["--bind", "127.0.0.1:0"])
            .env("PROJECT_STANDIN_RULES", rules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();

    let cookie = format!("access_token={}", token("alice"));
    let (status, answer) = post(
        &addr,
        "/check-file-access",
        &cookie,
        r#"{"project_id":"p9","action":"write"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        serde_json::json!({"allowed": true, "role": "owner"})
    );
    let batch =
        r#"{"checks":[{"project_id":"p9","action":"read"},{"project_id":"p9","action":"delete"}]}"#;
    let (status, answer) = post(&addr, "/api/check-file-access/batch", &cookie, batch).await;
    assert_eq!(status, 200);
    let allowed: Vec<bool> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["allowed"].as_bool().unwrap())
        .collect();
    assert_eq!(allowed, [true, false]);
}

/// Kills the child process it holds when dropped, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
