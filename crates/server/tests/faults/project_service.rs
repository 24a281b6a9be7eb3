//! The project service answering after 5 s: project requests are denied
//! (`project_service_unavailable`) by the 2 s budget (not before it, and within it plus the
//! margin of `storage_test_support::timing`), while requests on the users bucket, which do not
//! ask it, are all served before the first project request is denied.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use storage_test_support::{
    project_standin::{ANY_USER, Mode, ProjectStandin},
    timing,
};

use super::{InProcess, shared_database, shared_s3_vars};

/// The budget of a call to the project service: `PROJECT_SERVICE_TIMEOUT_MS`'s default, the
/// contract's 2 s.
const BUDGET: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_project_service_denies_project_requests_within_its_timeout_only() {
    let db = shared_database().await;
    let standin = ProjectStandin::start().await;
    for action in ["read", "write"] {
        standin.allow(ANY_USER, "p-slow", action);
    }
    // Dave's uploads stuck on the project service hold their transfer slots (a slot is taken
    // before anything else): a cap above them, so that his users-bucket upload is served.
    let mut vars = shared_s3_vars();
    vars.push(("MAX_CONCURRENT_UPLOADS_PER_USER".into(), "8".into()));
    let app = InProcess::start(db.url(), &standin.url(), &vars).await;
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
    let launched = Instant::now();
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
    // ...while the users bucket is served normally: every one of these requests is answered
    // before the first project request is (which cannot be before the 2 s budget).
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..10 {
        let answer = api.metadata("dave", "users", user_file).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let answer = api
        .upload("dave", "users", user_file, b"notes v2".to_vec())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["file"]["version"], 2);
    let served = launched.elapsed();
    assert!(
        project_requests.iter().all(|r| !r.is_finished()),
        "the users requests took {served:?}: some project request was answered before they all \
         were, so they were not served beside the stuck ones"
    );

    for request in project_requests {
        let answer = request.await.expect("task");
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
        assert_eq!(answer.code(), "project_service_unavailable");
        timing::assert_timed_out("a project request", answer.took, BUDGET);
    }
    // Nothing was written by the denied uploads.
    standin.set_mode(Mode::Normal);
    let meta = api.metadata("dave", "projects", project_file).await;
    assert_eq!(meta.status, StatusCode::OK, "{:?}", meta.body);
    assert_eq!(meta.body["file"]["version"], 1, "{:?}", meta.body);
    drop(app);
}
