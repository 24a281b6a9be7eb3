//! storage-server: the composition root's command line.
//!
//! `serve` (the default), `migrate`, `janitor --once`, `token`, `audit verify|checkpoint`,
//! `events`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storage_server::{
    app::{Adapters, Application, describe_stores, storage_service},
    config::{Config, Vars, reachable_addr, with_generated_jwt_secret},
    token,
};

/// storage-service: document storage with versions, locks and validation.
#[derive(Debug, Parser)]
#[command(name = "storage-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Run the janitor: expire abandoned uploads, delete owed objects.
    Janitor {
        /// One pass, then exit (the server also runs it on an interval).
        #[arg(long)]
        once: bool,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// The event outbox: deliver it (`--once`: one pass), list or re-queue dead letters.
    Events {
        /// Deliver due events once, then exit (the server also delivers them continuously).
        #[arg(long)]
        once: bool,
        #[command(subcommand)]
        action: Option<EventsAction>,
    },
    /// Print a signed access token for local development and tests (refused in production).
    Token(token::TokenArgs),
    /// Exit 0 when this instance's `GET /health` answers 200 (for container health checks).
    Healthcheck,
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Walk every audit chain (of one bucket with `--bucket`) and the sealed refusals; exit 1
    /// naming the first event altered, removed or reordered.
    Verify {
        #[arg(long)]
        bucket: Option<String>,
        /// A checkpoint taken by `audit checkpoint` (kept outside the database): also report
        /// each of its chains that is gone, shorter, or whose checkpointed event changed.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Print a checkpoint of every audit chain's head (of one bucket with `--bucket`), MACed
    /// under the audit key, to keep outside the database for `audit verify --checkpoint`.
    Checkpoint {
        #[arg(long)]
        bucket: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum EventsAction {
    /// List dead letters (events given up after EVENTS_MAX_ATTEMPTS), oldest first.
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Put dead letters back in the queue: the ids given, or every one with `--all`.
    Retry {
        ids: Vec<String>,
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token(args) => mint(&args),
        Command::Healthcheck => healthcheck(
            Vars::from_process()
                .ok()
                .and_then(|(vars, _)| vars.get("BIND_ADDR").map(str::to_owned)),
            std::time::Duration::from_secs(4),
        ),
        command => {
            let serving = matches!(command, Command::Serve);
            let loaded = Vars::from_process().and_then(|(vars, _)| {
                // `serve` (not `migrate`, `janitor`) needs a JWT key: in development the
                // generated one, which `token` uses too.
                let (vars, generated) = if serving {
                    with_generated_jwt_secret(vars)?
                } else {
                    (vars, None)
                };
                Ok((Config::from_vars(&vars)?, generated))
            });
            let (config, generated_jwt) = match loaded {
                Ok(loaded) => loaded,
                Err(e) => {
                    eprintln!("storage-server: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(config.json_logs);
            if config.audit_development_key {
                tracing::warn!(
                    "AUDIT_KEY is not set: the audit chain uses the built-in development key, \
                     which is public (anyone with database access could recompute the chain); \
                     staging and production refuse to start without AUDIT_KEY"
                );
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("storage-server: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(async move {
                match command {
                    Command::Migrate => migrate(&config).await,
                    Command::Janitor { once } => janitor(&config, once).await,
                    Command::Audit {
                        action: AuditAction::Verify { bucket, checkpoint },
                    } => audit_verify(&config, bucket.as_deref(), checkpoint.as_deref()).await,
                    Command::Audit {
                        action: AuditAction::Checkpoint { bucket },
                    } => audit_checkpoint(&config, bucket.as_deref()).await,
                    Command::Events { once, action } => events(&config, once, action).await,
                    _ => serve(config, generated_jwt).await,
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("storage-server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn mint(args: &token::TokenArgs) -> ExitCode {
    // The same variables as `serve`: the environment over `.env.<env>`, and in development the
    // JWT secret generated under DATA_DIR.
    let vars = match Vars::from_process().and_then(|(vars, _)| with_generated_jwt_secret(vars)) {
        Ok((vars, _)) => vars,
        Err(e) => {
            eprintln!("storage-server token: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match token::mint_from_env(args, |name| vars.get(name).map(str::to_owned)) {
        Ok(token) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{token}").and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("storage-server token: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: piped or redirected logs stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

async fn serve(config: Config, generated_jwt: Option<std::path::PathBuf>) -> Result<(), String> {
    let env = config.env;
    let banner_config = config.clone();
    let app = Application::build(config, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        port = app.port(),
        env = env.as_str(),
        "storage-service listening"
    );
    print_banner(&banner_config, &app, generated_jwt.as_deref());
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

/// What a developer needs after `cargo run`: where the service is, its docs, its data, and how
/// to get a token. On stdout (logs go to stderr).
fn print_banner(config: &Config, app: &Application, generated_jwt: Option<&std::path::Path>) {
    let url = format!("http://{}", reachable_addr(config.bind_addr, app.port()));
    let mut lines = vec![
        format!(
            "storage-service {} is running ({})",
            env!("CARGO_PKG_VERSION"),
            config.env.as_str()
        ),
        format!("  URL:       {url}"),
        format!("  API docs:  {url}/docs"),
    ];
    if config.uses_embedded() {
        let data = &config.embedded.data_dir;
        let shown = std::fs::canonicalize(data).unwrap_or_else(|_| data.clone());
        lines.push(format!("  data dir:  {}", shown.display()));
    }
    for (what, how) in describe_stores(config) {
        lines.push(format!("  {:<10} {how}", format!("{what}:")));
    }
    if !config.cors_allowed_origins.is_empty() {
        lines.push(format!(
            "  CORS:      {} (CORS_ALLOWED_ORIGINS)",
            config.cors_allowed_origins.join(", ")
        ));
    }
    if let Some(path) = generated_jwt {
        lines.push(format!(
            "  JWT:       development secret in {} (set JWT_SECRET to use your own)",
            path.display()
        ));
    }
    lines.push("  token:     cargo run -- token --sub <user>   (installed: storage-server token --sub <user>)".to_owned());
    lines.push(format!(
        "  try:       curl -H \"Authorization: Bearer $(cargo run -q -- token --sub alice)\" \"{url}/list?bucket=users&path=/users/alice/\""
    ));
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
    let _ = out.flush();
}

async fn migrate(config: &Config) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let db = config
        .database
        .as_ref()
        .ok_or(
            "DATABASE_URL is not set: nothing to migrate (the embedded SQLite store migrates itself when the server opens it)",
        )?;
    let applied = storage_pg_diesel::run_migrations(db.url.expose_secret())
        .await
        .map_err(|e| format!("migration failed: {e}"))?;
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    }
    for name in applied {
        tracing::info!(migration = %name, "applied");
    }
    Ok(())
}

async fn janitor(config: &Config, once: bool) -> Result<(), String> {
    let base_url = config.public_base_url(config.bind_addr.port());
    let adapters = Adapters::connect(config, &base_url)
        .await
        .map_err(|e| e.to_string())?;
    let service = storage_service(&adapters, config);
    loop {
        let report = service
            .run_janitor_once()
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            reservations_expired = report.reservations_expired,
            objects_deleted = report.objects_deleted,
            deletions_failed = report.deletions_failed,
            trash_purged = report.trash_purged,
            versions_pruned = report.versions_pruned,
            "janitor pass"
        );
        if once {
            return Ok(());
        }
        tokio::time::sleep(config.janitor_interval).await;
    }
}

fn parse_bucket(bucket: Option<&str>) -> Result<Option<storage_domain::model::BucketKind>, String> {
    bucket
        .map(|b| {
            storage_domain::model::BucketKind::parse(b)
                .map_err(|_| format!("--bucket {b}: not one of users, companies, projects"))
        })
        .transpose()
}

/// The lines of a checkpoint file, read one at a time (a line that cannot be read ends them).
fn checkpoint_lines(path: &std::path::Path) -> Result<impl Iterator<Item = String> + Send, String> {
    use std::io::BufRead;
    let file =
        std::fs::File::open(path).map_err(|e| format!("--checkpoint {}: {e}", path.display()))?;
    Ok(std::io::BufReader::new(file).lines().map_while(Result::ok))
}

/// `audit verify`: every fault on stdout, the first one first; a summary; exit 1 on a fault.
/// With `--checkpoint`, the checkpoint's MAC is checked first (a checkpoint that fails it is
/// refused), then its heads are compared with the chains during the walk.
async fn audit_verify(
    config: &Config,
    bucket: Option<&str>,
    checkpoint: Option<&std::path::Path>,
) -> Result<(), String> {
    use storage_domain::rules::checkpoint::{check_checkpoint, checkpoint_heads};
    let bucket = parse_bucket(bucket)?;
    let checked = match checkpoint {
        None => None,
        Some(path) => {
            let checked = check_checkpoint(checkpoint_lines(path)?, &config.audit_keys)
                .map_err(|e| format!("audit verify: checkpoint {} refused: {e}", path.display()))?;
            let covers = checked.header.bucket.as_deref();
            if covers != bucket.map(|b| b.as_str()) {
                return Err(format!(
                    "audit verify: checkpoint {} covers {}; verify the same chains ({})",
                    path.display(),
                    covers.map_or("every bucket".to_owned(), |b| format!("bucket {b}")),
                    covers.map_or("no --bucket".to_owned(), |b| format!("--bucket {b}")),
                ));
            }
            Some((path, checked))
        }
    };
    let base_url = config.public_base_url(config.bind_addr.port());
    let adapters = Adapters::connect(config, &base_url)
        .await
        .map_err(|e| e.to_string())?;
    let report = match &checked {
        None => {
            storage_domain::service::events::verify_audit(
                &*adapters.metadata,
                bucket,
                &config.audit_keys,
            )
            .await
        }
        Some((path, _)) => {
            storage_domain::service::events::verify_audit_against(
                &*adapters.metadata,
                bucket,
                &config.audit_keys,
                checkpoint_heads(checkpoint_lines(path)?),
            )
            .await
        }
    }
    .map_err(|e| format!("audit verify: {e}"))?;
    let mut out = std::io::stdout().lock();
    for fault in &report.faults {
        let _ = writeln!(out, "FAULT {fault}");
    }
    if let Some((path, checked)) = &checked {
        let _ = writeln!(
            out,
            "audit verify: checkpoint {} of {} ({} chains, MAC valid): {} chains compared",
            path.display(),
            checked.header.time,
            checked.chains,
            report.checkpointed
        );
    }
    let _ = writeln!(
        out,
        "audit verify: {} chains, {} chained events, {} sealed refusals, {} events before the chain; {} faults",
        report.chains,
        report.chained,
        report.sealed,
        report.unsealed_before_chain,
        report.faults.len()
    );
    let _ = out.flush();
    match report.faults.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "audit verify failed: {} faults; the first: {first}",
            report.faults.len()
        )),
    }
}

/// `audit checkpoint`: the checkpoint on stdout, line by line as the chains are read.
async fn audit_checkpoint(config: &Config, bucket: Option<&str>) -> Result<(), String> {
    let bucket = parse_bucket(bucket)?;
    let base_url = config.public_base_url(config.bind_addr.port());
    let adapters = Adapters::connect(config, &base_url)
        .await
        .map_err(|e| e.to_string())?;
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut stdout = std::io::stdout().lock();
    let mut failed: Option<std::io::Error> = None;
    let chains = storage_domain::service::events::audit_checkpoint(
        &*adapters.metadata,
        bucket,
        config.audit_keys.current(),
        time,
        &mut |line| {
            if failed.is_none()
                && let Err(e) = writeln!(stdout, "{line}")
            {
                failed = Some(e);
            }
        },
    )
    .await
    .map_err(|e| format!("audit checkpoint: {e}"))?;
    if let Some(e) = failed.or_else(|| stdout.flush().err()) {
        return Err(format!("audit checkpoint: cannot write it: {e}"));
    }
    tracing::info!(chains, "audit checkpoint taken");
    Ok(())
}

/// `events --once`, `events list`, `events retry`.
async fn events(config: &Config, once: bool, action: Option<EventsAction>) -> Result<(), String> {
    let base_url = config.public_base_url(config.bind_addr.port());
    let adapters = Adapters::connect(config, &base_url)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    match action {
        Some(EventsAction::List { limit }) => {
            let dead = storage_domain::service::events::dead_letters(&*adapters.metadata, limit)
                .await
                .map_err(|e| e.to_string())?;
            for d in &dead {
                let e = &d.event;
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}:{}\tattempts={}\tacked={}\t{}",
                    e.id,
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    e.event_type.map_or("-", |t| t.as_str()),
                    e.bucket.as_str(),
                    e.path,
                    d.attempts,
                    if d.acked.is_empty() {
                        "-".to_owned()
                    } else {
                        d.acked.join(",")
                    },
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            let _ = writeln!(out, "{} dead letters", dead.len());
            Ok(())
        }
        Some(EventsAction::Retry { ids, all }) => {
            let ids = if all {
                if !ids.is_empty() {
                    return Err("events retry: give ids or --all, not both".into());
                }
                None
            } else {
                if ids.is_empty() {
                    return Err("events retry: give the ids of dead letters, or --all".into());
                }
                Some(
                    ids.iter()
                        .map(|raw| {
                            storage_domain::model::AuditId::parse(raw)
                                .map_err(|_| format!("events retry: {raw} is not an event id"))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                )
            };
            let n = adapters
                .metadata
                .retry_events(ids)
                .await
                .map_err(|e| e.to_string())?;
            let _ = writeln!(out, "{n} dead letters queued again");
            Ok(())
        }
        None => {
            drop(out);
            let dispatcher =
                storage_server::app::dispatcher(config, adapters.metadata.clone()).await?;
            loop {
                let report = dispatcher.run_once().await.map_err(|e| e.to_string())?;
                tracing::info!(?report, "events pass");
                if once && report.claimed < u64::from(dispatcher.settings().batch) {
                    return Ok(());
                }
                if !once && report.claimed == 0 {
                    tokio::time::sleep(config.events.poll_interval).await;
                }
            }
        }
    }
}

/// Asks this instance's `/health` over loopback with plain HTTP/1.1: no HTTP client, no runtime,
/// so the container image needs nothing besides the binary.
fn healthcheck(bind: Option<String>, timeout: std::time::Duration) -> ExitCode {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    let raw = bind.unwrap_or_else(|| "0.0.0.0:5000".to_owned());
    let Ok(bind) = raw.trim().parse::<SocketAddr>() else {
        eprintln!("storage-server healthcheck: BIND_ADDR '{raw}' is not an address");
        return ExitCode::from(2);
    };
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, bind.port());
    let status_line = (|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0_u8; 64];
        let n = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned())
    })();
    match status_line {
        Ok(line) if line.split_whitespace().nth(1) == Some("200") => ExitCode::SUCCESS,
        Ok(line) => {
            eprintln!("storage-server healthcheck: {addr} answered '{line}'");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("storage-server healthcheck: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}
