//! The `token` subcommand as a user runs it: a real process with a real environment.

use std::process::Command;

const SECRET: &str = "cli-test-secret-0123456789abcdef";

fn storage_server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_storage-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn token_prints_a_verifiable_token() {
    let out = storage_server()
        .args([
            "token",
            "--sub",
            "user-42",
            "--company",
            "acme",
            "--ttl",
            "120",
        ])
        .env("JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    let verifier =
        storage_jwt_auth::JwtVerifier::new(&storage_jwt_auth::JwtConfig::hs256(SECRET)).unwrap();
    let (user, company) = verifier.verify(token).unwrap();
    assert_eq!(user.as_str(), "user-42");
    assert_eq!(company.unwrap().as_str(), "acme");
}

#[test]
fn token_is_refused_in_production_with_a_clear_message() {
    let out = storage_server()
        .args(["token", "--sub", "user-42"])
        .env("JWT_SECRET", SECRET)
        .env("APP_ENV", "production")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("APP_ENV=production"), "{stderr}");
}

#[test]
fn token_without_a_secret_outside_development_names_the_variable() {
    let data = tempfile::tempdir().unwrap();
    for env in ["staging", "production"] {
        let out = storage_server()
            .args(["token", "--sub", "u"])
            .env("APP_ENV", env)
            .env("DATA_DIR", data.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("JWT_SECRET") || stderr.contains("APP_ENV=production"),
            "{env}: {stderr}"
        );
    }
    assert!(
        !data.path().join("jwt-secret").exists(),
        "no secret is generated outside development"
    );
}

/// In development with no JWT key, `token` uses (and creates once) `<DATA_DIR>/jwt-secret`,
/// the secret `serve` verifies with.
#[test]
fn token_in_development_uses_the_generated_secret_under_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let mint = || {
        let out = storage_server()
            .args(["token", "--sub", "alice"])
            .env("DATA_DIR", data.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let first = mint();
    let secret = std::fs::read_to_string(data.path().join("jwt-secret")).unwrap();
    let secret = secret.trim();
    assert_eq!(secret.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("jwt-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let verifier =
        storage_jwt_auth::JwtVerifier::new(&storage_jwt_auth::JwtConfig::hs256(secret)).unwrap();
    let (user, _) = verifier.verify(&first).unwrap();
    assert_eq!(user.as_str(), "alice");
    // Again: the same secret, not a new one.
    let second = mint();
    let (user, company) = verifier.verify(&second).unwrap();
    assert_eq!((user.as_str(), company), ("alice", None));
    assert_eq!(
        std::fs::read_to_string(data.path().join("jwt-secret"))
            .unwrap()
            .trim(),
        secret
    );
}
