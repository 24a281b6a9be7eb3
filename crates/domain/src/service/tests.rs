//! Unit tests of the use cases, on mocks of every port. A mock without an expectation panics
//! when called, so "no expectation" also asserts "never touched".

use bytes::Bytes;
use futures::{executor::block_on, stream};

use super::test_support::*;
use super::*;
use crate::model::{
    AuditOutcome,
    BucketKind::{Companies, Projects, Users},
    DirPath, FileStatus, PendingDeletion, VersionSelector, VersionStatus,
};
use crate::ports::{
    AccessDecision, BlobMeta, ByteStream, Expectation, ListEntry, NewVersion, ProjectAction,
    PutOutcome, WriteMode,
};
use crate::rules::ReviewDecision;

fn allow() -> Result<AccessDecision, ProjectAccessError> {
    Ok(AccessDecision::Allowed { role: None })
}

/// A slot for one proxy upload of alice.
fn admit(svc: &StorageService) -> TransferPermit {
    svc.admit_upload(&ctx("alice", None)).unwrap()
}

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(stream::iter(vec![Ok(Bytes::from_static(bytes))]))
}

/// Reads a ready stream to its end and keeps the bytes, as a blob store would.
fn collect(body: &mut ByteStream) -> Result<Vec<u8>, std::io::Error> {
    use futures::{FutureExt, StreamExt};
    let mut bytes = Vec::new();
    while let Some(Some(chunk)) = body.next().now_or_never() {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// Reads a ready stream to its end, as a blob store would (mocks cannot await).
fn drain(body: &mut ByteStream) -> Result<u64, std::io::Error> {
    use futures::{FutureExt, StreamExt};
    let mut n = 0;
    while let Some(Some(chunk)) = body.next().now_or_never() {
        n += chunk?.len() as u64;
    }
    Ok(n)
}

// ---- access ----------------------------------------------------------------------------------

#[test]
fn users_bucket_of_someone_else_is_refused_before_any_lookup() {
    let svc = Mocks::new().service();
    let err =
        block_on(svc.metadata(&ctx("bob", None), path(Users, "/users/alice/a.txt"))).unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied(_)), "{err:?}");
}

#[test]
fn a_request_from_an_untrusted_origin_has_no_authority_and_its_attempt_is_audited() {
    // Alice's own file, a lock she could take: the project service and the lock are never
    // asked, the refusal is recorded as a denied lock on the file.
    let mut m = Mocks::new();
    m.meta
        .expect_record_refusal()
        .withf(|e, _| {
            e.outcome == AuditOutcome::Denied
                && e.action == AuditAction::Lock
                && e.path.as_str() == "/users/alice/a.txt"
                && e.detail.as_deref() == Some("sent by another site")
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let svc = m.service();
    let ctx = ctx("alice", None).from_untrusted_origin("sent by another site");
    let err = block_on(svc.lock(&ctx, path(Users, "/users/alice/a.txt"), None)).unwrap_err();
    assert!(
        matches!(err, StorageError::AccessDenied(ref d) if d == "sent by another site"),
        "{err:?}"
    );
    // Reads are refused too (the HTTP layer only marks state-changing requests), unaudited.
    let err = block_on(svc.metadata(&ctx, path(Users, "/users/alice/a.txt"))).unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied(_)), "{err:?}");
}

#[test]
fn companies_bucket_follows_the_company_claim() {
    let svc = Mocks::new().service();
    let err = block_on(svc.metadata(
        &ctx("alice", Some("acme")),
        path(Companies, "/companies/globex/a"),
    ))
    .unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied(_)));

    let mut m = Mocks::new();
    let p = path(Companies, "/companies/acme/a");
    let f = file(&p, 1);
    let expected = f.clone();
    m.meta
        .expect_find_file()
        .withf(move |asked| *asked == p)
        .returning(move |_| Ok(Some(f.clone())));
    let svc = m.service();
    let got = block_on(svc.metadata(
        &ctx("alice", Some("acme")),
        path(Companies, "/companies/acme/a"),
    ))
    .unwrap();
    assert_eq!(got, expected);
}

#[test]
fn project_reads_ask_for_read_and_honour_a_denial() {
    let mut m = Mocks::new();
    m.projects
        .expect_check()
        .withf(|caller, check| {
            caller.user_id.as_str() == "bob"
                && check.project_id.as_str() == "p1"
                && check.action == ProjectAction::Read
        })
        .times(1)
        .returning(|_, _| Ok(AccessDecision::Denied { reason: None }));
    let svc = m.service();
    let err =
        block_on(svc.metadata(&ctx("bob", None), path(Projects, "/projects/p1/a"))).unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied(_)));
}

#[test]
fn project_service_failure_denies_with_its_own_code() {
    let mut m = Mocks::new();
    m.projects
        .expect_check()
        .returning(|_, _| Err(ProjectAccessError::Timeout));
    let svc = m.service();
    let err =
        block_on(svc.metadata(&ctx("bob", None), path(Projects, "/projects/p1/a"))).unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::ProjectServiceUnavailable);
}

#[test]
fn checkout_asks_the_project_service_once_in_a_batch() {
    let mut m = Mocks::new();
    m.projects
        .expect_check_batch()
        .withf(|_, checks| {
            let actions: Vec<_> = checks.iter().map(|c| c.action).collect();
            actions == vec![ProjectAction::Read, ProjectAction::Lock]
        })
        .times(1)
        .returning(|_, checks| {
            Ok(checks
                .iter()
                .map(|c| {
                    if c.action == ProjectAction::Lock {
                        AccessDecision::Denied { reason: None }
                    } else {
                        AccessDecision::Allowed { role: None }
                    }
                })
                .collect())
        });
    // The refused change is audited, as `denied`, on the copy's target.
    m.meta
        .expect_record_refusal()
        .withf(|e, _| {
            e.outcome == AuditOutcome::Denied
                && e.action == AuditAction::Copy
                && e.path.as_str() == "/users/bob/work/spec.pdf"
                && e.actor.as_str() == "bob"
                && e.detail.as_deref().is_some_and(|d| d.contains("lock"))
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let svc = m.service();
    let req = CopyRequest {
        source: path(Projects, "/projects/p1/spec.pdf"),
        target: path(Users, "/users/bob/work/spec.pdf"),
        overwrite: false,
    };
    let err = block_on(svc.copy(&ctx("bob", None), req)).unwrap_err();
    assert!(
        matches!(err, StorageError::AccessDenied(ref d) if d.contains("lock")),
        "{err:?}"
    );
}

#[test]
fn a_batch_answer_of_the_wrong_size_fails_closed() {
    let mut m = Mocks::new();
    m.projects
        .expect_check_batch()
        .returning(|_, _| Ok(vec![AccessDecision::Allowed { role: None }]));
    let svc = m.service();
    let req = CopyRequest {
        source: path(Projects, "/projects/p1/spec.pdf"),
        target: path(Users, "/users/bob/work/spec.pdf"),
        overwrite: false,
    };
    let err = block_on(svc.copy(&ctx("bob", None), req)).unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::ProjectServiceUnavailable);
}

// ---- locks -----------------------------------------------------------------------------------

#[test]
fn force_unlock_without_reason_is_refused_before_anything() {
    let svc = Mocks::new().service();
    let err = block_on(svc.unlock(
        &ctx("alice", None),
        path(Users, "/users/alice/a"),
        true,
        None,
    ))
    .unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest(_)));
}

#[test]
fn force_unlock_in_projects_needs_validate() {
    let mut m = Mocks::new();
    m.projects
        .expect_check()
        .withf(|_, c| c.action == ProjectAction::Validate)
        .times(1)
        .returning(|_, _| Ok(AccessDecision::Denied { reason: None }));
    // Audited as a denied force-unlock; a store that is down does not change the refusal.
    m.meta
        .expect_record_refusal()
        .withf(|e, _| e.outcome == AuditOutcome::Denied && e.action == AuditAction::ForceUnlock)
        .times(1)
        .returning(|_, _| Err(RepoError::Unavailable("down".into())));
    let svc = m.service();
    let err = block_on(svc.unlock(
        &ctx("bob", None),
        path(Projects, "/projects/p1/a"),
        true,
        Some("holder left".into()),
    ))
    .unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied(_)));
}

#[test]
fn force_unlock_records_the_reason() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 1);
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    m.meta
        .expect_release_lock()
        .withf(|cmd| {
            cmd.force
                && cmd.audit.action == AuditAction::ForceUnlock
                && cmd.audit.detail.as_deref() == Some("holder left")
        })
        .times(1)
        .returning(|_| Ok(Some(lock_by("carol", 1))));
    let svc = m.service();
    let released =
        block_on(svc.unlock(&ctx("alice", None), p, true, Some(" holder left ".into()))).unwrap();
    assert_eq!(released.unwrap().holder.as_str(), "carol");
}

#[test]
fn lock_ttl_is_bounded_and_archived_files_cannot_be_locked() {
    let svc = Mocks::new().service();
    let err = block_on(svc.lock(&ctx("alice", None), path(Users, "/users/alice/a"), Some(0)))
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest(_)));

    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let mut f = file(&p, 1);
    f.status = FileStatus::Archived;
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    let svc = m.service();
    let err = block_on(svc.lock(&ctx("alice", None), p, None)).unwrap_err();
    assert!(matches!(err, StorageError::InvalidTransition(_)));
}

#[test]
fn a_lock_held_by_another_comes_back_with_the_holder() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 1);
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    m.meta
        .expect_acquire_lock()
        .withf(|cmd| {
            cmd.ttl == std::time::Duration::from_secs(60) && cmd.holder.as_str() == "alice"
        })
        .returning(|_| Err(RepoError::FileLocked(lock_by("carol", 1))));
    let svc = m.service();
    let err = block_on(svc.lock(&ctx("alice", None), p, Some(60))).unwrap_err();
    assert_eq!(err.lock().map(|l| l.holder.as_str()), Some("carol"));
}

// ---- uploads ---------------------------------------------------------------------------------

#[test]
fn proxy_upload_records_size_hash_and_audit() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/notes/todo.txt");
    m.meta.expect_find_file().returning(|_| Ok(None));
    m.meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&received);
    m.blobs
        .expect_put()
        .times(1)
        .returning(move |_, _, _, mut body| {
            // Read the metered stream as a store would.
            let bytes = collect(&mut body).unwrap();
            let size = bytes.len() as u64;
            *sink.lock().unwrap() = bytes;
            Ok(PutOutcome { size, etag: None })
        });
    let recorded = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = std::sync::Arc::clone(&recorded);
    let expected_path = p.clone();
    m.meta
        .expect_commit_version()
        .withf(move |cmd| {
            cmd.size == 11
                && cmd.sha256 == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
                && cmd.path == expected_path
                && cmd.status == VersionStatus::Draft
                && cmd.audit.action == AuditAction::Upload
                && cmd.audit.request_id == "req-1"
                && cmd.message.as_deref() == Some("first")
                && cmd.object_key.as_str().starts_with("alice/")
        })
        .times(1)
        .returning(move |cmd| {
            let mut f = file(&cmd.path, 1);
            f.size = cmd.size;
            let v = version_of(&f, 1, VersionStatus::Draft);
            *slot.lock().unwrap() = Some((f.clone(), v.clone()));
            Ok((f, v))
        });
    let svc = m.service();
    let req = ProxyUpload {
        path: p,
        content_type: Some("text/plain".into()),
        tags: None,
        message: Some("first".into()),
        expected: None,
        declared_size: None,
    };
    let out = block_on(svc.upload_proxy(
        &ctx("alice", None),
        admit(&svc),
        req,
        body(b"hello world"),
        None,
    ))
    .unwrap();
    // The store received the bytes as sent, and the answer is the version the store recorded.
    assert_eq!(*received.lock().unwrap(), b"hello world");
    let (file, version) = recorded.lock().unwrap().take().unwrap();
    assert_eq!((out.file, out.version), (file, version));
}

/// A discarded transfer queues its key once more, due after the transfer lease (300 s).
fn expect_deferred_deletion(m: &mut Mocks, key_prefix: &'static str) {
    m.meta
        .expect_queue_deletions()
        .withf(move |objects, not_before| {
            objects.len() == 1
                && objects[0].1.as_str().starts_with(key_prefix)
                && *not_before == Some(now() + chrono::TimeDelta::seconds(300))
        })
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
}

/// The entry a store queues when it drops a reservation, to be returned by the
/// `abandon_reservation` the caller expects: its object is deleted at once and the entry
/// forgotten.
fn expect_deleted_at_once(m: &mut Mocks) -> PendingDeletion {
    let deletion = PendingDeletion {
        id: crate::model::DeletionId::from_uuid(uuid::Uuid::from_u128(9)),
        bucket: Users,
        object_key: ObjectKey::from_stored("alice/x"),
        attempts: 0,
    };
    m.blobs.expect_delete().times(1).returning(|_, _| Ok(()));
    let id = deletion.id;
    m.meta
        .expect_forget_deletion()
        .withf(move |queued| *queued == id)
        .times(1)
        .returning(|_| Ok(()));
    deletion
}

/// A proxy upload of a new file whose reservation is made and whose put fails as the body
/// fails (the store reads it to its end): nothing is committed, and the key given up is queued
/// once more. The caller sets how the reservation's abandon goes.
fn expect_a_put_given_up(m: &mut Mocks) {
    m.meta.expect_find_file().returning(|_| Ok(None));
    m.meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    m.blobs
        .expect_put()
        .times(1)
        .returning(|_, _, _, mut body| {
            drain(&mut body).map_err(BlobError::Source)?;
            Ok(PutOutcome {
                size: 0,
                etag: None,
            })
        });
    m.meta.expect_commit_version().never();
    expect_deferred_deletion(m, "alice/");
}

#[test]
fn proxy_upload_over_the_limit_keeps_nothing() {
    let mut m = Mocks::new(); // limit 1000 bytes
    let p = path(Users, "/users/alice/big.bin");
    expect_a_put_given_up(&mut m);
    let queued = expect_deleted_at_once(&mut m);
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .returning(move |_| Ok(Some(queued.clone())));
    let svc = m.service();
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        (0..20).map(|_| Ok(Bytes::from(vec![7u8; 100]))).collect();
    let req = ProxyUpload {
        path: p,
        content_type: None,
        tags: None,
        message: None,
        expected: None,
        declared_size: None,
    };
    let err = block_on(svc.upload_proxy(
        &ctx("alice", None),
        admit(&svc),
        req,
        Box::pin(stream::iter(chunks)),
        None,
    ))
    .unwrap_err();
    assert!(
        matches!(err, StorageError::PayloadTooLarge { limit: 1000 }),
        "{err:?}"
    );
}

#[test]
fn a_declared_size_over_the_limit_is_refused_before_anything() {
    let svc = Mocks::new().service();
    let req = ProxyUpload {
        path: path(Users, "/users/alice/big.bin"),
        content_type: None,
        tags: None,
        message: None,
        expected: None,
        declared_size: Some(1001),
    };
    let err = block_on(svc.upload_proxy(&ctx("alice", None), admit(&svc), req, body(b""), None))
        .unwrap_err();
    assert!(matches!(err, StorageError::PayloadTooLarge { .. }));
}

#[test]
fn if_match_mismatch_is_a_precondition_conflict_before_any_byte() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 3);
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    let svc = m.service();
    let req = ProxyUpload {
        path: p,
        content_type: None,
        tags: None,
        message: None,
        expected: Some(Expectation {
            latest: Some(n(2)),
            precondition: true,
        }),
        declared_size: None,
    };
    let err = block_on(svc.upload_proxy(&ctx("alice", None), admit(&svc), req, body(b"x"), None))
        .unwrap_err();
    assert!(
        matches!(err, StorageError::VersionConflict { precondition: true, current: Some(c), .. } if c == n(3)),
        "{err:?}"
    );
}

#[test]
fn upload_to_a_file_locked_by_another_is_refused_before_any_byte() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let mut f = file(&p, 1);
    f.lock = Some(lock_by("carol", 1));
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    let svc = m.service();
    let req = ProxyUpload {
        path: p,
        content_type: None,
        tags: None,
        message: None,
        expected: None,
        declared_size: None,
    };
    let err = block_on(svc.upload_proxy(&ctx("alice", None), admit(&svc), req, body(b"x"), None))
        .unwrap_err();
    assert!(matches!(err, StorageError::FileLocked(_)));
}

#[test]
fn a_refused_commit_discards_the_written_object() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    m.meta.expect_find_file().returning(|_| Ok(None));
    m.meta.expect_create_reservation().returning(|_, _| Ok(()));
    m.blobs.expect_put().returning(|_, _, _, _| {
        Ok(PutOutcome {
            size: 1,
            etag: None,
        })
    });
    m.meta
        .expect_commit_version()
        .returning(|_| Err(RepoError::FileLocked(lock_by("carol", 1))));
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    expect_deferred_deletion(&mut m, "alice/");
    let svc = m.service();
    let req = ProxyUpload {
        path: p,
        content_type: None,
        tags: None,
        message: None,
        expected: None,
        declared_size: None,
    };
    let err = block_on(svc.upload_proxy(&ctx("alice", None), admit(&svc), req, body(b"x"), None))
        .unwrap_err();
    assert!(matches!(err, StorageError::FileLocked(_)));
}

#[test]
fn presign_refuses_bad_input_before_anything() {
    let svc = Mocks::new().service();
    let base = PresignUploadRequest {
        path: path(Users, "/users/alice/a.pdf"),
        content_type: Some("application/pdf".into()),
        size: None,
        sha256: None,
    };
    let c = ctx("alice", None);
    let too_big = PresignUploadRequest {
        size: Some(1001),
        ..base.clone()
    };
    assert!(matches!(
        block_on(svc.presign_upload(&c, too_big)),
        Err(StorageError::PayloadTooLarge { .. })
    ));
    let bad_hash = PresignUploadRequest {
        sha256: Some("xyz".into()),
        ..base.clone()
    };
    assert!(matches!(
        block_on(svc.presign_upload(&c, bad_hash)),
        Err(StorageError::InvalidRequest(_))
    ));
    let bad_type = PresignUploadRequest {
        content_type: Some("pdf".into()),
        ..base
    };
    assert!(matches!(
        block_on(svc.presign_upload(&c, bad_type)),
        Err(StorageError::InvalidRequest(_))
    ));
}

#[test]
fn presign_reserves_an_upload_that_expires_after_the_url() {
    let mut m = Mocks::new();
    m.meta.expect_find_file().returning(|_| Ok(None));
    m.blobs
        .expect_presign_put()
        .withf(|bucket, key, ct, len, ttl| {
            *bucket == Users
                && key.staged_upload().is_some()
                && ct == "application/pdf"
                && *len == Some(5)
                && ttl.as_secs() == 900
        })
        .returning(|_, _, _, _, ttl| {
            Ok(crate::ports::PresignedRequest {
                method: crate::ports::PresignMethod::Put,
                url: "http://s3/x".into(),
                headers: vec![],
                expires_at: now() + chrono::TimeDelta::from_std(ttl).unwrap(),
            })
        });
    m.meta
        .expect_create_reservation()
        .withf(|r, _| {
            r.expected_size == Some(5)
                && r.expires_at == now() + chrono::TimeDelta::seconds(900 + 3600)
                && r.created_by.as_str() == "alice"
                && r.object_key == ObjectKey::staging(r.path.owner(), r.id)
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let svc = m.service();
    let out = block_on(svc.presign_upload(
        &ctx("alice", None),
        PresignUploadRequest {
            path: path(Users, "/users/alice/a.pdf"),
            content_type: Some("application/pdf".into()),
            size: Some(5),
            sha256: None,
        },
    ))
    .unwrap();
    assert_eq!(out.max_bytes, 1000);
}

/// A store whose URLs cannot bound an unannounced size (S3): it refuses to sign one.
fn store_signing_lengths_only(m: &mut Mocks) {
    m.blobs
        .expect_presign_put()
        .returning(|_, _, _, len, ttl| match len {
            None => Err(BlobError::LengthRequired),
            Some(_) => Ok(crate::ports::PresignedRequest {
                method: crate::ports::PresignMethod::Put,
                url: "http://s3/staged".into(),
                headers: vec![],
                expires_at: now() + chrono::TimeDelta::from_std(ttl).unwrap(),
            }),
        });
}

fn presign_of(size: Option<u64>) -> PresignUploadRequest {
    PresignUploadRequest {
        path: path(Users, "/users/alice/a.pdf"),
        content_type: Some("application/pdf".into()),
        size,
        sha256: None,
    }
}

#[test]
fn an_unsized_presign_gets_a_service_url_where_the_store_cannot_bound_it() {
    let mut m = Mocks::new();
    m.meta.expect_find_file().returning(|_| Ok(None));
    store_signing_lengths_only(&mut m);
    m.meta
        .expect_create_reservation()
        .withf(|r, _| r.object_key == ObjectKey::staging(r.path.owner(), r.id))
        .times(2)
        .returning(|_, _| Ok(()));
    let mut urls = crate::ports::MockServiceUploadUrls::new();
    urls.expect_sign_put()
        .withf(|bucket, key, ct, len, ttl, at| {
            *bucket == Users
                && key.staged_upload().is_some()
                && ct == "application/pdf"
                && len.is_none()
                && ttl.as_secs() == 900
                && *at == now()
        })
        .times(1)
        .returning(|_, _, _, _, ttl, at| crate::ports::PresignedRequest {
            method: crate::ports::PresignMethod::Put,
            url: "http://service/blob/staged".into(),
            headers: vec![],
            expires_at: at + chrono::TimeDelta::from_std(ttl).unwrap(),
        });
    let svc = m.service_with_upload_urls(urls);
    let c = ctx("alice", None);
    let without_size = block_on(svc.presign_upload(&c, presign_of(None))).unwrap();
    assert_eq!(without_size.request.url, "http://service/blob/staged");
    assert_eq!(without_size.max_bytes, 1000);
    // A size announced: the store's own URL, which signs it.
    let sized = block_on(svc.presign_upload(&c, presign_of(Some(5)))).unwrap();
    assert_eq!(sized.request.url, "http://s3/staged");
}

#[test]
fn without_service_urls_an_unsized_presign_needs_a_size() {
    let mut m = Mocks::new();
    m.meta.expect_find_file().returning(|_| Ok(None));
    store_signing_lengths_only(&mut m);
    m.meta.expect_create_reservation().never();
    let svc = m.service();
    let err = block_on(svc.presign_upload(&ctx("alice", None), presign_of(None))).unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidRequest(ref d) if d.contains("size is required")),
        "{err:?}"
    );
}

fn reservation_for(p: &FilePath, owner: &str) -> crate::model::UploadReservation {
    let version_id = crate::model::VersionId::from_uuid(uuid::Uuid::from_u128(77));
    crate::model::UploadReservation {
        id: crate::model::UploadId::from_uuid(uuid::Uuid::from_u128(78)),
        kind: UploadKind::Presigned,
        path: p.clone(),
        created_by: user(owner),
        version_id,
        object_key: ObjectKey::staging(
            p.owner(),
            crate::model::UploadId::from_uuid(uuid::Uuid::from_u128(78)),
        ),
        content_type: "text/plain".into(),
        expected_size: Some(3),
        expected_sha256: None,
        max_bytes: 1000,
        expires_at: now() + chrono::TimeDelta::hours(1),
        created_at: now(),
        completed_version: None,
    }
}

#[test]
fn complete_of_someone_elses_upload_is_not_found() {
    let mut m = Mocks::new();
    let r = reservation_for(&path(Users, "/users/alice/a"), "alice");
    let id = r.id;
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(r.clone())));
    let svc = m.service();
    let err = block_on(svc.complete_upload(&ctx("bob", None), id)).unwrap_err();
    assert!(matches!(err, StorageError::UploadNotFound));
}

#[test]
fn complete_with_a_size_mismatch_removes_the_object() {
    let mut m = Mocks::new();
    let r = reservation_for(&path(Users, "/users/alice/a"), "alice");
    let id = r.id;
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(r.clone())));
    m.blobs.expect_head().returning(|_, _| {
        Ok(BlobMeta {
            size: 4,
            etag: None,
            content_type: None,
        })
    });
    m.blobs.expect_delete().times(1).returning(|_, _| Ok(()));
    m.meta.expect_commit_version().never();
    let svc = m.service();
    let err = block_on(svc.complete_upload(&ctx("alice", None), id)).unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidRequest(ref d) if d.contains("4 bytes")),
        "{err:?}"
    );
}

#[test]
fn complete_before_the_put_says_so() {
    let mut m = Mocks::new();
    let r = reservation_for(&path(Users, "/users/alice/a"), "alice");
    let id = r.id;
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(r.clone())));
    m.blobs
        .expect_head()
        .returning(|_, _| Err(BlobError::NotFound));
    let svc = m.service();
    let err = block_on(svc.complete_upload(&ctx("alice", None), id)).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest(_)));
}

#[test]
fn complete_is_idempotent() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 1);
    let v = version_of(&f, 1, VersionStatus::Draft);
    let mut r = reservation_for(&p, "alice");
    r.completed_version = Some(v.id);
    let id = r.id;
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(r.clone())));
    let (f2, v2) = (f.clone(), v.clone());
    m.meta
        .expect_find_version()
        .withf(move |id| *id == v2.id)
        .returning(move |_| Ok(Some((f2.clone(), v.clone()))));
    let svc = m.service();
    let out = block_on(svc.complete_upload(&ctx("alice", None), id)).unwrap();
    assert_eq!(out.version.number, n(1));
    assert_eq!(out.file, f);
}

/// A staging object of `bytes`: `head` and `get` of the staging key answer them; `head` and
/// `get` of any other key (the sealed copy) answer `sealed`.
fn staged_and_sealed(m: &mut Mocks, staged: &'static [u8], sealed: &'static [u8]) {
    let pick = move |key: &ObjectKey| {
        if key.staged_upload().is_some() {
            staged
        } else {
            sealed
        }
    };
    m.blobs.expect_head().returning(move |_, key| {
        Ok(BlobMeta {
            size: pick(key).len() as u64,
            etag: None,
            content_type: None,
        })
    });
    m.blobs.expect_get().returning(move |_, key, _| {
        let bytes = pick(key);
        Ok(crate::ports::BlobRead {
            total_size: bytes.len() as u64,
            range: None,
            etag: None,
            body: body(bytes),
        })
    });
}

#[test]
fn complete_seals_a_copy_and_records_what_the_copy_holds() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let r = reservation_for(&p, "alice");
    let (id, staging) = (r.id, r.object_key.clone());
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(r.clone())));
    // The client may overwrite staging at any moment; the version is what the copy holds.
    staged_and_sealed(&mut m, b"abc", b"xyz");
    m.meta
        .expect_create_reservation()
        .withf(|seal, _| seal.kind == UploadKind::Copy && seal.object_key.staged_upload().is_none())
        .times(1)
        .returning(|_, _| Ok(()));
    let from = staging.clone();
    m.blobs
        .expect_copy()
        .withf(move |fb, f, tb, to| {
            *fb == Users && *f == from && *tb == Users && to.as_str().starts_with("alice/")
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    m.meta
        .expect_commit_version()
        .withf(move |cmd| {
            cmd.completes == Some(id)
                && cmd.reservation != id
                && cmd.object_key.as_str().starts_with("alice/")
                && cmd.size == 3
                && cmd.sha256 == sha256_of(b"xyz")
        })
        .times(1)
        .returning(|cmd| {
            let f = file(&cmd.path, 1);
            let v = version_of(&f, 1, VersionStatus::Draft);
            Ok((f, v))
        });
    let gone = staging.clone();
    m.blobs
        .expect_delete()
        .withf(move |_, key| *key == gone)
        .times(1)
        .returning(|_, _| Ok(()));
    let svc = m.service();
    let out = block_on(svc.complete_upload(&ctx("alice", None), id)).unwrap();
    assert_eq!(out.version.number, n(1));
}

#[test]
fn a_sealed_copy_that_differs_from_the_announcement_is_discarded() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let mut r = reservation_for(&p, "alice");
    r.expected_sha256 = Some(sha256_of(b"abc"));
    let (id, staging) = (r.id, r.object_key.clone());
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(r.clone())));
    // Staging looked right; what was copied is not what was announced.
    staged_and_sealed(&mut m, b"abc", b"xyz");
    m.meta.expect_create_reservation().returning(|_, _| Ok(()));
    m.blobs.expect_copy().returning(|_, _, _, _| Ok(()));
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    expect_deferred_deletion(&mut m, "alice/");
    let gone = staging.clone();
    m.blobs
        .expect_delete()
        .withf(move |_, key| *key == gone)
        .times(1)
        .returning(|_, _| Ok(()));
    m.meta.expect_commit_version().never();
    let svc = m.service();
    let err = block_on(svc.complete_upload(&ctx("alice", None), id)).unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidRequest(ref d) if d.contains("sha256")),
        "{err:?}"
    );
}

#[test]
fn a_completion_that_lost_the_race_answers_the_winner_and_drops_its_copy() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let r = reservation_for(&p, "alice");
    let id = r.id;
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(r.clone())));
    staged_and_sealed(&mut m, b"abc", b"abc");
    m.meta.expect_create_reservation().returning(|_, _| Ok(()));
    m.blobs.expect_copy().returning(|_, _, _, _| Ok(()));
    let f = file(&p, 1);
    let winner = version_of(&f, 1, VersionStatus::Draft);
    let won = winner.id;
    m.meta
        .expect_commit_version()
        .returning(move |_| Err(RepoError::UploadAlreadyCompleted { version_id: won }));
    let found = (f.clone(), winner.clone());
    m.meta
        .expect_find_version()
        .returning(move |_| Ok(Some(found.clone())));
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    expect_deferred_deletion(&mut m, "alice/");
    let svc = m.service();
    let out = block_on(svc.complete_upload(&ctx("alice", None), id)).unwrap();
    assert_eq!(out.version.id, winner.id);
}

#[test]
fn a_staged_put_needs_its_upload_open() {
    let p = path(Users, "/users/alice/a");
    let open = reservation_for(&p, "alice");
    let key = open.object_key.clone();
    let check = |r: Option<crate::model::UploadReservation>, key: &ObjectKey| {
        let mut m = Mocks::new();
        m.meta
            .expect_find_reservation()
            .returning(move |_| Ok(r.clone()));
        m.blobs
            .expect_head()
            .returning(|_, _| Err(BlobError::NotFound));
        block_on(m.service().check_staged_put(Users, key))
    };
    assert!(check(Some(open.clone()), &key).is_ok());
    // One PUT per upload: an object already staged refuses the next.
    let mut m = Mocks::new();
    let staged = open.clone();
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(staged.clone())));
    m.blobs.expect_head().times(1).returning(|_, _| {
        Ok(BlobMeta {
            size: 3,
            etag: None,
            content_type: None,
        })
    });
    assert!(matches!(
        block_on(m.service().check_staged_put(Users, &key)),
        Err(StorageError::AccessDenied(d)) if d.contains("already uploaded")
    ));
    let mut completed = open.clone();
    completed.completed_version =
        Some(crate::model::VersionId::from_uuid(uuid::Uuid::from_u128(5)));
    let mut expired = open.clone();
    expired.expires_at = now();
    let mut proxy = open.clone();
    proxy.kind = UploadKind::Proxy;
    for refused in [Some(completed), Some(expired), Some(proxy), None] {
        assert!(matches!(
            check(refused, &key),
            Err(StorageError::AccessDenied(_))
        ));
    }
    // A key that is no staging key is refused without a lookup; another bucket is refused.
    let svc = Mocks::new().service();
    assert!(matches!(
        block_on(svc.check_staged_put(Users, &ObjectKey::from_stored("alice/x"))),
        Err(StorageError::AccessDenied(_))
    ));
    let mut m = Mocks::new();
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(open.clone())));
    assert!(matches!(
        block_on(m.service().check_staged_put(Projects, &key)),
        Err(StorageError::AccessDenied(_))
    ));
}

#[test]
fn a_staged_put_that_outlived_its_upload_keeps_nothing() {
    let p = path(Users, "/users/alice/a");
    let open = reservation_for(&p, "alice");
    let key = open.object_key.clone();
    // Still open once the body is stored: the object stays (tracked by its reservation).
    let mut m = Mocks::new();
    let still = open.clone();
    m.meta
        .expect_find_reservation()
        .returning(move |_| Ok(Some(still.clone())));
    m.blobs.expect_delete().never();
    assert!(block_on(m.service().settle_staged_put(Users, &key)).is_ok());

    // Expired (or reclaimed by the janitor, or completed) meanwhile: deleted now, refused.
    let mut expired = open.clone();
    expired.expires_at = now();
    let mut completed = open.clone();
    completed.completed_version =
        Some(crate::model::VersionId::from_uuid(uuid::Uuid::from_u128(5)));
    for gone in [Some(expired), Some(completed), None] {
        let mut m = Mocks::new();
        m.meta
            .expect_find_reservation()
            .returning(move |_| Ok(gone.clone()));
        let deleted = key.clone();
        m.blobs
            .expect_delete()
            .withf(move |bucket, k| *bucket == Users && *k == deleted)
            .times(1)
            .returning(|_, _| Ok(()));
        m.meta.expect_queue_deletions().never();
        assert!(matches!(
            block_on(m.service().settle_staged_put(Users, &key)),
            Err(StorageError::AccessDenied(d)) if d.contains("nothing was kept")
        ));
    }

    // The store fails the delete: the key is queued for the janitor, due at once.
    let mut m = Mocks::new();
    m.meta.expect_find_reservation().returning(|_| Ok(None));
    m.blobs
        .expect_delete()
        .returning(|_, _| Err(BlobError::Unavailable("down".into())));
    let queued = key.clone();
    m.meta
        .expect_queue_deletions()
        .withf(move |objects, not_before| {
            objects == [(Users, queued.clone())] && not_before.is_none()
        })
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    assert!(matches!(
        block_on(m.service().settle_staged_put(Users, &key)),
        Err(StorageError::AccessDenied(_))
    ));

    // The reservation cannot be read: the object goes too, and the fault is the answer.
    let mut m = Mocks::new();
    m.meta
        .expect_find_reservation()
        .returning(|_| Err(RepoError::Unavailable("down".into())));
    m.blobs.expect_delete().times(1).returning(|_, _| Ok(()));
    assert!(matches!(
        block_on(m.service().settle_staged_put(Users, &key)),
        Err(StorageError::DatabaseUnavailable { .. })
    ));
}

pub(crate) fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

// ---- copy and commit -------------------------------------------------------------------------

#[test]
fn checkout_copy_locks_the_source_on_the_copied_version() {
    let mut m = Mocks::new();
    m.projects
        .expect_check_batch()
        .returning(|_, checks| Ok(checks.iter().map(|_| allow().unwrap()).collect()));
    let src = path(Projects, "/projects/p1/spec.pdf");
    let dst = path(Users, "/users/bob/work/spec.pdf");
    let f = file(&src, 4);
    let v = version_of(&f, 4, VersionStatus::Validated);
    let (src2, f2) = (src.clone(), f.clone());
    m.meta
        .expect_find_file_version()
        .withf(move |p, s| *p == src2 && *s == VersionSelector::Latest)
        .returning(move |_, _| Ok(Some((f2.clone(), Some(v.clone())))));
    m.meta.expect_find_file().returning(|_| Ok(None));
    m.meta.expect_create_reservation().returning(|_, _| Ok(()));
    m.blobs
        .expect_copy()
        .withf(|fb, _, tb, to| *fb == Projects && *tb == Users && to.as_str().starts_with("bob/"))
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let file_id = f.id;
    m.meta
        .expect_commit_version()
        .withf(move |cmd| {
            let co = cmd.checkout.as_ref();
            co.is_some_and(|c| {
                c.file_id == file_id
                    && c.base_version == n(4)
                    && c.path.as_str() == "/projects/p1/spec.pdf"
            }) && cmd.status == VersionStatus::Draft
                && cmd.mode
                    == WriteMode::Upsert {
                        expected: None,
                        overwrite: false,
                    }
        })
        .times(1)
        .returning(|cmd| {
            let f = file(&cmd.path, 1);
            let v = version_of(&f, 1, VersionStatus::Draft);
            Ok((f, v))
        });
    let svc = m.service();
    let out = block_on(svc.copy(
        &ctx("bob", None),
        CopyRequest {
            source: src,
            target: dst.clone(),
            overwrite: false,
        },
    ))
    .unwrap();
    assert_eq!(out.file.path, dst);
}

/// The store answers with `source` (and its latest version) for the copy's or commit's source,
/// and with `target` for its target.
fn source_and_target(m: &mut Mocks, source: FileRecord, target: FileRecord) {
    let latest = version_of(&source, source.version.get(), VersionStatus::Draft);
    m.meta
        .expect_find_file_version()
        .withf(|_, s| *s == VersionSelector::Latest)
        .returning(move |_, _| Ok(Some((source.clone(), Some(latest.clone())))));
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(target.clone())));
}

#[test]
fn checkout_of_a_file_locked_by_another_is_refused_with_the_lock() {
    let mut m = Mocks::new();
    m.projects
        .expect_check_batch()
        .returning(|_, checks| Ok(checks.iter().map(|_| allow().unwrap()).collect()));
    let src = path(Projects, "/projects/p1/spec.pdf");
    let mut f = file(&src, 4);
    f.lock = Some(lock_by("carol", 4));
    m.meta.expect_find_file_version().returning(move |_, _| {
        Ok(Some((
            f.clone(),
            Some(version_of(&f, 4, VersionStatus::Draft)),
        )))
    });
    let svc = m.service();
    let err = block_on(svc.copy(
        &ctx("bob", None),
        CopyRequest {
            source: src,
            target: path(Users, "/users/bob/x.pdf"),
            overwrite: false,
        },
    ))
    .unwrap_err();
    assert_eq!(err.lock().map(|l| l.holder.as_str()), Some("carol"));
}

#[test]
fn copy_onto_an_existing_target_needs_overwrite() {
    let mut m = Mocks::new();
    let src = path(Users, "/users/bob/a");
    let dst = path(Users, "/users/bob/b");
    let (fa, fb) = (file(&src, 1), file(&dst, 2));
    source_and_target(&mut m, fa, fb);
    let svc = m.service();
    let err = block_on(svc.copy(
        &ctx("bob", None),
        CopyRequest {
            source: src,
            target: dst,
            overwrite: false,
        },
    ))
    .unwrap_err();
    assert!(matches!(err, StorageError::VersionConflict { current: Some(c), .. } if c == n(2)));
}

#[test]
fn commit_rules_apply_before_any_copy() {
    let src = path(Users, "/users/bob/work/spec.pdf");
    let dst = path(Users, "/users/bob/spec.pdf");
    let c = ctx("bob", None);

    // No message.
    let svc = Mocks::new().service();
    let req = CommitRequest {
        source: src.clone(),
        target: dst.clone(),
        message: None,
        keep_lock: false,
    };
    assert!(matches!(
        block_on(svc.commit(&c, req)),
        Err(StorageError::InvalidRequest(_))
    ));

    // Not locked.
    let mut m = Mocks::new();
    let (fs, fd) = (file(&src, 1), file(&dst, 3));
    source_and_target(&mut m, fs, fd);
    let svc = m.service();
    let req = CommitRequest {
        source: src.clone(),
        target: dst.clone(),
        message: Some("m".into()),
        keep_lock: false,
    };
    assert!(matches!(
        block_on(svc.commit(&c, req)),
        Err(StorageError::InvalidTransition(_))
    ));

    // Stale base.
    let mut m = Mocks::new();
    let fs = file(&src, 1);
    let mut fd = file(&dst, 3);
    fd.lock = Some(lock_by("bob", 2));
    source_and_target(&mut m, fs, fd);
    let svc = m.service();
    let req = CommitRequest {
        source: src,
        target: dst,
        message: Some("m".into()),
        keep_lock: false,
    };
    let err = block_on(svc.commit(&c, req)).unwrap_err();
    assert!(
        matches!(err, StorageError::VersionConflict { current: Some(c), precondition: false, .. } if c == n(3))
    );
}

#[test]
fn a_stale_checkout_ticket_refuses_the_commit_before_any_copy() {
    let src = path(Users, "/users/bob/work/spec.pdf");
    let dst = path(Projects, "/projects/p1/spec.pdf");
    let mut m = Mocks::new();
    m.projects.expect_check().returning(|_, _| allow());
    let mut fd = file(&dst, 3);
    // The lock is hers and stands on the latest version (her own upload moved it)...
    fd.lock = Some(lock_by("bob", 3));
    let mut fs = file(&src, 1);
    fs.id = crate::model::FileId::from_uuid(uuid::Uuid::from_u128(0x5005));
    // ...but her copy was checked out at version 2.
    fs.checkout = Some(crate::model::CheckoutTicket {
        file_id: fd.id,
        path: dst.clone(),
        version: n(2),
    });
    source_and_target(&mut m, fs, fd);
    m.blobs.expect_copy().never();
    let svc = m.service();
    let req = CommitRequest {
        source: src,
        target: dst,
        message: Some("m".into()),
        keep_lock: false,
    };
    let err = block_on(svc.commit(&ctx("bob", None), req)).unwrap_err();
    assert!(
        matches!(err, StorageError::VersionConflict { current: Some(c), .. } if c == n(3)),
        "{err:?}"
    );
}

#[test]
fn commit_creates_a_pending_version_and_a_failed_copy_keeps_nothing() {
    let src = path(Users, "/users/bob/work/spec.pdf");
    let dst = path(Users, "/users/bob/spec.pdf");
    let mut m = Mocks::new();
    let fs = file(&src, 1);
    let mut fd = file(&dst, 3);
    fd.lock = Some(lock_by("bob", 3));
    let vs = version_of(&fs, 1, VersionStatus::Draft);
    m.meta
        .expect_find_file_version()
        .returning(move |_, _| Ok(Some((fs.clone(), Some(vs.clone())))));
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(fd.clone())));
    m.meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    m.blobs
        .expect_copy()
        .returning(|_, _, _, _| Err(BlobError::Unavailable("connection refused".into())));
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Ok(None));
    // The copy may still land after the timeout: its key is deleted again later.
    expect_deferred_deletion(&mut m, "bob/");
    m.meta.expect_commit_version().never();
    let svc = m.service();
    let req = CommitRequest {
        source: src,
        target: dst,
        message: Some("m".into()),
        keep_lock: true,
    };
    let err = block_on(svc.commit(&ctx("bob", None), req)).unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::MinioUnreachable);
}

// ---- restore ---------------------------------------------------------------------------------

/// The store answers `find_version` with version 2 of a file at version 5.
fn restore_fixture(lock: Option<&str>) -> (Mocks, FileRecord, Version) {
    let mut m = Mocks::new();
    let mut f = file(&path(Users, "/users/bob/plan.txt"), 5);
    f.lock = lock.map(|holder| lock_by(holder, 5));
    let mut v = version_of(&f, 2, VersionStatus::Validated);
    v.sha256 = "cd".repeat(32);
    v.size = 42;
    let (f2, v2) = (f.clone(), v.clone());
    m.meta
        .expect_find_version()
        .returning(move |_| Ok(Some((f2.clone(), v2.clone()))));
    (m, f, v)
}

fn restore_of(version: &Version) -> RestoreRequest {
    RestoreRequest {
        version_id: version.id,
        message: None,
        expected: None,
    }
}

#[test]
fn restore_copies_the_version_to_a_key_of_its_own_and_records_where_it_came_from() {
    let (mut m, f, v) = restore_fixture(Some("bob"));
    m.meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    let old_key = v.object_key.clone();
    m.blobs
        .expect_copy()
        .withf(move |fb, from, tb, to| {
            *fb == Users
                && *tb == Users
                && *from == old_key
                && *to != old_key
                && to.as_str().starts_with("bob/")
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let (file_id, old_key) = (f.id, v.object_key.clone());
    m.meta
        .expect_commit_version()
        .withf(move |cmd| {
            cmd.mode
                == WriteMode::Restore {
                    file: file_id,
                    from: n(2),
                    expected: None,
                }
                && cmd.new_file_id == file_id
                && cmd.sha256 == "cd".repeat(32)
                && cmd.size == 42
                && cmd.status == VersionStatus::Draft
                && cmd.author == user("bob")
                && cmd.object_key != old_key
                && cmd.message.as_deref() == Some("restored from version 2")
                && cmd.audit.action == AuditAction::Restore
                && cmd.tags.is_none()
        })
        .times(1)
        .returning(|cmd| {
            let f = file(&cmd.path, 6);
            let mut v = version_of(&f, 6, VersionStatus::Draft);
            v.restored_from = cmd.mode.restored_from();
            Ok((f, v))
        });
    let out = block_on(m.service().restore(&ctx("bob", None), restore_of(&v))).unwrap();
    assert_eq!(out.version.restored_from, Some(n(2)));
}

#[test]
fn restore_under_another_users_lock_is_refused_before_any_copy() {
    let (mut m, _, v) = restore_fixture(Some("carol"));
    m.meta.expect_create_reservation().never();
    m.blobs.expect_copy().never();
    m.meta.expect_commit_version().never();
    let err = block_on(m.service().restore(&ctx("bob", None), restore_of(&v))).unwrap_err();
    assert_eq!(err.lock().map(|l| l.holder.as_str()), Some("carol"));
}

#[test]
fn restore_of_a_stale_if_match_is_refused_before_any_copy() {
    let (mut m, _, v) = restore_fixture(None);
    m.blobs.expect_copy().never();
    let mut req = restore_of(&v);
    req.expected = Some(crate::ports::Expectation {
        latest: Some(n(4)),
        precondition: true,
    });
    let err = block_on(m.service().restore(&ctx("bob", None), req)).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::VersionConflict {
                precondition: true,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn restore_of_a_version_the_caller_may_not_read_is_not_found() {
    let (mut m, _, v) = restore_fixture(None);
    // The attempt is audited on the file, as a denied restore.
    m.meta
        .expect_record_refusal()
        .withf(|e, _| e.action == AuditAction::Restore && e.outcome == AuditOutcome::Denied)
        .times(1)
        .returning(|_, _| Ok(()));
    m.blobs.expect_copy().never();
    let err = block_on(m.service().restore(&ctx("mallory", None), restore_of(&v))).unwrap_err();
    assert!(matches!(err, StorageError::VersionNotFound), "{err:?}");
}

// ---- review ----------------------------------------------------------------------------------

fn review_fixture(status: VersionStatus, author: &str) -> Mocks {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 1);
    let mut v = version_of(&f, 1, status);
    v.author = user(author);
    m.meta
        .expect_find_version()
        .returning(move |_| Ok(Some((f.clone(), v.clone()))));
    m
}

fn vid() -> crate::model::VersionId {
    crate::model::VersionId::from_uuid(uuid::Uuid::from_u128(0xBEEF + 1))
}

#[test]
fn four_eyes_refuses_self_approval() {
    let svc = review_fixture(VersionStatus::PendingValidation, "alice").service();
    let err = block_on(svc.review(&ctx("alice", None), vid(), ReviewDecision::Approve, None))
        .unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied(ref d) if d.contains("four-eyes")));
}

#[test]
fn self_approval_when_allowed() {
    let mut m = review_fixture(VersionStatus::PendingValidation, "alice");
    m.settings.allow_self_approval = true;
    m.meta
        .expect_review_version()
        .withf(|cmd| {
            cmd.from == VersionStatus::PendingValidation && cmd.to == VersionStatus::Validated
        })
        .times(1)
        .returning(|_| {
            let f = file(&path(Users, "/users/alice/a"), 1);
            let v = version_of(&f, 1, VersionStatus::Validated);
            Ok((f, v))
        });
    let svc = m.service();
    assert!(
        block_on(svc.review(&ctx("alice", None), vid(), ReviewDecision::Approve, None)).is_ok()
    );
}

#[test]
fn reject_needs_a_comment() {
    let svc = Mocks::new().service();
    let err = block_on(svc.review(
        &ctx("alice", None),
        vid(),
        ReviewDecision::Reject,
        Some(" ".into()),
    ))
    .unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest(_)));
}

#[test]
fn approving_a_validated_version_is_an_invalid_transition() {
    let svc = review_fixture(VersionStatus::Validated, "carol").service();
    let err = block_on(svc.review(&ctx("alice", None), vid(), ReviewDecision::Approve, None))
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidTransition(_)));
}

#[test]
fn the_losing_concurrent_decision_gets_invalid_transition() {
    let mut m = review_fixture(VersionStatus::PendingValidation, "carol");
    m.meta
        .expect_review_version()
        .returning(|_| Err(RepoError::InvalidTransition("already decided".into())));
    let svc = m.service();
    let err = block_on(svc.review(
        &ctx("alice", None),
        vid(),
        ReviewDecision::Reject,
        Some("no".into()),
    ))
    .unwrap_err();
    assert!(matches!(err, StorageError::InvalidTransition(_)));
}

// ---- reads -----------------------------------------------------------------------------------

#[test]
fn validated_download_without_a_validated_version() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 2);
    m.meta
        .expect_find_file_version()
        .returning(move |_, _| Ok(Some((f.clone(), None))));
    let svc = m.service();
    let err = block_on(svc.download(
        &ctx("alice", None),
        DownloadRequest {
            path: p,
            version: VersionSelector::Validated,
            range: None,
        },
    ))
    .unwrap_err();
    assert!(matches!(err, StorageError::VersionNotFound));
}

#[test]
fn validated_download_serves_the_validated_version_while_a_newer_waits() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let mut f = file(&p, 3);
    f.validated_version = Some(n(2));
    let v2 = version_of(&f, 2, VersionStatus::Validated);
    m.meta
        .expect_find_file_version()
        .withf(|_, s| *s == VersionSelector::Validated)
        .returning(move |_, _| Ok(Some((f.clone(), Some(v2.clone())))));
    m.blobs.expect_get().returning(|_, _, _| {
        Ok(crate::ports::BlobRead {
            total_size: 3,
            range: None,
            etag: None,
            body: body(b"abc"),
        })
    });
    let svc = m.service();
    let out = block_on(svc.download(
        &ctx("alice", None),
        DownloadRequest {
            path: p,
            version: VersionSelector::Validated,
            range: None,
        },
    ))
    .unwrap();
    assert_eq!(out.version.number, n(2));
}

#[test]
fn list_pages_carry_a_cursor_only_when_more_follow() {
    let mut m = Mocks::new();
    let dir = DirPath::parse(Users, "/users/alice/").unwrap();
    m.meta
        .expect_list_children()
        .withf(|_, after, limit| after.is_none() && *limit == 4)
        .returning(|_, _, _| {
            Ok(vec![
                ListEntry::Directory { name: "a".into() },
                ListEntry::Directory { name: "b".into() },
                ListEntry::Directory { name: "c".into() },
            ])
        });
    m.meta
        .expect_list_children()
        .withf(|_, after, _| after.as_deref() == Some("b"))
        .returning(|_, _, _| Ok(vec![ListEntry::Directory { name: "c".into() }]));
    let svc = m.service();
    let c = ctx("alice", None);
    let first = block_on(svc.list(&c, dir.clone(), None, Limit::new(Some(2)).unwrap())).unwrap();
    assert_eq!(first.entries.len(), 2);
    let cursor = first.next_cursor.unwrap();
    let second = block_on(svc.list(&c, dir, Some(&cursor), Limit::new(Some(2)).unwrap())).unwrap();
    assert_eq!(second.entries.len(), 1);
    assert!(second.next_cursor.is_none());
}

#[test]
fn database_faults_keep_their_cause_out_of_the_message() {
    let mut m = Mocks::new();
    m.meta
        .expect_find_file()
        .returning(|_| Err(RepoError::Unavailable("pool timed out at 10.0.0.3".into())));
    let svc = m.service();
    let err =
        block_on(svc.metadata(&ctx("alice", None), path(Users, "/users/alice/a"))).unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::DatabaseUnavailable);
    assert!(!err.to_string().contains("10.0.0.3"));
}

// ---- delete and janitor ----------------------------------------------------------------------

#[test]
fn delete_removes_objects_and_leaves_failures_queued() {
    let mut m = Mocks::new();
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 2);
    m.meta
        .expect_find_file()
        .returning(move |_| Ok(Some(f.clone())));
    let pending = |i: u128| PendingDeletion {
        id: crate::model::DeletionId::from_uuid(uuid::Uuid::from_u128(i)),
        bucket: Users,
        object_key: ObjectKey::from_stored(format!("alice/{i}")),
        attempts: 0,
    };
    m.meta
        .expect_delete_file()
        .times(1)
        .returning(move |_| Ok(vec![pending(1), pending(2)]));
    m.blobs.expect_delete().returning(|_, key| {
        if key.as_str() == "alice/1" {
            Ok(())
        } else {
            Err(BlobError::Unavailable("down".into()))
        }
    });
    m.meta
        .expect_forget_deletion()
        .withf(|id| id.as_uuid() == uuid::Uuid::from_u128(1))
        .times(1)
        .returning(|_| Ok(()));
    let svc = m.service();
    let deleted = block_on(svc.delete(&ctx("alice", None), p.clone())).unwrap();
    assert_eq!(deleted.path, p);
}

#[test]
fn janitor_reclaims_and_counts() {
    let mut m = Mocks::new();
    m.meta
        .expect_expire_reservations()
        .times(1)
        .returning(|_, _| Ok(2));
    let mut first = true;
    m.meta.expect_claim_deletions().returning(move |_, _| {
        if std::mem::take(&mut first) {
            Ok((1..=3)
                .map(|i| PendingDeletion {
                    id: crate::model::DeletionId::from_uuid(uuid::Uuid::from_u128(i)),
                    bucket: Projects,
                    object_key: ObjectKey::from_stored(format!("p/{i}")),
                    attempts: 1,
                })
                .collect())
        } else {
            Ok(vec![])
        }
    });
    m.blobs.expect_delete().returning(|_, key| {
        if key.as_str() == "p/2" {
            Err(BlobError::Unavailable("down".into()))
        } else {
            Ok(())
        }
    });
    m.meta
        .expect_forget_deletion()
        .times(2)
        .returning(|_| Ok(()));
    m.meta.expect_due_trash().returning(|_, _| Ok(vec![]));
    let svc = m.service();
    let report = block_on(svc.run_janitor_once()).unwrap();
    assert_eq!(
        report,
        JanitorReport {
            reservations_expired: 2,
            objects_deleted: 2,
            deletions_failed: 1,
            trash_purged: 0,
            versions_pruned: 0,
        }
    );
}

#[test]
fn unconfigured_project_access_tells_the_caller_how_to_configure_it() {
    let mut m = Mocks::new();
    m.projects.expect_check().returning(|_, _| {
        Err(ProjectAccessError::NotConfigured(
            "set PROJECT_SERVICE_URL".into(),
        ))
    });
    let svc = m.service();
    let err =
        block_on(svc.metadata(&ctx("bob", None), path(Projects, "/projects/p1/a"))).unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::ProjectServiceUnavailable);
    assert!(err.to_string().contains("set PROJECT_SERVICE_URL"), "{err}");
}

#[test]
fn a_denial_carries_the_project_services_reason_when_printable() {
    for (reason, shown) in [
        (
            Some("insufficient_permissions"),
            Some("insufficient_permissions"),
        ),
        (Some("bad\u{0}reason"), None),
        (None, None),
    ] {
        let mut m = Mocks::new();
        let r = reason.map(str::to_owned);
        m.projects
            .expect_check()
            .returning(move |_, _| Ok(AccessDecision::Denied { reason: r.clone() }));
        let svc = m.service();
        let err = block_on(svc.metadata(&ctx("bob", None), path(Projects, "/projects/p1/a")))
            .unwrap_err();
        let text = err.to_string();
        match shown {
            Some(s) => assert!(text.ends_with(&format!(": {s}")), "{text}"),
            None => assert!(text.ends_with("project p1"), "{text}"),
        }
    }
}

#[test]
fn a_file_and_a_directory_of_the_same_name_stay_on_one_page() {
    let mut m = Mocks::new();
    let dir = DirPath::parse(Users, "/users/alice/").unwrap();
    let x = path(Users, "/users/alice/x");
    let fx = file(&x, 1);
    m.meta
        .expect_list_children()
        .withf(|_, after, limit| after.is_none() && *limit == 4)
        .returning(move |_, _, _| {
            Ok(vec![
                ListEntry::Directory { name: "a".into() },
                ListEntry::File(Box::new(fx.clone())),
                ListEntry::Directory { name: "x".into() },
                ListEntry::Directory { name: "y".into() },
            ])
        });
    m.meta
        .expect_list_children()
        .withf(|_, after, _| after.as_deref() == Some("x"))
        .returning(|_, _, _| Ok(vec![ListEntry::Directory { name: "y".into() }]));
    let svc = m.service();
    let c = ctx("alice", None);
    let first = block_on(svc.list(&c, dir.clone(), None, Limit::new(Some(2)).unwrap())).unwrap();
    let names: Vec<_> = first.entries.iter().map(|e| e.name().to_owned()).collect();
    assert_eq!(names, ["a", "x", "x"], "the directory x is not cut off");
    assert!(matches!(first.entries[2], ListEntry::Directory { .. }));
    let cursor = first.next_cursor.unwrap();
    let second = block_on(svc.list(&c, dir, Some(&cursor), Limit::new(Some(2)).unwrap())).unwrap();
    assert_eq!(second.entries.len(), 1);
    assert_eq!(second.entries[0].name(), "y");
    assert!(second.next_cursor.is_none());
}

// ---- version ids reveal nothing --------------------------------------------------------------

#[test]
fn a_version_of_a_file_the_caller_cannot_read_is_not_found_and_the_attempt_audited() {
    for decision in [
        ReviewDecision::Approve,
        ReviewDecision::Submit,
        ReviewDecision::Reject,
    ] {
        let mut m = review_fixture(VersionStatus::PendingValidation, "alice");
        m.meta
            .expect_record_refusal()
            .withf(|e, _| {
                e.outcome == AuditOutcome::Denied
                    && e.actor.as_str() == "mallory"
                    && e.path.as_str() == "/users/alice/a"
            })
            .times(1)
            .returning(|_, _| Ok(()));
        m.meta.expect_review_version().never();
        let svc = m.service();
        let err = block_on(svc.review(&ctx("mallory", None), vid(), decision, Some("no".into())))
            .unwrap_err();
        assert!(matches!(err, StorageError::VersionNotFound), "{err:?}");
    }
    // An unknown id answers the same.
    let mut m = Mocks::new();
    m.meta.expect_find_version().returning(|_| Ok(None));
    let err =
        block_on(
            m.service()
                .review(&ctx("mallory", None), vid(), ReviewDecision::Approve, None),
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::VersionNotFound), "{err:?}");
}

#[test]
fn a_project_reader_without_the_right_to_approve_is_still_refused() {
    let mut m = Mocks::new();
    let p = path(Projects, "/projects/p1/a");
    let f = file(&p, 1);
    let mut v = version_of(&f, 1, VersionStatus::PendingValidation);
    v.author = user("carol");
    m.meta
        .expect_find_version()
        .returning(move |_| Ok(Some((f.clone(), v.clone()))));
    m.projects.expect_check().returning(|_, check| {
        Ok(match check.action {
            ProjectAction::Read => AccessDecision::Allowed { role: None },
            _ => AccessDecision::Denied { reason: None },
        })
    });
    m.meta
        .expect_record_refusal()
        .times(1)
        .returning(|_, _| Ok(()));
    let err = block_on(
        m.service()
            .review(&ctx("bob", None), vid(), ReviewDecision::Approve, None),
    )
    .unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied(_)), "{err:?}");

    // A project member who may not even read it learns nothing.
    let mut m = Mocks::new();
    let p = path(Projects, "/projects/p1/a");
    let f = file(&p, 1);
    let v = version_of(&f, 1, VersionStatus::PendingValidation);
    m.meta
        .expect_find_version()
        .returning(move |_| Ok(Some((f.clone(), v.clone()))));
    m.projects
        .expect_check()
        .returning(|_, _| Ok(AccessDecision::Denied { reason: None }));
    m.meta
        .expect_record_refusal()
        .times(1)
        .returning(|_, _| Ok(()));
    let err = block_on(
        m.service()
            .review(&ctx("bob", None), vid(), ReviewDecision::Approve, None),
    )
    .unwrap_err();
    assert!(matches!(err, StorageError::VersionNotFound), "{err:?}");
}

// ---- hostile input never reaches a store -----------------------------------------------------

#[test]
fn hostile_tags_are_refused_before_any_store_call() {
    use serde_json::json;
    let deep = (0..MAX_TAG_DEPTH).fold(json!("leaf"), |v, _| json!([v]));
    let cases: Vec<serde_json::Value> = vec![
        json!({"k": "a\u{0}b"}),
        json!({"k\u{0}": "v"}),
        json!({"k": {"inner\u{1b}": 1}}),
        json!({"k": ["ok", "bell\u{7}"]}),
        json!({"k": "\u{85}next line"}),
        json!({"": "empty key"}),
        json!({"k".repeat(MAX_TAG_KEY_BYTES + 1): 1}),
        json!({"k": deep}),
        serde_json::Value::Object(
            (0..=MAX_TAG_KEYS)
                .map(|i| (format!("k{i}"), json!(i)))
                .collect(),
        ),
        json!({"k": vec![0; MAX_TAG_VALUES]}),
    ];
    for case in cases {
        let tags = case.as_object().unwrap().clone();
        // Mocks without expectations: any store call would panic.
        let svc = Mocks::new().service();
        let err =
            block_on(svc.update_tags(&ctx("alice", None), path(Users, "/users/alice/a"), tags))
                .unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidRequest(_)),
            "{case}: {err:?}"
        );
    }
    // What is allowed: a line feed in a value, nesting up to the limit, every key count up to it.
    let fine = json!({"note": "line 1\nline 2", "deep": (0..MAX_TAG_DEPTH - 2).fold(json!(1), |v, _| json!([v]))});
    assert!(check_tags(fine.as_object().unwrap()).is_ok());
}

#[test]
fn hostile_cursors_are_refused_before_any_store_call() {
    let svc = Mocks::new().service();
    let dir = DirPath::parse(Users, "/users/alice/").unwrap();
    for cursor in [
        encode_cursor("list", "a\u{0}b"),
        encode_cursor("list", "a/b"),
        encode_cursor("locks", "x"),
        "%%%".to_owned(),
        "A".repeat(5000),
    ] {
        let limit = Limit::new(None).unwrap();
        let err =
            block_on(svc.list(&ctx("alice", None), dir.clone(), Some(&cursor), limit)).unwrap_err();
        assert!(matches!(err, StorageError::InvalidRequest(_)), "{cursor}");
        let err = block_on(svc.list_locks(&ctx("alice", None), dir.clone(), Some(&cursor), limit))
            .unwrap_err();
        assert!(matches!(err, StorageError::InvalidRequest(_)), "{cursor}");
    }
}

// ---- transfer caps ---------------------------------------------------------------------------

fn ready_download(m: &mut Mocks) {
    let p = path(Users, "/users/alice/a");
    let f = file(&p, 1);
    let v = version_of(&f, 1, VersionStatus::Draft);
    m.meta
        .expect_find_file_version()
        .returning(move |_, _| Ok(Some((f.clone(), Some(v.clone())))));
    m.blobs.expect_get().returning(|_, _, _| {
        Ok(crate::ports::BlobRead {
            total_size: 3,
            range: None,
            etag: None,
            body: body(b"abc"),
        })
    });
}

#[test]
fn downloads_past_the_caps_are_refused_until_a_body_is_dropped() {
    let mut m = Mocks::new();
    m.settings.transfer_limits = TransferLimits {
        downloads: 2,
        downloads_per_user: 1,
        ..TransferLimits::default()
    };
    ready_download(&mut m);
    let svc = m.service();
    let get = |who: &str| {
        block_on(svc.download(
            &ctx(who, None),
            DownloadRequest {
                path: path(Users, &format!("/users/{who}/a")),
                version: VersionSelector::Latest,
                range: None,
            },
        ))
    };
    let first = get("alice").unwrap();
    let again = get("alice").unwrap_err();
    assert!(
        matches!(again, StorageError::TooManyRequests { retry_after, .. } if retry_after == std::time::Duration::from_secs(5)),
        "{again:?}"
    );
    let bobs = get("bob").unwrap();
    // Two running: the instance is full, whoever asks.
    assert!(matches!(
        get("carol").unwrap_err(),
        StorageError::TooManyRequests { .. }
    ));
    // The slot is the body's: reading it to its end is not enough, dropping it is.
    drop(first);
    assert!(get("alice").is_ok());
    drop(bobs);
}

#[test]
fn uploads_past_the_caps_are_refused_before_anything() {
    let mut m = Mocks::new();
    m.settings.transfer_limits = TransferLimits {
        uploads: 3,
        uploads_per_user: 2,
        ..TransferLimits::default()
    };
    let svc = m.service();
    let alice = ctx("alice", None);
    let held = [
        svc.admit_upload(&alice).unwrap(),
        svc.admit_upload(&alice).unwrap(),
    ];
    let err = svc.admit_upload(&alice).unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::TooManyRequests);
    let bobs = svc.admit_upload(&ctx("bob", None)).unwrap();
    assert!(svc.admit_upload(&ctx("carol", None)).is_err());
    drop(held);
    assert!(svc.admit_upload(&alice).is_ok());
    drop(bobs);
}

// ---- late fields of a proxy upload -----------------------------------------------------------

fn accept_one_upload(m: &mut Mocks) -> std::sync::Arc<std::sync::Mutex<Option<NewVersion>>> {
    m.meta.expect_find_file().returning(|_| Ok(None));
    m.meta
        .expect_create_reservation()
        .times(1)
        .returning(|_, _| Ok(()));
    m.blobs
        .expect_put()
        .times(1)
        .returning(|_, _, _, mut body| {
            let n = drain(&mut body).map_err(BlobError::Source)?;
            Ok(PutOutcome {
                size: n,
                etag: None,
            })
        });
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = seen.clone();
    m.meta.expect_commit_version().returning(move |cmd| {
        let f = file(&cmd.path, 1);
        let v = version_of(&f, 1, VersionStatus::Draft);
        *slot.lock().unwrap() = Some(cmd);
        Ok((f, v))
    });
    seen
}

fn bare(p: &FilePath) -> ProxyUpload {
    ProxyUpload {
        path: p.clone(),
        content_type: None,
        tags: None,
        message: None,
        expected: None,
        declared_size: None,
    }
}

#[test]
fn fields_read_after_the_file_are_recorded_with_the_version() {
    let mut m = Mocks::new();
    let seen = accept_one_upload(&mut m);
    let svc = m.service();
    let p = path(Users, "/users/alice/a");
    let mut complete = bare(&p);
    complete.message = Some("late message".into());
    complete.content_type = Some("text/markdown".into());
    let mut tags = Tags::new();
    tags.insert("k".into(), "v".into());
    complete.tags = Some(tags.clone());
    complete.expected = Some(Expectation {
        latest: None,
        precondition: false,
    });
    let rest: CompleteForm = Box::pin(async move { Ok(complete) });
    block_on(svc.upload_proxy(
        &ctx("alice", None),
        admit(&svc),
        bare(&p),
        body(b"abc"),
        Some(rest),
    ))
    .unwrap();
    let cmd = seen.lock().unwrap().take().unwrap();
    assert_eq!(cmd.message.as_deref(), Some("late message"));
    assert_eq!(cmd.content_type, "text/markdown");
    assert_eq!(cmd.tags, Some(tags));
    assert!(matches!(
        cmd.mode,
        WriteMode::Upsert {
            expected: Some(Expectation { latest: None, .. }),
            ..
        }
    ));
    assert_eq!(cmd.size, 3);
}

#[test]
fn a_refused_late_field_discards_the_stored_file() {
    for late in [
        Err(StorageError::invalid("the field 'x' is unknown")),
        Ok({
            let mut f = bare(&path(Users, "/users/alice/a"));
            f.message = Some("bell\u{7}".into());
            f
        }),
        Ok(bare(&path(Users, "/users/alice/other"))),
    ] {
        let mut m = Mocks::new();
        m.meta.expect_find_file().returning(|_| Ok(None));
        m.meta.expect_create_reservation().returning(|_, _| Ok(()));
        m.blobs.expect_put().returning(|_, _, _, mut body| {
            drain(&mut body).map_err(BlobError::Source)?;
            Ok(PutOutcome {
                size: 1,
                etag: None,
            })
        });
        m.meta.expect_commit_version().never();
        m.meta
            .expect_abandon_reservation()
            .times(1)
            .returning(|_| Ok(None));
        expect_deferred_deletion(&mut m, "alice/");
        let svc = m.service();
        let rest: CompleteForm = Box::pin(async move { late });
        let err = block_on(svc.upload_proxy(
            &ctx("alice", None),
            admit(&svc),
            bare(&path(Users, "/users/alice/a")),
            body(b"x"),
            Some(rest),
        ))
        .unwrap_err();
        assert!(matches!(err, StorageError::InvalidRequest(_)), "{err:?}");
    }
}

// ---- a transfer given up answers once its reservation is dropped ------------------------------

/// A proxy upload whose body fails after its first bytes (as a body cut off by the idle
/// timeout does), with its reservation made and its put refusing the failed stream. The
/// caller sets how the reservation's abandon goes.
fn a_body_cut_off(mut m: Mocks) -> (StorageService, ProxyUpload, ByteStream) {
    expect_a_put_given_up(&mut m);
    let body: ByteStream = Box::pin(stream::iter(vec![
        Ok(Bytes::from_static(b"first bytes")),
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body sent nothing for 1 s",
        )),
    ]));
    (
        m.service(),
        bare(&path(Users, "/users/alice/cut.bin")),
        body,
    )
}

fn unavailable() -> RepoError {
    RepoError::Unavailable("no database connection available".into())
}

#[test]
fn an_abandon_the_store_could_not_take_is_retried_before_the_answer() {
    let mut m = Mocks::new();
    let mut order = mockall::Sequence::new();
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Err(unavailable()));
    m.clock
        .expect_sleep()
        .withf(|pause| *pause == std::time::Duration::from_millis(100))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| ());
    let queued = expect_deleted_at_once(&mut m);
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_| Ok(Some(queued.clone())));
    let (svc, req, body) = a_body_cut_off(m);
    let err =
        block_on(svc.upload_proxy(&ctx("alice", None), admit(&svc), req, body, None)).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest(_)), "{err:?}");
    // The mocks check on drop that the abandon was asked twice, the second time after a pause.
}

#[test]
fn a_store_that_stays_unavailable_leaves_the_reservation_to_expire() {
    let mut m = Mocks::new();
    m.meta
        .expect_abandon_reservation()
        .times(3)
        .returning(|_| Err(unavailable()));
    let pauses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = pauses.clone();
    m.clock.expect_sleep().returning(move |pause| {
        seen.lock().unwrap().push(pause);
    });
    // Nothing was queued by the store, so nothing is deleted now: the reservation expires
    // and the janitor reclaims its object (besides the deferred entry queued here).
    m.blobs.expect_delete().never();
    let (svc, req, body) = a_body_cut_off(m);
    let err =
        block_on(svc.upload_proxy(&ctx("alice", None), admit(&svc), req, body, None)).unwrap_err();
    // The answer is the upload's own failure, not the store's.
    assert!(matches!(err, StorageError::InvalidRequest(_)), "{err:?}");
    assert_eq!(
        *pauses.lock().unwrap(),
        [
            std::time::Duration::from_millis(100),
            std::time::Duration::from_millis(200)
        ]
    );
}

#[test]
fn an_abandon_refused_for_another_reason_is_not_retried() {
    let mut m = Mocks::new();
    m.meta
        .expect_abandon_reservation()
        .times(1)
        .returning(|_| Err(RepoError::Internal("a constraint failed".into())));
    m.clock.expect_sleep().never();
    m.blobs.expect_delete().never();
    let (svc, req, body) = a_body_cut_off(m);
    let err =
        block_on(svc.upload_proxy(&ctx("alice", None), admit(&svc), req, body, None)).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRequest(_)), "{err:?}");
}

// ---- the lease follows the bytes -------------------------------------------------------------

/// A clock whose sleeps end only when the test says so.
#[derive(Default)]
struct StepClock {
    sleepers: std::sync::Mutex<Vec<futures::channel::oneshot::Sender<()>>>,
}

impl StepClock {
    /// Ends every sleep started so far; true when there was one.
    fn tick(&self) -> bool {
        let woken: Vec<_> = self.sleepers.lock().unwrap().drain(..).collect();
        let any = !woken.is_empty();
        for sleeper in woken {
            let _ = sleeper.send(());
        }
        any
    }
}

#[async_trait::async_trait]
impl crate::ports::Clock for StepClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        now()
    }

    async fn sleep(&self, _duration: std::time::Duration) {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.sleepers.lock().unwrap().push(tx);
        let _ = rx.await;
    }
}

#[test]
fn the_lease_of_a_proxy_upload_is_renewed_only_while_bytes_arrive() {
    use futures::{SinkExt, StreamExt, task::LocalSpawnExt};
    let extended = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut meta = crate::ports::MockMetadataStore::new();
    let count = extended.clone();
    meta.expect_extend_reservation().returning(move |_, _| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    });
    let clock = std::sync::Arc::new(StepClock::default());
    let mut ids = crate::ports::MockIdGenerator::new();
    ids.expect_new_id().returning(uuid::Uuid::now_v7);
    let svc = StorageService::new(
        Ports {
            metadata: std::sync::Arc::new(meta),
            blobs: std::sync::Arc::new(crate::ports::MockBlobStore::new()),
            projects: std::sync::Arc::new(crate::ports::MockProjectAccess::new()),
            clock: clock.clone(),
            ids: std::sync::Arc::new(ids),
            upload_urls: None,
        },
        ServiceSettings::default(),
    );
    let reservation = svc.new_reservation(
        &ctx("alice", None),
        crate::model::UploadKind::Proxy,
        &path(Users, "/users/alice/a"),
        "text/plain".into(),
        std::time::Duration::from_secs(300),
    );
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (mut metered, meter) = MeteredStream::new(Box::pin(rx), 1_000_000);
    let mut pool = futures::executor::LocalPool::new();
    let work = async move {
        // The "store": reads the body to its end.
        let mut n = 0;
        while let Some(chunk) = metered.next().await {
            n += chunk.unwrap().len();
        }
        n
    };
    let svc2 = svc.clone();
    let meter2 = meter.clone();
    let done = pool
        .spawner()
        .spawn_local_with_handle(async move {
            svc2.with_heartbeat(&reservation, Some(&meter2), work).await
        })
        .unwrap();
    let extensions = || extended.load(std::sync::atomic::Ordering::SeqCst);
    pool.run_until_stalled();
    // Bytes arrived since the beat started: renewed.
    pool.run_until(tx.send(Ok(Bytes::from_static(b"abc"))))
        .unwrap();
    pool.run_until_stalled();
    assert!(clock.tick());
    pool.run_until_stalled();
    assert_eq!(extensions(), 1);
    // A silent body: two beats, no renewal.
    for _ in 0..2 {
        assert!(clock.tick());
        pool.run_until_stalled();
    }
    assert_eq!(extensions(), 1);
    // Bytes again: renewed again.
    pool.run_until(tx.send(Ok(Bytes::from_static(b"de"))))
        .unwrap();
    pool.run_until_stalled();
    assert!(clock.tick());
    pool.run_until_stalled();
    assert_eq!(extensions(), 2);
    drop(tx);
    assert_eq!(pool.run_until(done), 5);
    assert_eq!(meter.bytes(), 5);
}
