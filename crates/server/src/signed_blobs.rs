//! The local store's presigned URLs, served by the HTTP adapter: `storage-local-fs` verifies,
//! `storage-http-actix` routes. This newtype joins the two (neither crate knows the other).

use std::sync::Arc;

use async_trait::async_trait;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{BlobError, BlobMeta, BlobRead, BlobStore, ByteRange, ByteStream, PutOutcome},
};
use storage_http_actix::{
    SignatureRefused, SignedBlobEndpoint, SignedBlobGrant, SignedBlobRequest,
};
use storage_local_fs::{Grant, LocalBlobStore, SignedRequest};

/// [`LocalBlobStore`] as the HTTP adapter's [`SignedBlobEndpoint`].
#[derive(Debug, Clone)]
pub struct LocalSignedBlobs(pub Arc<LocalBlobStore>);

#[async_trait]
impl SignedBlobEndpoint for LocalSignedBlobs {
    fn verify(&self, request: &SignedBlobRequest<'_>) -> Result<SignedBlobGrant, SignatureRefused> {
        let request = SignedRequest {
            method: request.method,
            bucket: request.bucket,
            key: request.key,
            query: request.query,
            content_type: request.content_type,
            content_length: request.content_length,
        };
        match self.0.verify(&request) {
            Ok(Grant::Put {
                bucket,
                key,
                content_type,
                content_length,
            }) => Ok(SignedBlobGrant::Put {
                bucket,
                key,
                content_type,
                content_length,
            }),
            Ok(Grant::Get {
                bucket,
                key,
                response_content_type,
                response_content_disposition,
            }) => Ok(SignedBlobGrant::Get {
                bucket,
                key,
                response_content_type,
                response_content_disposition,
            }),
            Err(refusal) => Err(SignatureRefused(refusal.to_string())),
        }
    }

    async fn put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        body: ByteStream,
    ) -> Result<PutOutcome, BlobError> {
        self.0.put(bucket, key, content_type, body).await
    }

    async fn get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError> {
        self.0.get(bucket, key, range).await
    }

    async fn head(&self, bucket: BucketKind, key: &ObjectKey) -> Result<BlobMeta, BlobError> {
        self.0.head(bucket, key).await
    }
}
