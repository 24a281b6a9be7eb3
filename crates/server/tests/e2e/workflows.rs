//! The seed's seven workflows in its order, then the rest of the document life: reject,
//! four-eyes, delete, `validated` downloads, lock conflicts, stale bases, `If-Match`, tags and
//! the audit trail. Every refused request is followed by a read proving nothing changed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use storage_domain::ErrorCode;

use crate::support::{
    App, MAX_UPLOAD, Objects, Options, Upload, actions, id_of, numbers, put_presigned, sha256_hex,
};

const SPEC: &str = "/projects/5678/docs/specifications_v1.pdf";
const WORK: &str = "/users/1234/work/specifications_v1.pdf";
const PART: &str = "/projects/5678/designs/cad/part.sldprt";

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("not a timestamp: {v}: {e}"))
}

fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", sha256_hex(bytes))
}

/// The seed's workflows 1 to 7, in order, on one project file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_workflows_in_order() {
    let app = App::start().await;
    app.allow("1234", "5678", &["read", "write", "lock"]);
    app.allow("lead", "5678", &["read", "lock", "validate"]);
    let author = app.user("1234");
    let lead = app.user("lead");

    // 1. Presigned upload: presign (without a size, as the seed does), PUT, complete.
    let v1_bytes = b"%PDF-1.4 specifications, first issue".to_vec();
    let started = Utc::now();
    let presigned = author
        .presign_upload(
            SPEC,
            json!({"content_type": "application/pdf", "sha256": sha256_hex(&v1_bytes)}),
        )
        .await
        .ok();
    assert_eq!(presigned["method"], "PUT");
    // S3 cannot bound a URL of unannounced length: the URL is the service's own, which
    // streams the PUT into the store and counts it against MAX_UPLOAD_BYTES.
    assert!(
        presigned["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/blob/projects/~staging/", app.base)),
        "{presigned}"
    );
    assert_eq!(presigned["max_bytes"], MAX_UPLOAD);
    let expires = time(&presigned["expires_at"]);
    assert!(
        expires > started && expires <= Utc::now() + chrono::Duration::seconds(901),
        "the URL lives PRESIGN_TTL_SECONDS (900 s): {expires}"
    );
    let upload_id = presigned["upload_id"].as_str().unwrap().to_owned();
    // Reserved, not yet visible.
    author
        .metadata(SPEC)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    let put = put_presigned(&app, &presigned, v1_bytes.clone()).await;
    assert!(put.is_success(), "presigned PUT: {put}");
    let done = author.complete(&upload_id).await.ok();
    let v1 = &done["version"];
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["status"], "draft");
    assert_eq!(v1["size"], v1_bytes.len());
    assert_eq!(v1["sha256"], sha256_hex(&v1_bytes));
    assert_eq!(v1["content_type"], "application/pdf");
    assert_eq!(v1["author_id"], "1234");
    let file = &done["file"];
    assert_eq!(file["path"], SPEC);
    assert_eq!(file["bucket"], "projects");
    assert_eq!(file["name"], "specifications_v1.pdf");
    assert_eq!(file["owner_id"], "1234");
    assert_eq!(file["version"], 1);
    assert_eq!(file["validated_version"], Value::Null);
    assert_eq!(file["status"], "draft");
    assert_eq!(file["locked_by"], Value::Null);
    assert_eq!(file["lock"], Value::Null);
    // Completing again answers the same version and adds none.
    let again = author.complete(&upload_id).await.ok();
    assert_eq!(again["version"]["id"], done["version"]["id"]);
    assert_eq!(numbers(&author.versions(SPEC).await.ok()), [1]);
    // The proxy download: bytes and headers, a range, a conditional GET.
    let got = author.download(SPEC, "latest").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.bytes, v1_bytes);
    assert_eq!(got.header("etag"), Some(etag(&v1_bytes)));
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/pdf")
    );
    assert_eq!(
        got.header("content-length"),
        Some(v1_bytes.len().to_string())
    );
    assert_eq!(got.header("x-file-version").as_deref(), Some("1"));
    assert_eq!(got.header("accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(
        got.header("content-disposition").as_deref(),
        Some(
            "attachment; filename=\"specifications_v1.pdf\"; \
             filename*=UTF-8''specifications_v1.pdf"
        )
    );
    let part = author
        .download_with(SPEC, "latest", &[("Range", "bytes=5-7")])
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 5-7/{}", v1_bytes.len()))
    );
    assert_eq!(part.bytes, v1_bytes[5..8]);
    let unchanged = author
        .download_with(SPEC, "latest", &[("If-None-Match", &etag(&v1_bytes))])
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert!(unchanged.bytes.is_empty());

    // 2. Proxy upload to the same path: version 2.
    let v2_bytes = b"%PDF-1.4 specifications, with the annex".to_vec();
    let body = author
        .upload_with(Upload {
            content_type: Some("application/pdf".into()),
            message: Some("annex added".into()),
            tags: Some(json!({"lang": "fr"})),
            ..Upload::new(SPEC, v2_bytes.clone())
        })
        .await
        .ok();
    assert_eq!(body["version"]["number"], 2);
    assert_eq!(body["version"]["status"], "draft");
    assert_eq!(body["version"]["message"], "annex added");
    assert_eq!(body["version"]["sha256"], sha256_hex(&v2_bytes));
    assert_eq!(body["file"]["version"], 2);
    assert_eq!(body["file"]["tags"], json!({"lang": "fr"}));
    assert_eq!(body["file"]["id"], file["id"], "one file, two versions");
    assert_eq!(numbers(&author.versions(SPEC).await.ok()), [2, 1]);

    // 3. Copy to the personal workspace: the source is locked for the copier, on version 2.
    let body = author.copy(SPEC, WORK).await.ok();
    assert_eq!(body["file"]["path"], WORK);
    assert_eq!(body["file"]["version"], 1);
    assert_eq!(body["version"]["sha256"], sha256_hex(&v2_bytes));
    let source = author.metadata(SPEC).await.ok();
    assert_eq!(source["file"]["locked_by"], "1234");
    let lock = &source["file"]["lock"];
    assert_eq!(lock["holder"], "1234");
    assert_eq!(lock["base_version"], 2);
    let held_for = time(&lock["expires_at"]) - time(&lock["acquired_at"]);
    assert_eq!(held_for.num_seconds(), 86_400, "LOCK_TTL_SECONDS default");
    assert_eq!(author.download(WORK, "latest").await.bytes, v2_bytes);

    // 4. Edit the workspace copy, commit it back: version 3, pending validation, unlocked.
    let v3_bytes = b"%PDF-1.4 specifications, new requirements".to_vec();
    author.upload(WORK, v3_bytes.clone()).await.ok();
    let body = author
        .commit(WORK, SPEC, "Updated specifications with new requirements")
        .await
        .ok();
    let v3 = &body["version"];
    assert_eq!(v3["number"], 3);
    assert_eq!(v3["status"], "pending_validation");
    assert_eq!(
        v3["message"],
        "Updated specifications with new requirements"
    );
    assert_eq!(v3["author_id"], "1234");
    assert_eq!(v3["sha256"], sha256_hex(&v3_bytes));
    assert_eq!(body["file"]["version"], 3);
    assert_eq!(body["file"]["status"], "pending_validation");
    assert_eq!(
        body["file"]["locked_by"],
        Value::Null,
        "the commit releases"
    );
    assert_eq!(body["file"]["validated_version"], Value::Null);
    let v3_id = id_of(&body);
    lead.download(SPEC, "validated")
        .await
        .json()
        .err(StatusCode::NOT_FOUND, ErrorCode::VersionNotFound);

    // 5. Approve.
    let body = lead
        .approve(&v3_id, Some("Changes approved by team lead"))
        .await
        .ok();
    assert_eq!(body["version"]["status"], "validated");
    assert_eq!(body["version"]["reviewed_by"], "lead");
    assert_eq!(
        body["version"]["review_comment"],
        "Changes approved by team lead"
    );
    assert!(time(&body["version"]["reviewed_at"]) >= started);
    assert_eq!(body["file"]["validated_version"], 3);
    assert_eq!(body["file"]["status"], "validated");
    let got = lead.download(SPEC, "validated").await;
    assert_eq!(got.bytes, v3_bytes);
    assert_eq!(got.header("x-file-version").as_deref(), Some("3"));

    // 6. Force unlock: the author holds two locks; the lead breaks one, with a reason.
    author.upload(PART, b"solid".to_vec()).await.ok();
    let taken = author.lock(SPEC).await.ok();
    assert_eq!(taken["lock"]["holder"], "1234");
    assert_eq!(taken["lock"]["base_version"], 3);
    author.lock(PART).await.ok();
    let refused = lead
        .unlock(SPEC)
        .await
        .err(StatusCode::CONFLICT, ErrorCode::FileLocked);
    assert_eq!(refused["lock"]["holder"], "1234");
    assert_eq!(
        author.metadata(SPEC).await.ok()["file"]["locked_by"],
        "1234"
    );
    let body = lead.force_unlock(SPEC, "author on leave").await.ok();
    assert_eq!(body["released"]["holder"], "1234");
    assert_eq!(body["released"]["base_version"], 3);
    assert_eq!(
        author.metadata(SPEC).await.ok()["file"]["locked_by"],
        Value::Null
    );

    // 7. The live locks under the project: only the part is left.
    let body = lead.locks("/projects/5678/").await.ok();
    let locks = body["locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1, "{body}");
    assert_eq!(locks[0]["path"], PART);
    assert_eq!(locks[0]["bucket"], "projects");
    assert_eq!(locks[0]["lock"]["holder"], "1234");
    assert_eq!(locks[0]["lock"]["base_version"], 1);
    assert_eq!(body["next_cursor"], Value::Null);

    // The file's trail, newest first.
    let audit = lead.audit(SPEC).await.ok();
    assert_eq!(
        actions(&audit),
        [
            "force_unlock",
            "lock",
            "approve",
            "commit",
            "checkout",
            "upload",
            "upload"
        ]
    );
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events[0]["actor"], "lead");
    assert_eq!(events[0]["detail"], "author on leave");
    assert_eq!(events[2]["actor"], "lead");
    assert_eq!(events[2]["version"], 3);
    assert_eq!(events[3]["version"], 3);
    assert_eq!(events[6]["version"], 1);
    assert!(events.iter().all(|e| e["outcome"] == "success"));
}

/// A reject needs a comment; a rejected version is never served as `validated`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_needs_a_comment_and_keeps_the_validated_version() {
    let app = App::start().await;
    app.allow("author", "p", &["read", "write"]);
    app.allow("lead", "p", &["read", "validate"]);
    let author = app.user("author");
    let lead = app.user("lead");
    let path = "/projects/p/plan.txt";
    let v1 = id_of(&author.upload(path, b"plan A".to_vec()).await.ok());
    author.submit(&v1).await.ok();
    lead.approve(&v1, None).await.ok();
    let v2 = id_of(&author.upload(path, b"plan B".to_vec()).await.ok());
    let body = author.submit(&v2).await.ok();
    assert_eq!(body["version"]["status"], "pending_validation");
    assert_eq!(body["file"]["status"], "pending_validation");

    for comment in [None, Some("   ")] {
        lead.reject(&v2, comment)
            .await
            .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    }
    let versions = lead.versions(path).await.ok();
    assert_eq!(versions["versions"][0]["status"], "pending_validation");
    assert_eq!(versions["versions"][0]["reviewed_by"], Value::Null);

    let body = lead
        .reject(&v2, Some("plan B misses the budget"))
        .await
        .ok();
    assert_eq!(body["version"]["status"], "rejected");
    assert_eq!(body["version"]["reviewed_by"], "lead");
    assert_eq!(
        body["version"]["review_comment"],
        "plan B misses the budget"
    );
    assert_eq!(body["file"]["version"], 2);
    assert_eq!(body["file"]["validated_version"], 1);
    assert_eq!(lead.download(path, "validated").await.bytes, b"plan A");

    // Decided once: neither approve nor reject again.
    lead.approve(&v2, None)
        .await
        .err(StatusCode::CONFLICT, ErrorCode::InvalidTransition);
    lead.reject(&v2, Some("again"))
        .await
        .err(StatusCode::CONFLICT, ErrorCode::InvalidTransition);
    let versions = lead.versions(path).await.ok();
    assert_eq!(versions["versions"][0]["status"], "rejected");
    assert_eq!(
        versions["versions"][0]["review_comment"],
        "plan B misses the budget"
    );
    assert_eq!(versions["file"]["validated_version"], 1);
    let audit = lead.audit(path).await.ok();
    assert_eq!(
        actions(&audit),
        ["reject", "submit", "upload", "approve", "submit", "upload"]
    );
    assert_eq!(audit["events"][0]["detail"], "plan B misses the budget");
}

/// The author cannot approve their own version (unless `ALLOW_SELF_APPROVAL`), and of two
/// decisions at once exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_and_one_decision() {
    let app = App::start().await;
    for user in ["author", "lead", "deputy"] {
        app.allow(user, "p", &["read", "write", "validate"]);
    }
    let author = app.user("author");
    let path = "/projects/p/budget.txt";
    let v1 = id_of(&author.upload(path, b"100".to_vec()).await.ok());
    author.submit(&v1).await.ok();
    author
        .approve(&v1, Some("looks fine to me"))
        .await
        .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    let versions = author.versions(path).await.ok();
    assert_eq!(versions["versions"][0]["status"], "pending_validation");
    assert_eq!(versions["file"]["validated_version"], Value::Null);

    // The lead approves while the deputy rejects: one wins, the other is told.
    let lead = app.user("lead");
    let deputy = app.user("deputy");
    let (a, r) = tokio::join!(
        lead.approve(&v1, Some("yes")),
        deputy.reject(&v1, Some("no"))
    );
    let (winner, status) = match (a.status, r.status) {
        (StatusCode::OK, StatusCode::CONFLICT) => {
            r.err(StatusCode::CONFLICT, ErrorCode::InvalidTransition);
            ("lead", "validated")
        }
        (StatusCode::CONFLICT, StatusCode::OK) => {
            a.err(StatusCode::CONFLICT, ErrorCode::InvalidTransition);
            ("deputy", "rejected")
        }
        other => panic!(
            "exactly one decision must win: {other:?} {} {}",
            a.body, r.body
        ),
    };
    let versions = author.versions(path).await.ok();
    assert_eq!(versions["versions"][0]["status"], status);
    assert_eq!(versions["versions"][0]["reviewed_by"], winner);
    let decisions = actions(&author.audit(path).await.ok())
        .into_iter()
        .filter(|a| a == "approve" || a == "reject")
        .count();
    assert_eq!(decisions, 1, "one decision recorded");

    // With ALLOW_SELF_APPROVAL=true, the author may approve their own version.
    let lenient = App::start_with(Options::default().var("ALLOW_SELF_APPROVAL", "true")).await;
    lenient.allow("author", "p", &["read", "write", "validate"]);
    let author = lenient.user("author");
    let v1 = id_of(&author.upload(path, b"100".to_vec()).await.ok());
    author.submit(&v1).await.ok();
    let body = author.approve(&v1, None).await.ok();
    assert_eq!(body["version"]["reviewed_by"], "author");
    assert_eq!(body["file"]["validated_version"], 1);
}

/// Delete removes the file, its versions and their objects; the trail stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_everything_but_the_audit_trail() {
    let app = App::start().await;
    let objects = Objects::connect().await;
    let alice = app.user("alice");
    let path = "/users/alice/drafts/letter.txt";
    let keep = "/users/alice/drafts/keep.txt";
    let v1 = id_of(&alice.upload(path, b"dear".to_vec()).await.ok());
    let v2 = id_of(&alice.upload(path, b"dear sir".to_vec()).await.ok());
    alice.upload(keep, b"keep me".to_vec()).await.ok();
    let keys = [Objects::key_of(path, &v1), Objects::key_of(path, &v2)];
    for key in &keys {
        assert!(objects.exists(key).await, "{key:?} stored");
    }

    let body = alice.delete(path).await.ok();
    assert_eq!(body["file"]["path"], path);
    assert_eq!(body["file"]["version"], 2);
    alice
        .metadata(path)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    alice
        .versions(path)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    alice
        .download(path, "1")
        .await
        .json()
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    let listing = alice.list("/users/alice/drafts/").await.ok();
    let names: Vec<_> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    for key in &keys {
        assert!(!objects.exists(key).await, "{key:?} removed");
    }
    assert_eq!(
        actions(&alice.audit(path).await.ok()),
        ["delete", "upload", "upload"]
    );
    alice
        .delete(path)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    // The path is free again, from version 1.
    let body = alice.upload(path, b"new letter".to_vec()).await.ok();
    assert_eq!(body["version"]["number"], 1);
    assert_eq!(alice.download(keep, "latest").await.bytes, b"keep me");

    // In a project: `delete` is a right of its own, and another's lock refuses it.
    app.allow("alice", "p", &["read", "write", "lock"]);
    app.allow("bob", "p", &["read", "write", "lock", "delete"]);
    let shared = "/projects/p/shared.txt";
    alice.upload(shared, b"shared".to_vec()).await.ok();
    alice
        .delete(shared)
        .await
        .err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    alice.lock(shared).await.ok();
    let bob = app.user("bob");
    let refused = bob
        .delete(shared)
        .await
        .err(StatusCode::CONFLICT, ErrorCode::FileLocked);
    assert_eq!(refused["lock"]["holder"], "alice");
    assert_eq!(bob.download(shared, "latest").await.bytes, b"shared");
    alice.unlock(shared).await.ok();
    bob.delete(shared).await.ok();
    bob.metadata(shared)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
}

/// `version=validated` serves the validated version while a newer one waits for review, by
/// proxy and by presigned URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validated_download_while_a_newer_version_waits() {
    let app = App::start().await;
    app.allow("writer", "p", &["read", "write", "lock"]);
    app.allow("reviewer", "p", &["read", "validate"]);
    let writer = app.user("writer");
    let reviewer = app.user("reviewer");
    let path = "/projects/p/manual.txt";
    let work = "/users/writer/manual.txt";
    let v1 = id_of(&writer.upload(path, b"manual v1".to_vec()).await.ok());
    writer.submit(&v1).await.ok();
    reviewer.approve(&v1, None).await.ok();
    writer.copy(path, work).await.ok();
    writer.upload(work, b"manual v2, draft".to_vec()).await.ok();
    let body = writer.commit(work, path, "chapter 2").await.ok();
    assert_eq!(body["version"]["status"], "pending_validation");

    let got = reviewer.download(path, "validated").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.bytes, b"manual v1");
    assert_eq!(got.header("x-file-version").as_deref(), Some("1"));
    assert_eq!(got.header("etag"), Some(etag(b"manual v1")));
    let got = reviewer.download(path, "latest").await;
    assert_eq!(got.bytes, b"manual v2, draft");
    assert_eq!(got.header("x-file-version").as_deref(), Some("2"));
    assert_eq!(reviewer.download(path, "1").await.bytes, b"manual v1");
    assert_eq!(
        reviewer.download(path, "2").await.bytes,
        b"manual v2, draft"
    );
    reviewer
        .download(path, "3")
        .await
        .json()
        .err(StatusCode::NOT_FOUND, ErrorCode::VersionNotFound);

    let presigned = reviewer
        .presign_download(path, json!("validated"))
        .await
        .ok();
    assert_eq!(presigned["method"], "GET");
    assert_eq!(presigned["version"]["number"], 1);
    assert_eq!(presigned["file"]["version"], 2);
    let direct = app
        .client
        .get(presigned["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(direct.bytes().await.unwrap().as_ref(), b"manual v1");
}

/// A lock held by someone else refuses every write with 409 `file_locked` and the holder;
/// the holder refreshes it; an expired lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_conflicts_name_the_holder() {
    let app = App::start().await;
    for user in ["alice", "bob"] {
        app.allow(user, "p", &["read", "write", "lock", "delete"]);
    }
    let alice = app.user("alice");
    let bob = app.user("bob");
    let path = "/projects/p/drawing.dwg";
    alice.upload(path, b"lines".to_vec()).await.ok();
    let taken = alice.lock(path).await.ok();
    let lock = taken["lock"].clone();
    assert_eq!(lock["holder"], "alice");
    assert_eq!(lock["base_version"], 1);

    let before = bob.metadata(path).await.ok();
    let check_lock = |body: Value| {
        assert_eq!(body["lock"]["holder"], "alice", "{body}");
        assert_eq!(body["lock"]["base_version"], 1, "{body}");
        assert_eq!(body["lock"]["expires_at"], lock["expires_at"], "{body}");
    };
    check_lock(
        bob.lock(path)
            .await
            .err(StatusCode::CONFLICT, ErrorCode::FileLocked),
    );
    check_lock(
        bob.upload(path, b"bob's lines".to_vec())
            .await
            .err(StatusCode::CONFLICT, ErrorCode::FileLocked),
    );
    check_lock(
        bob.delete(path)
            .await
            .err(StatusCode::CONFLICT, ErrorCode::FileLocked),
    );
    check_lock(
        bob.copy(path, "/users/bob/drawing.dwg")
            .await
            .err(StatusCode::CONFLICT, ErrorCode::FileLocked),
    );
    check_lock(
        bob.unlock(path)
            .await
            .err(StatusCode::CONFLICT, ErrorCode::FileLocked),
    );
    check_lock(
        bob.set_tags(path, json!({"by": "bob"}))
            .await
            .err(StatusCode::CONFLICT, ErrorCode::FileLocked),
    );
    check_lock(
        bob.presign_upload(path, json!({}))
            .await
            .err(StatusCode::CONFLICT, ErrorCode::FileLocked),
    );
    // Nothing moved: same file, same versions, bob's workspace copy not created.
    let after = bob.metadata(path).await.ok();
    assert_eq!(after, before);
    assert_eq!(numbers(&bob.versions(path).await.ok()), [1]);
    assert_eq!(bob.download(path, "latest").await.bytes, b"lines");
    bob.metadata("/users/bob/drawing.dwg")
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
    assert_eq!(actions(&bob.audit(path).await.ok()), ["lock", "upload"]);

    // The holder refreshes (same holder and base, later or equal expiry), then releases.
    let refreshed = alice.lock(path).await.ok();
    assert_eq!(refreshed["lock"]["holder"], "alice");
    assert!(time(&refreshed["lock"]["expires_at"]) >= time(&lock["expires_at"]));
    let released = alice.unlock(path).await.ok();
    assert_eq!(released["released"]["holder"], "alice");
    assert_eq!(alice.unlock(path).await.ok()["released"], Value::Null);

    // A short lock expires by itself: then it is free for bob.
    let short = alice.lock_for(path, 1).await.ok();
    let held = time(&short["lock"]["expires_at"]) - time(&short["lock"]["acquired_at"]);
    assert_eq!(held.num_seconds(), 1);
    bob.lock(path)
        .await
        .err(StatusCode::CONFLICT, ErrorCode::FileLocked);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let listed = bob.locks("/projects/p/").await.ok();
    assert_eq!(listed["locks"], json!([]), "an expired lock is not live");
    assert_eq!(bob.lock(path).await.ok()["lock"]["holder"], "bob");
    let listed = bob.locks("/projects/p/").await.ok();
    assert_eq!(listed["locks"][0]["lock"]["holder"], "bob");
}

/// The checkout ticket: alice checks out version 1; her lock expires and bob adds version 2;
/// a commit of her workspace is 409 `version_conflict` (bob's version would otherwise be
/// silently superseded), before and after she takes her lock again, and nothing is written. A
/// fresh checkout then lets her commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_base_is_a_version_conflict() {
    let app = App::start_with(Options::default().var("LOCK_TTL_SECONDS", 1)).await;
    for user in ["alice", "bob"] {
        app.allow(user, "p", &["read", "write", "lock"]);
    }
    let alice = app.user("alice");
    let bob = app.user("bob");
    let path = "/projects/p/model.step";
    let work = "/users/alice/model.step";
    alice.upload(path, b"model 1".to_vec()).await.ok();
    let body = alice.copy(path, work).await.ok();
    assert_eq!(body["file"]["path"], work);
    let source = alice.metadata(path).await.ok();
    assert_eq!(source["file"]["lock"]["base_version"], 1);

    // Her lock (LOCK_TTL_SECONDS=1) expires; bob may then write version 2.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    bob.upload(path, b"model 2, bob".to_vec()).await.ok();
    alice.upload(work, b"model 2, alice".to_vec()).await.ok();
    // Her copy's ticket is stale, whatever the lock: refused as a conflict even without it.
    alice
        .commit(work, path, "my changes")
        .await
        .err(StatusCode::CONFLICT, ErrorCode::VersionConflict);
    // Her lock again: her ticket still stands on version 1, so her commit is stale.
    let relocked = alice.lock_for(path, 60).await.ok();
    assert_eq!(relocked["lock"]["base_version"], 1);
    let body = alice
        .commit(work, path, "my changes")
        .await
        .err(StatusCode::CONFLICT, ErrorCode::VersionConflict);
    assert_eq!(body["current_version"], 2);
    let after = alice.versions(path).await.ok();
    assert_eq!(numbers(&after), [2, 1]);
    assert_eq!(after["file"]["lock"]["holder"], "alice", "the lock stays");
    assert_eq!(after["file"]["lock"]["base_version"], 1);
    assert_eq!(alice.download(path, "latest").await.bytes, b"model 2, bob");
    assert_eq!(
        actions(&alice.audit(path).await.ok()),
        ["lock", "upload", "checkout", "upload"]
    );

    // A fresh checkout (onto her workspace copy) takes the ticket on version 2.
    let fresh = alice
        .post(
            "/copy",
            json!({"source_bucket": "projects", "source_path": path,
                   "target_bucket": "users", "target_path": work, "overwrite": true}),
        )
        .await
        .ok();
    assert_eq!(
        fresh["file"]["version"], 3,
        "the workspace copy's third version"
    );
    assert_eq!(
        alice.metadata(path).await.ok()["file"]["lock"]["base_version"],
        2
    );
    alice.upload(work, b"model 3, merged".to_vec()).await.ok();
    let body = alice.commit(work, path, "merged with bob's").await.ok();
    assert_eq!(body["version"]["number"], 3);
    assert_eq!(
        alice.download(path, "latest").await.bytes,
        b"model 3, merged"
    );
}

/// `If-Match: <n>` makes an upload conditional (412 when it fails), `expected_version` too
/// (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_uploads() {
    let app = App::start().await;
    let alice = app.user("alice");
    let path = "/users/alice/ledger.csv";
    let cond = |bytes: &[u8], if_match: &str| Upload {
        if_match: Some(if_match.to_owned()),
        ..Upload::new(path, bytes.to_vec())
    };
    // 0: must not exist yet.
    let body = alice.upload_with(cond(b"a", "0")).await.ok();
    assert_eq!(body["version"]["number"], 1);
    let refused = alice
        .upload_with(cond(b"b", "0"))
        .await
        .err(StatusCode::PRECONDITION_FAILED, ErrorCode::VersionConflict);
    assert_eq!(refused["current_version"], 1);
    assert_eq!(
        alice.upload_with(cond(b"b", "1")).await.ok()["version"]["number"],
        2
    );
    let refused = alice
        .upload_with(cond(b"stale", "\"1\""))
        .await
        .err(StatusCode::PRECONDITION_FAILED, ErrorCode::VersionConflict);
    assert_eq!(refused["current_version"], 2);
    assert_eq!(
        alice.upload_with(cond(b"c", "\"2\"")).await.ok()["version"]["number"],
        3
    );
    // The form field: 409, not 412.
    let refused = alice
        .upload_with(Upload {
            expected_version: Some("2".into()),
            ..Upload::new(path, b"stale".to_vec())
        })
        .await
        .err(StatusCode::CONFLICT, ErrorCode::VersionConflict);
    assert_eq!(refused["current_version"], 3);
    alice
        .upload_with(cond(b"x", "latest"))
        .await
        .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    // None of the refused uploads left a trace.
    let versions = alice.versions(path).await.ok();
    assert_eq!(numbers(&versions), [3, 2, 1]);
    assert_eq!(alice.download(path, "latest").await.bytes, b"c");
    assert_eq!(
        actions(&alice.audit(path).await.ok()),
        ["upload", "upload", "upload"]
    );
    // A path that does not exist: `If-Match: 1` fails, nothing is created.
    let other = "/users/alice/other.csv";
    alice
        .upload_with(Upload {
            if_match: Some("1".into()),
            ..Upload::new(other, b"x".to_vec())
        })
        .await
        .err(StatusCode::PRECONDITION_FAILED, ErrorCode::VersionConflict);
    alice
        .metadata(other)
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::FileNotFound);
}

/// Tags: given at upload, replaced by `PATCH /metadata`, kept by new versions, carried by a
/// copy, audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags() {
    let app = App::start().await;
    let alice = app.member("alice", "acme");
    let path = "/companies/acme/policies/hr.pdf";
    let body = alice
        .upload_with(Upload {
            tags: Some(json!({"dept": "hr", "rev": 1})),
            ..Upload::new(path, b"policy".to_vec())
        })
        .await
        .ok();
    assert_eq!(body["file"]["tags"], json!({"dept": "hr", "rev": 1}));
    let body = alice
        .set_tags(path, json!({"reviewed": true, "owners": ["alice"]}))
        .await
        .ok();
    assert_eq!(
        body["file"]["tags"],
        json!({"reviewed": true, "owners": ["alice"]}),
        "replaced, not merged"
    );
    assert_eq!(
        alice.metadata(path).await.ok()["file"]["tags"],
        json!({"reviewed": true, "owners": ["alice"]})
    );
    // A new version without tags keeps them.
    let body = alice.upload(path, b"policy v2".to_vec()).await.ok();
    assert_eq!(
        body["file"]["tags"],
        json!({"reviewed": true, "owners": ["alice"]})
    );
    // A copy to a new path carries them.
    let copy = "/companies/acme/archive/hr.pdf";
    let body = alice.copy(path, copy).await.ok();
    assert_eq!(
        body["file"]["tags"],
        json!({"reviewed": true, "owners": ["alice"]})
    );
    // Refused: not an object; too large. Nothing changes.
    let updated = alice.metadata(path).await.ok()["file"]["updated_at"].clone();
    let resp = alice
        .patch(
            "/metadata",
            json!({"bucket": "companies", "path": path, "tags": ["a"]}),
        )
        .await;
    resp.err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    alice
        .set_tags(path, json!({"big": "x".repeat(17 * 1024)}))
        .await
        .err(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest);
    let file = alice.metadata(path).await.ok();
    assert_eq!(
        file["file"]["tags"],
        json!({"reviewed": true, "owners": ["alice"]})
    );
    assert_eq!(file["file"]["updated_at"], updated);
    assert_eq!(
        actions(&alice.audit(path).await.ok()),
        ["upload", "update_tags", "upload"]
    );
}

/// The audit trail of a directory: newest first, paginated, with actor, action, version,
/// outcome and the request id of each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_listing() {
    let app = App::start().await;
    let alice = |id: &str| app.user("alice").request_id(id);
    let a = "/users/alice/box/a.txt";
    let b = "/users/alice/box/deeper/b.txt";
    alice("req-1").upload(a, b"a1".to_vec()).await.ok();
    alice("req-2").upload(b, b"b1".to_vec()).await.ok();
    alice("req-3").upload(a, b"a2".to_vec()).await.ok();
    alice("req-4").lock(b).await.ok();
    alice("req-5").set_tags(a, json!({"k": "v"})).await.ok();
    alice("req-6").delete(b).await.ok();
    // Elsewhere: not part of the box's trail.
    alice("req-7")
        .upload("/users/alice/other.txt", b"o".to_vec())
        .await
        .ok();

    let all = app.user("alice").audit("/users/alice/box/").await.ok();
    let events = all["events"].as_array().unwrap();
    let seen: Vec<(&str, &str, &str, Option<u64>)> = events
        .iter()
        .map(|e| {
            (
                e["request_id"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["path"].as_str().unwrap(),
                e["version"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("req-6", "delete", b, Some(1)),
            ("req-5", "update_tags", a, Some(2)),
            ("req-4", "lock", b, Some(1)),
            ("req-3", "upload", a, Some(2)),
            ("req-2", "upload", b, Some(1)),
            ("req-1", "upload", a, Some(1)),
        ]
    );
    for e in events {
        assert_eq!(e["actor"], "alice");
        assert_eq!(e["bucket"], "users");
        assert_eq!(e["outcome"], "success");
        assert!(e["file_id"].is_string(), "{e}");
    }
    let times: Vec<_> = events.iter().map(|e| time(&e["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Two at a time: the pages join up to the whole trail, without repeats.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("bucket", "users".to_owned()),
            ("path", "/users/alice/box/".to_owned()),
            ("limit", "2".to_owned()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = app.user("alice").get("/audit", &query).await.ok();
        let got = page["events"].as_array().unwrap();
        assert!(got.len() <= 2);
        paged.extend(got.iter().map(|e| e["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let whole: Vec<_> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(paged, whole);

    // One file's trail only has that file, and outlives it.
    assert_eq!(
        actions(&app.user("alice").audit(b).await.ok()),
        ["delete", "lock", "upload"]
    );
}
