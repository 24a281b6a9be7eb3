//! The trash (issue 16): move a file out of the namespace, list, restore, purge.

use actix_web::{HttpResponse, web::Query};
use storage_domain::{
    StorageError,
    model::{DirPath, FilePath, OnConflict, TrashId},
    service::{self, Limit},
};

use super::{State, ok};
use crate::{
    body::JsonBody,
    context::Caller,
    dto::{
        FileResponse, PurgeQuery, TrashEntryResponse, TrashListResponse, TrashQuery, TrashRequest,
        TrashRestoreRequest,
    },
    error::ApiError,
    openapi::Errors,
};

/// Moves a file, with every version and its tags, to the trash (action `delete`):
/// `/metadata` answers `404 file_not_found`, `/list` no longer shows it, and its path is free
/// for a new file. Its audit trail stays (append-only, with its file id). `409 file_locked`
/// when someone else holds its lock. Audited (`trash`).
#[utoipa::path(
    post, path = "/trash", operation_id = "trash_file", tag = "files", request_body = TrashRequest,
    responses((status = 200, description = "The trash entry", body = TrashEntryResponse), Errors)
)]
pub(crate) async fn trash(
    caller: Caller,
    state: State,
    body: JsonBody<TrashRequest>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let path = FilePath::parse_request(&body.0.bucket, &body.0.path)?;
        let item = state.service().trash(&caller.0, path).await?;
        Ok::<_, StorageError>(ok(TrashEntryResponse::new(&item)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// The files in the trash whose path lies under a directory (any depth), newest first, one
/// page (action `read`).
#[utoipa::path(
    get, path = "/trash", operation_id = "list_trash", tag = "files", params(TrashQuery),
    responses((status = 200, description = "One page of the trash", body = TrashListResponse), Errors)
)]
pub(crate) async fn list_trash(
    caller: Caller,
    state: State,
    q: Query<TrashQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let dir = DirPath::parse_request(&q.bucket, &q.path)?;
        let limit = Limit::new(q.limit)?;
        let page = state
            .service()
            .list_trash(&caller.0, dir, q.cursor.as_deref(), limit)
            .await?;
        Ok::<_, StorageError>(ok(TrashListResponse::new(&page)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Brings a file back from the trash with every version (action `write` on its path and on
/// the target). `target_path` (same bucket and owner) defaults to the path it had. When that
/// path holds a file: `on_conflict` `fail` (default) answers `409 version_conflict`, `rename`
/// restores as `name (restored).ext` (or `name (restored 2).ext`, …), `replace` moves the
/// occupant to the trash first (action `delete` too; `409 file_locked` if someone else locked
/// it). An unknown `trash_id` is `404 file_not_found`. Audited (`trash_restore`).
#[utoipa::path(
    post, path = "/trash/restore", operation_id = "restore_from_trash", tag = "files",
    request_body = TrashRestoreRequest,
    responses((status = 200, description = "The restored file", body = FileResponse), Errors)
)]
pub(crate) async fn restore_from_trash(
    caller: Caller,
    state: State,
    body: JsonBody<TrashRestoreRequest>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let req = service::TrashRestoreRequest {
            trash_id: TrashId::parse(&body.0.trash_id)?,
            target_path: body.0.target_path.clone(),
            on_conflict: body.0.on_conflict.map_or(OnConflict::Fail, Into::into),
        };
        let file = state.service().restore_from_trash(&caller.0, req).await?;
        Ok::<_, StorageError>(ok(FileResponse::new(&file)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Purges an entry now (action `delete`): its file, versions and tags are gone for good and
/// its objects are deleted through the deletion queue. Audited (`purge`). An unknown
/// `trash_id` is `404 file_not_found`.
#[utoipa::path(
    delete, path = "/trash", operation_id = "purge_trash", tag = "files", params(PurgeQuery),
    responses((status = 200, description = "The purged entry, as it was", body = TrashEntryResponse), Errors)
)]
pub(crate) async fn purge_trash(
    caller: Caller,
    state: State,
    q: Query<PurgeQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let trash_id = TrashId::parse(&q.trash_id)?;
        let item = state.service().purge_trash(&caller.0, trash_id).await?;
        Ok::<_, StorageError>(ok(TrashEntryResponse::new(&item)))
    };
    run.await.map_err(|e| caller.fail(e))
}
