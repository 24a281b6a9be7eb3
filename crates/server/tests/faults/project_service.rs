//! The project service answering after 5 s: project requests are denied
//! (`project_service_unavailable`) within 2.1 s, while requests on the users bucket, which do
//! not ask it, are served as usual meanwhile.

use std::time::Duration;

use reqwest::StatusCode;
use storage_test_support::project_standin::{ANY_USER, Mode, ProjectStandin};

use super::{InProcess, shared_database, shared_s3_vars};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_project_service_denies_project_requests_within_its_timeout_only() {
    let db = shared_database().await;
    let standin = ProjectStandin::start().await;
    for action in ["read", "write"] {
        standin.allow(ANY_USER, "p-slow", action);
    }
    let app = InProcess::start(db.url(), &standin.url(), &shared_s3_vars()).await;
    let api = app.api.clone();
    let project_file = "/projects/p-slow/spec.txt";
    let user_file = "/users/dave/notes.txt";
    let up = api
        .upload("dave", "projects", project_file, b"spec".to_vec())
        .await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);
    let up = api
        .upload("dave", "users", user_file, b"notes".to_vec())
        .await;
    assert_eq!(up.status, StatusCode::OK, "{:?}", up.body);

    standin.set_mode(Mode::Slow(Duration::from_secs(5)));
    // Eight project requests at once, each stuck on the project service...
    let project_requests: Vec<_> = (0..8)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    api.metadata("dave", "projects", project_file).await
                } else {
                    api.upload("dave", "projects", project_file, b"v2".to_vec())
                        .await
                }
            })
        })
        .collect();
    // ...while the users bucket is served normally.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..10 {
        let answer = api.metadata("dave", "users", user_file).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert!(
            answer.took < Duration::from_millis(500),
            "a users request took {:?}",
            answer.took
        );
    }
    let answer = api
        .upload("dave", "users", user_file, b"notes v2".to_vec())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["file"]["version"], 2);

    for request in project_requests {
        let answer = request.await.expect("task");
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
        assert_eq!(answer.code(), "project_service_unavailable");
        assert!(
            answer.took < Duration::from_millis(2100),
            "a project request took {:?}",
            answer.took
        );
        assert!(
            answer.took >= Duration::from_millis(1900),
            "denied before the 2 s timeout ({:?}): not the slowness that was tested",
            answer.took
        );
    }
    // Nothing was written by the denied uploads.
    standin.set_mode(Mode::Normal);
    let meta = api.metadata("dave", "projects", project_file).await;
    assert_eq!(meta.status, StatusCode::OK, "{:?}", meta.body);
    assert_eq!(meta.body["file"]["version"], 1, "{:?}", meta.body);
    drop(app);
}
