//! The error body of spec §3, for every code and every way a request can be wrong.

use actix_web::{http::header, test};
use storage_domain::{ErrorCode, ports::RepoError};

use crate::support::*;

#[actix_web::test]
async fn every_code_answers_its_status_in_the_contract_shape() {
    let app = Setup::new().app().await;
    let expected: [(ErrorCode, u16); 18] = [
        (ErrorCode::MissingJwtToken, 401),
        (ErrorCode::Unauthorized, 401),
        (ErrorCode::AccessDenied, 403),
        (ErrorCode::ProjectServiceUnavailable, 403),
        (ErrorCode::InvalidPath, 400),
        (ErrorCode::InvalidRequest, 400),
        (ErrorCode::BucketNotFound, 404),
        (ErrorCode::FileNotFound, 404),
        (ErrorCode::VersionNotFound, 404),
        (ErrorCode::UploadNotFound, 404),
        (ErrorCode::FileLocked, 409),
        (ErrorCode::VersionConflict, 409),
        (ErrorCode::InvalidTransition, 409),
        (ErrorCode::PayloadTooLarge, 413),
        (ErrorCode::TooManyRequests, 429),
        (ErrorCode::MinioUnreachable, 503),
        (ErrorCode::DatabaseUnavailable, 503),
        (ErrorCode::InternalError, 500),
    ];
    assert_eq!(expected.map(|(c, _)| c), ErrorCode::ALL);
    for (code, status) in expected {
        let req = test::TestRequest::get()
            .uri("/metadata?bucket=users&path=/users/alice/a.txt")
            .insert_header((header::AUTHORIZATION, format!("Bearer fail:{code}")))
            .to_request();
        let res = test::call_service(&app, req).await;
        let retry_after = res
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            retry_after.as_deref(),
            (code == ErrorCode::TooManyRequests).then_some("4"),
            "{code}"
        );
        let body = error_body(res, status, code.as_str()).await;
        let text = body.to_string();
        assert!(!text.contains("secret"), "{code} leaks its cause: {text}");
        match code {
            ErrorCode::FileLocked => {
                assert_eq!(body["lock"]["holder"], "bob");
                assert_eq!(body["lock"]["base_version"], 2);
                assert!(body["lock"]["expires_at"].is_string());
            }
            ErrorCode::VersionConflict => assert_eq!(body["current_version"], 4),
            _ => assert!(body.get("lock").is_none(), "{text}"),
        }
    }
}

#[actix_web::test]
async fn no_token_is_missing_jwt_token_and_a_bad_one_unauthorized() {
    let app = Setup::new().app().await;
    let req = test::TestRequest::get()
        .uri("/metadata?bucket=users&path=/users/alice/a.txt")
        .to_request();
    error_body(
        test::call_service(&app, req).await,
        401,
        "missing_jwt_token",
    )
    .await;

    let req = test::TestRequest::get()
        .uri("/metadata?bucket=users&path=/users/alice/a.txt")
        .insert_header((header::AUTHORIZATION, "Basic YWxpY2U6eA=="))
        .to_request();
    error_body(test::call_service(&app, req).await, 401, "unauthorized").await;

    // Authentication comes before the body is looked at.
    let req = test::TestRequest::post()
        .uri("/lock")
        .set_payload("{not json")
        .to_request();
    error_body(
        test::call_service(&app, req).await,
        401,
        "missing_jwt_token",
    )
    .await;
}

#[actix_web::test]
async fn request_ids_are_echoed_or_generated() {
    let app = Setup::new().app().await;
    let req = test::TestRequest::get()
        .uri("/metadata?bucket=users&path=/users/alice/a.txt")
        .insert_header(("x-request-id", "client-id-42"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.headers().get("x-request-id").unwrap(), "client-id-42");
    let body = error_body(res, 401, "missing_jwt_token").await;
    assert_eq!(body["request_id"], "client-id-42");

    for insane in ["has space".to_owned(), "x".repeat(129), String::new()] {
        let req = test::TestRequest::get()
            .uri("/version")
            .insert_header(("x-request-id", insane.as_str()))
            .to_request();
        let res = test::call_service(&app, req).await;
        let id = res.headers().get("x-request-id").unwrap().to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{insane:?} gave {id}");
    }

    let req = test::TestRequest::get().uri("/version").to_request();
    let a = test::call_service(&app, req).await;
    let req = test::TestRequest::get().uri("/version").to_request();
    let b = test::call_service(&app, req).await;
    assert_ne!(
        a.headers().get("x-request-id").unwrap(),
        b.headers().get("x-request-id").unwrap()
    );
}

#[actix_web::test]
async fn the_request_id_reaches_the_use_case() {
    let mut setup = Setup::new();
    let p = path("/users/alice/a.txt");
    let f = file(&p, 1);
    setup
        .meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    setup
        .meta
        .expect_delete_file()
        .withf(|cmd| cmd.audit.request_id == "trace-me-7")
        .times(1)
        .returning(|_| Ok(vec![]));
    let app = setup.app().await;
    let req = test::TestRequest::delete()
        .uri("/delete?bucket=users&path=/users/alice/a.txt")
        .insert_header((header::AUTHORIZATION, ALICE))
        .insert_header(("x-request-id", "trace-me-7"))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let body = json_of(res).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["file"]["path"], "/users/alice/a.txt");
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_contract_shape() {
    let app = Setup::new().app().await;
    let req = test::TestRequest::get().uri("/nope").to_request();
    error_body(test::call_service(&app, req).await, 404, "invalid_request").await;

    let req = test::TestRequest::post().uri("/metadata").to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.headers().get(header::ALLOW).unwrap(), "GET, PATCH");
    error_body(res, 405, "invalid_request").await;

    let req = test::TestRequest::get().uri("/delete").to_request();
    error_body(test::call_service(&app, req).await, 405, "invalid_request").await;
}

#[actix_web::test]
async fn bad_bodies_and_queries_are_invalid_request() {
    let app = Setup::new().app().await;
    let cases: [(&str, Option<&str>, &str); 5] = [
        (
            "{\"bucket\":\"users\",",
            Some("application/json"),
            "malformed",
        ),
        (
            "{\"bucket\":\"users\",\"path\":\"/users/alice/a\",\"ttl_seconds\":\"x\"}",
            Some("application/json"),
            "wrong type",
        ),
        (
            "{\"bucket\":\"users\"}",
            Some("application/json"),
            "missing field",
        ),
        ("", None, "empty body, required fields"),
        (
            "{\"bucket\":\"users\",\"path\":\"/users/alice/a\"}",
            Some("text/plain"),
            "not JSON",
        ),
    ];
    for (payload, content_type, what) in cases {
        let mut req = test::TestRequest::post()
            .uri("/lock")
            .insert_header((header::AUTHORIZATION, ALICE))
            .set_payload(payload);
        if let Some(ct) = content_type {
            req = req.insert_header((header::CONTENT_TYPE, ct));
        }
        let res = test::call_service(&app, req.to_request()).await;
        let body = error_body(res, 400, "invalid_request").await;
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{what}");
    }

    for uri in [
        "/metadata?bucket=users",
        "/list?bucket=users&path=/users/alice/&limit=many",
        "/list?bucket=users&path=/users/alice/&limit=0",
        "/list?bucket=users&path=/users/alice/&cursor=%%%",
    ] {
        let req = test::TestRequest::get()
            .uri(uri)
            .insert_header((header::AUTHORIZATION, ALICE))
            .to_request();
        error_body(test::call_service(&app, req).await, 400, "invalid_request").await;
    }
}

#[actix_web::test]
async fn a_json_body_over_the_limit_is_payload_too_large() {
    let mut setup = Setup::new();
    setup.config.json_limit_bytes = 100;
    let app = setup.app().await;
    let big = format!(
        "{{\"bucket\":\"users\",\"path\":\"/users/alice/a\",\"reason\":\"{}\"}}",
        "x".repeat(200)
    );
    let req = test::TestRequest::post()
        .uri("/unlock")
        .insert_header((header::AUTHORIZATION, ALICE))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(big)
        .to_request();
    let body = error_body(
        test::call_service(&app, req).await,
        413,
        "payload_too_large",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("100"));
}

#[actix_web::test]
async fn buckets_and_paths_are_checked_before_any_lookup() {
    // No expectation on any port: a lookup would panic.
    let app = Setup::new().app().await;
    let cases = [
        (
            "/metadata?bucket=photos&path=/photos/alice/a",
            404,
            "bucket_not_found",
        ),
        (
            "/metadata?bucket=users&path=/projects/alice/a",
            400,
            "invalid_path",
        ),
        (
            "/metadata?bucket=users&path=/users/alice/../bob/a",
            400,
            "invalid_path",
        ),
        (
            "/metadata?bucket=users&path=/users/alice/a%00b",
            400,
            "invalid_path",
        ),
        (
            "/metadata?bucket=users&path=/users/alice/",
            400,
            "invalid_path",
        ),
        (
            "/list?bucket=users&path=/users/alice/a.txt",
            400,
            "invalid_path",
        ),
        (
            "/metadata?bucket=users&path=/users/bob/a.txt",
            403,
            "access_denied",
        ),
    ];
    for (uri, status, code) in cases {
        let req = test::TestRequest::get()
            .uri(uri)
            .insert_header((header::AUTHORIZATION, ALICE))
            .to_request();
        error_body(test::call_service(&app, req).await, status, code).await;
    }
}

#[actix_web::test]
async fn store_faults_answer_a_generic_body() {
    let mut setup = Setup::new();
    setup.meta.expect_find_file().returning(|_| {
        Err(RepoError::Unavailable(
            "pool timeout, password=hunter2".into(),
        ))
    });
    let app = setup.app().await;
    let req = test::TestRequest::get()
        .uri("/metadata?bucket=users&path=/users/alice/a.txt")
        .insert_header((header::AUTHORIZATION, ALICE))
        .to_request();
    let body = error_body(
        test::call_service(&app, req).await,
        503,
        "database_unavailable",
    )
    .await;
    assert!(!body.to_string().contains("hunter2"), "{body}");
    assert_eq!(body["detail"], "the database is unavailable");
}

#[actix_web::test]
async fn a_lock_held_by_someone_else_is_file_locked_with_the_lock() {
    let mut setup = Setup::new();
    let p = path("/users/alice/a.txt");
    let f = file(&p, 3);
    setup
        .meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    setup
        .meta
        .expect_acquire_lock()
        .returning(|_| Err(RepoError::FileLocked(lock_by("carol", 3))));
    let app = setup.app().await;
    let req = test::TestRequest::post()
        .uri("/lock")
        .insert_header((header::AUTHORIZATION, ALICE))
        .set_json(serde_json::json!({"bucket": "users", "path": "/users/alice/a.txt"}))
        .to_request();
    let body = error_body(test::call_service(&app, req).await, 409, "file_locked").await;
    assert_eq!(body["lock"]["holder"], "carol");
    assert_eq!(body["lock"]["base_version"], 3);
}
