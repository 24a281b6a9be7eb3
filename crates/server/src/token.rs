//! `storage-server token`: mints an access token for local development and tests, with the
//! same `JWT_*` variables the server verifies with. Refused when `APP_ENV` (or its seed alias
//! `FLASK_ENV`) is `production`: production tokens come from the identity provider.

use std::time::Duration;

use storage_jwt_auth::{ConfigError, JwtConfig, JwtSigner, JwtVerifier, SignError, SignerConfig};

/// The longest lifetime a local token may have (30 days).
pub const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// The arguments of `storage-server token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The user id (`sub` claim).
    #[arg(long)]
    pub sub: String,
    /// The company id (`company_id` claim).
    #[arg(long = "company")]
    pub company: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

/// Why no token was printed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The environment is production.
    #[error(
        "refused: {var}={value}. Tokens are minted only outside production; in production the identity provider issues them"
    )]
    Production { var: &'static str, value: String },
    /// The lifetime is out of range.
    #[error("--ttl must be between 1 and {MAX_TTL_SECONDS} seconds")]
    Ttl,
    /// The `JWT_*` configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The server's own verifier, configured from the same variables, refuses the token.
    #[error(
        "the minted token would be refused by the server's JWT configuration (check JWT_* variables)"
    )]
    NotAccepted,
}

/// Mints a token from `args` and the `JWT_*` variables read through `lookup`.
///
/// When the variables also configure a verifier (HS256 with `JWT_SECRET`, or an asymmetric
/// algorithm with `JWT_PUBLIC_KEY` as well as `JWT_PRIVATE_KEY`), the token is checked against
/// it, so what is printed is what the server accepts.
///
/// # Errors
/// [`TokenError`]: production environment, bad `--ttl`, unusable `JWT_*` variables.
pub fn mint_from_env(
    args: &TokenArgs,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, TokenError> {
    for var in ["APP_ENV", "FLASK_ENV"] {
        if let Some(value) = lookup(var)
            && value.trim().eq_ignore_ascii_case("production")
        {
            return Err(TokenError::Production { var, value });
        }
    }
    if args.ttl == 0 || args.ttl > MAX_TTL_SECONDS {
        return Err(TokenError::Ttl);
    }
    let signer = JwtSigner::new(&SignerConfig::from_lookup(&lookup)?)?;
    let token = signer.mint_token(
        &args.sub,
        args.company.as_deref(),
        Duration::from_secs(args.ttl),
    )?;
    if let Ok(config) = JwtConfig::from_lookup(&lookup) {
        let verifier = JwtVerifier::new(&config)?;
        verifier
            .verify(&token)
            .map_err(|_| TokenError::NotAccepted)?;
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-local-development-secret-0123456789";

    fn args(sub: &str, company: Option<&str>) -> TokenArgs {
        TokenArgs {
            sub: sub.into(),
            company: company.map(Into::into),
            ttl: 600,
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn mints_a_token_the_verifier_accepts() {
        let vars = [("JWT_SECRET", SECRET), ("APP_ENV", "development")];
        let token = mint_from_env(&args("u-1", Some("c-9")), env(&vars)).unwrap();
        let verifier = JwtVerifier::new(&JwtConfig::hs256(SECRET)).unwrap();
        let principal = verifier
            .authenticate(Some(&format!("access_token={token}")), None)
            .unwrap();
        assert_eq!(principal.user_id.as_str(), "u-1");
        assert_eq!(
            principal.company_id.as_ref().map(|c| c.as_str()),
            Some("c-9")
        );
    }

    #[test]
    fn carries_the_configured_issuer_and_audience() {
        let vars = [
            ("JWT_SECRET", SECRET),
            ("JWT_ISSUER", "idp"),
            ("JWT_AUDIENCE", "storage"),
        ];
        let token = mint_from_env(&args("u-1", None), env(&vars)).unwrap();
        let mut config = JwtConfig::hs256(SECRET);
        config.issuer = Some("idp".into());
        config.audience = Some("storage".into());
        assert!(JwtVerifier::new(&config).unwrap().verify(&token).is_ok());
    }

    #[test]
    fn refused_in_production() {
        for var in ["APP_ENV", "FLASK_ENV"] {
            let vars = [("JWT_SECRET", SECRET), (var, "Production")];
            let err = mint_from_env(&args("u", None), env(&vars)).unwrap_err();
            assert!(matches!(err, TokenError::Production { .. }), "{err:?}");
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn missing_secret_names_the_variable() {
        let err = mint_from_env(&args("u", None), env(&[])).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn bad_ttl_is_refused() {
        let vars = [("JWT_SECRET", SECRET)];
        for ttl in [0, MAX_TTL_SECONDS + 1] {
            let err = mint_from_env(
                &TokenArgs {
                    ttl,
                    ..args("u", None)
                },
                env(&vars),
            )
            .unwrap_err();
            assert!(matches!(err, TokenError::Ttl), "{err:?}");
        }
    }
}
