//! Users A and B, companies X and Y: nobody sees or touches another's space. Every attempt is
//! 403 `access_denied` (also on paths that do not exist: existence is not disclosed), but for
//! the routes that name a version by its id, which answer 404 `version_not_found` as for an
//! unknown id; the owner's view is the same afterwards, and the attempts are audited.

use reqwest::StatusCode;
use serde_json::{Value, json};
use storage_domain::ErrorCode;

use crate::support::{App, As, Upload, changes_only, denials, id_of};

/// Everything the owner sees of one file and its directory.
async fn owner_view(owner: &As<'_>, path: &str, dir: &str) -> Value {
    json!({
        "metadata": owner.metadata(path).await.ok(),
        "versions": owner.versions(path).await.ok(),
        "list": owner.list(dir).await.ok(),
        "audit": changes_only(owner.audit(dir).await.ok()),
        "locks": owner.locks(dir).await.ok(),
        "bytes": String::from_utf8(owner.download(path, "latest").await.bytes).expect("text"),
    })
}

/// Every operation `intruder` could try on `victim`'s file `path` (in directory `dir`, with
/// version `version_id`), from its own space `own` (a file it owns) — each must be 403.
async fn every_attempt_is_denied(
    intruder: &As<'_>,
    path: &str,
    dir: &str,
    version_id: &str,
    own: &str,
) {
    let denied = |resp: crate::support::Resp, what: &str| {
        assert_eq!(
            resp.status,
            StatusCode::FORBIDDEN,
            "{what} on {path}: {}",
            resp.body
        );
        resp.err(StatusCode::FORBIDDEN, ErrorCode::AccessDenied);
    };
    let missing = format!("{dir}does-not-exist.txt");
    denied(intruder.list(dir).await, "list");
    denied(intruder.metadata(path).await, "metadata");
    denied(
        intruder.metadata(&missing).await,
        "metadata of a missing file",
    );
    denied(intruder.versions(path).await, "versions");
    denied(intruder.audit(path).await, "audit of the file");
    denied(intruder.audit(dir).await, "audit of the directory");
    denied(intruder.locks(dir).await, "locks");
    denied(intruder.download(path, "latest").await.json(), "download");
    denied(
        intruder.download(&missing, "latest").await.json(),
        "download of a missing file",
    );
    denied(
        intruder.presign_download(path, json!("latest")).await,
        "presign download",
    );
    denied(intruder.upload(path, b"overwrite".to_vec()).await, "upload");
    denied(
        intruder.upload(&missing, b"plant".to_vec()).await,
        "upload of a new file",
    );
    denied(
        intruder
            .upload_with(Upload {
                if_match: Some("1".into()),
                ..Upload::new(path, b"conditional".to_vec())
            })
            .await,
        "conditional upload",
    );
    denied(
        intruder.presign_upload(&missing, json!({"size": 1})).await,
        "presign upload",
    );
    denied(intruder.lock(path).await, "lock");
    denied(intruder.unlock(path).await, "unlock");
    denied(
        intruder.force_unlock(path, "mine now").await,
        "force unlock",
    );
    denied(
        intruder.set_tags(path, json!({"owned": true})).await,
        "tags",
    );
    denied(intruder.delete(path).await, "delete");
    denied(intruder.delete(&missing).await, "delete of a missing file");
    denied(intruder.copy(path, own).await, "copy out");
    denied(intruder.copy(own, &missing).await, "copy in");
    denied(intruder.commit(own, path, "take over").await, "commit into");
    // A version id reveals nothing: another's version is "not found", as an unknown id is.
    let unknown = uuid::Uuid::now_v7().to_string();
    for id in [version_id, unknown.as_str()] {
        for (what, resp) in [
            ("submit", intruder.submit(id).await),
            ("approve", intruder.approve(id, None).await),
            ("reject", intruder.reject(id, Some("no")).await),
        ] {
            assert_eq!(
                resp.status,
                StatusCode::NOT_FOUND,
                "{what} {id}: {}",
                resp.body
            );
            let body = resp.err(StatusCode::NOT_FOUND, ErrorCode::VersionNotFound);
            assert_eq!(body["detail"], "no such version", "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_companies_cannot_see_each_other() {
    let app = App::start().await;
    // A works for X, B for Y; N belongs to no company.
    let a = app.member("a", "x");
    let b = app.member("b", "y");
    let n = app.user("n");

    let a_file = "/users/a/private/diary.txt";
    let b_file = "/users/b/private/diary.txt";
    let x_file = "/companies/x/plans/roadmap.txt";
    let y_file = "/companies/y/plans/roadmap.txt";
    let a_v = id_of(&a.upload(a_file, b"a's diary".to_vec()).await.ok());
    let b_v = id_of(&b.upload(b_file, b"b's diary".to_vec()).await.ok());
    let x_v = id_of(&a.upload(x_file, b"x's roadmap".to_vec()).await.ok());
    let y_v = id_of(&b.upload(y_file, b"y's roadmap".to_vec()).await.ok());
    // Something to unlock or break: each owner holds a lock.
    a.lock(a_file).await.ok();
    b.lock(y_file).await.ok();
    let a_own = "/users/a/mine.txt";
    let b_own = "/users/b/mine.txt";
    let n_own = "/users/n/mine.txt";
    a.upload(a_own, b"a".to_vec()).await.ok();
    b.upload(b_own, b"b".to_vec()).await.ok();
    n.upload(n_own, b"n".to_vec()).await.ok();

    let views = [
        (&a, a_file, "/users/a/private/"),
        (&b, b_file, "/users/b/private/"),
        (&a, x_file, "/companies/x/plans/"),
        (&b, y_file, "/companies/y/plans/"),
    ];
    let mut before = Vec::new();
    for (owner, path, dir) in views {
        before.push(owner_view(owner, path, dir).await);
    }

    // B and N on A's space and X's; A and N on B's and Y's.
    let attempts = [
        (&b, a_file, "/users/a/private/", &a_v, b_own),
        (&b, x_file, "/companies/x/plans/", &x_v, b_own),
        (&n, a_file, "/users/a/private/", &a_v, n_own),
        (&n, x_file, "/companies/x/plans/", &x_v, n_own),
        (&a, b_file, "/users/b/private/", &b_v, a_own),
        (&a, y_file, "/companies/y/plans/", &y_v, a_own),
        (&n, y_file, "/companies/y/plans/", &y_v, n_own),
    ];
    for (intruder, path, dir, version, own) in attempts {
        every_attempt_is_denied(intruder, path, dir, version, own).await;
    }
    // A user of another company with the victim's user id as company: still not the user.
    let impostor = app.member("b", "a");
    every_attempt_is_denied(&impostor, a_file, "/users/a/private/", &a_v, b_own).await;

    // Another's presigned upload cannot be completed by an intruder.
    let presigned = a
        .presign_upload("/users/a/private/next.txt", json!({"size": 1}))
        .await
        .ok();
    b.complete(presigned["upload_id"].as_str().unwrap())
        .await
        .err(StatusCode::NOT_FOUND, ErrorCode::UploadNotFound);

    // Nothing changed for any owner, and the intruders' own files were not touched either.
    for ((owner, path, dir), was) in views.into_iter().zip(before) {
        assert_eq!(owner_view(owner, path, dir).await, was, "{path}");
    }
    // The owner can see who tried to change their files: each refusal is audited as `denied`.
    let tried = denials(&a.audit("/users/a/private/").await.ok());
    assert!(
        tried
            .iter()
            .any(|e| e["actor"] == "b" && e["action"] == "delete"),
        "{tried:?}"
    );
    // Attempts on a version by its id too, though the intruder was told "not found".
    assert!(
        tried
            .iter()
            .any(|e| e["actor"] == "b" && e["action"] == "approve"),
        "{tried:?}"
    );
    for (who, own, bytes) in [(&a, a_own, "a"), (&b, b_own, "b"), (&n, n_own, "n")] {
        let versions = who.versions(own).await.ok();
        assert_eq!(versions["versions"].as_array().unwrap().len(), 1, "{own}");
        assert_eq!(who.download(own, "latest").await.bytes, bytes.as_bytes());
    }
    // The owners still do what the intruders could not.
    a.unlock(a_file).await.ok();
    a.set_tags(x_file, json!({"owner": "x"})).await.ok();
    b.delete(b_file).await.ok();
}
