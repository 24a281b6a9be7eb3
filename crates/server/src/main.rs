//! storage-server: the composition root. It is the only crate that names concrete adapters.
//!
//! Subcommands so far: `token` (mint a local development token). `serve` and `migrate` come
//! later.

mod token;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// storage-service: document storage with versions, locks and validation.
#[derive(Debug, Parser)]
#[command(name = "storage-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a signed access token for local development and tests (refused in production).
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Token(args) => {
            match token::mint_from_env(&args, |name| std::env::var(name).ok()) {
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
    }
}
