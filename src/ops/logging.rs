//! `tracing-subscriber` set up for a server: stderr, `RUST_LOG`-style
//! filter (`EnvFilter` directives such as `info,versile=debug`), human
//! readable or one JSON object a line.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `tracing-subscriber`'s default text lines (colours on a terminal).
    #[default]
    Human,
    /// One JSON object a line, with the span fields (peer, transport, ...).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "human" | "text" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format {s:?} (human or json)")),
        }
    }
}

/// Install the global subscriber: logs to stderr in `format`, filtered by
/// `filter` if given, else by `RUST_LOG`, else by `default_filter`.
/// Returns an error for an invalid filter; does nothing (Ok) if a
/// subscriber is already installed.
pub fn init_logging(
    format: LogFormat,
    filter: Option<&str>,
    default_filter: &str,
) -> Result<(), String> {
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).map_err(|e| format!("invalid log filter {f:?}: {e}"))?,
        None => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    Ok(())
}
