//! Uploads (presigned, completed, proxied) and downloads (proxied, presigned).

use std::sync::Arc;

use futures_util::{
    FutureExt, StreamExt,
    future::{BoxFuture, Either, select},
    pin_mut,
};
use sha2::{Digest, Sha256};

use super::{
    MeteredStream, Need, StorageService, TransferKind, TransferPermit, UploadMeter, check_sha256,
    check_tags, check_text, content_type_or_default,
};
use crate::error::StorageError;
use crate::model::{
    AuditAction, FilePath, FileRecord, ObjectKey, RequestContext, Tags, UploadId, UploadKind,
    UploadReservation, Version, VersionSelector, VersionStatus,
};
use crate::ports::{
    BlobError, BlobRead, ByteRange, ByteStream, Expectation, NewVersion, PresignGetOptions,
    PresignedRequest, RepoError, WriteMode,
};
use crate::rules::store::check_expected;
use crate::rules::{Operation, ensure_writable};

/// `POST /upload/presign`.
#[derive(Debug, Clone)]
pub struct PresignUploadRequest {
    pub path: FilePath,
    pub content_type: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
}

/// The answer to a presign: where to PUT, until when, and how much.
#[derive(Debug, Clone)]
pub struct PresignedUpload {
    pub upload_id: UploadId,
    pub request: PresignedRequest,
    pub max_bytes: u64,
}

/// `POST /upload/proxy`'s fields (the file itself comes as a stream).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyUpload {
    pub path: FilePath,
    pub content_type: Option<String>,
    pub tags: Option<Tags>,
    pub message: Option<String>,
    /// `If-Match` or `expected_version`.
    pub expected: Option<Expectation>,
    /// The size the client announced, when known: refused at once when over the limit.
    pub declared_size: Option<u64>,
}

/// The whole form of a proxy upload whose file was streamed before the form was complete:
/// resolved by the inbound adapter once it has read the rest of the body (fields that came
/// after the file), before the use case records anything. It holds every field, those known
/// when the file began included; an error (an unknown or repeated field, a malformed body)
/// refuses the upload.
pub type CompleteForm = BoxFuture<'static, Result<ProxyUpload, StorageError>>;

/// A version written, and the file after it.
#[derive(Debug, Clone)]
pub struct UploadResult {
    pub file: FileRecord,
    pub version: Version,
}

/// `GET /download/proxy` and `POST /download/presign`.
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub path: FilePath,
    pub version: VersionSelector,
    pub range: Option<ByteRange>,
}

/// A download being streamed.
#[derive(Debug)]
pub struct Download {
    pub file: FileRecord,
    pub version: Version,
    pub read: BlobRead,
}

/// A presigned download.
#[derive(Debug, Clone)]
pub struct PresignedDownload {
    pub file: FileRecord,
    pub version: Version,
    pub request: PresignedRequest,
}

/// A `Content-Disposition` value for `name` that is safe whatever the name holds (RFC 6266):
/// an ASCII fallback `filename` with quotes, backslashes and non-ASCII replaced, and the exact
/// name as RFC 8187 `filename*`.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

fn nothing_uploaded() -> StorageError {
    StorageError::invalid("nothing has been uploaded to this upload's URL yet")
}

/// What a completion checks of the uploaded object: its size (the service's limit, the size
/// announced at presign) and, once measured, its SHA-256 (the hash announced).
fn check_uploaded(
    upload: &UploadReservation,
    size: u64,
    sha256: Option<&str>,
) -> Result<(), StorageError> {
    if size > upload.max_bytes {
        return Err(StorageError::PayloadTooLarge {
            limit: upload.max_bytes,
        });
    }
    if let Some(expected) = upload.expected_size.filter(|s| *s != size) {
        return Err(StorageError::invalid(format!(
            "the uploaded object has {size} bytes, {expected} were announced"
        )));
    }
    if let (Some(expected), Some(sha256)) = (&upload.expected_sha256, sha256)
        && expected != sha256
    {
        return Err(StorageError::invalid(format!(
            "the uploaded object's sha256 is {sha256}, {expected} was announced"
        )));
    }
    Ok(())
}

/// Refuses early what the store would refuse at commit: an archived file, another holder's
/// lock, a failed expectation. The store decides again, atomically.
pub(super) fn precheck_write(
    ctx: &RequestContext,
    existing: Option<&FileRecord>,
    expected: Option<Expectation>,
) -> Result<(), StorageError> {
    if let Some(file) = existing {
        ensure_writable(file.status)?;
        if let Some(lock) = file.lock_held_by_other(ctx.user()) {
            return Err(StorageError::FileLocked(Box::new(lock.clone())));
        }
    }
    if let Some(exp) = expected {
        check_expected(existing.map(|f| f.version), exp)?;
    }
    Ok(())
}

/// The complete form of a proxy upload, checked: its content type (blank: the default) and
/// message, and its tags.
fn checked_form(form: ProxyUpload) -> Result<(ProxyUpload, String, Option<String>), StorageError> {
    let content_type = content_type_or_default(form.content_type.as_deref())?;
    let message = check_text("message", form.message.as_deref())?;
    if let Some(tags) = &form.tags {
        check_tags(tags)?;
    }
    Ok((form, content_type, message))
}

impl StorageService {
    /// `POST /upload/presign`: reserves an upload and returns a URL to PUT it to.
    ///
    /// # Errors
    /// `invalid_request` (content type, size, hash), `payload_too_large`, access errors,
    /// `file_locked`, `invalid_transition` (archived), store faults.
    pub async fn presign_upload(
        &self,
        ctx: &RequestContext,
        req: PresignUploadRequest,
    ) -> Result<PresignedUpload, StorageError> {
        let content_type = content_type_or_default(req.content_type.as_deref())?;
        let sha256 = req.sha256.as_deref().map(check_sha256).transpose()?;
        let limit = self.settings.max_upload_bytes;
        if req.size.is_some_and(|s| s > limit) {
            return Err(StorageError::PayloadTooLarge { limit });
        }
        self.authorize(ctx, &[Need::on(Operation::Upload, &req.path)])
            .await?;
        let existing = self.ports.metadata.find_file(&req.path).await?;
        precheck_write(ctx, existing.as_ref(), None)?;

        let lifetime = self.settings.presign_ttl + self.settings.upload_grace;
        let mut reservation = self.new_reservation(
            ctx,
            UploadKind::Presigned,
            &req.path,
            content_type,
            lifetime,
        );
        // The URL writes a staging key of its own, never the key of a version: completing the
        // upload seals a copy of it (see `complete_upload`).
        reservation.object_key = ObjectKey::staging(req.path.owner(), reservation.id);
        reservation.expected_size = req.size;
        reservation.expected_sha256 = sha256;
        let request = self.upload_url(&reservation, req.size).await?;
        let cap = self.settings.max_open_uploads_per_user;
        self.ports
            .metadata
            .create_reservation(&reservation, Some(cap))
            .await
            .map_err(|e| match e {
                RepoError::TooManyOpenUploads { open, limit } => StorageError::TooManyRequests {
                    detail: super::open_uploads_detail(open, limit),
                    retry_after: self.settings.transfer_limits.retry_after,
                },
                other => other.into(),
            })?;
        Ok(PresignedUpload {
            upload_id: reservation.id,
            request,
            max_bytes: limit,
        })
    }

    /// The URL a presigned upload is given, always bounded: the store's own when it can bound
    /// it (a signed length, or a store whose URLs the service serves); for an upload of
    /// unannounced size on a store whose URLs cannot bound one (S3), a URL to the service
    /// itself, whose PUT the service streams into the same staging key while counting the bytes
    /// against `MAX_UPLOAD_BYTES` (see [`Self::check_staged_put`]). Without such URLs, `size`
    /// is required.
    async fn upload_url(
        &self,
        reservation: &UploadReservation,
        size: Option<u64>,
    ) -> Result<PresignedRequest, StorageError> {
        let bucket = reservation.path.bucket();
        let ttl = self.settings.presign_ttl;
        let stored = self
            .ports
            .blobs
            .presign_put(
                bucket,
                &reservation.object_key,
                &reservation.content_type,
                size,
                ttl,
            )
            .await;
        match (stored, &self.ports.upload_urls) {
            (Err(BlobError::LengthRequired), Some(urls)) if size.is_none() => Ok(urls.sign_put(
                bucket,
                &reservation.object_key,
                &reservation.content_type,
                None,
                ttl,
                self.ports.clock.now(),
            )),
            (stored, _) => Ok(stored?),
        }
    }

    /// `POST /upload/complete`: seals what was uploaded and records it as a new version.
    /// Idempotent: completing again returns the same version.
    ///
    /// The presigned URL writes a staging key that stays writable until it expires, so the
    /// staging object is never the version: it is copied inside the store into a key of its own
    /// that no URL names (under a reservation of its own, so a crash or a failed copy leaves
    /// nothing untracked), the size and SHA-256 are measured on that sealed copy, and the
    /// version records it. The staging object is then deleted; whatever a later PUT to the URL
    /// writes lands in staging again, and the janitor removes it once the reservation has
    /// expired (the store queued it when the upload was completed).
    ///
    /// # Errors
    /// `upload_not_found` (unknown, expired, someone else's), `invalid_request` (nothing
    /// uploaded, size or hash mismatch: the staging object is then removed and the URL may be
    /// used again), `payload_too_large`, and the refusals of a write.
    pub async fn complete_upload(
        &self,
        ctx: &RequestContext,
        upload_id: UploadId,
    ) -> Result<UploadResult, StorageError> {
        let reservation = self
            .ports
            .metadata
            .find_reservation(upload_id)
            .await?
            .filter(|r| &r.created_by == ctx.user() && r.kind == UploadKind::Presigned)
            .ok_or(StorageError::UploadNotFound)?;
        self.authorize(ctx, &[Need::on(Operation::Upload, &reservation.path)])
            .await?;
        if let Some(version_id) = reservation.completed_version {
            return self.completed(version_id).await;
        }
        if reservation.expires_at <= self.ports.clock.now() {
            return Err(StorageError::UploadNotFound);
        }
        let bucket = reservation.path.bucket();
        // A first look at the staging object, to refuse early without copying it.
        let staged = match self.ports.blobs.head(bucket, &reservation.object_key).await {
            Ok(meta) => meta,
            Err(BlobError::NotFound) => return Err(nothing_uploaded()),
            Err(e) => return Err(e.into()),
        };
        if let Err(refusal) = check_uploaded(&reservation, staged.size, None) {
            self.ports
                .blobs
                .delete(bucket, &reservation.object_key)
                .await?;
            return Err(refusal);
        }

        let seal = self.new_reservation(
            ctx,
            UploadKind::Copy,
            &reservation.path,
            reservation.content_type.clone(),
            self.settings.transfer_lease,
        );
        self.ports.metadata.create_reservation(&seal, None).await?;
        let sealed = self
            .with_heartbeat(&seal, None, self.seal(&reservation, &seal))
            .await;
        let (size, sha256) = match sealed {
            Ok(sealed) => sealed,
            Err(e) => {
                self.discard_reservation(&seal).await;
                if matches!(
                    e,
                    StorageError::InvalidRequest(_) | StorageError::PayloadTooLarge { .. }
                ) {
                    // What was uploaded is refused: the URL may be used again.
                    self.ports
                        .blobs
                        .delete(bucket, &reservation.object_key)
                        .await?;
                }
                return Err(e);
            }
        };
        let cmd = NewVersion {
            reservation: seal.id,
            completes: Some(reservation.id),
            path: reservation.path.clone(),
            new_file_id: self.new_file_id(),
            version_id: seal.version_id,
            object_key: seal.object_key.clone(),
            size,
            sha256,
            content_type: reservation.content_type.clone(),
            author: ctx.user().clone(),
            message: None,
            status: VersionStatus::Draft,
            tags: None,
            mode: WriteMode::Upsert {
                expected: None,
                overwrite: true,
            },
            checkout: None,
            audit: self.audit_draft(ctx, AuditAction::Upload, &reservation.path, None),
        };
        match self.ports.metadata.commit_version(cmd).await {
            Ok((file, version)) => {
                // Best effort: the store queued it for the janitor anyway.
                let _ = self
                    .ports
                    .blobs
                    .delete(bucket, &reservation.object_key)
                    .await;
                Ok(UploadResult { file, version })
            }
            Err(RepoError::UploadAlreadyCompleted { version_id }) => {
                self.discard_reservation(&seal).await;
                self.completed(version_id).await
            }
            Err(e) => {
                self.discard_reservation(&seal).await;
                Err(e.into())
            }
        }
    }

    /// Copies the staging object of `upload` into `seal`'s key and measures that copy: its size
    /// and SHA-256, checked against what was announced.
    async fn seal(
        &self,
        upload: &UploadReservation,
        seal: &UploadReservation,
    ) -> Result<(u64, String), StorageError> {
        let bucket = upload.path.bucket();
        match self
            .ports
            .blobs
            .copy(bucket, &upload.object_key, bucket, &seal.object_key)
            .await
        {
            Ok(()) => {}
            Err(BlobError::NotFound) => return Err(nothing_uploaded()),
            Err(BlobError::SourceChanged) => {
                return Err(StorageError::invalid(
                    "the uploaded object changed while it was being completed; complete again",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let sealed = self.ports.blobs.head(bucket, &seal.object_key).await?;
        check_uploaded(upload, sealed.size, None)?;
        let sha256 = self.hash_object(bucket, &seal.object_key).await?;
        check_uploaded(upload, sealed.size, Some(&sha256))?;
        Ok((sealed.size, sha256))
    }

    async fn completed(
        &self,
        version_id: crate::model::VersionId,
    ) -> Result<UploadResult, StorageError> {
        // The version may have been deleted since; then the upload is gone too.
        let (file, version) = self
            .ports
            .metadata
            .find_version(version_id)
            .await?
            .ok_or(StorageError::UploadNotFound)?;
        Ok(UploadResult { file, version })
    }

    async fn hash_object(
        &self,
        bucket: crate::model::BucketKind,
        key: &ObjectKey,
    ) -> Result<String, StorageError> {
        let read = self.ports.blobs.get(bucket, key, None).await?;
        let mut hasher = Sha256::new();
        let mut body = read.body;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StorageError::ObjectStoreUnavailable {
                cause: format!("reading the uploaded object: {e}"),
            })?;
            hasher.update(&chunk);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// A PUT through one of the service's own signed upload URLs (the `/blob/...` routes: every
    /// URL of the local store, and on S3 those of uploads of unannounced size): the signature
    /// is the HTTP adapter's business; this refuses the PUT once the upload the URL was signed
    /// for was completed or has expired, so a used URL writes nothing, not even into staging,
    /// and while an object is already staged for it (one PUT per upload; a completion that
    /// refuses what was uploaded removes it, and the URL may be used again).
    ///
    /// # Errors
    /// `access_denied` when the key is not the staging key of an open presigned upload, or
    /// holds an object already; faults of the stores.
    pub async fn check_staged_put(
        &self,
        bucket: crate::model::BucketKind,
        key: &ObjectKey,
    ) -> Result<(), StorageError> {
        let refused = || {
            StorageError::denied(
                "this upload URL can no longer be used: its upload was completed or has expired",
            )
        };
        if !self.staged_upload_open(bucket, key).await? {
            return Err(refused());
        }
        match self.ports.blobs.head(bucket, key).await {
            Err(BlobError::NotFound) => Ok(()),
            Ok(_) => Err(StorageError::denied(
                "an object was already uploaded with this URL: complete the upload",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `key` is the staging key of an open presigned upload in `bucket`: known, not
    /// completed, not expired (neither reclaimed by the janitor).
    async fn staged_upload_open(
        &self,
        bucket: crate::model::BucketKind,
        key: &ObjectKey,
    ) -> Result<bool, StorageError> {
        let Some(id) = key.staged_upload() else {
            return Ok(false);
        };
        Ok(self
            .ports
            .metadata
            .find_reservation(id)
            .await?
            .is_some_and(|r| {
                r.kind == UploadKind::Presigned
                    && &r.object_key == key
                    && r.path.bucket() == bucket
                    && r.completed_version.is_none()
                    && r.expires_at > self.ports.clock.now()
            }))
    }

    /// After a PUT through one of the service's own upload URLs stored its body (see
    /// [`Self::check_staged_put`], which let it start): keeps the object only if its upload is
    /// still open. A body may take longer than what was left of the reservation, and the
    /// janitor may have reclaimed the reservation (deleting whatever was staged then) while the
    /// body was still arriving: nothing would ever remove an object stored after that. So the
    /// reservation is read again once the object exists: while it is open, the object is
    /// tracked (completed, or reclaimed with its reservation later); otherwise it is deleted
    /// now, or queued for the janitor when the store fails. When the reservation cannot be
    /// read, the object is deleted too (the URL may be used again), and the fault is returned.
    ///
    /// # Errors
    /// `access_denied` when the upload was completed or expired while the body was sent
    /// (nothing was kept); database faults.
    pub async fn settle_staged_put(
        &self,
        bucket: crate::model::BucketKind,
        key: &ObjectKey,
    ) -> Result<(), StorageError> {
        let failure = match self.staged_upload_open(bucket, key).await {
            Ok(true) => return Ok(()),
            Ok(false) => StorageError::denied(
                "this upload was completed or has expired while its body was being sent: \
                 nothing was kept",
            ),
            Err(e) => e,
        };
        if self.ports.blobs.delete(bucket, key).await.is_err() {
            // Due at once: nothing may write this key any more. When the queue cannot be
            // written either, the fault below is what the client sees.
            self.ports
                .metadata
                .queue_deletions(&[(bucket, key.clone())], None)
                .await?;
        }
        Err(failure)
    }

    /// Counts one more proxy upload of the caller on this instance, or refuses it
    /// (`too_many_requests`) past `MAX_CONCURRENT_UPLOADS` or `MAX_CONCURRENT_UPLOADS_PER_USER`.
    /// Call it before reading any byte of the body; the permit goes to [`Self::upload_proxy`].
    ///
    /// # Errors
    /// `too_many_requests`.
    pub fn admit_upload(&self, ctx: &RequestContext) -> Result<TransferPermit, StorageError> {
        self.transfers.admit(ctx.user(), TransferKind::Upload)
    }

    /// `POST /upload/proxy`: streams `body` to the blob store (bounded memory, size limit
    /// enforced as bytes arrive) and records it as a new version.
    ///
    /// `req` holds the fields known when the file began. When the form may go on after the
    /// file, `rest` resolves to the complete form once the inbound adapter has read it: the
    /// fields are checked again, and the version is recorded with the complete form's message,
    /// tags, content type and expectation (the store decides the expectation atomically, so a
    /// late `expected_version` is checked when the version is recorded, not before the bytes).
    ///
    /// Nothing is kept when it fails: the reservation is dropped and its object deleted (or
    /// queued for the janitor when the store is down). The reservation's lease is renewed only
    /// while bytes arrive.
    ///
    /// # Errors
    /// `payload_too_large` as soon as the limit is crossed, `invalid_request` when the client's
    /// stream fails or the form is refused, `too_many_requests` (no upload buffer free), the
    /// refusals of a write, store faults.
    pub async fn upload_proxy(
        &self,
        ctx: &RequestContext,
        permit: TransferPermit,
        req: ProxyUpload,
        body: ByteStream,
        rest: Option<CompleteForm>,
    ) -> Result<UploadResult, StorageError> {
        let _slot = permit;
        let content_type = content_type_or_default(req.content_type.as_deref())?;
        check_text("message", req.message.as_deref())?;
        if let Some(tags) = &req.tags {
            check_tags(tags)?;
        }
        let limit = self.settings.max_upload_bytes;
        if req.declared_size.is_some_and(|s| s > limit) {
            return Err(StorageError::PayloadTooLarge { limit });
        }
        self.authorize(ctx, &[Need::on(Operation::Upload, &req.path)])
            .await?;
        let existing = self.ports.metadata.find_file(&req.path).await?;
        precheck_write(ctx, existing.as_ref(), req.expected)?;

        let reservation = self.new_reservation(
            ctx,
            UploadKind::Proxy,
            &req.path,
            content_type,
            self.settings.transfer_lease,
        );
        self.ports
            .metadata
            .create_reservation(&reservation, None)
            .await?;

        let (metered, meter) = MeteredStream::new(body, limit);
        let put = self.with_heartbeat(
            &reservation,
            Some(&meter),
            self.ports.blobs.put(
                req.path.bucket(),
                &reservation.object_key,
                &reservation.content_type,
                Box::pin(metered),
            ),
        );
        let stored = match put.await {
            Ok(stored) => stored,
            Err(e) => {
                self.discard_reservation(&reservation).await;
                return Err(match e {
                    _ if meter.exceeded() => StorageError::PayloadTooLarge { limit },
                    BlobError::Source(cause) => StorageError::invalid(format!(
                        "the upload stream failed after {} bytes: {cause}",
                        meter.bytes()
                    )),
                    other => other.into(),
                });
            }
        };
        let form = match rest {
            None => Ok(req),
            Some(rest) => rest.await.and_then(|form| {
                if form.path == req.path {
                    Ok(form)
                } else {
                    Err(StorageError::invalid(
                        "the form named its path twice, differently",
                    ))
                }
            }),
        }
        .and_then(checked_form);
        let (form, content_type, message) = match form {
            Ok(checked) => checked,
            Err(e) => {
                self.discard_reservation(&reservation).await;
                return Err(e);
            }
        };
        let cmd = NewVersion {
            reservation: reservation.id,
            completes: None,
            path: form.path.clone(),
            new_file_id: existing
                .as_ref()
                .map_or_else(|| self.new_file_id(), |f| f.id),
            version_id: reservation.version_id,
            object_key: reservation.object_key.clone(),
            size: stored.size.max(meter.bytes()),
            sha256: meter.sha256_hex(),
            content_type,
            author: ctx.user().clone(),
            message,
            status: VersionStatus::Draft,
            tags: form.tags,
            mode: WriteMode::Upsert {
                expected: form.expected,
                overwrite: true,
            },
            checkout: None,
            audit: self.audit_draft(ctx, AuditAction::Upload, &form.path, None),
        };
        self.commit_or_discard(&reservation, cmd).await
    }

    /// Records a version whose object is written; on refusal, discards the reservation and its
    /// object so nothing stays behind.
    pub(crate) async fn commit_or_discard(
        &self,
        reservation: &UploadReservation,
        cmd: NewVersion,
    ) -> Result<UploadResult, StorageError> {
        match self.ports.metadata.commit_version(cmd).await {
            Ok((file, version)) => Ok(UploadResult { file, version }),
            Err(e) => {
                // When the database is down this fails too; the reservation then expires and
                // the janitor reclaims the object.
                self.discard_reservation(reservation).await;
                Err(e.into())
            }
        }
    }

    /// Runs `work` while pushing back the reservation's expiry every third of its lease, so a
    /// long transfer is not reclaimed while it runs, and a crashed one is soon after. With a
    /// `progress` meter (a proxy upload), the lease is renewed only when bytes arrived since the
    /// last renewal: a body that stops sending lets its reservation expire. Without (a copy
    /// inside the store, which the service waits on), it is renewed at every beat.
    pub(crate) async fn with_heartbeat<T>(
        &self,
        reservation: &UploadReservation,
        progress: Option<&Arc<UploadMeter>>,
        work: impl Future<Output = T>,
    ) -> T {
        let lease = self.settings.transfer_lease;
        let beat = lease / 3;
        let heartbeat = async {
            let mut seen = progress.map(|meter| meter.bytes());
            loop {
                self.ports.clock.sleep(beat).await;
                if let Some(meter) = progress {
                    let now = meter.bytes();
                    if seen == Some(now) {
                        continue;
                    }
                    seen = Some(now);
                }
                let until = self.ports.clock.now() + super::chrono_duration(lease);
                // A failed heartbeat is not fatal: the commit checks the reservation.
                let _ = self
                    .ports
                    .metadata
                    .extend_reservation(reservation.id, until)
                    .await;
            }
        }
        .fuse();
        let work = work.fuse();
        pin_mut!(heartbeat, work);
        match select(work, heartbeat).await {
            Either::Left((out, _)) => out,
            Either::Right(((), work)) => work.await,
        }
    }

    /// `GET /download/proxy`: streams a version, or a range of it. The download counts against
    /// `MAX_CONCURRENT_DOWNLOADS` (and per user) until its body is dropped.
    ///
    /// # Errors
    /// `too_many_requests`, access errors, `file_not_found`, `version_not_found`,
    /// `RangeNotSatisfiable`, faults.
    pub async fn download(
        &self,
        ctx: &RequestContext,
        req: DownloadRequest,
    ) -> Result<Download, StorageError> {
        let permit = self.transfers.admit(ctx.user(), TransferKind::Download)?;
        self.authorize(ctx, &[Need::on(Operation::Download, &req.path)])
            .await?;
        let (file, version) = self.file_version(&req.path, req.version).await?;
        let read = match self
            .ports
            .blobs
            .get(req.path.bucket(), &version.object_key, req.range)
            .await
        {
            Ok(read) => read,
            Err(BlobError::RangeNotSatisfiable) => {
                return Err(StorageError::RangeNotSatisfiable { size: version.size });
            }
            Err(e) => return Err(e.into()),
        };
        // The slot is held as long as the body: until its last byte, or its client is gone.
        let body = read.body;
        let read = BlobRead {
            body: Box::pin(body.map(move |chunk| {
                let _ = &permit;
                chunk
            })),
            ..read
        };
        Ok(Download {
            file,
            version,
            read,
        })
    }

    /// `POST /download/presign`: a URL to GET a version directly from the store, answering
    /// with the file's name and type.
    ///
    /// # Errors
    /// Access errors, `file_not_found`, `version_not_found`, faults.
    pub async fn presign_download(
        &self,
        ctx: &RequestContext,
        path: FilePath,
        selector: VersionSelector,
    ) -> Result<PresignedDownload, StorageError> {
        self.authorize(ctx, &[Need::on(Operation::PresignDownload, &path)])
            .await?;
        let (file, version) = self.file_version(&path, selector).await?;
        let options = PresignGetOptions {
            content_disposition: Some(content_disposition(path.name())),
            content_type: Some(version.content_type.clone()),
        };
        let request = self
            .ports
            .blobs
            .presign_get(
                path.bucket(),
                &version.object_key,
                &options,
                self.settings.presign_ttl,
            )
            .await?;
        Ok(PresignedDownload {
            file,
            version,
            request,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let tricky = content_disposition("a \"b\"\\c\u{e9}.txt");
        assert_eq!(
            tricky,
            "attachment; filename=\"a _b__c_.txt\"; filename*=UTF-8''a%20%22b%22%5Cc%C3%A9.txt"
        );
        assert!(!content_disposition("x\r\ny").contains('\n'));
    }
}
