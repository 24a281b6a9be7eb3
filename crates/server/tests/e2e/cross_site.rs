//! Every state-changing route, sent with the session cookie from a web page of an origin that
//! is not allowed: 403 `access_denied`, nothing changes, the attempt is audited when the route
//! is an audited change. The same request from an allowed origin, with a bearer token, or with
//! no `Origin` (curl, other services) goes through.

use reqwest::StatusCode;
use serde_json::{Value, json};
use storage_domain::ErrorCode;

use crate::support::*;

const ALLOWED: &str = "http://app.example";
const FOREIGN: &str = "http://evil.example";

/// How a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Cookie, `Origin` of a site that is not allowed.
    Foreign,
    /// Cookie, `Origin` in `CORS_ALLOWED_ORIGINS`.
    Allowed,
    /// Bearer token (and the foreign `Origin`: a page can only send it after a preflight).
    Bearer,
    /// Cookie, no `Origin` (not a browser).
    NoOrigin,
}

/// What one fixture holds: alice's files under `dir`, ready for every route.
struct Fixture {
    dir: String,
    /// A draft version of `a.txt`.
    draft: String,
    /// A pending version of `p.txt`.
    pending: String,
    /// A presigned upload of `u.txt` whose bytes are stored.
    upload_id: String,
}

impl Fixture {
    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.dir)
    }
}

async fn fixture(app: &App, n: usize) -> Fixture {
    let alice = app.user("alice");
    let dir = format!("/users/alice/xs{n}/");
    let draft = id_of(&alice.upload(&format!("{dir}a.txt"), "a").await.ok());
    alice
        .upload(&format!("{dir}ws.txt"), "workspace")
        .await
        .ok();
    alice
        .upload(&format!("{dir}arch.txt"), "archived")
        .await
        .ok();
    alice
        .post(
            "/archive",
            json!({"bucket": "users", "path": format!("{dir}arch.txt")}),
        )
        .await
        .ok();
    let pending = id_of(&alice.upload(&format!("{dir}p.txt"), "p").await.ok());
    alice.submit(&pending).await.ok();
    // The commit's target: locked by alice on its latest version.
    alice.upload(&format!("{dir}t.txt"), "target").await.ok();
    alice.lock(&format!("{dir}t.txt")).await.ok();
    let presigned = alice
        .presign_upload(
            &format!("{dir}u.txt"),
            json!({"content_type": "text/plain", "size": 1}),
        )
        .await
        .ok();
    assert_eq!(
        put_presigned(app, &presigned, b"u".to_vec()).await,
        StatusCode::OK
    );
    Fixture {
        dir,
        draft,
        pending,
        upload_id: presigned["upload_id"]
            .as_str()
            .expect("upload_id")
            .to_owned(),
    }
}

/// Everything a refused request must leave as it was.
async fn snapshot(app: &App, f: &Fixture) -> Value {
    let alice = app.user("alice");
    let mut files = Vec::new();
    for name in [
        "a.txt", "ws.txt", "arch.txt", "p.txt", "t.txt", "u.txt", "new.txt", "copy.txt",
    ] {
        let path = f.path(name);
        let meta = alice.metadata(&path).await;
        let versions = alice.versions(&path).await;
        files.push(json!({"meta": meta.body["file"], "versions": versions.body["versions"]}));
    }
    let trail = changes_only(alice.audit(&f.dir).await.ok());
    let locks = alice.locks(&f.dir).await.ok();
    json!({"files": files, "audit": trail["events"], "locks": locks["locks"]})
}

/// The routes that change something, as (name, method, route, JSON body or None, audited).
fn routes(f: &Fixture) -> Vec<(&'static str, &'static str, String, Option<Value>, bool)> {
    let file = |name: &str| json!({"bucket": "users", "path": f.path(name)});
    vec![
        (
            "tags",
            "PATCH",
            "/metadata".into(),
            Some(json!({"bucket": "users", "path": f.path("a.txt"), "tags": {"x": 1}})),
            true,
        ),
        (
            "presign upload",
            "POST",
            "/upload/presign".into(),
            Some({
                let mut body = file("new.txt");
                body["size"] = json!(3);
                body
            }),
            true,
        ),
        (
            "complete upload",
            "POST",
            "/upload/complete".into(),
            Some(json!({"upload_id": f.upload_id})),
            true,
        ),
        ("proxy upload", "POST", "/upload/proxy".into(), None, true),
        (
            "presign download",
            "POST",
            "/download/presign".into(),
            Some(file("a.txt")),
            false,
        ),
        (
            "copy",
            "POST",
            "/copy".into(),
            Some(
                json!({"source_bucket": "users", "source_path": f.path("a.txt"),
                        "target_bucket": "users", "target_path": f.path("copy.txt")}),
            ),
            true,
        ),
        ("lock", "POST", "/lock".into(), Some(file("a.txt")), true),
        (
            "unlock",
            "POST",
            "/unlock".into(),
            Some(file("t.txt")),
            true,
        ),
        (
            "commit",
            "POST",
            "/versions/commit".into(),
            Some(
                json!({"source_bucket": "users", "source_path": f.path("ws.txt"),
                        "target_bucket": "users", "target_path": f.path("t.txt"),
                        "message": "from a page"}),
            ),
            true,
        ),
        (
            "submit",
            "POST",
            format!("/versions/{}/submit", f.draft),
            Some(json!({})),
            true,
        ),
        (
            "approve",
            "POST",
            format!("/versions/{}/approve", f.pending),
            Some(json!({})),
            true,
        ),
        (
            "reject",
            "POST",
            format!("/versions/{}/reject", f.pending),
            Some(json!({"comment": "no"})),
            true,
        ),
        (
            "archive",
            "POST",
            "/archive".into(),
            Some(file("a.txt")),
            true,
        ),
        (
            "unarchive",
            "POST",
            "/unarchive".into(),
            Some(file("arch.txt")),
            true,
        ),
        (
            "delete",
            "DELETE",
            format!("/delete?bucket=users&path={}", urlencode(&f.path("a.txt"))),
            None,
            true,
        ),
    ]
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends one request; `/upload/proxy` uploads to `proxy_path`.
async fn send(
    app: &App,
    mode: Mode,
    (method, route, body): (&str, &str, Option<&Value>),
    proxy_path: &str,
) -> Resp {
    let token = app.token("alice");
    let mut builder = app.client.request(
        method.parse().expect("method"),
        format!("{}{route}", app.base),
    );
    builder = match mode {
        Mode::Bearer => builder.bearer_auth(&token),
        _ => builder.header("Cookie", format!("access_token={token}")),
    };
    builder = match mode {
        Mode::Foreign | Mode::Bearer => builder.header("Origin", FOREIGN),
        Mode::Allowed => builder.header("Origin", ALLOWED),
        Mode::NoOrigin => builder,
    };
    builder = match (route, body) {
        ("/upload/proxy", _) => builder.multipart(
            reqwest::multipart::Form::new()
                .text("bucket", "users")
                .text("path", proxy_path.to_owned())
                .part("file", reqwest::multipart::Part::bytes(b"page".to_vec())),
        ),
        (_, Some(body)) => builder.json(body),
        (_, None) => builder,
    };
    let res = builder.send().await.expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json().await.expect("JSON answer");
    Resp {
        status,
        headers,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_sent_with_the_cookie_from_a_foreign_origin_is_refused_and_changes_nothing() {
    let app = App::start_with(
        Options::default()
            .var("CORS_ALLOWED_ORIGINS", ALLOWED)
            .var("ALLOW_SELF_APPROVAL", "true"),
    )
    .await;
    let mut n = 0;
    let count = routes(&fixture(&app, 9999).await).len();
    for index in 0..count {
        for mode in [Mode::Foreign, Mode::Allowed, Mode::Bearer, Mode::NoOrigin] {
            n += 1;
            let f = fixture(&app, n).await;
            let (name, method, route, body, audited) = routes(&f).swap_remove(index);
            let before = snapshot(&app, &f).await;
            let denied_before = denials(&app.user("alice").audit(&f.dir).await.ok()).len();
            let request = (method, route.as_str(), body.as_ref());
            let answer = send(&app, mode, request, &f.path("new.txt")).await;
            if mode == Mode::Foreign {
                let err = answer.err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
                let detail = err["detail"].as_str().unwrap_or_default();
                assert!(detail.contains(FOREIGN), "{name}: {detail}");
                assert_eq!(
                    snapshot(&app, &f).await,
                    before,
                    "{name}: something changed"
                );
                let denied = denials(&app.user("alice").audit(&f.dir).await.ok());
                assert_eq!(
                    denied.len(),
                    denied_before + usize::from(audited),
                    "{name}: the refusal is audited when the change would be: {denied:?}"
                );
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::OK,
                    "{name} ({mode:?}) must go through: {}",
                    answer.body
                );
            }
        }
    }
}
