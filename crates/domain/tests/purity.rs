//! The domain stays pure: no web framework, database driver, S3 client, HTTP client or async
//! runtime in its normal dependency tree (what `cargo tree -p storage-domain -e normal` shows).

use std::process::Command;

const FORBIDDEN: [&str; 10] = [
    "actix-web",
    "actix-rt",
    "diesel",
    "diesel-async",
    "rust-s3",
    "hyper",
    "reqwest",
    "tokio",
    "tokio-postgres",
    "async-std",
];

#[test]
fn the_domain_depends_on_no_framework_driver_or_runtime() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "storage-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"storage-domain"),
        "unexpected cargo tree output:\n{tree}"
    );
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|f| names.contains(f)).collect();
    assert!(found.is_empty(), "the domain depends on {found:?}:\n{tree}");
}
