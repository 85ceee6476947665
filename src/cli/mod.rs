//! Command-line interface of `versile` (clap derive).
//!
//! * `versile serve` — run a VOP service with a demo gateway ([`serve`]);
//! * `versile call` — resolve a `vop://` VRI and call a method ([`call`]),
//!   arguments and results in the JSON form of [`json`];
//! * `versile bench` — run [`versile::bench`] ([`bench`]);
//! * `versile keygen` — write an RSA key for VTS ([`keygen`]).
//!
//! Exit codes: 0 success, 1 runtime failure (remote exception, link or
//! resolution failure, bind error), 2 usage or configuration error
//! (clap's own code for bad arguments; also a transport set that cannot be
//! served).

mod bench;
mod call;
mod config;
mod json;
mod keygen;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Versile Object Platform (VOP) services and clients, wire compatible
/// with Versile Python 0.8.5.
#[derive(Debug, Parser)]
#[command(name = "versile", version, propagate_version = true)]
#[command(
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to see more than warnings.\n\n\
Example:\n  versile serve &      # prints the address and the key fingerprint\n  versile call --pin SHA256:<hex> vop://127.0.0.1:4433/math/adder/ add 5"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // Boxed: their many flags make them much larger than the others.
    Serve(Box<serve::ServeArgs>),
    Call(Box<call::CallArgs>),
    Bench(Box<bench::BenchArgs>),
    Keygen(keygen::KeygenArgs),
}

/// Exit code for usage and configuration errors (as clap's).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for runtime failures.
pub const EXIT_FAILURE: u8 = 1;

/// Parse the command line, set up logging and run the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` sets up its own (--log-format, --log, --config).
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging();
    }
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Call(args) => call::run(*args),
        Command::Bench(args) => bench::run(*args),
        Command::Keygen(args) => keygen::run(args),
    }
}

/// tracing to stderr, filtered by RUST_LOG (default `warn`).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Print `versile: error: {msg}` to stderr and return `code`.
fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("versile: error: {msg}");
    ExitCode::from(code)
}

/// Parse seconds (fractions allowed) into a Duration.
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}

/// A tokio runtime, or the exit code for failing to build one.
fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all()
        .build()
        .map_err(|e| fail(EXIT_FAILURE, format!("cannot start the runtime: {e}")))
}

/// A runtime with `threads` workers: 1 is a current-thread runtime (all
/// tasks on the calling thread, no cross-thread wake-ups), more a
/// multi-thread runtime with that many workers.
fn runtime_with_threads(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    if threads <= 1 {
        return runtime(false);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| fail(EXIT_FAILURE, format!("cannot start the runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn secs() {
        assert_eq!(parse_secs("1.5").unwrap().as_millis(), 1500);
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("x").is_err());
    }
}
