//! Configuration of the S3 adapter. Parsing the environment is the server's job; this is the
//! plain structure it fills (`MINIO_ENDPOINT`, `MINIO_ACCESS_KEY`, `MINIO_SECRET_KEY`,
//! `MINIO_REGION`, `MINIO_SECURE`, bucket names, timeouts).

use std::time::Duration;

use secrecy::SecretString;
use storage_domain::model::BucketKind;

/// Default bound of every non-streamed request (head, copy, delete, one part of an upload).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound on getting the response headers of a streamed read (connection included).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest silence of the store while a streamed read waits for its next chunk.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap of a presigned URL's lifetime, whatever the caller asks.
pub const DEFAULT_PRESIGN_MAX_TTL: Duration = Duration::from_secs(3600);
/// The largest object S3 copies with one `CopyObject` (5 GiB): larger copies go part by part.
pub const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// S3's smallest part (but the last) of a multipart upload, and so of a multipart copy.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Default size of one `UploadPartCopy` part: small enough for one request's timeout.
pub const DEFAULT_COPY_PART_SIZE: u64 = 256 * 1024 * 1024;
/// Default memory shared by the parts of every streamed put (twelve 5 MiB parts).
pub const DEFAULT_UPLOAD_BUFFER_BYTES: u64 = 64 * 1024 * 1024;
/// Default longest wait of a put for its first part buffer.
pub const DEFAULT_UPLOAD_BUFFER_WAIT: Duration = Duration::from_secs(10);
/// Default size of one segment of a large read (`DOWNLOAD_SEGMENT_BYTES`).
pub const DEFAULT_DOWNLOAD_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest segment size allowed (tests use it, to read small objects in several segments).
pub const MIN_DOWNLOAD_SEGMENT_BYTES: u64 = 64 * 1024;
/// The largest segment size allowed.
pub const MAX_DOWNLOAD_SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;
/// Default number of segment GETs one read keeps in flight (`DOWNLOAD_PARALLEL_SEGMENTS`).
pub const DEFAULT_DOWNLOAD_PARALLEL_SEGMENTS: usize = 1;
/// The most segment GETs one read may keep in flight.
pub const MAX_DOWNLOAD_PARALLEL_SEGMENTS: usize = 16;
/// Default memory every read shares for its read-ahead segments (`DOWNLOAD_READ_AHEAD_BYTES`).
pub const DEFAULT_DOWNLOAD_READ_AHEAD_BYTES: u64 = 64 * 1024 * 1024;
/// The longest lifetime SigV4 allows a presigned URL (7 days).
pub const SIGV4_MAX_TTL: Duration = Duration::from_secs(604_800);

/// The S3 bucket that holds each [`BucketKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketNames {
    pub users: String,
    pub companies: String,
    pub projects: String,
}

impl BucketNames {
    /// The S3 bucket name of `kind`.
    pub fn get(&self, kind: BucketKind) -> &str {
        match kind {
            BucketKind::Users => &self.users,
            BucketKind::Companies => &self.companies,
            BucketKind::Projects => &self.projects,
        }
    }
}

/// How to reach the store.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `host:port` or `http(s)://host:port` (`MINIO_ENDPOINT`). An explicit scheme must agree
    /// with [`secure`](Self::secure).
    pub endpoint: String,
    /// `MINIO_ACCESS_KEY`.
    pub access_key: String,
    /// `MINIO_SECRET_KEY`.
    pub secret_key: SecretString,
    /// Signing region (`MINIO_REGION`); must equal the server's (Garage: `s3_region`).
    pub region: String,
    /// HTTPS when true (`MINIO_SECURE`).
    pub secure: bool,
    /// Path-style addressing (`http://host/bucket/key`), what MinIO and Garage expect.
    pub path_style: bool,
    pub buckets: BucketNames,
    /// Bound of every non-streamed request.
    pub request_timeout: Duration,
    /// Bound on connecting and getting the response headers of a streamed read.
    pub connect_timeout: Duration,
    /// Longest silence of the store during a streamed read before it fails.
    pub idle_timeout: Duration,
    /// Cap of a presigned URL's lifetime (at most [`SIGV4_MAX_TTL`]).
    pub presign_max_ttl: Duration,
    /// Create a missing bucket at start-up (when the key may) instead of failing.
    pub create_missing_buckets: bool,
    /// The store's address as clients reach it (`MINIO_PUBLIC_ENDPOINT`), same forms as
    /// [`endpoint`](Self::endpoint): presigned URLs are signed for it (SigV4 signs the `Host`
    /// header, so a URL works only under the name it was signed for), while the adapter itself
    /// talks to `endpoint`. `None`: presigned URLs use `endpoint`.
    pub public_endpoint: Option<String>,
    /// HTTPS for [`public_endpoint`](Self::public_endpoint) (`MINIO_PUBLIC_SECURE`).
    pub public_secure: bool,
    /// Copies of objects larger than this go part by part (`UploadPartCopy`); at most
    /// [`MAX_SINGLE_COPY`], its default. Lowered only by tests, to exercise that path with
    /// small objects.
    pub multipart_copy_threshold: u64,
    /// The size of one part of a multipart copy (at least [`MIN_PART_SIZE`], at most
    /// [`MAX_SINGLE_COPY`]).
    pub copy_part_size: u64,
    /// The memory every streamed put of this store shares for its parts
    /// (`UPLOAD_BUFFER_BYTES`): `upload_buffer_bytes / PART_SIZE` buffers of
    /// [`PART_SIZE`](crate::PART_SIZE), at least one. A put holds one from before its first byte
    /// to its last, and up to two more while free ones exist (parts uploading while the next is
    /// read).
    pub upload_buffer_bytes: u64,
    /// How long a put waits for its first buffer before it answers `Busy`, having read nothing
    /// (`UPLOAD_BUFFER_WAIT_SECONDS`).
    pub upload_buffer_wait: Duration,
    /// Reads longer than this go as consecutive ranged GETs of this size
    /// (`DOWNLOAD_SEGMENT_BYTES`), [`MIN_DOWNLOAD_SEGMENT_BYTES`] to
    /// [`MAX_DOWNLOAD_SEGMENT_BYTES`].
    pub download_segment_bytes: u64,
    /// Segment GETs one read keeps in flight, the one streaming to the client included
    /// (`DOWNLOAD_PARALLEL_SEGMENTS`, 1 to [`MAX_DOWNLOAD_PARALLEL_SEGMENTS`]; 1: one GET per
    /// read, no read-ahead).
    pub download_parallel_segments: usize,
    /// The memory every read of this store shares for its read-ahead segments
    /// (`DOWNLOAD_READ_AHEAD_BYTES`): `download_read_ahead_bytes / download_segment_bytes`
    /// segments buffered at most, whatever the number of reads. A read that finds none free
    /// goes with one GET at a time (it never waits for this memory).
    pub download_read_ahead_bytes: u64,
}

impl S3Config {
    /// A configuration with the default options: path-style, HTTP unless `endpoint` says
    /// `https://`, default timeouts, buckets created when missing.
    pub fn new(
        endpoint: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: SecretString,
        region: impl Into<String>,
        buckets: BucketNames,
    ) -> Self {
        let endpoint = endpoint.into();
        let secure = endpoint.trim().to_ascii_lowercase().starts_with("https://");
        Self {
            endpoint,
            access_key: access_key.into(),
            secret_key,
            region: region.into(),
            secure,
            path_style: true,
            buckets,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            presign_max_ttl: DEFAULT_PRESIGN_MAX_TTL,
            create_missing_buckets: true,
            public_endpoint: None,
            public_secure: secure,
            multipart_copy_threshold: MAX_SINGLE_COPY,
            copy_part_size: DEFAULT_COPY_PART_SIZE,
            upload_buffer_bytes: DEFAULT_UPLOAD_BUFFER_BYTES,
            upload_buffer_wait: DEFAULT_UPLOAD_BUFFER_WAIT,
            download_segment_bytes: DEFAULT_DOWNLOAD_SEGMENT_BYTES,
            download_parallel_segments: DEFAULT_DOWNLOAD_PARALLEL_SEGMENTS,
            download_read_ahead_bytes: DEFAULT_DOWNLOAD_READ_AHEAD_BYTES,
        }
    }

    /// The endpoint as a URL with its scheme and without a trailing slash.
    ///
    /// # Errors
    /// [`S3ConfigError`] when the endpoint is empty, has a scheme other than http(s), a scheme
    /// that contradicts [`secure`](Self::secure), or a path.
    pub fn endpoint_url(&self) -> Result<String, S3ConfigError> {
        url_of(&self.endpoint, self.secure).map_err(S3ConfigError::Endpoint)
    }

    /// The URL presigned requests are signed for: the public endpoint when one is set, else
    /// [`endpoint_url`](Self::endpoint_url).
    ///
    /// # Errors
    /// As [`endpoint_url`](Self::endpoint_url), for the public endpoint and
    /// [`public_secure`](Self::public_secure).
    pub fn presign_url(&self) -> Result<String, S3ConfigError> {
        match &self.public_endpoint {
            Some(public) => {
                url_of(public, self.public_secure).map_err(S3ConfigError::PublicEndpoint)
            }
            None => self.endpoint_url(),
        }
    }

    /// Checks the whole configuration.
    ///
    /// # Errors
    /// [`S3ConfigError`] naming the first invalid setting.
    pub fn validate(&self) -> Result<(), S3ConfigError> {
        self.endpoint_url()?;
        self.presign_url()?;
        if self.access_key.trim().is_empty() {
            return Err(S3ConfigError::Missing("access key"));
        }
        if self.region.trim().is_empty() {
            return Err(S3ConfigError::Missing("region"));
        }
        for kind in BucketKind::ALL {
            if self.buckets.get(kind).trim().is_empty() {
                return Err(S3ConfigError::Missing("bucket name"));
            }
        }
        for (what, d) in [
            ("request timeout", self.request_timeout),
            ("connect timeout", self.connect_timeout),
            ("idle timeout", self.idle_timeout),
            ("presign max TTL", self.presign_max_ttl),
            ("upload buffer wait", self.upload_buffer_wait),
        ] {
            if d.is_zero() {
                return Err(S3ConfigError::Zero(what));
            }
        }
        if self.multipart_copy_threshold > MAX_SINGLE_COPY {
            return Err(S3ConfigError::Copy(
                "the multipart copy threshold exceeds 5 GiB",
            ));
        }
        if self.upload_buffer_bytes < crate::PART_SIZE as u64 {
            return Err(S3ConfigError::UploadBuffers);
        }
        if !(MIN_PART_SIZE..=MAX_SINGLE_COPY).contains(&self.copy_part_size) {
            return Err(S3ConfigError::Copy(
                "the copy part size must be 5 MiB to 5 GiB",
            ));
        }
        if !(MIN_DOWNLOAD_SEGMENT_BYTES..=MAX_DOWNLOAD_SEGMENT_BYTES)
            .contains(&self.download_segment_bytes)
        {
            return Err(S3ConfigError::Download(
                "the segment size (DOWNLOAD_SEGMENT_BYTES) must be 64 KiB to 1 GiB",
            ));
        }
        if !(1..=MAX_DOWNLOAD_PARALLEL_SEGMENTS).contains(&self.download_parallel_segments) {
            return Err(S3ConfigError::Download(
                "the segments in flight (DOWNLOAD_PARALLEL_SEGMENTS) must be 1 to 16",
            ));
        }
        if self.download_parallel_segments > 1
            && self.download_read_ahead_bytes < self.download_segment_bytes
        {
            return Err(S3ConfigError::Download(
                "the read-ahead memory (DOWNLOAD_READ_AHEAD_BYTES) must hold at least one segment (DOWNLOAD_SEGMENT_BYTES) when DOWNLOAD_PARALLEL_SEGMENTS > 1",
            ));
        }
        Ok(())
    }
}

/// `raw` (`host[:port]` or `http(s)://host[:port]`) as a URL with its scheme and without a
/// trailing slash; `secure` gives the scheme when `raw` has none and must agree when it has.
fn url_of(raw: &str, secure: bool) -> Result<String, &'static str> {
    let raw = raw.trim();
    let lower = raw.to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("https://") {
        ("https", &raw["https://".len()..])
    } else if lower.starts_with("http://") {
        ("http", &raw["http://".len()..])
    } else if raw.contains("://") {
        return Err("the scheme must be http or https");
    } else {
        (if secure { "https" } else { "http" }, raw)
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err("no host");
    }
    if rest.contains('/') {
        return Err("the endpoint must be host[:port] without a path");
    }
    if (scheme == "https") != secure {
        return Err(
            "the endpoint's scheme contradicts the TLS setting (MINIO_SECURE, MINIO_PUBLIC_SECURE)",
        );
    }
    Ok(format!("{scheme}://{rest}"))
}

/// An invalid [`S3Config`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum S3ConfigError {
    #[error("invalid S3 endpoint: {0}")]
    Endpoint(&'static str),
    #[error("invalid public S3 endpoint: {0}")]
    PublicEndpoint(&'static str),
    #[error("S3 {0} is missing")]
    Missing(&'static str),
    #[error("S3 {0} must not be zero")]
    Zero(&'static str),
    #[error("S3 copy settings: {0}")]
    Copy(&'static str),
    #[error("the upload buffers (UPLOAD_BUFFER_BYTES) must hold at least one 5 MiB part")]
    UploadBuffers,
    #[error("S3 download settings: {0}")]
    Download(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str, secure: bool) -> S3Config {
        let mut c = S3Config::new(
            endpoint,
            "key",
            SecretString::from("secret"),
            "garage",
            BucketNames {
                users: "u".into(),
                companies: "c".into(),
                projects: "p".into(),
            },
        );
        c.secure = secure;
        c
    }

    #[test]
    fn endpoints_take_both_forms() {
        assert_eq!(
            config("localhost:9000", false).endpoint_url(),
            Ok("http://localhost:9000".to_owned())
        );
        assert_eq!(
            config("minio:9000", true).endpoint_url(),
            Ok("https://minio:9000".to_owned())
        );
        assert_eq!(
            config("http://127.0.0.1:3900/", false).endpoint_url(),
            Ok("http://127.0.0.1:3900".to_owned())
        );
        assert_eq!(
            config("HTTPS://s3.example:443", true).endpoint_url(),
            Ok("https://s3.example:443".to_owned())
        );
    }

    #[test]
    fn bad_endpoints_are_refused() {
        assert!(config("http://h:1", true).endpoint_url().is_err());
        assert!(config("https://h:1", false).endpoint_url().is_err());
        assert!(config("ftp://h:1", false).endpoint_url().is_err());
        assert!(config("http://", false).endpoint_url().is_err());
        assert!(config("h:1/base", false).endpoint_url().is_err());
    }

    #[test]
    fn presigned_urls_are_signed_for_the_public_endpoint_when_set() {
        let mut c = config("garage:3900", false);
        assert_eq!(c.presign_url(), Ok("http://garage:3900".to_owned()));
        c.public_endpoint = Some("files.example.com".into());
        c.public_secure = true;
        assert_eq!(c.presign_url(), Ok("https://files.example.com".to_owned()));
        assert_eq!(c.endpoint_url(), Ok("http://garage:3900".to_owned()));
        assert!(c.validate().is_ok());
        c.public_endpoint = Some("http://files.example.com".into());
        assert!(matches!(
            c.presign_url(),
            Err(S3ConfigError::PublicEndpoint(_))
        ));
        assert!(c.validate().is_err());
        c.public_endpoint = Some("files.example.com/s3".into());
        c.public_secure = false;
        assert!(c.presign_url().is_err());
    }

    #[test]
    fn new_infers_tls_from_the_scheme() {
        assert!(
            S3Config::new(
                "https://h",
                "k",
                SecretString::from("s"),
                "r",
                config("h", false).buckets
            )
            .secure
        );
        assert!(config("h:1", false).validate().is_ok());
        let mut c = config("h:1", false);
        c.idle_timeout = Duration::ZERO;
        assert_eq!(c.validate(), Err(S3ConfigError::Zero("idle timeout")));
    }

    #[test]
    fn copy_settings_stay_within_s3_limits() {
        let mut c = config("h:1", false);
        assert_eq!(c.multipart_copy_threshold, MAX_SINGLE_COPY);
        c.multipart_copy_threshold = MAX_SINGLE_COPY + 1;
        assert!(matches!(c.validate(), Err(S3ConfigError::Copy(_))));
        c.multipart_copy_threshold = 1;
        c.copy_part_size = MIN_PART_SIZE - 1;
        assert!(matches!(c.validate(), Err(S3ConfigError::Copy(_))));
        c.copy_part_size = MIN_PART_SIZE;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn upload_buffers_hold_at_least_one_part() {
        let mut c = config("h:1", false);
        c.upload_buffer_bytes = crate::PART_SIZE as u64 - 1;
        assert_eq!(c.validate(), Err(S3ConfigError::UploadBuffers));
        c.upload_buffer_bytes = crate::PART_SIZE as u64;
        assert!(c.validate().is_ok());
        c.upload_buffer_wait = Duration::ZERO;
        assert!(c.validate().is_err());
    }

    #[test]
    fn download_settings_are_checked() {
        let mut c = config("h:1", false);
        assert!(c.validate().is_ok());
        c.download_segment_bytes = MIN_DOWNLOAD_SEGMENT_BYTES - 1;
        assert!(matches!(c.validate(), Err(S3ConfigError::Download(_))));
        c.download_segment_bytes = MIN_DOWNLOAD_SEGMENT_BYTES;
        assert!(c.validate().is_ok());
        c.download_segment_bytes = MAX_DOWNLOAD_SEGMENT_BYTES + 1;
        assert!(matches!(c.validate(), Err(S3ConfigError::Download(_))));
        c.download_segment_bytes = DEFAULT_DOWNLOAD_SEGMENT_BYTES;
        c.download_parallel_segments = 0;
        assert!(matches!(c.validate(), Err(S3ConfigError::Download(_))));
        c.download_parallel_segments = MAX_DOWNLOAD_PARALLEL_SEGMENTS + 1;
        assert!(matches!(c.validate(), Err(S3ConfigError::Download(_))));
        c.download_parallel_segments = 2;
        c.download_read_ahead_bytes = c.download_segment_bytes - 1;
        assert!(matches!(c.validate(), Err(S3ConfigError::Download(_))));
        // One GET per read needs no read-ahead memory.
        c.download_parallel_segments = 1;
        c.download_read_ahead_bytes = 0;
        assert!(c.validate().is_ok());
    }
}
