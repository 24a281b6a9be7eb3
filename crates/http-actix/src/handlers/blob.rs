//! `PUT|GET /blob/{bucket}/{key...}`: the signed URLs of a store that has no URLs of its own
//! (see [`crate::signed`]). Any other method, an altered or expired URL: 403 `access_denied`.

use std::{
    fmt, io,
    pin::Pin,
    task::{Context, Poll},
};

use actix_web::{
    HttpRequest, HttpResponse,
    body::SizedStream,
    http::{StatusCode, header},
    web::{self, Bytes},
};
use futures_util::{
    Stream, StreamExt,
    future::{Either, select},
    pin_mut,
};
use storage_domain::{
    StorageError,
    model::{BucketKind, ObjectKey},
    ports::{BlobError, ByteStream, PutOutcome},
};

use crate::{
    error::ApiError,
    idle::IdleBody,
    range::parse_range,
    request_id::RequestId,
    signed::{SignedBlobGrant, SignedBlobRequest, SignedBlobs},
    telemetry::TransferDirection,
};

/// Chunks buffered between the request body and the store.
const CHANNEL_CHUNKS: usize = 4;

/// Why the body of a signed PUT was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyCut {
    /// More bytes than allowed: `limit`.
    TooLarge { limit: u64, signed: bool },
    /// Fewer bytes than the signed length.
    Short { got: u64, signed: u64 },
}

impl fmt::Display for BodyCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyCut::TooLarge { limit, .. } => write!(f, "the body is larger than {limit} bytes"),
            BodyCut::Short { got, signed } => {
                write!(
                    f,
                    "the body has {got} bytes, the URL was signed for {signed}"
                )
            }
        }
    }
}

impl std::error::Error for BodyCut {}

/// Counts the body's bytes: an error as soon as `limit` is crossed, and at the end when a
/// signed length was not reached. The store then keeps nothing.
struct Metered {
    inner: ByteStream,
    seen: u64,
    limit: u64,
    exact: Option<u64>,
    done: bool,
}

impl Stream for Metered {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let polled = self.inner.as_mut().poll_next(cx);
        match polled {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.limit {
                    self.done = true;
                    let cut = BodyCut::TooLarge {
                        limit: self.limit,
                        signed: self.exact.is_some(),
                    };
                    return Poll::Ready(Some(Err(io::Error::other(cut))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                self.done = true;
                match self.exact {
                    Some(signed) if self.seen != signed => {
                        let cut = BodyCut::Short {
                            got: self.seen,
                            signed,
                        };
                        Poll::Ready(Some(Err(io::Error::other(cut))))
                    }
                    _ => Poll::Ready(None),
                }
            }
            other => other,
        }
    }
}

fn header_text(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The one handler of the signed routes, for every method.
pub(crate) async fn signed_blob(
    req: HttpRequest,
    payload: web::Payload,
    blobs: web::Data<SignedBlobs>,
) -> Result<HttpResponse, ApiError> {
    let request_id = RequestId::of(&req);
    let fail = |e: StorageError| ApiError::new(e, request_id.clone());
    let content_length = match header_text(&req, header::CONTENT_LENGTH) {
        None => None,
        Some(raw) => Some(raw.trim().parse::<u64>().map_err(|_| {
            fail(StorageError::InvalidRequest(
                "Content-Length must be a number".into(),
            ))
        })?),
    };
    let signed = SignedBlobRequest {
        method: req.method().as_str(),
        bucket: req.match_info().get("bucket").unwrap_or_default(),
        key: req.match_info().get("key").unwrap_or_default(),
        query: req.query_string(),
        content_type: header_text(&req, header::CONTENT_TYPE),
        content_length,
    };
    let grant = blobs
        .endpoint
        .verify(&signed)
        .map_err(|refused| fail(StorageError::AccessDenied(refused.0)))?;
    match grant {
        SignedBlobGrant::Put {
            bucket,
            key,
            content_type,
            content_length: signed_length,
        } => {
            if let Some(uploads) = &blobs.uploads {
                uploads
                    .check_staged_put(bucket, &key)
                    .await
                    .map_err(&fail)?;
            }
            let put = Put {
                blobs: &blobs,
                bucket,
                key: &key,
                content_type: &content_type,
                signed_length,
                declared_length: content_length,
            };
            let outcome = put.run(payload).await.map_err(&fail)?;
            // The body may have outlived its upload: keep the object only while the upload
            // is open (else nothing would ever remove it).
            if let Some(uploads) = &blobs.uploads {
                uploads
                    .settle_staged_put(bucket, &key)
                    .await
                    .map_err(&fail)?;
            }
            let mut res = HttpResponse::Ok();
            if let Some(etag) = outcome.etag {
                res.insert_header((header::ETAG, format!("\"{etag}\"")));
            }
            Ok(res.finish())
        }
        SignedBlobGrant::Get {
            bucket,
            key,
            response_content_type,
            response_content_disposition,
        } => {
            let range = header_text(&req, header::RANGE).and_then(parse_range);
            let get = Get {
                blobs: &blobs,
                bucket,
                key: &key,
                content_type: response_content_type,
                content_disposition: response_content_disposition,
            };
            get.run(range).await.map_err(fail)
        }
    }
}

/// What a store error means to the client of a signed URL.
fn store_error(e: BlobError) -> StorageError {
    match e {
        BlobError::NotFound => StorageError::FileNotFound,
        BlobError::AlreadyExists => StorageError::AccessDenied(
            "an object was already uploaded with this URL: complete the upload".into(),
        ),
        other => other.into(),
    }
}

struct Put<'a> {
    blobs: &'a SignedBlobs,
    bucket: BucketKind,
    key: &'a ObjectKey,
    content_type: &'a str,
    signed_length: Option<u64>,
    declared_length: Option<u64>,
}

impl Put<'_> {
    /// Streams the body into the store.
    async fn run(self, payload: web::Payload) -> Result<PutOutcome, StorageError> {
        let max = self.blobs.max_bytes;
        if self.signed_length.is_some_and(|n| n > max)
            || self.declared_length.is_some_and(|n| n > max)
        {
            return Err(StorageError::PayloadTooLarge { limit: max });
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
        let received: ByteStream =
            Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let received = self
            .blobs
            .metered(TransferDirection::Upload, self.bucket, received);
        let body: ByteStream = Box::pin(Metered {
            inner: received,
            seen: 0,
            limit: self.signed_length.unwrap_or(max),
            exact: self.signed_length,
            done: false,
        });
        let store = self
            .blobs
            .endpoint
            .put(self.bucket, self.key, self.content_type, body);
        let pumping = pump(IdleBody::new(payload, self.blobs.body_idle_timeout), tx);
        pin_mut!(store, pumping);
        // Both run in this task: the pump feeds the channel while the store drains it.
        let stored = match select(store, pumping).await {
            Either::Left((result, _)) => result,
            Either::Right(((), store)) => store.await,
        };
        match stored {
            Ok(outcome) => Ok(outcome),
            Err(BlobError::Source(e)) => Err(
                match e.get_ref().and_then(|e| e.downcast_ref::<BodyCut>()) {
                    Some(BodyCut::TooLarge {
                        signed: false,
                        limit,
                    }) => StorageError::PayloadTooLarge { limit: *limit },
                    Some(cut) => StorageError::InvalidRequest(cut.to_string()),
                    None => StorageError::InvalidRequest(format!(
                        "the request body could not be read: {e}"
                    )),
                },
            ),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Feeds the (non-`Send`) request body into the channel the store reads from.
async fn pump(
    mut payload: IdleBody<web::Payload>,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
) {
    while let Some(chunk) = payload.next().await {
        let item = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Io(io) => io,
            other => io::Error::other(other.to_string()),
        });
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
}

struct Get<'a> {
    blobs: &'a SignedBlobs,
    bucket: BucketKind,
    key: &'a ObjectKey,
    content_type: Option<String>,
    content_disposition: Option<String>,
}

impl Get<'_> {
    async fn run(
        self,
        range: Option<storage_domain::ports::ByteRange>,
    ) -> Result<HttpResponse, StorageError> {
        let endpoint = &self.blobs.endpoint;
        let meta = endpoint
            .head(self.bucket, self.key)
            .await
            .map_err(store_error)?;
        let read = match endpoint.get(self.bucket, self.key, range).await {
            Ok(read) => read,
            Err(BlobError::RangeNotSatisfiable) => {
                return Err(StorageError::RangeNotSatisfiable { size: meta.size });
            }
            Err(e) => return Err(store_error(e)),
        };
        let mut res = match read.range {
            Some((first, last)) => {
                let mut res = HttpResponse::build(StatusCode::PARTIAL_CONTENT);
                res.insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {first}-{last}/{}", read.total_size),
                ));
                res
            }
            None => HttpResponse::Ok(),
        };
        let length = read
            .range
            .map_or(read.total_size, |(first, last)| last - first + 1);
        let content_type = self
            .content_type
            .or(meta.content_type)
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        res.insert_header((header::CONTENT_TYPE, content_type))
            .insert_header((header::ACCEPT_RANGES, "bytes"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "private"));
        if let Some(disposition) = self.content_disposition {
            res.insert_header((header::CONTENT_DISPOSITION, disposition));
        }
        if let Some(etag) = read.etag {
            res.insert_header((header::ETAG, format!("\"{etag}\"")));
        }
        let body = self
            .blobs
            .metered(TransferDirection::Download, self.bucket, read.body);
        Ok(res.body(SizedStream::new(length, body)))
    }
}
