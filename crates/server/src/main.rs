//! storage-server: the composition root's command line.
//!
//! `serve` (the default), `migrate`, `janitor --once`, `token`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storage_server::{
    app::{Adapters, Application, storage_service},
    config::{Config, Vars},
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
    /// Print a signed access token for local development and tests (refused in production).
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token(args) => mint(&args),
        command => {
            let config = match Vars::from_process().and_then(|(vars, _)| Config::from_vars(&vars)) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("storage-server: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_tracing(config.json_logs);
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
                    _ => serve(config).await,
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
    match token::mint_from_env(args, |name| std::env::var(name).ok()) {
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

async fn serve(config: Config) -> Result<(), String> {
    let env = config.env;
    let app = Application::build(config, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        port = app.port(),
        env = env.as_str(),
        "storage-service listening"
    );
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn migrate(config: &Config) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let db = config
        .database
        .as_ref()
        .ok_or("DATABASE_URL is not set: nothing to migrate")?;
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
    let adapters = Adapters::connect(config).await.map_err(|e| e.to_string())?;
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
            "janitor pass"
        );
        if once {
            return Ok(());
        }
        tokio::time::sleep(config.janitor_interval).await;
    }
}
