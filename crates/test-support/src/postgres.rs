//! Per-test PostgreSQL databases, as crates.io's `TestDatabase` had them: one template database
//! migrated once, then `CREATE DATABASE <unique> TEMPLATE <template>` per test, dropped when the
//! [`TestDatabase`] is dropped.
//!
//! The template's name carries a fingerprint of the migrations, so a changed schema gets a new
//! template, and every test process running the same migrations agrees on it. Its creation is
//! guarded by a PostgreSQL advisory lock, built under a temporary name and renamed when complete:
//! concurrent test processes never see a half-migrated template.
//!
//! This module knows nothing of the adapter: the caller passes the migration runner.

use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};

/// The variable naming a PostgreSQL superuser URL that may `CREATE DATABASE`.
pub const URL_VAR: &str = "TEST_DATABASE_URL";

/// Advisory lock key serialising template creation across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x5354_4f52_5447_4554; // "STORTGET"

/// The admin URL from [`URL_VAR`].
///
/// # Panics
/// When the variable is unset: tests that need PostgreSQL must fail, never skip.
pub fn admin_url() -> String {
    crate::env::require(URL_VAR)
}

/// A short hex digest of every file under `dir` (names and contents, in sorted order): the
/// identity of a migration set.
///
/// # Panics
/// When `dir` cannot be read.
pub fn fingerprint_dir(dir: &Path) -> String {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                out.push((rel, bytes));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    let mut hasher = Sha256::new();
    for (name, bytes) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// `base` with its database replaced by `name`.
fn url_for(base: &str, name: &str) -> String {
    let mut url =
        url::Url::parse(base).unwrap_or_else(|e| panic!("{URL_VAR} is not a valid URL: {e}"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL ({URL_VAR}): {e}"))
}

#[derive(QueryableByName)]
struct Present {
    #[diesel(sql_type = Bool)]
    present: bool,
}

async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> bool {
    diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS present")
        .bind::<Text, _>(name)
        .get_result::<Present>(conn)
        .await
        .unwrap_or_else(|e| panic!("cannot list databases: {e}"))
        .present
}

/// Runs a statement that may fail while a just-closed session still holds the database
/// ("is being accessed by other users"): retried for a few seconds.
async fn execute_retrying(conn: &mut AsyncPgConnection, sql: &str) {
    let mut last = String::new();
    for _ in 0..50 {
        match diesel::sql_query(sql).execute(conn).await {
            Ok(_) => return,
            Err(e) if e.to_string().contains("being accessed by other users") => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("`{sql}` failed: {e}"),
        }
    }
    panic!("`{sql}` failed: {last}");
}

/// Creates the template `name` unless it exists, under the advisory lock.
async fn ensure_template<F, Fut, E>(admin: &str, name: &str, migrate: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut conn = connect(admin).await;
    if database_exists(&mut conn, name).await {
        return;
    }
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot take the template lock: {e}"));
    if !database_exists(&mut conn, name).await {
        let building = format!("{name}_wip");
        execute_retrying(
            &mut conn,
            &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
        )
        .await;
        execute_retrying(&mut conn, &format!("CREATE DATABASE \"{building}\"")).await;
        if let Err(e) = migrate(url_for(admin, &building)).await {
            panic!("migrating the template database failed: {e}");
        }
        execute_retrying(
            &mut conn,
            &format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""),
        )
        .await;
    }
    diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot release the template lock: {e}"));
}

/// A database of its own for one test, cloned from the migrated template; dropped (best effort)
/// when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Clones a fresh database from the template of `fingerprint`, creating and migrating the
    /// template with `migrate(url)` first if no test process has.
    ///
    /// # Panics
    /// When [`URL_VAR`] is unset or PostgreSQL refuses: this is test setup.
    pub async fn new<F, Fut, E>(fingerprint: &str, migrate: F) -> Self
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let admin_url = admin_url();
        let template = format!("storage_tpl_{fingerprint}");
        ensure_template(&admin_url, &template, migrate).await;
        let name = format!("storage_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect(&admin_url).await;
        execute_retrying(
            &mut conn,
            &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" STRATEGY = FILE_COPY"),
        )
        .await;
        let url = url_for(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// An empty database (no migration run), for tests of the migrations themselves.
    pub async fn empty() -> Self {
        let admin_url = admin_url();
        let name = format!("storage_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect(&admin_url).await;
        execute_retrying(&mut conn, &format!("CREATE DATABASE \"{name}\"")).await;
        let url = url_for(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the database away from its clients, as an outage would: new connections are
    /// refused (`ALLOW_CONNECTIONS false`) and every open session is terminated. The database
    /// can still be dropped.
    ///
    /// # Panics
    /// When PostgreSQL refuses the statements: this is test setup.
    pub async fn cut_off(&self) {
        let mut conn = connect(&self.admin_url).await;
        diesel::sql_query(format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS false",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot refuse connections to {}: {e}", self.name));
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<Text, _>(&self.name)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot end the sessions of {}: {e}", self.name));
    }

    /// Undoes [`cut_off`](Self::cut_off): the database accepts connections again.
    ///
    /// # Panics
    /// When PostgreSQL refuses the statement.
    pub async fn restore(&self) {
        let mut conn = connect(&self.admin_url).await;
        diesel::sql_query(format!(
            "ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS true",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot allow connections to {}: {e}", self.name));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort, on a thread of its own: Drop cannot await, and may run inside a runtime.
        let admin = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin).await {
                    let _ = diesel::sql_query(sql).execute(&mut conn).await;
                }
            });
        });
        let _ = dropper.join();
    }
}
