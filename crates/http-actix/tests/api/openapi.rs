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
