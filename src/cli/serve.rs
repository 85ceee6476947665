//! `versile serve`: a VOP service with a demo gateway
//! (`vop-service.md` §5), stopped by SIGINT/SIGTERM (§5.6).
//!
//! Once listening it prints exactly one line, `listening on vop://ADDR/`,
//! to stdout (scripts and tests read the bound port from it). On the first
//! signal it stops accepting, shuts every link down gracefully (running
//! calls finish and answer, `vol.md` §7.2), waits up to `--drain-timeout`,
//! then forces what is left; a second signal forces at once. Exit 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tracing::{info, warn};
use versile::demo::{Echoer, SimpleGateway};
use versile::vop::{Transport, TransportSet};
use versile::{GatewayService, LocalObject, Server, StopLinks, VopLayer};

use super::config::{Ops, OpsArgs};
use super::{fail, parse_secs, runtime, EXIT_FAILURE, EXIT_USAGE};

/// Serve demo objects over VOP.
///
/// Transports: VTS (the Versile default) and TLS are not implemented in
/// this build yet, so only PLAIN (unencrypted, unauthenticated) can be
/// served, and only when asked for explicitly with --insecure or
/// --transports plain.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (host:port; port 0 picks a free port, the
    /// bound address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4433")]
    listen: String,
    /// Serve PLAIN only: no encryption, no authentication (same as
    /// --transports plain).
    #[arg(long, conflicts_with = "transports")]
    insecure: bool,
    /// Transports to enable, comma separated, from vts, tls, plain
    /// [default: vts].
    #[arg(long, value_name = "LIST", value_parser = parse_transports)]
    transports: Option<TransportSet>,
    /// Gateway served on each connection.
    #[arg(long, value_enum, default_value_t = GatewayKind::Demo)]
    gateway: GatewayKind,
    /// Seconds to wait for links to close after a stop signal before
    /// closing them by force.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    drain_timeout: Duration,
    /// Limits, filters, PROXY protocol, metrics, logs (src/cli/config.rs).
    #[command(flatten)]
    ops: OpsArgs,
}

/// Which gateway to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GatewayKind {
    /// SimpleGateway: urlget text/echo and math/adder (a new object per
    /// resolution), plus echo(x).
    Demo,
    /// Echoer: echo(x) only.
    Echo,
}

fn parse_transports(s: &str) -> Result<TransportSet, String> {
    s.parse::<TransportSet>().map_err(|e| e.to_string())
}

/// The transport set to serve, or a configuration error message.
fn choose_transports(args: &ServeArgs) -> Result<TransportSet, String> {
    let set = if args.insecure {
        TransportSet::from(Transport::Plain)
    } else {
        args.transports
            .unwrap_or(TransportSet::from(Transport::Vts))
    };
    if set.is_empty() {
        return Err("no transport enabled; use --insecure to serve PLAIN".into());
    }
    for t in [Transport::Vts, Transport::Tls] {
        if set.contains(t) {
            return Err(format!(
                "{t} is not available in this build yet; use --insecure to serve PLAIN \
                 (unencrypted, unauthenticated)"
            ));
        }
    }
    Ok(set)
}

pub fn run(args: ServeArgs) -> ExitCode {
    let ops = match args.ops.resolve() {
        Ok(ops) => ops,
        Err(msg) => return fail(EXIT_USAGE, msg),
    };
    if let Err(msg) = ops.init_logging() {
        return fail(EXIT_USAGE, msg);
    }
    let transports = match choose_transports(&args) {
        Ok(t) => t,
        Err(msg) => return fail(EXIT_USAGE, msg),
    };
    let rt = match runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(serve(args, transports, ops))
}

async fn serve(args: ServeArgs, transports: TransportSet, ops: Ops) -> ExitCode {
    // Only PLAIN gets here (see `choose_transports`).
    debug_assert_eq!(transports, TransportSet::from(Transport::Plain));
    let layer = VopLayer::insecure();
    let kind = args.gateway;
    let factory = move || -> LocalObject {
        match kind {
            GatewayKind::Demo => SimpleGateway::new(),
            GatewayKind::Echo => Echoer.into(),
        }
    };
    let svc = ops.stack.build(layer, GatewayService::new(factory));
    let metrics = match ops.start_metrics().await {
        Ok(m) => m,
        Err(msg) => return fail(EXIT_FAILURE, msg),
    };

    // Install the signal handlers before announcing the address, so a
    // signal sent right after the line is read is never missed.
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => return fail(EXIT_FAILURE, format!("cannot install signal handlers: {e}")),
    };
    let listener = match ops.bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            return fail(
                EXIT_FAILURE,
                format!("cannot listen on {}: {e}", args.listen),
            )
        }
    };
    let server = match Server::serve(listener, svc) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_FAILURE, format!("cannot serve: {e}")),
    };
    {
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the service.
        let _ = writeln!(out, "listening on vop://{}/", server.local_addr());
        if let Some(m) = &metrics {
            let _ = writeln!(out, "metrics on http://{}/metrics", m.local_addr());
        }
        let _ = out.flush();
    }
    info!(addr = %server.local_addr(), transports = %transports, stack = %ops.stack, "serving");

    let sig = signals.next().await;
    info!(
        signal = sig,
        links = server.links().len(),
        "stopping: graceful link shutdown"
    );
    server.stop(StopLinks::Graceful);
    tokio::select! {
        r = tokio::time::timeout(args.drain_timeout, server.drained()) => {
            if r.is_err() {
                warn!(timeout = ?args.drain_timeout, "links did not close in time; forcing");
            }
        }
        sig = signals.next() => {
            warn!(signal = sig, "second signal; forcing shutdown");
        }
    }
    server.stop(StopLinks::Force);
    // Forced close ends every connection task at once; bound it anyway.
    if tokio::time::timeout(Duration::from_secs(2), server.drained())
        .await
        .is_err()
    {
        warn!("connection tasks still running after forced shutdown");
    }
    ExitCode::SUCCESS
}

/// SIGINT and SIGTERM as one stream.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Signals {})
    }

    /// The name of the next signal received.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(insecure: bool, transports: Option<&str>) -> ServeArgs {
        ServeArgs {
            listen: "127.0.0.1:0".into(),
            insecure,
            transports: transports.map(|t| parse_transports(t).unwrap()),
            gateway: GatewayKind::Demo,
            drain_timeout: Duration::from_secs(1),
            ops: OpsArgs::default(),
        }
    }

    #[test]
    fn transport_choice() {
        let plain = TransportSet::from(Transport::Plain);
        assert_eq!(choose_transports(&args(true, None)), Ok(plain));
        assert_eq!(choose_transports(&args(false, Some("plain"))), Ok(plain));
        assert_eq!(choose_transports(&args(false, Some("PLAIN"))), Ok(plain));
        let e = choose_transports(&args(false, None)).unwrap_err();
        assert!(
            e.contains("VTS is not available") && e.contains("--insecure"),
            "{e}"
        );
        let e = choose_transports(&args(false, Some("tls,plain"))).unwrap_err();
        assert!(e.contains("TLS is not available"), "{e}");
        let e = choose_transports(&args(false, Some(""))).unwrap_err();
        assert!(e.contains("no transport"), "{e}");
        assert!(parse_transports("bogus").is_err());
    }
}
