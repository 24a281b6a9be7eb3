//! What a caller cannot make grow without bound, over real HTTP: `/versions` comes in pages
//! (every version once, also while versions are added), a user's open presigned uploads are
//! capped across concurrent requests (429 with `Retry-After`, then room again once one is
//! completed), and an intruder's repeated refusals add one audit row with a count, not one each.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use storage_domain::{ErrorCode, service::encode_cursor};

use crate::support::{App, Options, count, put_presigned};

/// The version numbers of a `/versions` answer, in order.
fn numbers(page: &Value) -> Vec<u64> {
    page["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["number"].as_u64().expect("number"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_pages_cover_every_version_once_while_versions_are_added() {
    let app = App::start().await;
    let alice = app.user("alice");
    let path = "/users/alice/history.txt";
    for i in 0..5 {
        alice.upload(path, format!("v{i}")).await.ok();
    }
    let page = |cursor: Option<String>, limit: &'static str| {
        let alice = app.user("alice");
        async move {
            let mut query = vec![("bucket", "users"), ("path", path), ("limit", limit)];
            let cursor = cursor.unwrap_or_default();
            if !cursor.is_empty() {
                query.push(("cursor", cursor.as_str()));
            }
            alice.get("/versions", &query).await
        }
    };

    let first = page(None, "2").await.ok();
    assert_eq!(numbers(&first), [5, 4]);
    assert_eq!(first["file"]["version"], 5, "the file is still there");
    // A version is committed between pages: it sorts above the cursor.
    alice.upload(path, "v5").await.ok();
    let mut seen = numbers(&first);
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    let mut pages = 1;
    while let Some(c) = cursor {
        assert!(pages < 10, "the walk never ends: {seen:?}");
        let next = page(Some(c), "2").await.ok();
        seen.extend(numbers(&next));
        cursor = next["next_cursor"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(seen, [5, 4, 3, 2, 1], "every version once, newest first");
    assert_eq!(pages, 3, "the last page says so with next_cursor null");
    // Without a limit: the first 100, the new version first, and no next page.
    let all = alice.versions(path).await.ok();
    assert_eq!(numbers(&all), [6, 5, 4, 3, 2, 1]);
    assert_eq!(all["next_cursor"], Value::Null);

    // A cursor the service did not make for /versions, and limits out of range: 400.
    for cursor in [
        "!!!".to_owned(),
        encode_cursor("list", "3"),
        encode_cursor("versions", "0"),
        encode_cursor("versions", "x"),
        encode_cursor("versions", "3\u{0}"),
    ] {
        let refused = alice
            .get(
                "/versions",
                &[("bucket", "users"), ("path", path), ("cursor", &cursor)],
            )
            .await;
        refused.err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    }
    for limit in ["0", "1001"] {
        page(None, limit)
            .await
            .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    }
}

/// Open presigned uploads of a user, by the store.
const OPEN_PRESIGNED: &str = "SELECT 1 FROM upload_reservations \
     WHERE completed_version IS NULL AND kind = 'presigned' AND created_by = 'alice'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_uploads_past_the_cap_answer_429_then_room_comes_back() {
    let app = App::start_with(
        Options::default()
            .var("MAX_OPEN_UPLOADS_PER_USER", 3)
            .var("TRANSFER_RETRY_AFTER_SECONDS", 4),
    )
    .await;
    let config = app.anonymous().get("/config", &[]).await.ok();
    assert_eq!(config["max_open_uploads_per_user"], 3);

    // A burst of ten at once: three reserved, seven refused, nothing reserved for those.
    let burst = join_all((0..10).map(|i| {
        let alice = app.user("alice");
        async move {
            alice
                .presign_upload(
                    &format!("/users/alice/burst/{i}.txt"),
                    json!({"content_type": "text/plain", "size": 5}),
                )
                .await
        }
    }))
    .await;
    let mut granted = Vec::new();
    for resp in burst {
        if resp.status == StatusCode::OK {
            granted.push(resp.ok());
        } else {
            assert_eq!(resp.header("retry-after").as_deref(), Some("4"));
            let body = resp.err(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests);
            assert!(
                body["detail"].as_str().unwrap_or_default().contains("open"),
                "{body}"
            );
        }
    }
    assert_eq!(granted.len(), 3);
    assert_eq!(count(&app, OPEN_PRESIGNED).await, 3);
    // Another user is not held back by alice's.
    app.user("bob")
        .presign_upload("/users/bob/a.txt", json!({"size": 1}))
        .await
        .ok();

    // Alice completes one: room for exactly one more.
    let done = &granted[0];
    assert_eq!(
        put_presigned(&app, done, b"hello".to_vec()).await,
        StatusCode::OK
    );
    app.user("alice")
        .complete(done["upload_id"].as_str().expect("upload_id"))
        .await
        .ok();
    let alice = app.user("alice");
    alice
        .presign_upload("/users/alice/after.txt", json!({"size": 1}))
        .await
        .ok();
    alice
        .presign_upload("/users/alice/again.txt", json!({"size": 1}))
        .await
        .err(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests);
    assert_eq!(count(&app, OPEN_PRESIGNED).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intruders_thousand_refusals_add_a_bounded_number_of_audit_rows() {
    let app = App::start_with(Options::default().var("AUDIT_DENIED_WINDOW_SECONDS", 600)).await;
    let path = "/users/alice/secret.txt";
    app.user("alice").upload(path, "secret").await.ok();

    // Mallory tries to delete it 1,000 times, 25 at once.
    for _ in 0..40 {
        let round =
            join_all((0..25).map(|_| async { app.user("mallory").delete(path).await })).await;
        for refused in round {
            refused.err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
        }
    }

    // One row per fixed window of 600 s: two if the burst straddles a window's end.
    let denied = "SELECT 1 FROM audit_events WHERE outcome = 'denied' AND actor = 'mallory'";
    let rows = count(&app, denied).await;
    assert!((1..=2).contains(&rows), "{rows} rows for 1,000 refusals");
    let events = app.user("alice").audit(path).await.ok();
    let refusals: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert_eq!(i64::try_from(refusals.len()).ok(), Some(rows));
    let counted: u64 = refusals
        .iter()
        .map(|e| e["repeat_count"].as_u64().expect("repeat_count"))
        .sum();
    assert_eq!(counted, 1000, "every refusal counted");
    for refusal in &refusals {
        assert_eq!(refusal["actor"], "mallory");
        assert_eq!(refusal["action"], "delete");
    }
    assert!(
        refusals.iter().any(|e| e["last_repeat_at"].is_string()),
        "{refusals:?}"
    );
    // Her own upload's event is one event, counted once.
    assert!(
        events["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["outcome"] == "success" && e["repeat_count"] == 1)
    );
    // Another action is another row.
    app.user("mallory")
        .set_tags(path, json!({"k": "v"}))
        .await
        .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    assert_eq!(count(&app, denied).await, rows + 1);
}
