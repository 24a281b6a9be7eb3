//! The success shapes of spec §4 and the parameters of the file endpoints.

use std::collections::BTreeSet;

use actix_web::{http::header, test};
use storage_domain::{
    model::{FileStatus, VersionStatus},
    ports::ListEntry,
};

use crate::support::*;

#[actix_web::test]
async fn metadata_is_the_file_with_the_contract_fields_and_no_object_key() {
    let mut setup = Setup::new();
    let p = path("/users/alice/docs/report 100%.txt");
    let mut f = file(&p, 3);
    f.validated_version = Some(n(2));
    f.lock = Some(lock_by("bob", 3));
    f.tags.insert("team".into(), "blue".into());
    // The query string is decoded once: `%2520` is the three characters `%20` in the name.
    let expected_path = "/users/alice/docs/report 100%.txt";
    setup
        .meta
        .expect_find_file()
        .withf(move |p| p.as_str() == expected_path)
        .returning(move |_| Ok(Some(f.clone())));
    let app = setup.app().await;
    let req = test::TestRequest::get()
        .uri("/metadata?bucket=users&path=%2Fusers%2Falice%2Fdocs%2Freport%20100%25.txt")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body = json_of(res).await;
    assert_eq!(body["status"], "ok");
    let file = &body["file"];
    let keys: BTreeSet<&str> = file
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let spec: BTreeSet<&str> = [
        "id",
        "bucket",
        "path",
        "name",
        "owner_id",
        "version",
        "validated_version",
        "status",
        "locked_by",
        "lock",
        "tags",
        "checkout",
        "size",
        "content_type",
        "sha256",
        "created_at",
        "updated_at",
    ]
    .into();
    assert_eq!(keys, spec);
    assert_eq!(
        file["checkout"],
        serde_json::Value::Null,
        "not a checkout copy"
    );
    assert_eq!(file["bucket"], "users");
    assert_eq!(file["path"], expected_path);
    assert_eq!(file["name"], "report 100%.txt");
    assert_eq!(file["owner_id"], "alice");
    assert_eq!(file["version"], 3);
    assert_eq!(file["validated_version"], 2);
    assert_eq!(file["status"], "draft");
    assert_eq!(file["locked_by"], "bob");
    assert_eq!(file["lock"]["holder"], "bob");
    assert_eq!(file["lock"]["base_version"], 3);
    assert_eq!(file["tags"]["team"], "blue");
    assert_eq!(file["size"], 10);
    assert!(!body.to_string().contains("object_key"));
}

#[actix_web::test]
async fn a_percent_sequence_in_a_path_is_not_decoded_twice() {
    let mut setup = Setup::new();
    let expected_path = "/users/alice/a%20b";
    let p = path(expected_path);
    let f = file(&p, 1);
    setup
        .meta
        .expect_find_file()
        .withf(move |p| p.as_str() == expected_path)
        .times(1)
        .returning(move |_| Ok(Some(f.clone())));
    let app = setup.app().await;
    let req = test::TestRequest::get()
        .uri("/metadata?bucket=users&path=/users/alice/a%2520b")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn list_answers_files_and_directories_with_a_cursor() {
    let mut setup = Setup::new();
    let a = file(&path("/users/alice/docs/a.txt"), 1);
    setup
        .meta
        .expect_list_children()
        .withf(|dir, after, limit| {
            dir.as_str() == "/users/alice/docs/" && after.is_none() && *limit == 4
        })
        .returning(move |_, _, _| {
            Ok(vec![
                ListEntry::File(Box::new(a.clone())),
                ListEntry::Directory { name: "b".into() },
                ListEntry::Directory { name: "c".into() },
            ])
        });
    let app = setup.app().await;
    let req = test::TestRequest::get()
        .uri("/list?bucket=users&path=/users/alice/docs/&limit=2")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["path"], "/users/alice/docs/");
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["type"], "file");
    assert_eq!(entries[0]["path"], "/users/alice/docs/a.txt");
    assert_eq!(entries[0]["file"]["version"], 1);
    assert_eq!(entries[1]["type"], "directory");
    assert_eq!(entries[1]["path"], "/users/alice/docs/b/");
    assert!(entries[1].get("file").is_none());
    assert!(body["next_cursor"].is_string());
}

#[actix_web::test]
async fn versions_are_the_history_with_the_contract_fields() {
    let mut setup = Setup::new();
    let p = path("/users/alice/a.txt");
    let f = file(&p, 2);
    let f2 = f.clone();
    setup
        .meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f2.clone())));
    let mut v2 = version_of(&f, 2, VersionStatus::Validated);
    v2.reviewed_by = Some(user("bob"));
    v2.reviewed_at = Some(now());
    v2.review_comment = Some("fine".into());
    let v1 = version_of(&f, 1, VersionStatus::Rejected);
    setup
        .meta
        .expect_list_versions()
        .returning(move |_, _, _| Ok(vec![v2.clone(), v1.clone()]));
    let app = setup.app().await;
    let req = test::TestRequest::get()
        .uri("/versions?bucket=users&path=/users/alice/a.txt")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let body = json_of(test::call_service(&app, req).await).await;
    let versions = body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let keys: BTreeSet<&str> = versions[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let spec: BTreeSet<&str> = [
        "id",
        "file_id",
        "number",
        "size",
        "sha256",
        "content_type",
        "author_id",
        "message",
        "status",
        "reviewed_by",
        "reviewed_at",
        "review_comment",
        "created_at",
        // Issue 16: the version a restore copied, null otherwise.
        "restored_from",
        // Issue 16: the pin's label, null when not pinned.
        "pinned",
    ]
    .into();
    assert_eq!(keys, spec);
    assert_eq!(versions[0]["number"], 2);
    assert_eq!(versions[0]["status"], "validated");
    assert_eq!(versions[0]["reviewed_by"], "bob");
    assert_eq!(versions[1]["status"], "rejected");
    assert_eq!(body["file"]["version"], 2);
}

#[actix_web::test]
async fn approve_accepts_an_empty_body_and_reject_needs_a_comment() {
    let mut setup = Setup::new();
    let p = path("/users/alice/a.txt");
    let f = file(&p, 1);
    let mut v = version_of(&f, 1, VersionStatus::PendingValidation);
    v.author = user("bob");
    let version_id = v.id;
    let (ff, vv) = (f.clone(), v.clone());
    setup
        .meta
        .expect_find_version()
        .returning(move |_| Ok(Some((ff.clone(), vv.clone()))));
    setup
        .meta
        .expect_review_version()
        .withf(move |t| t.version_id == version_id && t.to == VersionStatus::Validated)
        .times(1)
        .returning(move |_| {
            let mut f = f.clone();
            f.validated_version = Some(n(1));
            f.status = FileStatus::Validated;
            let mut v = v.clone();
            v.status = VersionStatus::Validated;
            v.reviewed_by = Some(user("alice"));
            Ok((f, v))
        });
    let app = setup.app().await;
    let req = test::TestRequest::post()
        .uri(&format!("/versions/{version_id}/approve"))
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["version"]["status"], "validated");
    assert_eq!(body["version"]["reviewed_by"], "alice");
    assert_eq!(body["file"]["validated_version"], 1);

    let req = test::TestRequest::post()
        .uri(&format!("/versions/{version_id}/reject"))
        .insert_header((header::AUTHORIZATION, ALICE))
        .set_json(serde_json::json!({}))
        .to_request();
    error_body(test::call_service(&app, req).await, 400, "invalid_request").await;

    let req = test::TestRequest::post()
        .uri("/versions/not-a-uuid/approve")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    error_body(test::call_service(&app, req).await, 400, "invalid_request").await;
}

#[actix_web::test]
async fn tags_must_be_an_object() {
    let app = Setup::new().app().await;
    let req = test::TestRequest::patch()
        .uri("/metadata")
        .insert_header((header::AUTHORIZATION, ALICE))
        .set_json(serde_json::json!({"bucket": "users", "path": "/users/alice/a", "tags": [1]}))
        .to_request();
    error_body(test::call_service(&app, req).await, 400, "invalid_request").await;
}
