//! The OpenAPI 3.1 document, generated from the handlers and DTOs (utoipa). Served at
//! `/openapi.json`, browsable at `/docs` (Scalar, which loads its script from a CDN in the
//! reader's browser), and checked in as `docs/openapi.yaml` (a test fails when it is stale).

use std::collections::BTreeMap;

use utoipa::{
    IntoResponses, Modify, OpenApi,
    openapi::{
        self, ContentBuilder, Ref, RefOr,
        response::{Response, ResponseBuilder},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::{dto, handlers};

/// The API's document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "storage-service",
        description = "Document storage: files of users, companies and projects, with versions, \
locks, review and an audit trail. Every error is `{\"status\":\"error\",\"message\":<code>,\
\"detail\":<sentence>,\"request_id\":<id>}`; every success is a JSON object with \
`\"status\":\"ok\"`. The token comes from the `access_token` cookie (name configurable) or \
`Authorization: Bearer`.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later"),
    ),
    paths(
        handlers::health,
        handlers::live,
        handlers::ready,
        handlers::metrics,
        handlers::version,
        handlers::config,
        handlers::openapi_document,
        handlers::list,
        handlers::get_metadata,
        handlers::patch_metadata,
        handlers::presign_upload,
        handlers::complete_upload,
        handlers::upload_proxy,
        handlers::presign_download,
        handlers::download_proxy,
        handlers::copy,
        handlers::lock,
        handlers::unlock,
        handlers::locks,
        handlers::versions,
        handlers::commit,
        handlers::approve,
        handlers::reject,
        handlers::submit,
        handlers::archive,
        handlers::unarchive,
        handlers::delete,
        handlers::audit,
    ),
    components(schemas(dto::ErrorBody)),
    modifiers(&Security),
    security(("bearer" = []), ("cookie" = [])),
    tags(
        (name = "system", description = "Health, probes, metrics, version, public settings (no token)"),
        (name = "files", description = "Listing, metadata, tags, archive, delete, audit"),
        (name = "uploads", description = "Presigned and proxied uploads"),
        (name = "downloads", description = "Presigned and proxied downloads"),
        (name = "collaboration", description = "Copy (checkout) and locks"),
        (name = "versions", description = "History, commit and review"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("access_token"))),
        );
    }
}

/// The error answers every authenticated endpoint may give (spec §3).
pub(crate) struct Errors;

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("400", "`invalid_path`, `invalid_request`"),
            ("401", "`missing_jwt_token`, `unauthorized`"),
            ("403", "`access_denied`, `project_service_unavailable`"),
            (
                "404",
                "`bucket_not_found`, `file_not_found`, `version_not_found`, `upload_not_found`",
            ),
            (
                "409",
                "`file_locked` (with `lock`), `version_conflict`, `invalid_transition`",
            ),
            ("413", "`payload_too_large`"),
            ("500", "`internal_error`"),
            ("503", "`database_unavailable`, `minio_unreachable`"),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), error_response(description)))
        .collect()
    }
}

/// The document as pretty JSON (what `/openapi.json` serves).
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"the document could not be rendered: {e}\"}}"))
}

/// The document as YAML (what `docs/openapi.yaml` holds).
pub fn openapi_yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .unwrap_or_else(|e| format!("# the document could not be rendered: {e}\n"))
}
