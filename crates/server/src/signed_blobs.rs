//! The service's own signed URLs, served by the HTTP adapter: `storage-local-fs`'s
//! [`UrlSigner`] signs and verifies, `storage-http-actix` routes, any [`BlobStore`] holds the
//! bytes. This joins the three (none knows the others). The embedded local store's presigned
//! URLs are all of this kind; on S3, the upload URLs of uploads whose size was not announced
//! (the S3 store cannot bound those itself): PUT only, streamed into the S3 store.

use std::sync::Arc;

use async_trait::async_trait;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{BlobError, BlobMeta, BlobRead, BlobStore, ByteRange, ByteStream, PutOutcome},
};
use storage_http_actix::{
    SignatureRefused, SignedBlobEndpoint, SignedBlobGrant, SignedBlobRequest,
};
use storage_local_fs::{Grant, SignedRequest, UrlSigner};

/// A [`UrlSigner`]'s URLs over a blob store, as the HTTP adapter's [`SignedBlobEndpoint`].
#[derive(Clone)]
pub struct SignedBlobRoutes {
    signer: UrlSigner,
    store: Arc<dyn BlobStore>,
    /// Whether signed GETs are served (the local store's downloads); on S3 only uploads are.
    serves_reads: bool,
}

impl std::fmt::Debug for SignedBlobRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedBlobRoutes")
            .field("signer", &self.signer)
            .field("serves_reads", &self.serves_reads)
            .finish_non_exhaustive()
    }
}

impl SignedBlobRoutes {
    /// Every URL of `signer`, uploads and downloads, over `store` (the embedded local store).
    pub fn uploads_and_downloads(signer: UrlSigner, store: Arc<dyn BlobStore>) -> Self {
        Self {
            signer,
            store,
            serves_reads: true,
        }
    }

    /// Only the upload URLs of `signer`, over `store` (S3, whose downloads have URLs of their
    /// own).
    pub fn uploads(signer: UrlSigner, store: Arc<dyn BlobStore>) -> Self {
        Self {
            signer,
            store,
            serves_reads: false,
        }
    }
}

#[async_trait]
impl SignedBlobEndpoint for SignedBlobRoutes {
    fn verify(&self, request: &SignedBlobRequest<'_>) -> Result<SignedBlobGrant, SignatureRefused> {
        let request = SignedRequest {
            method: request.method,
            bucket: request.bucket,
            key: request.key,
            query: request.query,
            content_type: request.content_type,
            content_length: request.content_length,
        };
        match self.signer.verify(&request, chrono::Utc::now()) {
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
            }) if self.serves_reads => Ok(SignedBlobGrant::Get {
                bucket,
                key,
                response_content_type,
                response_content_disposition,
            }),
            Ok(Grant::Get { .. }) => Err(SignatureRefused(
                "downloads are not served through this service's URLs".into(),
            )),
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
        self.store.put(bucket, key, content_type, body).await
    }

    async fn get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError> {
        self.store.get(bucket, key, range).await
    }

    async fn head(&self, bucket: BucketKind, key: &ObjectKey) -> Result<BlobMeta, BlobError> {
        self.store.head(bucket, key).await
    }
}
