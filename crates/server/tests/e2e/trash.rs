//! The trash on PostgreSQL + Garage: the shared scenario, with `TRASH_RETENTION_DAYS=0` (the
//! janitor's pass purges what is in the trash) and objects checked in Garage.

use reqwest::Client;

use crate::support::{App, Objects, Options};

#[path = "../scenarios/trash.rs"]
mod scenario;

struct Trash {
    app: App,
    objects: Objects,
}

impl scenario::TrashServer for Trash {
    fn base(&self) -> &str {
        &self.app.base
    }
    fn client(&self) -> &Client {
        &self.app.client
    }
    fn token(&self, user: &str) -> String {
        self.app.token(user)
    }
    async fn object_exists(&self, path: &str, version_id: &str) -> bool {
        self.objects
            .exists(&Objects::key_of(path, version_id))
            .await
    }
    async fn run_janitor(&self) -> u64 {
        self.app.run_janitor().await.trash_purged
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trash_list_restore_and_purge() {
    let app = App::start_with(Options::default().var("TRASH_RETENTION_DAYS", 0)).await;
    for user in ["alice", "bob"] {
        app.allow(user, "p16t", &["read", "write", "delete", "lock"]);
    }
    let server = Trash {
        app,
        objects: Objects::connect().await,
    };
    scenario::trash_scenario(&server).await;
}
