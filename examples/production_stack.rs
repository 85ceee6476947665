//! The full production stack, as `versile serve` builds it: connection
//! limits (global, per client address, rate), a handshake deadline, idle
//! timeout, per-link and process-wide resource limits, optional PROXY
//! protocol, Prometheus metrics over HTTP in the same runtime, JSON logs,
//! and a graceful stop with a drain deadline on SIGINT/SIGTERM.
//!
//! ```sh
//! cargo run --example production_stack -- 127.0.0.1:4433 127.0.0.1:9100
//! curl http://127.0.0.1:9100/metrics
//! RUST_LOG=info cargo run --example production_stack   # JSON logs on stderr
//! ```
//!
//! Behind a load balancer that sends PROXY headers, set
//! `proxy_protocol: true` and `proxy_trusted` to the balancers (or
//! `proxy_trust_any: true` if only they can reach the port); `build`
//! refuses PROXY protocol with neither.

use std::time::Duration;

use versile::demo::SimpleGateway;
use versile::ops::{init_logging, install_prometheus, LogFormat, MetricsEndpoint};
use versile::server::{LinkLimits, Readiness, StackConfig};
use versile::{GatewayService, Server, StopLinks, VopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or("127.0.0.1:4433".into());
    let metrics_addr = args.next().unwrap_or("127.0.0.1:9100".into());
    init_logging(LogFormat::Json, None, "info")?;

    // Every layer's settings; the same struct is `[stack]` in a
    // `versile serve --config` file, so it can also come from TOML.
    let stack = StackConfig {
        max_connections: Some(10_000),
        max_connections_per_ip: Some(64),
        rate_per_ip: Some(50.0),
        burst_per_ip: Some(100),
        handshake_timeout: Some(Duration::from_secs(10)),
        idle_timeout: Some(Duration::from_secs(600)),
        // Dead-peer detection: VOL keep-alive (`docs/protocol/vol.md` §8).
        keep_alive: Some(Duration::from_secs(60)),
        proxy_protocol: false,
        // Per-link limits and the budgets all links share (`[stack.link]`
        // in TOML); the defaults, with the memory this process may spend
        // on peers raised.
        link: LinkLimits {
            max_process_memory: 1 << 30,
            ..LinkLimits::default()
        },
        ..StackConfig::default()
    };
    // PLAIN keeps the example self-contained; in production add the VTS
    // or TLS transport to the VopLayer (see docs/deployment.md).
    // `build` refuses settings that must not run (e.g. PROXY protocol
    // without trusted balancers) with a typed `StackConfigError`.
    let svc = stack.build(
        VopLayer::insecure(),
        GatewayService::new(SimpleGateway::new),
    )?;

    // /metrics, and /healthz and /readyz from the server's readiness
    // (503 from the moment the stop below begins).
    let readiness = Readiness::new();
    let metrics =
        MetricsEndpoint::bind_with_health(&metrics_addr, install_prometheus()?, readiness.clone())
            .await?;
    let server = Server::builder()
        .listen(listen.as_str())
        .readiness(readiness)
        .serve(svc)?;
    println!("listening on vop://{}/", server.local_addr());
    println!("metrics on http://{}/metrics", metrics.local_addr());
    tracing::info!(addr = %server.local_addr(), %stack, "serving");

    shutdown_signal().await;
    // Stop accepting; links finish their running calls and close; what is
    // left after the drain deadline is closed by force.
    server.stop(StopLinks::Graceful);
    if !server.wait_drained(Duration::from_secs(10)).await {
        tracing::warn!("drain deadline passed; forcing");
        server.stop(StopLinks::Force);
        server.drained().await;
    }
    metrics.shutdown().await;
    println!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
