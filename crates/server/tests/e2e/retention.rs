//! Pinned versions and retention on PostgreSQL + Garage: the shared scenario.

use reqwest::Client;
use storage_domain::model::{BucketKind, ObjectKey};
use storage_domain::ports::BlobError;
use storage_domain::service::JanitorReport;

use crate::support::{App, Options};

#[path = "../scenarios/retention.rs"]
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
    async fn janitor(&self) -> JanitorReport {
        self.run_janitor().await
    }
    async fn holds(&self, bucket: BucketKind, key: &ObjectKey) -> bool {
        let base_url = self.config.public_base_url(self.config.bind_addr.port());
        let adapters = storage_server::app::Adapters::connect(&self.config, &base_url)
            .await
            .expect("adapters");
        match adapters.blobs.head(bucket, key).await {
            Ok(_) => true,
            Err(BlobError::NotFound) => false,
            Err(e) => panic!("head {key:?}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_documented_set() {
    // The service's own janitor (first pass at start) must not prune before the scenario's.
    let app = App::start_with(
        Options::default()
            .var("VERSION_KEEP_LAST", 3)
            .var("JANITOR_INTERVAL_SECONDS", 86_400),
    )
    .await;
    for user in ["alice", "bob"] {
        app.allow(user, "p16", &["read", "write", "lock", "validate"]);
    }
    scenario::retention_scenario(&app).await;
}
