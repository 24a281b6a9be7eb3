//! Headless Chromium on pages of two other origins, one allowed by `CORS_ALLOWED_ORIGINS`, one
//! not, against the service on Garage (bucket CORS set with PutBucketCors) and on the local
//! store (presigned URLs to its own `/blob` routes).

use std::{collections::HashMap, path::Path, process::Command, time::Duration};

use storage_domain::model::BucketKind;
use storage_server::{
    app::Application,
    config::{Config, Vars},
};
use storage_test_support::{
    env::require,
    project_standin::ProjectStandin,
    s3::{allow_browser_origins, s3_config_from_env},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

use crate::{
    repo_root, run,
    support::{App, Options, fresh_database, vars},
};

const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>front-end</title>\
</head><body><h1>A front-end on another origin</h1></body></html>";

/// Serves `PAGE` for every request on `listener` (a static front-end's origin).
fn serve_page(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    })
}

/// The service on the embedded local store (its presigned URLs are its own `/blob` routes),
/// with PostgreSQL, and the given extra variables.
async fn local_store_app(data_dir: &Path, extra: &[(&str, String)]) -> (String, JoinHandle<()>) {
    let db = fresh_database().await;
    let standin = ProjectStandin::start().await;
    let mut map: HashMap<String, String> = vars(&db, &standin, "unused")
        .into_iter()
        .filter(|(k, _)| !k.starts_with("MINIO_"))
        .collect();
    map.insert("DATA_DIR".into(), data_dir.display().to_string());
    map.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let config = Config::from_vars(&Vars::from_map(map)).expect("config");
    let app = Application::build(config, std::future::pending::<()>())
        .await
        .expect("the local-store application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(async move {
        let _keep = (db, standin);
        let _ = app.run_until_stopped().await;
    });
    (base, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_on_an_allowed_origin_works_and_one_on_another_origin_changes_nothing() {
    let allowed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let foreign = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let allowed_origin = format!("http://{}", allowed.local_addr().expect("addr"));
    let foreign_origin = format!("http://{}", foreign.local_addr().expect("addr"));
    let pages = [serve_page(allowed), serve_page(foreign)];

    let cors = ("CORS_ALLOWED_ORIGINS", allowed_origin.clone());
    let s3 = App::start_with(Options::default().var(cors.0, &cors.1)).await;
    // The front-end PUTs to Garage directly: its bucket lets the allowed origin do so.
    allow_browser_origins(
        &s3_config_from_env(),
        BucketKind::Users,
        std::slice::from_ref(&allowed_origin),
    )
    .await;
    let data = tempfile::tempdir().expect("temp dir");
    let (local, local_server) = local_store_app(data.path(), &[(cors.0, cors.1.clone())]).await;

    let work = tempfile::tempdir().expect("temp dir");
    // The script imports playwright-core from the cached install next to it.
    std::fs::copy(
        repo_root().join("tests/consumers/browser.mjs"),
        work.path().join("browser.mjs"),
    )
    .expect("copy the script");
    std::os::unix::fs::symlink(
        require("TEST_CONSUMER_NODE_MODULES"),
        work.path().join("node_modules"),
    )
    .expect("link node_modules");

    let mut node = Command::new("node");
    node.arg(work.path().join("browser.mjs"))
        .current_dir(work.path())
        .env("CHROMIUM", require("TEST_CONSUMER_CHROMIUM"))
        .env("ALLOWED_PAGE", format!("{allowed_origin}/app.html"))
        .env("FOREIGN_PAGE", format!("{foreign_origin}/app.html"))
        .env("API_S3", &s3.base)
        .env("API_LOCAL", &local)
        .env("TOKEN", s3.token("alice"))
        .env("HOME", work.path());
    let ran = run(node, work.path(), "browser", Duration::from_secs(90)).await;
    local_server.abort();
    for page in pages {
        page.abort();
    }
    ran.assert_success("the browser front-end");
    assert!(ran.stdout.contains("24 passed, 0 failed"), "{}", ran.stdout);
    eprintln!("browser: {:.1}s\n{}", ran.elapsed.as_secs_f64(), ran.stdout);
}
