//! [`S3BlobStore`]: the [`BlobStore`] port over rust-s3.

use std::{collections::HashMap, io, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use futures_util::TryStreamExt;
use http::{
    HeaderMap, HeaderValue,
    header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG},
};
use s3::{
    Bucket, BucketConfiguration, Region,
    command::Command,
    creds::Credentials,
    error::S3Error,
    request::{Request, tokio_backend::ReqwestRequest},
};
use secrecy::ExposeSecret;
use storage_domain::{
    model::{BucketKind, ObjectKey},
    ports::{
        BlobError, BlobMeta, BlobRead, BlobStore, ByteRange, ByteStream, PresignGetOptions,
        PresignMethod, PresignedRequest, PutOutcome,
    },
};

use crate::{
    config::{S3Config, S3ConfigError, SIGV4_MAX_TTL},
    copy::{PartCopy, multipart_copy},
    error::{map_s3, map_status, unquote_etag},
    put::{PartBudget, PartSender, abort_unfinished_uploads, put_stream},
    segments::{Body, Layout, Opener, ReadAheadBudget, Segmented},
    sign::{Presign, Signer},
    stream::IdleTimeout,
};

/// Why [`S3BlobStore::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Config(#[from] S3ConfigError),
    #[error("cannot build the S3 client: {0}")]
    Client(String),
    #[error("S3 bucket `{bucket}` (for {kind}) does not exist and could not be created: {reason}")]
    MissingBucket {
        kind: &'static str,
        bucket: String,
        reason: String,
    },
    #[error("cannot check S3 bucket `{bucket}`: {source}")]
    Check {
        bucket: String,
        #[source]
        source: BlobError,
    },
}

/// One S3 bucket.
#[derive(Debug)]
pub(crate) struct Target {
    /// Every non-streamed request: bounded by the configured request timeout.
    pub(crate) bucket: Box<Bucket>,
    /// The bucket's URL at the store's own address: the requests the adapter signs and sends
    /// itself (streamed reads, the parts of puts and copies).
    pub(crate) url: String,
    /// The bucket's URL at the address clients use (`MINIO_PUBLIC_ENDPOINT`, else the store's
    /// own): presigned URLs handed out.
    pub(crate) public_url: String,
}

/// The blob store over an S3-compatible server. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct S3BlobStore {
    users: Target,
    companies: Target,
    projects: Target,
    connect_timeout: Duration,
    idle_timeout: Duration,
    presign_max_ttl: Duration,
    /// Copies above this size go part by part (see `copy.rs`).
    multipart_copy_threshold: u64,
    copy_part_size: u64,
    /// Sends the part copies of multipart copies (see `copy.rs`).
    http: reqwest::Client,
    /// The memory every put shares for its parts (`UPLOAD_BUFFER_BYTES`).
    budget: PartBudget,
    /// Signs every presigned URL, with the day's signing key derived once.
    signer: Arc<Signer>,
    /// Sends streamed reads and the parts of streamed puts: the bytes that flow.
    streams: ThreadClients,
    request_timeout: Duration,
    /// How large reads are cut in segments (see `segments.rs`).
    reads: Reads,
}

/// The HTTP clients of the requests whose bytes flow through the service (streamed reads, the
/// parts of puts), one per thread that sends them.
///
/// reqwest pools connections per client, and a pooled connection is driven by a task on the
/// runtime where it was opened. With one client for the whole service, a download served by an
/// HTTP worker thread read its bytes through connections opened on other runtimes: each chunk
/// crossed threads (a wake-up through the kernel, a context switch), which took half of the
/// service's CPU time during a download (`perf`, see `bench/results`). A client per thread keeps
/// each connection with the thread that uses it, pooled as before. The threads are the
/// runtimes' own, few and fixed.
#[derive(Debug)]
struct ThreadClients {
    clients: std::sync::Mutex<HashMap<std::thread::ThreadId, reqwest::Client>>,
    connect_timeout: Duration,
}

impl ThreadClients {
    fn new(connect_timeout: Duration) -> Self {
        Self {
            clients: std::sync::Mutex::new(HashMap::new()),
            connect_timeout,
        }
    }

    /// This thread's client (no whole-request timeout: it would cut long downloads; the
    /// response headers and then each chunk are bounded by the adapter's own timeouts).
    fn here(&self) -> Result<reqwest::Client, BlobError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let thread = std::thread::current().id();
        if let Some(client) = clients.get(&thread) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| BlobError::Other(format!("cannot build the S3 read client: {e}")))?;
        clients.insert(thread, client.clone());
        Ok(client)
    }
}

impl S3BlobStore {
    /// Builds the client and checks the three buckets, creating a missing one when the
    /// configuration allows it and the key may.
    ///
    /// # Errors
    /// [`ConnectError`]: invalid configuration, store unreachable, or a bucket missing that
    /// could not be created (the error names it).
    pub async fn connect(config: S3Config) -> Result<Self, ConnectError> {
        let create_missing = config.create_missing_buckets;
        let path_style = config.path_style;
        let (store, credentials) = Self::build_parts(config)?;
        for kind in BucketKind::ALL {
            let bucket = &store.target(kind).bucket;
            match head_bucket(bucket).await {
                Ok(()) => {}
                Err(BlobError::NotFound) => {
                    let reason = if create_missing {
                        match create_bucket(bucket, &credentials, path_style).await {
                            Ok(()) => continue,
                            Err(reason) => reason,
                        }
                    } else {
                        "creation is disabled".to_owned()
                    };
                    return Err(ConnectError::MissingBucket {
                        kind: kind.as_str(),
                        bucket: bucket.name.clone(),
                        reason,
                    });
                }
                Err(source) => {
                    return Err(ConnectError::Check {
                        bucket: bucket.name.clone(),
                        source,
                    });
                }
            }
        }
        Ok(store)
    }

    /// Builds the client without contacting the store (no bucket check: [`connect`] does it).
    ///
    /// # Errors
    /// [`ConnectError::Config`] or [`ConnectError::Client`].
    ///
    /// [`connect`]: Self::connect
    pub fn build(config: S3Config) -> Result<Self, ConnectError> {
        Self::build_parts(config).map(|(store, _)| store)
    }

    fn build_parts(config: S3Config) -> Result<(Self, Credentials), ConnectError> {
        config.validate()?;
        let endpoint = config.endpoint_url()?;
        let region = Region::Custom {
            region: config.region.clone(),
            endpoint,
        };
        let public_region = Region::Custom {
            region: config.region.clone(),
            endpoint: config.presign_url()?,
        };
        let credentials = Credentials::new(
            Some(&config.access_key),
            Some(config.secret_key.expose_secret()),
            None,
            None,
            None,
        )
        .map_err(|e| ConnectError::Client(e.to_string()))?;

        let new_bucket = |name: &str, region: &Region| -> Result<Box<Bucket>, ConnectError> {
            let mut bucket = Bucket::new(name, region.clone(), credentials.clone())
                .map_err(|e| ConnectError::Client(e.to_string()))?;
            if config.path_style {
                bucket.set_path_style();
            } else {
                bucket.set_subdomain_style();
            }
            Ok(bucket)
        };
        let target = |name: &str| -> Result<Target, ConnectError> {
            let mut bucket = new_bucket(name, &region)?;
            bucket.set_request_timeout(Some(config.request_timeout));
            Ok(Target {
                url: bucket.url(),
                public_url: new_bucket(name, &public_region)?.url(),
                bucket,
            })
        };
        let store = Self {
            users: target(&config.buckets.users)?,
            companies: target(&config.buckets.companies)?,
            projects: target(&config.buckets.projects)?,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            presign_max_ttl: config.presign_max_ttl.min(SIGV4_MAX_TTL),
            multipart_copy_threshold: config.multipart_copy_threshold,
            copy_part_size: config.copy_part_size,
            http: reqwest::Client::builder()
                .connect_timeout(config.connect_timeout)
                .timeout(config.request_timeout)
                .build()
                .map_err(|e| ConnectError::Client(e.to_string()))?,
            budget: PartBudget::new(config.upload_buffer_bytes, config.upload_buffer_wait),
            streams: ThreadClients::new(config.connect_timeout),
            request_timeout: config.request_timeout,
            reads: Reads {
                layout: Layout {
                    segment: config.download_segment_bytes,
                    parallel: config.download_parallel_segments,
                },
                budget: ReadAheadBudget::new(
                    config.download_read_ahead_bytes,
                    config.download_segment_bytes,
                ),
            },
            signer: Arc::new(Signer::new(
                &config.access_key,
                config.secret_key.clone(),
                region.clone(),
            )),
        };
        Ok((store, credentials))
    }

    fn target(&self, kind: BucketKind) -> &Target {
        match kind {
            BucketKind::Users => &self.users,
            BucketKind::Companies => &self.companies,
            BucketKind::Projects => &self.projects,
        }
    }

    /// The lifetime a presigned URL gets: `ttl` capped by the configuration, at least 1 s.
    fn presign_ttl(&self, ttl: Duration) -> (u32, chrono::DateTime<Utc>) {
        let secs = ttl.min(self.presign_max_ttl).as_secs().max(1);
        let secs = u32::try_from(secs).unwrap_or(u32::MAX);
        (
            secs,
            Utc::now() + chrono::Duration::seconds(i64::from(secs)),
        )
    }

    /// Sends a streamed GET of `range` (`(first, Some(last))` or `(first, None)`; `None`: the
    /// whole object) and maps the answer to a [`BlobRead`]. The request goes to a presigned URL
    /// (signed here, no request) with this thread's client (see [`ThreadClients`]).
    ///
    /// A read that may be longer than one segment, while read-ahead memory is free, asks for
    /// its first segment only and reads the rest with segment GETs ([`Segmented`]); otherwise
    /// one GET reads it all. The answer (size, range, ETag, errors) is the same either way.
    async fn stream_get(
        &self,
        target: &Target,
        key: &str,
        bytes: Option<(u64, Option<u64>)>,
        asked: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError> {
        let url = self.signer.presign(&Presign {
            method: "GET",
            bucket_url: &target.url,
            key,
            expiry_secs: READ_URL_TTL_SECS,
            headers: &HeaderMap::new(),
            queries: &[],
        })?;
        let client = self.streams.here()?;
        let segment = self.reads.layout.segment;
        let longer_than_a_segment = match bytes {
            Some((first, Some(last))) => last.saturating_sub(first) >= segment,
            _ => true,
        };
        let mut permit = (self.reads.layout.parallel > 1 && longer_than_a_segment)
            .then(|| self.reads.budget.try_take())
            .flatten();
        let response = loop {
            let sent = match (&permit, bytes) {
                (None, sent) => sent,
                (Some(_), None) => Some((0, Some(segment - 1))),
                (Some(_), Some((first, last))) => {
                    let head_last = first.saturating_add(segment - 1);
                    Some((first, Some(last.map_or(head_last, |l| l.min(head_last)))))
                }
            };
            let response = self.send_get(&client, &url, sent, None).await?;
            // An empty object has no first segment to ask for: read it with one plain GET.
            if response.status().as_u16() == 416 && bytes.is_none() && permit.is_some() {
                permit = None;
                continue;
            }
            break response;
        };
        let status = response.status().as_u16();
        let headers = response.headers();
        let etag_header = headers.get(ETAG).cloned();
        let etag = header_str(headers, &ETAG).map(unquote_etag);
        // The bytes this response carries, and the last byte of the read.
        let (total_size, head, end) = match status {
            206 => {
                let (first, last, total) = header_str(headers, &CONTENT_RANGE)
                    .and_then(parse_content_range)
                    .ok_or_else(|| {
                        BlobError::Other("S3 answered 206 without a valid Content-Range".into())
                    })?;
                let end = match (&permit, bytes) {
                    // One GET for the whole read: it is what S3 sent.
                    (None, _) => last,
                    (Some(_), Some((_, Some(asked_last)))) => asked_last.min(total - 1),
                    (Some(_), _) => total - 1,
                };
                let asked_first = bytes.map_or(0, |(first, _)| first);
                if first != asked_first || last > end {
                    return Err(BlobError::Other(
                        "S3 answered another byte range than asked".into(),
                    ));
                }
                (total, (first, last), end)
            }
            200 => {
                // The whole object (asked for, or the store ignored the range): one GET.
                permit = None;
                let total = header_str(headers, &CONTENT_LENGTH)
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        BlobError::Other("S3 answered without a Content-Length".into())
                    })?;
                match asked {
                    None => (total, (0, total.saturating_sub(1)), total.saturating_sub(1)),
                    // A store that ignores the range must have sent the whole object.
                    Some(r) => match r.resolve(total) {
                        Some((0, last)) if last + 1 == total => (total, (0, last), last),
                        Some(_) => {
                            return Err(BlobError::Other("S3 ignored the byte range".into()));
                        }
                        None => return Err(BlobError::RangeNotSatisfiable),
                    },
                }
            }
            other => {
                let body = response.text().await.unwrap_or_default();
                return Err(map_status(other, &body));
            }
        };
        let range = asked.map(|_| (head.0, end));
        let head_body: Body = Box::pin(response.bytes_stream().map_err(io::Error::other));
        let body: Body = match permit {
            Some(permit) if head.1 < end => Box::pin(Segmented::new(
                head_body,
                (head.0, head.1, end),
                self.reads.layout,
                self.reads.budget.clone(),
                Some(permit),
                self.segment_opener(client, target, key, etag_header, total_size),
            )),
            _ => head_body,
        };
        Ok(BlobRead {
            total_size,
            range,
            etag,
            body: Box::pin(IdleTimeout::new(body, self.idle_timeout)),
        })
    }

    /// Sends a GET of `url` for the bytes `range` (see [`Self::stream_get`]), with `If-Match`
    /// when given; the response headers come within the connect timeout.
    async fn send_get(
        &self,
        client: &reqwest::Client,
        url: &str,
        range: Option<(u64, Option<u64>)>,
        if_match: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, BlobError> {
        send_get(client, url, range, if_match, self.connect_timeout).await
    }

    /// The segment GETs of a read of `key`, whose first answer had ETag `etag` and size
    /// `total`: each asks `If-Match: <etag>` and must answer exactly its bytes. Each is signed
    /// when sent (a long download outlives a URL's lifetime).
    fn segment_opener(
        &self,
        client: reqwest::Client,
        target: &Target,
        key: &str,
        etag: Option<HeaderValue>,
        total: u64,
    ) -> Opener {
        let connect_timeout = self.connect_timeout;
        let signer = Arc::clone(&self.signer);
        let bucket_url = target.url.clone();
        let key = key.to_owned();
        Arc::new(move |first, last| {
            let client = client.clone();
            let etag = etag.clone();
            let url = signer.presign(&Presign {
                method: "GET",
                bucket_url: &bucket_url,
                key: &key,
                expiry_secs: READ_URL_TTL_SECS,
                headers: &HeaderMap::new(),
                queries: &[],
            });
            Box::pin(async move {
                let url = url.map_err(io::Error::other)?;
                let response = send_get(
                    &client,
                    &url,
                    Some((first, Some(last))),
                    etag.as_ref(),
                    connect_timeout,
                )
                .await
                .map_err(io::Error::other)?;
                let status = response.status().as_u16();
                let range =
                    header_str(response.headers(), &CONTENT_RANGE).and_then(parse_content_range);
                let same_etag = match (&etag, response.headers().get(ETAG)) {
                    (Some(asked), Some(got)) => asked == got,
                    _ => true,
                };
                match status {
                    206 if range == Some((first, last, total)) && same_etag => {
                        let body: Body =
                            Box::pin(response.bytes_stream().map_err(io::Error::other));
                        Ok(body)
                    }
                    206 | 200 => Err(io::Error::other(format!(
                        "S3 answered the segment at byte {first} with another range or object"
                    ))),
                    412 => Err(io::Error::other(format!(
                        "the object changed during the read (S3 answered 412 to the segment at byte {first})"
                    ))),
                    other => Err(io::Error::other(format!(
                        "S3 answered {other} to the segment at byte {first}"
                    ))),
                }
            })
        })
    }
}

/// Sends a GET of `url` for the bytes `range`, with `If-Match` when given: the response once
/// its headers came, within `connect_timeout`.
async fn send_get(
    client: &reqwest::Client,
    url: &str,
    range: Option<(u64, Option<u64>)>,
    if_match: Option<&HeaderValue>,
    connect_timeout: Duration,
) -> Result<reqwest::Response, BlobError> {
    let mut request = client.get(url);
    if let Some((first, last)) = range {
        let range = match last {
            Some(last) => format!("bytes={first}-{last}"),
            None => format!("bytes={first}-"),
        };
        request = request.header(http::header::RANGE, range);
    }
    if let Some(etag) = if_match {
        request = request.header(http::header::IF_MATCH, etag.clone());
    }
    tokio::time::timeout(connect_timeout, request.send())
        .await
        .map_err(|_| {
            BlobError::Unavailable(format!(
                "S3 sent no response headers within {connect_timeout:?}"
            ))
        })?
        .map_err(crate::put::map_http)
}

/// How large reads are cut, and the read-ahead memory every read of the store shares.
#[derive(Debug)]
struct Reads {
    layout: Layout,
    budget: ReadAheadBudget,
}

/// Lifetime of the presigned URL of a streamed read: it is used at once.
const READ_URL_TTL_SECS: u32 = 900;

/// `HEAD /bucket/`: Ok, `NotFound` for a missing bucket, or the failure.
async fn head_bucket(bucket: &Bucket) -> Result<(), BlobError> {
    let request = ReqwestRequest::new(bucket, "/", Command::HeadObject)
        .await
        .map_err(map_s3)?;
    match request.response_header().await {
        Ok((_, status)) if (200..300).contains(&status) => Ok(()),
        Ok((_, status)) => Err(map_status(status, "")),
        Err(e) => Err(map_s3(e)),
    }
}

/// Creates `bucket`; the reason of a refusal otherwise.
async fn create_bucket(
    bucket: &Bucket,
    credentials: &Credentials,
    path_style: bool,
) -> Result<(), String> {
    let config = BucketConfiguration::default();
    let created = if path_style {
        Bucket::create_with_path_style(
            &bucket.name,
            bucket.region.clone(),
            credentials.clone(),
            config,
        )
        .await
    } else {
        Bucket::create(
            &bucket.name,
            bucket.region.clone(),
            credentials.clone(),
            config,
        )
        .await
    };
    match created {
        Ok(response) if response.success() => {
            tracing::info!(bucket = %bucket.name, "created missing S3 bucket");
            Ok(())
        }
        Ok(response) => Err(format!("S3 answered {}", response.response_code)),
        Err(e) => Err(map_s3(e).to_string()),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Parses `bytes first-last/total`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, total) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (first <= last && last < total).then_some((first, last, total))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        body: ByteStream,
    ) -> Result<PutOutcome, BlobError> {
        put_stream(
            self.target(bucket),
            &self.signer,
            &PartSender {
                http: self.streams.here()?,
                timeout: self.request_timeout,
            },
            &self.budget,
            key.as_str(),
            content_type,
            body,
        )
        .await
    }

    async fn get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<BlobRead, BlobError> {
        let bytes = match range {
            None => None,
            Some(ByteRange::FromTo { first, last }) => {
                if first > last {
                    return Err(BlobError::RangeNotSatisfiable);
                }
                Some((first, Some(last)))
            }
            Some(ByteRange::From { first }) => Some((first, None)),
            Some(suffix @ ByteRange::Suffix { .. }) => {
                // Resolved against the size (keys are written once, so the size cannot change
                // between the two requests).
                let size = self.head(bucket, key).await?.size;
                let (first, last) = suffix.resolve(size).ok_or(BlobError::RangeNotSatisfiable)?;
                Some((first, Some(last)))
            }
        };
        self.stream_get(self.target(bucket), key.as_str(), bytes, range)
            .await
    }

    async fn head(&self, bucket: BucketKind, key: &ObjectKey) -> Result<BlobMeta, BlobError> {
        let (head, _) = self
            .target(bucket)
            .bucket
            .head_object(key.as_str())
            .await
            .map_err(map_s3)?;
        let size = head
            .content_length
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| BlobError::Other("S3 HEAD answered without a size".into()))?;
        Ok(BlobMeta {
            size,
            etag: head.e_tag.as_deref().map(unquote_etag),
            content_type: head.content_type,
        })
    }

    async fn copy(
        &self,
        from_bucket: BucketKind,
        from: &ObjectKey,
        to_bucket: BucketKind,
        to: &ObjectKey,
    ) -> Result<(), BlobError> {
        // `x-amz-copy-source` is `/<bucket>/<key>`, URL-encoded (rust-s3 sends it as given).
        let source = format!(
            "/{}/{}",
            self.target(from_bucket).bucket.name,
            s3::signing::uri_encode(from.as_str(), false)
        );
        let meta = self.head(from_bucket, from).await?;
        if meta.size > self.multipart_copy_threshold {
            return multipart_copy(
                &self.http,
                PartCopy {
                    to: self.target(to_bucket),
                    signer: &self.signer,
                    to_key: to.as_str(),
                    source: &source,
                    size: meta.size,
                    etag: meta.etag.as_deref(),
                    content_type: meta
                        .content_type
                        .as_deref()
                        .unwrap_or("application/octet-stream"),
                    part_size: self.copy_part_size,
                },
            )
            .await;
        }
        let request = ReqwestRequest::new(
            &self.target(to_bucket).bucket,
            to.as_str(),
            Command::CopyObject { from: &source },
        )
        .await
        .map_err(map_s3)?;
        let response = request.response_data(false).await.map_err(map_s3)?;
        // A copy can fail after its 200 status line: the body then holds an <Error>.
        match response.as_str() {
            Ok(body) if body.contains("CopyObjectResult") => Ok(()),
            Ok(body) => Err(map_status(500, body)),
            Err(_) => Err(BlobError::Other("S3 copy answered a non-UTF-8 body".into())),
        }
    }

    /// Deletes the object and aborts any multipart upload still open on its key: keys are
    /// written once, so an unfinished upload on a key being deleted is the leftover of a
    /// writer that died (a crashed instance, or a store that was down when the put failed),
    /// whose stored parts would otherwise stay until a bucket lifecycle rule removes them.
    async fn delete(&self, bucket: BucketKind, key: &ObjectKey) -> Result<(), BlobError> {
        let target = &self.target(bucket).bucket;
        match target.delete_object(key.as_str()).await {
            Ok(_) | Err(S3Error::HttpFailWithBody(404, _)) => {}
            Err(e) => return Err(map_s3(e)),
        }
        abort_unfinished_uploads(target, key.as_str()).await
    }

    async fn presign_put(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        content_type: &str,
        content_length: Option<u64>,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        // A presigned PUT bounds what it writes only by a signed length: without one, the URL
        // could store anything up to the store's own limit.
        let Some(length) = content_length else {
            return Err(BlobError::LengthRequired);
        };
        let (secs, expires_at) = self.presign_ttl(ttl);
        let mut signed = HeaderMap::new();
        let content_type_value = HeaderValue::from_str(content_type)
            .map_err(|_| BlobError::Other("content type is not a valid header value".into()))?;
        signed.insert(CONTENT_TYPE, content_type_value);
        signed.insert(CONTENT_LENGTH, HeaderValue::from(length));
        let url = self.signer.presign(&Presign {
            method: "PUT",
            bucket_url: &self.target(bucket).public_url,
            key: key.as_str(),
            expiry_secs: secs,
            headers: &signed,
            queries: &[],
        })?;
        let headers = vec![
            ("Content-Type".to_owned(), content_type.to_owned()),
            ("Content-Length".to_owned(), length.to_string()),
        ];
        Ok(PresignedRequest {
            method: PresignMethod::Put,
            url,
            headers,
            expires_at,
        })
    }

    async fn presign_get(
        &self,
        bucket: BucketKind,
        key: &ObjectKey,
        options: &PresignGetOptions,
        ttl: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        let (secs, expires_at) = self.presign_ttl(ttl);
        let queries: Vec<(&str, &str)> = [
            (
                "response-content-disposition",
                options.content_disposition.as_deref(),
            ),
            ("response-content-type", options.content_type.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
        let url = self.signer.presign(&Presign {
            method: "GET",
            bucket_url: &self.target(bucket).public_url,
            key: key.as_str(),
            expiry_secs: secs,
            headers: &HeaderMap::new(),
            queries: &queries,
        })?;
        Ok(PresignedRequest {
            method: PresignMethod::Get,
            url,
            headers: Vec::new(),
            expires_at,
        })
    }

    async fn health(&self) -> Result<(), BlobError> {
        for kind in BucketKind::ALL {
            let bucket = &self.target(kind).bucket;
            head_bucket(bucket).await.map_err(|e| match e {
                BlobError::NotFound => {
                    BlobError::Other(format!("S3 bucket `{}` is missing", bucket.name))
                }
                other => other,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
        assert_eq!(parse_content_range("bytes 99-99/100"), Some((99, 99, 100)));
        assert_eq!(parse_content_range("bytes 5-4/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
    }
}
