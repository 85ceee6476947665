//! `versile serve`: a VOP service with a demo gateway
//! (`docs/protocol/vop-service.md` §5), stopped by SIGINT/SIGTERM (§5.6).
//!
//! Once listening it prints `listening on vop://ADDR/` as the first line
//! of stdout (scripts and tests read the bound port from it), and with VTS
//! a second line `key fingerprint SHA256:<hex>` (the value clients pin
//! with `versile call --pin`). Without `--key` the VTS key is generated at
//! start (2048 bits) and lives only as long as the process. On the first
//! signal it marks itself draining (`/readyz` on the `--metrics` listener
//! answers 503 from then on; with `--shutdown-delay` it first keeps
//! accepting for that long with `/readyz` at 503), stops accepting, shuts every link down
//! gracefully (running calls finish and answer, `docs/protocol/vol.md` §7.2), waits up
//! to `--drain-timeout`, then forces what is left; a second signal forces
//! at once. Exit 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tracing::{info, warn};
use versile::demo::{Echoer, SimpleGateway};
use versile::server::{Gate, Readiness};
use versile::tls::{TlsServerConfig, TlsServerTransport};
use versile::vop::{Transport, TransportSet};
use versile::vts::keys::DEFAULT_MIN_PEER_BITS;
use versile::vts::KeyPolicy;
use versile::{
    GatewayService, LocalObject, RsaKeyPair, Server, StopLinks, VopLayer, VtsServerTransport,
};

use super::config::{Ops, OpsArgs};
use super::{fail, parse_secs, runtime_with_threads, EXIT_FAILURE, EXIT_USAGE};

/// Serve demo objects over VOP.
///
/// Transports: VTS (the Versile default; with --key FILE, or a 2048-bit
/// key generated at start whose fingerprint is printed), TLS (a
/// self-signed certificate for the same key: the same fingerprint pins
/// it; for our own clients, Versile Python's TLS cannot connect) and PLAIN
/// (unencrypted, unauthenticated: only with --insecure or --transports).
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
    /// RSA private key for VTS (PEM: PKCS#1 or PKCS#8; or DER). Without
    /// it a 2048-bit key is generated at start.
    #[arg(long, value_name = "FILE")]
    key: Option<std::path::PathBuf>,
    /// Smallest client key accepted over VTS, in bits (Versile Python's
    /// examples use 512-bit keys: allow them with 512).
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_MIN_PEER_BITS)]
    min_peer_key_bits: usize,
    /// Gateway served on each connection.
    #[arg(long, value_enum, default_value_t = GatewayKind::Demo)]
    gateway: GatewayKind,
    /// Seconds to wait for links to close after a stop signal before
    /// closing them by force.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    drain_timeout: Duration,
    /// Seconds between the first stop signal and the drain during which
    /// /readyz answers 503 but the server still accepts, so a balancer
    /// polling /readyz stops sending new links before the listener closes
    /// (HAProxy: more than `fall` x `inter`). 0 (default): no balancer to
    /// wait for, drain at once. A second signal ends the wait.
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = parse_secs)]
    shutdown_delay: Duration,
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
        return Err(
            "no transport enabled; use --transports vts (the default) or --insecure for PLAIN"
                .into(),
        );
    }
    if args.key.is_some() && !set.contains(Transport::Vts) && !set.contains(Transport::Tls) {
        return Err("--key is for VTS and TLS, neither of which is enabled".into());
    }
    Ok(set)
}

/// TLS with a self-signed certificate for the service's RSA key, so the
/// one fingerprint printed pins the server on VTS and TLS alike.
fn tls_transport(key: &RsaKeyPair) -> Result<TlsServerTransport, String> {
    let der = key.to_pkcs8_der().map_err(|e| e.to_string())?;
    let config = TlsServerConfig::self_signed_with_key(vec!["localhost".to_owned()], &der)
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    TlsServerTransport::new(config).map_err(|e| format!("cannot set up TLS: {e}"))
}

/// The VTS key: loaded from --key, or generated (printing nothing here:
/// the fingerprint goes to stdout after the listening line).
fn vts_key(args: &ServeArgs) -> Result<RsaKeyPair, String> {
    match &args.key {
        Some(path) => RsaKeyPair::from_file(path)
            .map_err(|e| format!("cannot load the key {}: {e}", path.display())),
        None => RsaKeyPair::generate_default().map_err(|e| format!("cannot generate a key: {e}")),
    }
}

/// The negotiation layer for `transports`, with the VTS key if enabled.
fn build_layer(
    args: &ServeArgs,
    transports: TransportSet,
) -> Result<(VopLayer, Option<RsaKeyPair>), String> {
    let mut builder = VopLayer::builder();
    let mut key = None;
    if transports.contains(Transport::Vts) || transports.contains(Transport::Tls) {
        key = Some(vts_key(args)?);
    }
    if let (true, Some(k)) = (transports.contains(Transport::Vts), &key) {
        let policy = KeyPolicy::default().with_min_bits(args.min_peer_key_bits);
        builder = builder.transport(VtsServerTransport::new(k.clone()).key_policy(policy));
    }
    if let (true, Some(k)) = (transports.contains(Transport::Tls), &key) {
        builder = builder.transport(tls_transport(k)?);
    }
    if transports.contains(Transport::Plain) {
        builder = builder.allow_insecure();
    }
    let layer = builder.build().map_err(|e| e.to_string())?;
    Ok((layer, key))
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
    // Before the runtime starts: generating a key is CPU work.
    let (layer, key) = match build_layer(&args, transports) {
        Ok(x) => x,
        Err(msg) => return fail(EXIT_USAGE, msg),
    };
    let rt = match runtime_with_threads(ops.threads) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(serve(args, transports, layer, key, ops))
}

async fn serve(
    args: ServeArgs,
    transports: TransportSet,
    layer: VopLayer,
    key: Option<RsaKeyPair>,
    ops: Ops,
) -> ExitCode {
    // The demo gateways keep no per-link state: one object serves every
    // link, so an idle link holds no method table of its own (issue #8).
    let gateway: LocalObject = match args.gateway {
        GatewayKind::Demo => SimpleGateway::new(),
        GatewayKind::Echo => Echoer.into(),
    };
    let factory = move || gateway.clone();
    let svc = match ops.stack.build(layer, GatewayService::new(factory)) {
        Ok(svc) => svc,
        // `resolve` validated already; kept for a config built another way.
        Err(e) => return fail(EXIT_USAGE, e),
    };
    // Made before the server so /healthz and /readyz answer (503) from
    // the moment the metrics listener is up.
    let readiness = Readiness::new();
    let metrics = match ops.start_metrics(readiness.clone()).await {
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
    let server = match Server::builder()
        .listener(listener)
        .readiness(readiness)
        .serve(svc)
    {
        Ok(s) => s,
        Err(e) => return fail(EXIT_FAILURE, format!("cannot serve: {e}")),
    };
    {
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the service.
        let _ = writeln!(out, "listening on vop://{}/", server.local_addr());
        if let Some(k) = &key {
            let _ = writeln!(out, "key fingerprint {}", k.fingerprint());
        }
        if let Some(m) = &metrics {
            let _ = writeln!(out, "metrics on http://{}/metrics", m.local_addr());
        }
        let _ = out.flush();
    }
    info!(addr = %server.local_addr(), transports = %transports, threads = ops.threads, stack = %ops.stack, "serving");

    let sig = signals.next().await;
    if !args.shutdown_delay.is_zero() {
        server.readiness().set_gate(Gate::Closed);
        info!(
            signal = sig,
            delay = ?args.shutdown_delay,
            "out of rotation (/readyz 503), still accepting until the delay ends"
        );
        tokio::select! {
            _ = tokio::time::sleep(args.shutdown_delay) => {}
            sig = signals.next() => info!(signal = sig, "second signal; draining now"),
        }
    }
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
            key: None,
            min_peer_key_bits: DEFAULT_MIN_PEER_BITS,
            gateway: GatewayKind::Demo,
            drain_timeout: Duration::from_secs(1),
            shutdown_delay: Duration::ZERO,
            ops: OpsArgs::default(),
        }
    }

    #[test]
    fn transport_choice() {
        let plain = TransportSet::from(Transport::Plain);
        let vts = TransportSet::from(Transport::Vts);
        assert_eq!(choose_transports(&args(true, None)), Ok(plain));
        assert_eq!(choose_transports(&args(false, Some("plain"))), Ok(plain));
        assert_eq!(choose_transports(&args(false, Some("PLAIN"))), Ok(plain));
        assert_eq!(choose_transports(&args(false, None)), Ok(vts));
        let both = choose_transports(&args(false, Some("vts,plain"))).unwrap();
        assert!(both.contains(Transport::Vts) && both.contains(Transport::Plain));
        let tls = choose_transports(&args(false, Some("tls,plain"))).unwrap();
        assert!(tls.contains(Transport::Tls));
        let e = choose_transports(&args(false, Some(""))).unwrap_err();
        assert!(e.contains("no transport"), "{e}");
        let mut a = args(true, None);
        a.key = Some("k.pem".into());
        assert!(choose_transports(&a).unwrap_err().contains("--key"));
        assert!(parse_transports("bogus").is_err());
    }
}
