//! Collaboration: copy (checkout), locks, commit, review.

use actix_web::{
    HttpRequest, HttpResponse,
    web::{Path, Query},
};
use storage_domain::{
    StorageError,
    model::{DirPath, FilePath, VersionId},
    rules::ReviewDecision,
    service::{self, Limit},
};

use super::{State, ok, transfer::if_match};
use crate::{
    body::JsonBody,
    context::Caller,
    dto::{
        CommitRequest, CopyRequest, FileVersionResponse, LockRequest, LockResponse, LocksQuery,
        LocksResponse, OK, RestoreRequest, ReviewRequest, ReviewsQuery, ReviewsResponse,
        UnlockRequest, UnlockResponse,
    },
    error::ApiError,
    openapi::Errors,
};

/// Server-side copy. Copying a `projects` file into the caller's `users` workspace locks the
/// source for the caller, on the version copied (the checkout ticket).
#[utoipa::path(
    post, path = "/copy", operation_id = "copy_file", tag = "collaboration", request_body = CopyRequest,
    responses((status = 200, description = "The target file and its new version", body = FileVersionResponse), Errors)
)]
pub(crate) async fn copy(
    caller: Caller,
    state: State,
    body: JsonBody<CopyRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let run = async {
        let req = service::CopyRequest {
            source: FilePath::parse_request(&body.source_bucket, &body.source_path)?,
            target: FilePath::parse_request(&body.target_bucket, &body.target_path)?,
            overwrite: body.overwrite.unwrap_or(false),
        };
        let done = state.service().copy(&caller.0, req).await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&done.file, &done.version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Takes the lock, or refreshes it when the caller holds it. Held by another: 409
/// `file_locked` with the lock.
#[utoipa::path(
    post, path = "/lock", operation_id = "lock_file", tag = "collaboration", request_body = LockRequest,
    responses((status = 200, description = "The lock", body = LockResponse), Errors)
)]
pub(crate) async fn lock(
    caller: Caller,
    state: State,
    body: JsonBody<LockRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let run = async {
        let path = FilePath::parse_request(&body.bucket, &body.path)?;
        let locked = state
            .service()
            .lock(&caller.0, path, body.ttl_seconds)
            .await?;
        Ok::<_, StorageError>(ok(LockResponse {
            status: OK.to_owned(),
            file_id: locked.file_id.as_uuid(),
            bucket: locked.path.bucket().into(),
            path: locked.path.as_str().to_owned(),
            lock: (&locked.lock).into(),
        }))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Releases the caller's lock; `force` releases anyone's (needs `validate` in projects or
/// ownership elsewhere, and a `reason`; audited). An expired lock is nothing to release: the
/// answer is `released: null`, and nothing is deleted, whoever asks.
#[utoipa::path(
    post, path = "/unlock", operation_id = "unlock_file", tag = "collaboration", request_body = UnlockRequest,
    responses((status = 200, description = "The released lock, or null", body = UnlockResponse), Errors)
)]
pub(crate) async fn unlock(
    caller: Caller,
    state: State,
    body: JsonBody<UnlockRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let run = async {
        let path = FilePath::parse_request(&body.bucket, &body.path)?;
        let released = state
            .service()
            .unlock(&caller.0, path, body.force.unwrap_or(false), body.reason)
            .await?;
        Ok::<_, StorageError>(ok(UnlockResponse {
            status: OK.to_owned(),
            released: released.as_ref().map(Into::into),
        }))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Live locks under a directory, by path.
#[utoipa::path(
    get, path = "/locks", operation_id = "list_locks", tag = "collaboration", params(LocksQuery),
    responses((status = 200, description = "One page of locks", body = LocksResponse), Errors)
)]
pub(crate) async fn locks(
    caller: Caller,
    state: State,
    q: Query<LocksQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let dir = DirPath::parse_request(&q.bucket, &q.path)?;
        let limit = Limit::new(q.limit)?;
        let page = state
            .service()
            .list_locks(&caller.0, dir, q.cursor.as_deref(), limit)
            .await?;
        Ok::<_, StorageError>(ok(LocksResponse {
            status: OK.to_owned(),
            locks: page.locks.iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// The versions waiting for review (`pending_validation`) of the files under a directory, at
/// any depth, oldest first, each with its file (action `read`).
#[utoipa::path(
    get, path = "/reviews", operation_id = "list_reviews", tag = "versions", params(ReviewsQuery),
    responses((status = 200, description = "One page of versions waiting for review", body = ReviewsResponse), Errors)
)]
pub(crate) async fn reviews(
    caller: Caller,
    state: State,
    q: Query<ReviewsQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let dir = DirPath::parse_request(&q.bucket, &q.path)?;
        let limit = Limit::new(q.limit)?;
        let page = state
            .service()
            .list_reviews(&caller.0, dir, q.cursor.as_deref(), limit)
            .await?;
        Ok::<_, StorageError>(ok(ReviewsResponse {
            status: OK.to_owned(),
            reviews: page.reviews.iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// The workspace file becomes the target's next version, `pending_validation`. A workspace copy
/// made by a checkout carries its ticket (`file.checkout`): the target must still be at that
/// version, whatever happened to the lock (else 409 `version_conflict`, nothing created). The
/// caller must hold the target's lock; a source without a ticket needs the lock taken on the
/// target's latest version.
#[utoipa::path(
    post, path = "/versions/commit", operation_id = "commit_version", tag = "versions", request_body = CommitRequest,
    responses((status = 200, description = "The target file and its new version", body = FileVersionResponse), Errors)
)]
pub(crate) async fn commit(
    caller: Caller,
    state: State,
    body: JsonBody<CommitRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let run = async {
        let req = service::CommitRequest {
            source: FilePath::parse_request(&body.source_bucket, &body.source_path)?,
            target: FilePath::parse_request(&body.target_bucket, &body.target_path)?,
            message: body.message,
            keep_lock: body.keep_lock.unwrap_or(false),
        };
        let done = state.service().commit(&caller.0, req).await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&done.file, &done.version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

async fn review(
    caller: Caller,
    state: State,
    version_id: &str,
    decision: ReviewDecision,
    body: ReviewRequest,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let version_id = VersionId::parse(version_id)?;
        let (file, version) = state
            .service()
            .review(&caller.0, version_id, decision, body.comment)
            .await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&file, &version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Approves a `pending_validation` version (action `validate`; not the author's own unless
/// self-approval is allowed). Of two concurrent decisions one wins, the other gets 409
/// `invalid_transition`.
#[utoipa::path(
    post, path = "/versions/{version_id}/approve", operation_id = "approve_version", tag = "versions",
    params(("version_id" = Uuid, Path, description = "The version's id (`version.id` of an upload, copy or commit answer)", example = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d")),
    request_body(content = ReviewRequest, description = "Optional: an empty body is allowed"),
    responses((status = 200, description = "The file and the version after the decision", body = FileVersionResponse), Errors)
)]
pub(crate) async fn approve(
    caller: Caller,
    state: State,
    version_id: Path<String>,
    body: JsonBody<ReviewRequest>,
) -> Result<HttpResponse, ApiError> {
    review(caller, state, &version_id, ReviewDecision::Approve, body.0).await
}

/// Rejects a `pending_validation` version; `comment` is required.
#[utoipa::path(
    post, path = "/versions/{version_id}/reject", operation_id = "reject_version", tag = "versions",
    params(("version_id" = Uuid, Path, description = "The version's id (`version.id` of an upload, copy or commit answer)", example = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d")),
    request_body = crate::dto::RejectRequest,
    responses((status = 200, description = "The file and the version after the decision", body = FileVersionResponse), Errors)
)]
pub(crate) async fn reject(
    caller: Caller,
    state: State,
    version_id: Path<String>,
    body: JsonBody<ReviewRequest>,
) -> Result<HttpResponse, ApiError> {
    review(caller, state, &version_id, ReviewDecision::Reject, body.0).await
}

/// Submits a `draft` version for review (`pending_validation`).
#[utoipa::path(
    post, path = "/versions/{version_id}/submit", operation_id = "submit_version", tag = "versions",
    params(("version_id" = Uuid, Path, description = "The version's id (`version.id` of an upload, copy or commit answer)", example = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d")),
    request_body(content = ReviewRequest, description = "Optional: an empty body is allowed"),
    responses((status = 200, description = "The file and the version after the decision", body = FileVersionResponse), Errors)
)]
pub(crate) async fn submit(
    caller: Caller,
    state: State,
    version_id: Path<String>,
    body: JsonBody<ReviewRequest>,
) -> Result<HttpResponse, ApiError> {
    review(caller, state, &version_id, ReviewDecision::Submit, body.0).await
}

/// Restores a version: its bytes become the next version of the same file (a `draft` by the
/// caller, with `restored_from` naming the restored version), copied inside the object store;
/// nothing is removed or renumbered. Action `write` on the file. As an upload: `409
/// file_locked` when someone else holds the lock, `409 invalid_transition` for an archived
/// file, `If-Match: <n>` makes it conditional (412 when it fails). An unknown id and a version
/// of a file the caller may not read are both `404 version_not_found`.
#[utoipa::path(
    post, path = "/versions/{version_id}/restore", operation_id = "restore_version", tag = "versions",
    params(
        ("version_id" = Uuid, Path, description = "The id of the version to restore", example = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d"),
        ("If-Match" = Option<String>, Header, pattern = "^[0-9]{1,9}$", description = "The version number the file must be at", example = "5"),
    ),
    request_body(content = RestoreRequest, description = "Optional: an empty body is allowed"),
    responses(
        (status = 200, description = "The file and its new version", body = FileVersionResponse),
        (status = 412, description = "`version_conflict`: the `If-Match` precondition failed", body = crate::dto::ErrorBody),
        Errors
    )
)]
pub(crate) async fn restore(
    caller: Caller,
    state: State,
    req: HttpRequest,
    version_id: Path<String>,
    body: JsonBody<RestoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let req = service::RestoreRequest {
            version_id: VersionId::parse(&version_id)?,
            message: body.0.message,
            expected: if_match(&req)?,
        };
        let done = state.service().restore(&caller.0, req).await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&done.file, &done.version)))
    };
    run.await.map_err(|e| caller.fail(e))
}
