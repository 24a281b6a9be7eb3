//! The verifier against valid tokens and an attack set. Keys are test-only PEM files in
//! `tests/keys/` (see its README).

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use storage_domain::StorageError;
use storage_jwt_auth::{
    JwtAlgorithm, JwtConfig, JwtSigner, JwtVerifier, MAX_TOKEN_BYTES, SignerConfig,
};

const SECRET: &str = "test-secret-of-reasonable-length-0123456789";
const RSA_PRIVATE: &str = include_str!("keys/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa_public.pem");
const RSA_OTHER_PRIVATE: &str = include_str!("keys/rsa_other_private.pem");
const EC_PRIVATE: &str = include_str!("keys/ec_private.pem");
const EC_PUBLIC: &str = include_str!("keys/ec_public.pem");
const ED_PRIVATE: &str = include_str!("keys/ed_private.pem");
const ED_PUBLIC: &str = include_str!("keys/ed_public.pem");

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn hs_verifier() -> JwtVerifier {
    JwtVerifier::new(&JwtConfig::hs256(SECRET)).unwrap()
}

fn hs_signer() -> JwtSigner {
    JwtSigner::new(&SignerConfig::hs256(SECRET)).unwrap()
}

fn rsa_verifier() -> JwtVerifier {
    JwtVerifier::new(&JwtConfig::public_key(JwtAlgorithm::Rs256, RSA_PUBLIC)).unwrap()
}

fn rsa_signer(pem: &str) -> JwtSigner {
    JwtSigner::new(&SignerConfig::private_key(JwtAlgorithm::Rs256, pem)).unwrap()
}

fn valid_claims() -> serde_json::Value {
    json!({ "sub": "user-1", "company_id": "acme", "exp": now() + 600 })
}

fn cookie(token: &str) -> String {
    format!("theme=dark; access_token={token}; other=1")
}

/// Asserts that `token`, presented as the cookie and as the bearer header, is accepted as
/// `user` of `company`.
fn assert_accepted(verifier: &JwtVerifier, token: &str, user: &str, company: Option<&str>) {
    for (cookie_header, authorization) in [
        (Some(cookie(token)), None),
        (None, Some(format!("Bearer {token}"))),
    ] {
        let principal = verifier
            .authenticate(cookie_header.as_deref(), authorization.as_deref())
            .unwrap_or_else(|e| panic!("{cookie_header:?} {authorization:?}: refused: {e:?}"));
        assert_eq!(principal.user_id.as_str(), user);
        assert_eq!(
            principal.company_id.as_ref().map(|c| c.as_str()),
            company,
            "{cookie_header:?} {authorization:?}"
        );
    }
}

/// Asserts that `token`, presented as the cookie and as the bearer header, is refused with
/// `unauthorized`.
fn assert_refused(verifier: &JwtVerifier, token: &str) {
    let by_cookie = verifier.authenticate(Some(&cookie(token)), None);
    assert!(
        matches!(by_cookie, Err(StorageError::Unauthorized)),
        "cookie: {by_cookie:?}"
    );
    let bearer = format!("Bearer {token}");
    let by_bearer = verifier.authenticate(None, Some(&bearer));
    assert!(
        matches!(by_bearer, Err(StorageError::Unauthorized)),
        "bearer: {by_bearer:?}"
    );
}

/// A token with any header and claims, signed (or not) by the caller.
fn raw_token(header: &serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

// ---- accepted ------------------------------------------------------------------------------

#[test]
fn valid_token_from_cookie_is_accepted() {
    let token = hs_signer().sign(&valid_claims()).unwrap();
    let principal = hs_verifier()
        .authenticate(Some(&cookie(&token)), None)
        .unwrap();
    assert_eq!(principal.user_id.as_str(), "user-1");
    assert_eq!(
        principal.company_id.as_ref().map(|c| c.as_str()),
        Some("acme")
    );
    // Only the service's own cookie is forwarded, never the caller's other cookies.
    assert_eq!(
        principal.credentials.cookie,
        Some(format!("access_token={token}"))
    );
    assert_eq!(principal.credentials.authorization, None);
}

#[test]
fn valid_token_from_bearer_is_accepted() {
    let token = hs_signer()
        .mint_token("user-2", None, Duration::from_secs(60))
        .unwrap();
    let header = format!("Bearer {token}");
    let principal = hs_verifier().authenticate(None, Some(&header)).unwrap();
    assert_eq!(principal.user_id.as_str(), "user-2");
    assert_eq!(principal.company_id, None);
    assert_eq!(principal.credentials.authorization, Some(header));
    assert_eq!(
        principal.credentials.cookie,
        Some(format!("access_token={token}"))
    );
}

#[test]
fn cookie_wins_over_bearer_and_the_other_bearer_is_not_forwarded() {
    let signer = hs_signer();
    let from_cookie = signer
        .mint_token("cookie-user", None, Duration::from_secs(60))
        .unwrap();
    let from_bearer = signer
        .mint_token("bearer-user", None, Duration::from_secs(60))
        .unwrap();
    let principal = hs_verifier()
        .authenticate(
            Some(&cookie(&from_cookie)),
            Some(&format!("Bearer {from_bearer}")),
        )
        .unwrap();
    assert_eq!(principal.user_id.as_str(), "cookie-user");
    assert_eq!(principal.credentials.authorization, None);
    // A bad cookie is not rescued by a good bearer: the cookie is the token presented.
    let refused = hs_verifier().authenticate(
        Some("access_token=garbage"),
        Some(&format!("Bearer {from_bearer}")),
    );
    assert!(
        matches!(refused, Err(StorageError::Unauthorized)),
        "{refused:?}"
    );
}

#[test]
fn custom_cookie_name_is_used() {
    let mut config = JwtConfig::hs256(SECRET);
    config.cookie_name = "jwt".into();
    let verifier = JwtVerifier::new(&config).unwrap();
    let token = hs_signer().sign(&valid_claims()).unwrap();
    let principal = verifier
        .authenticate(Some(&format!("jwt={token}")), None)
        .unwrap();
    assert_eq!(principal.credentials.cookie, Some(format!("jwt={token}")));
    let missing = verifier.authenticate(Some(&cookie(&token)), None);
    assert!(
        matches!(missing, Err(StorageError::MissingToken)),
        "{missing:?}"
    );
}

#[test]
fn numeric_company_id_is_accepted() {
    let token = hs_signer()
        .sign(&json!({ "sub": "u", "company_id": 42, "exp": now() + 60 }))
        .unwrap();
    let principal = hs_verifier()
        .authenticate(Some(&cookie(&token)), None)
        .unwrap();
    assert_eq!(
        principal.company_id.as_ref().map(|c| c.as_str()),
        Some("42")
    );
}

#[test]
fn rs256_es256_and_eddsa_tokens_are_accepted() {
    for (alg, private, public) in [
        (JwtAlgorithm::Rs256, RSA_PRIVATE, RSA_PUBLIC),
        (JwtAlgorithm::Es256, EC_PRIVATE, EC_PUBLIC),
        (JwtAlgorithm::EdDsa, ED_PRIVATE, ED_PUBLIC),
    ] {
        let signer = JwtSigner::new(&SignerConfig::private_key(alg, private)).unwrap();
        let verifier = JwtVerifier::new(&JwtConfig::public_key(alg, public)).unwrap();
        let token = signer
            .mint_token("u-asym", Some("c"), Duration::from_secs(60))
            .unwrap();
        let principal = verifier
            .authenticate(None, Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(principal.user_id.as_str(), "u-asym", "{alg}");
    }
}

#[test]
fn aud_is_ignored_when_no_audience_is_configured() {
    let token = hs_signer()
        .sign(&json!({ "sub": "u", "aud": "someone-else", "exp": now() + 60 }))
        .unwrap();
    assert_accepted(&hs_verifier(), &token, "u", None);
}

#[test]
fn configured_iss_and_aud_are_accepted_when_they_match() {
    let mut config = JwtConfig::hs256(SECRET);
    config.issuer = Some("https://idp.example".into());
    config.audience = Some("storage".into());
    let verifier = JwtVerifier::new(&config).unwrap();
    let mut signer_config = SignerConfig::hs256(SECRET);
    signer_config.issuer = config.issuer.clone();
    signer_config.audience = config.audience.clone();
    let token = JwtSigner::new(&signer_config)
        .unwrap()
        .mint_token("u", None, Duration::from_secs(60))
        .unwrap();
    assert_accepted(&verifier, &token, "u", None);
}

// ---- missing -------------------------------------------------------------------------------

#[test]
fn no_token_is_missing_token() {
    let verifier = hs_verifier();
    for (cookie_header, authorization) in [
        (None, None),
        (Some("theme=dark; other=1"), None),
        (Some("access_token="), None),
        (None, Some("Basic dXNlcjpwYXNz")),
        (None, Some("Bearer ")),
    ] {
        let result = verifier.authenticate(cookie_header, authorization);
        assert!(
            matches!(result, Err(StorageError::MissingToken)),
            "{cookie_header:?} {authorization:?}: {result:?}"
        );
    }
}

// ---- the attack set ------------------------------------------------------------------------

#[test]
fn alg_none_is_refused() {
    let token = raw_token(
        &json!({ "alg": "none", "typ": "JWT" }),
        &valid_claims(),
        b"",
    );
    assert_refused(&hs_verifier(), &token);
    // Also without the trailing signature part's content and with a different case.
    let token = raw_token(&json!({ "alg": "None" }), &valid_claims(), b"");
    assert_refused(&hs_verifier(), &token);
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused_by_an_rs256_verifier() {
    // The classic key-confusion attack: the attacker knows the public key and uses it as an
    // HMAC secret, hoping the verifier trusts the token's `alg`.
    let forged = JwtSigner::new(&SignerConfig::hs256(RSA_PUBLIC))
        .unwrap()
        .sign(&valid_claims())
        .unwrap();
    assert_refused(&rsa_verifier(), &forged);
    // The same claims signed properly pass, so the refusal is about the forgery.
    let genuine = rsa_signer(RSA_PRIVATE).sign(&valid_claims()).unwrap();
    assert_accepted(&rsa_verifier(), &genuine, "user-1", Some("acme"));
}

#[test]
fn token_signed_with_another_key_is_refused() {
    let other_secret = JwtSigner::new(&SignerConfig::hs256("another-secret-entirely"))
        .unwrap()
        .sign(&valid_claims())
        .unwrap();
    assert_refused(&hs_verifier(), &other_secret);
    let other_rsa = rsa_signer(RSA_OTHER_PRIVATE).sign(&valid_claims()).unwrap();
    assert_refused(&rsa_verifier(), &other_rsa);
}

#[test]
fn tampered_claims_are_refused() {
    let token = hs_signer().sign(&valid_claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = json!({ "sub": "admin", "company_id": "acme", "exp": now() + 600 });
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged_claims.to_string()),
        parts[2]
    );
    assert_refused(&hs_verifier(), &forged);
}

#[test]
fn expired_token_is_refused() {
    let token = hs_signer()
        .sign(&json!({ "sub": "u", "exp": now() - 3600 }))
        .unwrap();
    assert_refused(&hs_verifier(), &token);
}

#[test]
fn exp_as_a_string_is_refused() {
    let token = hs_signer()
        .sign(&json!({ "sub": "u", "exp": (now() + 3600).to_string() }))
        .unwrap();
    assert_refused(&hs_verifier(), &token);
}

#[test]
fn missing_exp_is_refused() {
    let token = hs_signer().sign(&json!({ "sub": "u" })).unwrap();
    assert_refused(&hs_verifier(), &token);
}

#[test]
fn future_nbf_is_refused() {
    let token = hs_signer()
        .sign(&json!({ "sub": "u", "exp": now() + 7200, "nbf": now() + 3600 }))
        .unwrap();
    assert_refused(&hs_verifier(), &token);
    // An nbf in the past is fine.
    let token = hs_signer()
        .sign(&json!({ "sub": "u", "exp": now() + 7200, "nbf": now() - 10 }))
        .unwrap();
    assert_accepted(&hs_verifier(), &token, "u", None);
}

#[test]
fn wrong_or_missing_iss_is_refused_when_configured() {
    let mut config = JwtConfig::hs256(SECRET);
    config.issuer = Some("https://idp.example".into());
    let verifier = JwtVerifier::new(&config).unwrap();
    let wrong = hs_signer()
        .sign(&json!({ "sub": "u", "exp": now() + 60, "iss": "https://evil.example" }))
        .unwrap();
    assert_refused(&verifier, &wrong);
    let missing = hs_signer().sign(&valid_claims()).unwrap();
    assert_refused(&verifier, &missing);
}

#[test]
fn wrong_or_missing_aud_is_refused_when_configured() {
    let mut config = JwtConfig::hs256(SECRET);
    config.audience = Some("storage".into());
    let verifier = JwtVerifier::new(&config).unwrap();
    let wrong = hs_signer()
        .sign(&json!({ "sub": "u", "exp": now() + 60, "aud": "billing" }))
        .unwrap();
    assert_refused(&verifier, &wrong);
    let missing = hs_signer().sign(&valid_claims()).unwrap();
    assert_refused(&verifier, &missing);
}

#[test]
fn missing_sub_is_refused() {
    let token = hs_signer()
        .sign(&json!({ "company_id": "acme", "exp": now() + 60 }))
        .unwrap();
    assert_refused(&hs_verifier(), &token);
}

#[test]
fn unusable_sub_is_refused() {
    for sub in [json!(""), json!(123), json!("a\u{0}b")] {
        let token = hs_signer()
            .sign(&json!({ "sub": sub, "exp": now() + 60 }))
            .unwrap();
        assert_refused(&hs_verifier(), &token);
    }
}

#[test]
fn garbage_is_refused() {
    let verifier = hs_verifier();
    for garbage in [
        "garbage",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.%%%.abc",
        "é.é.é",
    ] {
        assert_refused(&verifier, garbage);
    }
}

#[test]
fn oversized_token_is_refused() {
    // Correctly signed, so only the size check can refuse it.
    let padding = "x".repeat(MAX_TOKEN_BYTES);
    let token = hs_signer()
        .sign(&json!({ "sub": "u", "exp": now() + 60, "pad": padding }))
        .unwrap();
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_refused(&hs_verifier(), &token);
}

// ---- configuration -------------------------------------------------------------------------

#[test]
fn config_from_lookup_reads_jwt_variables() {
    let vars = [
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", "iss-1"),
        ("JWT_COOKIE_NAME", "tok"),
        ("JWT_LEEWAY_SECONDS", "5"),
    ];
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let config = JwtConfig::from_lookup(lookup).unwrap();
    assert_eq!(config.algorithm, JwtAlgorithm::Hs256);
    assert_eq!(config.issuer.as_deref(), Some("iss-1"));
    assert_eq!(config.audience, None);
    assert_eq!(config.cookie_name, "tok");
    assert_eq!(config.leeway_seconds, 5);
}

#[test]
fn config_infers_the_algorithm_from_the_public_key() {
    for (pem, alg) in [
        (RSA_PUBLIC, JwtAlgorithm::Rs256),
        (EC_PUBLIC, JwtAlgorithm::Es256),
        (ED_PUBLIC, JwtAlgorithm::EdDsa),
    ] {
        // As an env file would hold it: on one line with literal `\n`.
        let one_line = pem.replace('\n', "\\n");
        let lookup = |name: &str| (name == "JWT_PUBLIC_KEY").then(|| one_line.clone());
        let config = JwtConfig::from_lookup(lookup).unwrap();
        assert_eq!(config.algorithm, alg);
        JwtVerifier::new(&config).unwrap();
    }
}

#[test]
fn config_errors_name_the_variable() {
    let none = |_: &str| None;
    let err = JwtConfig::from_lookup(none).unwrap_err();
    assert!(err.to_string().contains("JWT_SECRET"), "{err}");

    let rs_without_key = |name: &str| (name == "JWT_ALGORITHM").then(|| "RS256".to_string());
    let err = JwtConfig::from_lookup(rs_without_key).unwrap_err();
    assert!(err.to_string().contains("JWT_PUBLIC_KEY"), "{err}");

    let bad_alg = |name: &str| match name {
        "JWT_ALGORITHM" => Some("HS512".to_string()),
        "JWT_SECRET" => Some(SECRET.to_string()),
        _ => None,
    };
    let err = JwtConfig::from_lookup(bad_alg).unwrap_err();
    assert!(err.to_string().contains("JWT_ALGORITHM"), "{err}");

    // A key of the wrong type for the pinned algorithm is refused at start-up.
    let err =
        JwtVerifier::new(&JwtConfig::public_key(JwtAlgorithm::Es256, RSA_PUBLIC)).unwrap_err();
    assert!(err.to_string().contains("JWT_PUBLIC_KEY"), "{err}");
    let err = JwtVerifier::new(&JwtConfig::hs256("")).unwrap_err();
    assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    // The secret never appears in an error.
    let err = JwtVerifier::new(&JwtConfig {
        algorithm: JwtAlgorithm::Rs256,
        ..JwtConfig::hs256("do-not-show-me")
    })
    .unwrap_err();
    assert!(!err.to_string().contains("do-not-show-me"), "{err}");
}
