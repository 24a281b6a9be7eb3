//! The checked-in OpenAPI document.

use std::path::PathBuf;

use storage_http_actix::openapi_yaml;

/// `docs/openapi.yaml` must be what the code generates. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test -p storage-http-actix --test api openapi`.
#[test]
fn the_checked_in_openapi_yaml_is_up_to_date() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.yaml");
    let generated = openapi_yaml();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&file, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.yaml differs from the API the code defines; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p storage-http-actix --test api openapi` and commit it"
    );
}

fn document() -> serde_json::Value {
    serde_json::from_str(&storage_http_actix::openapi_json()).unwrap()
}

/// Every operation of the document, as (method, path, operation).
fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), op.clone()));
        }
    }
    all
}

/// What consumers rely on: stable operation ids, a realistic example for every parameter and
/// every JSON body, ids typed as UUIDs, path rules as patterns, every error answer declared,
/// and links that name existing operations (with OpenAPI's camel-case keys).
#[test]
fn the_document_is_exact_enough_for_generated_clients_and_fuzzers() {
    use storage_http_actix::dto::{AUDIT_PATH_PATTERN, DIR_PATH_PATTERN, FILE_PATH_PATTERN};
    let doc = document();
    let ops = operations(&doc);
    assert_eq!(ops.len(), 36);
    let ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    for (method, path, op) in &ops {
        let id = op["operationId"].as_str().unwrap();
        assert!(
            id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{id}"
        );
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            let example = param
                .get("example")
                .or_else(|| param["schema"]["examples"].get(0));
            assert!(example.is_some(), "{method} {path}: no example for {name}");
            match name {
                "version_id" => assert_eq!(param["schema"]["format"], "uuid", "{path}"),
                "bucket" | "path" => assert_eq!(param["required"], true, "{method} {path} {name}"),
                _ => {}
            }
            if name == "path" {
                let expected = match path.as_str() {
                    "/list" | "/locks" | "/reviews" | "/trash" => DIR_PATH_PATTERN,
                    "/audit" => AUDIT_PATH_PATTERN,
                    _ => FILE_PATH_PATTERN,
                };
                assert_eq!(param["schema"]["pattern"], expected, "{method} {path}");
            }
        }
        if let Some(body) = op.get("requestBody") {
            let (media, content) = body["content"].as_object().unwrap().iter().next().unwrap();
            let schema = &content["schema"];
            let name = schema["$ref"]
                .as_str()
                .or_else(|| {
                    schema["oneOf"]
                        .as_array()?
                        .iter()
                        .find_map(|s| s["$ref"].as_str())
                })
                .unwrap_or_else(|| panic!("{path}: {schema}"))
                .rsplit('/')
                .next()
                .unwrap();
            let component = &doc["components"]["schemas"][name];
            assert!(
                component.get("example").is_some(),
                "{method} {path}: no example for {media} {name}"
            );
        }
        if op.get("security").is_none() {
            // Authenticated: every error of the contract's table is declared.
            for status in ["400", "401", "403", "404", "409", "413", "500", "503"] {
                assert!(
                    op["responses"].get(status).is_some(),
                    "{method} {path} does not declare {status}"
                );
            }
        }
        for response in op["responses"].as_object().unwrap().values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let target = link["operationId"].as_str().unwrap_or_else(|| {
                    panic!("{method} {path}: link {name} without operationId: {link}")
                });
                assert!(ids.contains(&target), "{path}: link {name} to {target}");
                assert!(link.get("operation_id").is_none() && link.get("request_body").is_none());
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CompleteUploadRequest"]["properties"]["upload_id"]["format"],
        "uuid"
    );
    assert_eq!(
        schemas["PresignUploadResponse"]["properties"]["upload_id"]["format"],
        "uuid"
    );
}
