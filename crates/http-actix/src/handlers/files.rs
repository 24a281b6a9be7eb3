//! Reading and managing files: list, metadata, tags, versions, audit, archive, delete.

use actix_web::{HttpResponse, web::Query};
use storage_domain::{
    StorageError,
    model::{DirPath, FilePath},
    ports::AuditScope,
    service::Limit,
};

use super::{State, ok};
use crate::{
    body::JsonBody,
    context::Caller,
    dto::{
        AuditQuery, AuditResponse, DeleteQuery, FileQuery, FileRef, FileResponse, ListQuery,
        ListResponse, OK, TagsRequest, VersionsQuery, VersionsResponse,
    },
    error::ApiError,
    openapi::Errors,
};

/// The direct children of a directory (files with their metadata, and sub-directories), sorted
/// by name, one page.
#[utoipa::path(
    get, path = "/list", operation_id = "list_directory", tag = "files", params(ListQuery),
    responses((status = 200, description = "One page of the directory", body = ListResponse), Errors)
)]
pub(crate) async fn list(
    caller: Caller,
    state: State,
    q: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let dir = DirPath::parse_request(&q.bucket, &q.path)?;
        let limit = Limit::new(q.limit)?;
        let page = state
            .service()
            .list(&caller.0, dir, q.cursor.as_deref(), limit)
            .await?;
        Ok::<_, StorageError>(ok(ListResponse::new(&page)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// The file's metadata.
#[utoipa::path(
    get, path = "/metadata", operation_id = "get_metadata", tag = "files", params(FileQuery),
    responses((status = 200, description = "The file", body = FileResponse), Errors)
)]
pub(crate) async fn get_metadata(
    caller: Caller,
    state: State,
    q: Query<FileQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let path = FilePath::parse_request(&q.bucket, &q.path)?;
        let file = state.service().metadata(&caller.0, path).await?;
        Ok::<_, StorageError>(ok(FileResponse::new(&file)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Replaces the file's tags (action `write`).
#[utoipa::path(
    patch, path = "/metadata", operation_id = "update_tags", tag = "files", request_body = TagsRequest,
    responses((status = 200, description = "The file after the change", body = FileResponse), Errors)
)]
pub(crate) async fn patch_metadata(
    caller: Caller,
    state: State,
    body: JsonBody<TagsRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let run = async {
        let path = FilePath::parse_request(&body.bucket, &body.path)?;
        let file = state
            .service()
            .update_tags(&caller.0, path, body.tags)
            .await?;
        Ok::<_, StorageError>(ok(FileResponse::new(&file)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// One page of the file's history, newest first (action `read`): `limit` versions (default
/// 100), and the `next_cursor` of the older ones (`null` on the last page). Versions committed
/// while a client pages appear on a new first page, never again on a later one.
#[utoipa::path(
    get, path = "/versions", operation_id = "list_versions", tag = "versions", params(VersionsQuery),
    responses((status = 200, description = "The file and one page of its versions", body = VersionsResponse), Errors)
)]
pub(crate) async fn versions(
    caller: Caller,
    state: State,
    q: Query<VersionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let path = FilePath::parse_request(&q.bucket, &q.path)?;
        let limit = Limit::new(q.limit)?;
        let page = state
            .service()
            .versions(&caller.0, path, q.cursor.as_deref(), limit)
            .await?;
        Ok::<_, StorageError>(ok(VersionsResponse {
            status: OK.to_owned(),
            file: (&page.file).into(),
            versions: page.versions.iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// The audit events of a file, or of a directory's subtree (`path` ending with `/`), newest
/// first (action `read`). Events outlive deleted files.
#[utoipa::path(
    get, path = "/audit", operation_id = "get_audit", tag = "files", params(AuditQuery),
    responses((status = 200, description = "One page of events", body = AuditResponse), Errors)
)]
pub(crate) async fn audit(
    caller: Caller,
    state: State,
    q: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let scope = if q.path.ends_with('/') {
            AuditScope::Directory(DirPath::parse_request(&q.bucket, &q.path)?)
        } else {
            AuditScope::File(FilePath::parse_request(&q.bucket, &q.path)?)
        };
        let limit = Limit::new(q.limit)?;
        let page = state
            .service()
            .audit(&caller.0, scope, q.cursor.as_deref(), limit)
            .await?;
        Ok::<_, StorageError>(ok(AuditResponse {
            status: OK.to_owned(),
            events: page.events.iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }))
    };
    run.await.map_err(|e| caller.fail(e))
}

async fn set_archived(
    caller: Caller,
    state: State,
    body: FileRef,
    archived: bool,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let path = FilePath::parse_request(&body.bucket, &body.path)?;
        let file = state
            .service()
            .set_archived(&caller.0, path, archived)
            .await?;
        Ok::<_, StorageError>(ok(FileResponse::new(&file)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Archives the file: kept read-only, no new version accepted (action `validate`).
#[utoipa::path(
    post, path = "/archive", operation_id = "archive_file", tag = "files", request_body = FileRef,
    responses((status = 200, description = "The archived file", body = FileResponse), Errors)
)]
pub(crate) async fn archive(
    caller: Caller,
    state: State,
    body: JsonBody<FileRef>,
) -> Result<HttpResponse, ApiError> {
    set_archived(caller, state, body.0, true).await
}

/// Restores an archived file to the status of its latest version (action `validate`).
#[utoipa::path(
    post, path = "/unarchive", operation_id = "unarchive_file", tag = "files",
    // An example of its own (not `/archive`'s): a generator that acts on the examples (the
    // consumers' schemathesis run) unarchives a file that nothing else archives or unarchives.
    request_body(content = FileRef,
        example = json!({"bucket": "users", "path": "/users/alice/reports/2024.pdf"})),
    responses((status = 200, description = "The restored file", body = FileResponse), Errors)
)]
pub(crate) async fn unarchive(
    caller: Caller,
    state: State,
    body: JsonBody<FileRef>,
) -> Result<HttpResponse, ApiError> {
    set_archived(caller, state, body.0, false).await
}

/// Removes the file, its versions and their objects for good (action `delete`). The audit
/// trail stays. Answers the file as it was.
#[utoipa::path(
    delete, path = "/delete", operation_id = "delete_file", tag = "files", params(DeleteQuery),
    responses((status = 200, description = "The deleted file, as it was", body = FileResponse), Errors)
)]
pub(crate) async fn delete(
    caller: Caller,
    state: State,
    q: Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let path = FilePath::parse_request(&q.bucket, &q.path)?;
        let file = state.service().delete(&caller.0, path).await?;
        Ok::<_, StorageError>(ok(FileResponse::new(&file)))
    };
    run.await.map_err(|e| caller.fail(e))
}
