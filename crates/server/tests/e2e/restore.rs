//! `POST /versions/{version_id}/restore` on PostgreSQL + Garage: the shared scenario.

use reqwest::Client;

use crate::support::App;

#[path = "../scenarios/restore.rs"]
mod scenario;

impl scenario::Server for App {
    fn base(&self) -> &str {
        &self.base
    }
    fn client(&self) -> &Client {
        &self.client
    }
    fn token(&self, user: &str) -> String {
        App::token(self, user)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_makes_an_old_version_the_next_one() {
    let app = App::start().await;
    for user in ["alice", "bob"] {
        app.allow(user, "p16", &["read", "write", "lock", "validate"]);
    }
    scenario::restore_scenario(&app).await;
}
