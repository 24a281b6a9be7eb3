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

/// A raw rust-s3 bucket for `kind`, to look at what the adapter left in the store.
fn raw_bucket(config: &S3Config, kind: storage_domain::model::BucketKind) -> Box<s3::Bucket> {
    use secrecy::ExposeSecret;
    let endpoint = config
        .endpoint_url()
        .unwrap_or_else(|e| panic!("bad S3 endpoint: {e}"));
    let credentials = s3::creds::Credentials::new(
        Some(&config.access_key),
        Some(config.secret_key.expose_secret()),
        None,
        None,
        None,
    )
    .unwrap_or_else(|e| panic!("bad S3 credentials: {e}"));
    let region = s3::Region::Custom {
        region: config.region.clone(),
        endpoint,
    };
    s3::Bucket::new(config.buckets.get(kind), region, credentials)
        .unwrap_or_else(|e| panic!("cannot build an S3 client: {e}"))
        .with_path_style()
}

/// Every object key under `prefix` in the bucket of `kind` (a ListObjectsV2, all pages).
///
/// # Panics
/// When the store does not answer.
pub async fn object_keys(
    config: &S3Config,
    kind: storage_domain::model::BucketKind,
    prefix: &str,
) -> Vec<String> {
    let bucket = raw_bucket(config, kind);
    let pages = bucket
        .list(prefix.to_owned(), None)
        .await
        .unwrap_or_else(|e| panic!("cannot list the S3 bucket: {e}"));
    pages
        .into_iter()
        .flat_map(|page| page.contents.into_iter().map(|o| o.key))
        .collect()
}

/// The keys of the multipart uploads in progress (neither completed nor aborted) under
/// `prefix` in the bucket of `kind`.
///
/// # Panics
/// When the store does not answer.
pub async fn multipart_uploads(
    config: &S3Config,
    kind: storage_domain::model::BucketKind,
    prefix: &str,
) -> Vec<String> {
    let bucket = raw_bucket(config, kind);
    let pages = bucket
        .list_multiparts_uploads(Some(prefix), None)
        .await
        .unwrap_or_else(|e| panic!("cannot list the multipart uploads: {e}"));
    pages
        .into_iter()
        .flat_map(|page| page.uploads.into_iter().map(|u| u.key))
        .collect()
}

/// The test Garage's S3 address (`TEST_S3_ENDPOINT` as `host:port`), e.g. for a proxy in front
/// of it.
///
/// # Panics
/// When `TEST_S3_ENDPOINT` is missing or not `http://<ip>:<port>`.
pub fn garage_addr() -> std::net::SocketAddr {
    let endpoint = require("TEST_S3_ENDPOINT");
    let hostport = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    hostport
        .parse()
        .unwrap_or_else(|e| panic!("TEST_S3_ENDPOINT {endpoint} is not http://<ip>:<port>: {e}"))
}

/// Lets web pages of `origins` use presigned URLs on the bucket of `kind` (a PutBucketCors, as
/// `deploy/minio-init.sh` does on MinIO): PUT and GET with any request header, credentials
/// aside, the `ETag` readable. Replaces the bucket's rules.
///
/// # Panics
/// When the store refuses or does not answer.
pub async fn allow_browser_origins(
    config: &S3Config,
    kind: storage_domain::model::BucketKind,
    origins: &[String],
) {
    let rule = s3::serde_types::CorsRule::new(
        Some(vec!["*".to_owned()]),
        vec!["PUT".to_owned(), "GET".to_owned(), "HEAD".to_owned()],
        origins.to_vec(),
        Some(vec!["ETag".to_owned()]),
        Some("browser-front-end".to_owned()),
        Some(600),
    );
    let cors = s3::serde_types::CorsConfiguration::new(vec![rule]);
    let bucket = raw_bucket(config, kind);
    let answer = bucket
        .put_bucket_cors("", &cors)
        .await
        .unwrap_or_else(|e| panic!("PutBucketCors refused: {e}"));
    assert!(
        (200..300).contains(&answer.status_code()),
        "PutBucketCors answered {}: {}",
        answer.status_code(),
        String::from_utf8_lossy(answer.as_slice())
    );
}
