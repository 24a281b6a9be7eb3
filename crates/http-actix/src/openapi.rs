//! The OpenAPI 3.1 document, generated from the handlers and DTOs (utoipa). Served at
//! `/openapi.json`, browsable at `/docs` (Scalar, which loads its script from a CDN in the
//! reader's browser), and checked in as `docs/openapi.yaml` (a test fails when it is stale).

use std::collections::BTreeMap;

use utoipa::{
    IntoResponses, Modify, OpenApi,
    openapi::{
        self, ContentBuilder, HttpMethod, Ref, RefOr, Required,
        link::{Link, LinkBuilder},
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
        handlers::restore,
        handlers::pin,
        handlers::unpin,
        handlers::reviews,
        handlers::archive,
        handlers::unarchive,
        handlers::delete,
        handlers::audit,
        handlers::trash,
        handlers::list_trash,
        handlers::restore_from_trash,
        handlers::purge_trash,
    ),
    components(schemas(dto::ErrorBody)),
    modifiers(&Security, &Links, &ExactForm),
    security(("bearer" = []), ("cookie" = [])),
    tags(
        (name = "system", description = "Health, probes, metrics, version, public settings (no token)"),
        (name = "files", description = "Listing, metadata, tags, archive, delete, trash, audit"),
        (name = "uploads", description = "Presigned and proxied uploads"),
        (name = "downloads", description = "Presigned and proxied downloads"),
        (name = "collaboration", description = "Copy (checkout) and locks"),
        (name = "versions", description = "History, commit, review, restore, pins and the review queue"),
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

/// The upload form takes no field but its own (the service refuses others: a misspelt field
/// is not silently lost).
struct ExactForm;

impl Modify for ExactForm {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        if let Some(RefOr::T(openapi::schema::Schema::Object(form))) = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut("ProxyUploadForm"))
        {
            form.additional_properties = Some(Box::new(
                openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        }
    }
}

/// The links between operations: what an answer gives the next request (a version's id to
/// review it, an upload id to complete it, a file's bucket and path to read or change it).
/// Clients and stateful testers follow them.
struct Links;

/// Where a file answer keeps the file's bucket and path (`file`), and the version (`version`).
const FILE_VERSION_LINKS: &[(&str, LinkTarget)] = &[
    ("GetMetadata", LinkTarget::Query("get_metadata")),
    ("ListVersions", LinkTarget::Query("list_versions")),
    ("DownloadProxy", LinkTarget::Query("download_proxy")),
    ("GetAudit", LinkTarget::Query("get_audit")),
    ("DeleteFile", LinkTarget::Query("delete_file")),
    ("PresignDownload", LinkTarget::Body("presign_download")),
    ("LockFile", LinkTarget::Body("lock_file")),
    ("UpdateTags", LinkTarget::Body("update_tags")),
    ("ArchiveFile", LinkTarget::Body("archive_file")),
    ("SubmitVersion", LinkTarget::Version("submit_version")),
    ("ApproveVersion", LinkTarget::Version("approve_version")),
    ("RejectVersion", LinkTarget::Version("reject_version")),
    ("RestoreVersion", LinkTarget::Version("restore_version")),
    ("PinVersion", LinkTarget::Version("pin_version")),
    ("UnpinVersion", LinkTarget::Version("unpin_version")),
];

#[derive(Clone, Copy)]
enum LinkTarget {
    /// `bucket` and `path` as query parameters, from `file`.
    Query(&'static str),
    /// `bucket` and `path` in the JSON body, from `file`.
    Body(&'static str),
    /// The `version_id` path parameter, from `version.id`.
    Version(&'static str),
}

fn link(target: LinkTarget, file: &str) -> Link {
    let bucket = format!("$response.body#/{file}bucket");
    let path = format!("$response.body#/{file}path");
    match target {
        LinkTarget::Query(op) => LinkBuilder::new()
            .operation_id(op)
            .parameter("bucket", bucket)
            .parameter("path", path)
            .build(),
        LinkTarget::Body(op) => LinkBuilder::new()
            .operation_id(op)
            .request_body(Some(serde_json::json!({"bucket": bucket, "path": path})))
            .build(),
        LinkTarget::Version(op) => LinkBuilder::new()
            .operation_id(op)
            .parameter("version_id", "$response.body#/version/id")
            .build(),
    }
}

impl Modify for Links {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        // Approving, submitting or restoring takes an optional body (utoipa only writes
        // `required: true`).
        for path in [
            "/versions/{version_id}/approve",
            "/versions/{version_id}/submit",
            "/versions/{version_id}/restore",
        ] {
            if let Some(body) = doc
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.request_body.as_mut())
            {
                body.required = Some(Required::False);
            }
        }
        let mut add = |path: &str, method: HttpMethod, name: &str, link: Link| {
            let response = doc
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| match method {
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Patch => item.patch.as_mut(),
                    _ => item.get.as_mut(),
                })
                .and_then(|op| op.responses.responses.get_mut("200"));
            if let Some(RefOr::T(response)) = response {
                response.links.insert(name.to_owned(), RefOr::T(link));
            }
        };
        for path in [
            "/upload/proxy",
            "/upload/complete",
            "/copy",
            "/versions/commit",
            "/versions/{version_id}/submit",
            "/versions/{version_id}/approve",
            "/versions/{version_id}/reject",
            "/versions/{version_id}/restore",
            "/versions/{version_id}/pin",
            "/versions/{version_id}/unpin",
        ] {
            for (name, target) in FILE_VERSION_LINKS {
                add(path, HttpMethod::Post, name, link(*target, "file/"));
            }
        }
        for (name, target) in FILE_VERSION_LINKS
            .iter()
            .filter(|(_, t)| !matches!(t, LinkTarget::Version(_)))
        {
            add("/metadata", HttpMethod::Get, name, link(*target, "file/"));
            add("/metadata", HttpMethod::Patch, name, link(*target, "file/"));
        }
        add(
            "/upload/presign",
            HttpMethod::Post,
            "CompleteUpload",
            LinkBuilder::new()
                .operation_id("complete_upload")
                .request_body(Some(
                    serde_json::json!({"upload_id": "$response.body#/upload_id"}),
                ))
                .build(),
        );
        add(
            "/lock",
            HttpMethod::Post,
            "UnlockFile",
            link(LinkTarget::Body("unlock_file"), ""),
        );
        add(
            "/lock",
            HttpMethod::Post,
            "GetMetadata",
            link(LinkTarget::Query("get_metadata"), ""),
        );
        add(
            "/archive",
            HttpMethod::Post,
            "UnarchiveFile",
            link(LinkTarget::Body("unarchive_file"), "file/"),
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

/// The document as a JSON value, repaired: utoipa 5.5 writes a link's `operationId` and
/// `requestBody` in snake case, which OpenAPI tools ignore (they are renamed here), and types
/// optional parameters as nullable (they are not: an absent parameter is simply left out).
fn document() -> Result<serde_json::Value, serde_json::Error> {
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    let operations = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        // An absent parameter is left out, never sent as `null` (utoipa types an optional one
        // as `[T, "null"]`, and some clients then send the text `null`).
        let parameters = operation
            .get_mut("parameters")
            .and_then(serde_json::Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get_mut("schema"))
            .filter_map(serde_json::Value::as_object_mut);
        for schema in parameters {
            if let Some(types) = schema
                .get_mut("type")
                .and_then(serde_json::Value::as_array_mut)
            {
                types.retain(|t| t != "null");
                if let [single] = types.as_slice() {
                    let single = single.clone();
                    schema.insert("type".to_owned(), single);
                }
            }
        }
        let responses = operation
            .get_mut("responses")
            .and_then(serde_json::Value::as_object_mut)
            .into_iter()
            .flat_map(|r| r.values_mut());
        for response in responses {
            let links = response
                .get_mut("links")
                .and_then(serde_json::Value::as_object_mut)
                .into_iter()
                .flat_map(|l| l.values_mut())
                .filter_map(serde_json::Value::as_object_mut);
            for link in links {
                for (from, to) in [
                    ("operation_id", "operationId"),
                    ("operation_ref", "operationRef"),
                    ("request_body", "requestBody"),
                ] {
                    if let Some(value) = link.remove(from) {
                        link.insert(to.to_owned(), value);
                    }
                }
            }
        }
    }
    Ok(doc)
}

/// The document as pretty JSON (what `/openapi.json` serves).
pub fn openapi_json() -> String {
    document()
        .and_then(|doc| serde_json::to_string_pretty(&doc))
        .unwrap_or_else(|e| format!("{{\"error\":\"the document could not be rendered: {e}\"}}"))
}

/// The document as YAML (what `docs/openapi.yaml` holds).
pub fn openapi_yaml() -> String {
    document()
        .map_err(|e| e.to_string())
        .and_then(|doc| serde_norway::to_string(&doc).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| format!("# the document could not be rendered: {e}\n"))
}
