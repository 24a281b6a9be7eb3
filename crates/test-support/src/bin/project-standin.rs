//! `project-standin`: the project-service stand-in as a process, for `deploy/` and manual runs.
//!
//! ```text
//! project-standin [--bind ADDR] [--rules FILE]
//! ```
//!
//! - `--bind` / `PROJECT_STANDIN_BIND`: listen address (default `127.0.0.1:5001`; port 0 for a
//!   random port).
//! - `--rules` / `PROJECT_STANDIN_RULES_FILE`: a JSON rules file, or `PROJECT_STANDIN_RULES`: the
//!   same JSON inline: `{"rules":[{"user":"u1","project":"p1","actions":["read"],"allowed":true}]}`
//!   (`"user": "*"` matches any user). Without rules everything is denied.
//! - `JWT_COOKIE_NAME`: the cookie holding the caller's token (default `access_token`).
//!
//! Prints `listening on http://ADDR` on standard output, then serves until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use storage_test_support::project_standin::{ProjectStandin, RulesFile};

struct Options {
    bind: SocketAddr,
    rules: RulesFile,
    cookie_name: Option<String>,
}

fn options() -> Result<Options, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut bind = env("PROJECT_STANDIN_BIND");
    let mut rules_file = env("PROJECT_STANDIN_RULES_FILE");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = Some(args.next().ok_or("--bind needs an address")?),
            "--rules" => rules_file = Some(args.next().ok_or("--rules needs a file")?),
            "-h" | "--help" => {
                return Err("usage: project-standin [--bind ADDR] [--rules FILE]".into());
            }
            other => return Err(format!("unknown argument '{other}' (try --help)")),
        }
    }
    let bind = bind.unwrap_or_else(|| "127.0.0.1:5001".into());
    let bind: SocketAddr = bind
        .parse()
        .map_err(|e| format!("bad bind address '{bind}': {e}"))?;
    let rules_json = match (rules_file, env("PROJECT_STANDIN_RULES")) {
        (Some(path), _) => {
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read '{path}': {e}"))?
        }
        (None, Some(inline)) => inline,
        (None, None) => r#"{"rules":[]}"#.into(),
    };
    let rules: RulesFile =
        serde_json::from_str(&rules_json).map_err(|e| format!("bad rules JSON: {e}"))?;
    Ok(Options {
        bind,
        rules,
        cookie_name: env("JWT_COOKIE_NAME"),
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("project-standin: {message}");
            return ExitCode::from(2);
        }
    };
    let standin = match ProjectStandin::start_on(options.bind).await {
        Ok(standin) => standin,
        Err(e) => {
            eprintln!("project-standin: cannot listen on {}: {e}", options.bind);
            return ExitCode::FAILURE;
        }
    };
    if let Some(name) = &options.cookie_name {
        standin.set_cookie_name(name);
    }
    standin.load_rules(&options.rules);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", standin.url());
    let _ = out.flush();
    drop(out);
    shutdown_signal().await;
    ExitCode::SUCCESS
}
