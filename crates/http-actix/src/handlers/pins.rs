//! Pinned versions (issue 16): `POST /versions/{version_id}/pin` and `/unpin`.

use actix_web::{HttpResponse, web::Path};
use storage_domain::{StorageError, model::VersionId};

use super::{State, ok};
use crate::{
    body::JsonBody,
    context::Caller,
    dto::{FileVersionResponse, PinRequest},
    error::ApiError,
    openapi::Errors,
};

/// Pins a version with a label: the retention rules never prune it, and it shows its label as
/// `pinned` wherever versions are returned. Pinning a pinned version replaces its label.
/// Action `write` on the file; refused as a change of tags: `409 file_locked` when someone else
/// holds the lock, `409 invalid_transition` for an archived file. An unknown id and a version
/// of a file the caller may not read are both `404 version_not_found`. Audited as `pin`.
#[utoipa::path(
    post, path = "/versions/{version_id}/pin", operation_id = "pin_version", tag = "versions",
    params(("version_id" = Uuid, Path, description = "The id of the version to pin", example = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d")),
    request_body = PinRequest,
    responses((status = 200, description = "The file and the pinned version", body = FileVersionResponse), Errors)
)]
pub(crate) async fn pin(
    caller: Caller,
    state: State,
    version_id: Path<String>,
    body: JsonBody<PinRequest>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let id = VersionId::parse(&version_id)?;
        let (file, version) = state
            .service()
            .pin(&caller.0, id, body.0.label.as_deref())
            .await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&file, &version)))
    };
    run.await.map_err(|e| caller.fail(e))
}

/// Unpins a version (`pinned` becomes null; a version that is not pinned stays so). As
/// `/pin`: action `write`, the same refusals; audited as `unpin`.
#[utoipa::path(
    post, path = "/versions/{version_id}/unpin", operation_id = "unpin_version", tag = "versions",
    params(("version_id" = Uuid, Path, description = "The id of the version to unpin", example = "01970f0e-4b7c-7d2a-9d0e-5c1f2a3b4c5d")),
    responses((status = 200, description = "The file and the unpinned version", body = FileVersionResponse), Errors)
)]
pub(crate) async fn unpin(
    caller: Caller,
    state: State,
    version_id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let run = async {
        let id = VersionId::parse(&version_id)?;
        let (file, version) = state.service().unpin(&caller.0, id).await?;
        Ok::<_, StorageError>(ok(FileVersionResponse::new(&file, &version)))
    };
    run.await.map_err(|e| caller.fail(e))
}
