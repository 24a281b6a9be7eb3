//! The S3 blob store of the tests, from the `TEST_S3_*` variables.

use std::sync::Arc;

use secrecy::SecretString;
use storage_s3_minio::{BucketNames, S3BlobStore, S3Config};

use crate::env::require;

/// The configuration of the test Garage (`TEST_S3_ENDPOINT`, `TEST_S3_REGION`,
/// `TEST_S3_ACCESS_KEY`, `TEST_S3_SECRET_KEY`, `TEST_S3_BUCKET_{USERS,COMPANIES,PROJECTS}`).
/// Panics, pointing to `tests/run.sh`, when one is missing.
pub fn s3_config_from_env() -> S3Config {
    let mut config = S3Config::new(
        require("TEST_S3_ENDPOINT"),
        require("TEST_S3_ACCESS_KEY"),
        SecretString::from(require("TEST_S3_SECRET_KEY")),
        require("TEST_S3_REGION"),
        BucketNames {
            users: require("TEST_S3_BUCKET_USERS"),
            companies: require("TEST_S3_BUCKET_COMPANIES"),
            projects: require("TEST_S3_BUCKET_PROJECTS"),
        },
    );
    // The test buckets exist: a missing one is a broken environment, not something to fix.
    config.create_missing_buckets = false;
    config
}

/// The S3 store over the test Garage, connected (its buckets checked).
pub async fn s3_store_from_env() -> Arc<S3BlobStore> {
    match S3BlobStore::connect(s3_config_from_env()).await {
        Ok(store) => Arc::new(store),
        Err(e) => panic!("cannot connect to the test S3 store (see tests/run.sh): {e}"),
    }
}
