//! S3/MinIO blob-store adapter (rust-s3).
