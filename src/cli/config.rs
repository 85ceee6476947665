//! `versile serve` operations settings: the middleware stack
//! ([`StackConfig`]), the Prometheus endpoint and the log format, from
//! `--config FILE` (TOML) and flags; a flag given on the command line wins
//! over the file.
//!
//! ```toml
//! metrics = "127.0.0.1:9100"   # --metrics
//! log_format = "json"          # --log-format human|json
//! log = "info,versile=debug"   # --log (else RUST_LOG, else "warn")
//! reuse_port = true            # --reuse-port (SO_REUSEPORT)
//!
//! [stack]                      # StackConfig; 0 turns a limit or timeout off
//! max_connections = 10000      # --max-connections (default 10000)
//! max_connections_per_ip = 64  # --max-connections-per-ip (default 64)
//! rate_per_ip = 20.0           # --rate-per-ip (new connections a second)
//! burst_per_ip = 100           # --burst-per-ip
//! allow = ["10.0.0.0/8"]       # --allow (repeat or comma separate)
//! deny = ["10.6.6.0/24"]       # --deny
//! handshake_timeout = 10       # --handshake-timeout SECS (default 10)
//! idle_timeout = 300           # --idle-timeout SECS (default off)
//! keep_alive = 60              # --keep-alive SECS (default 60)
//! proxy_protocol = true        # --proxy-protocol
//! proxy_trusted = ["10.1.0.5"] # --proxy-trusted (the balancers)
//! # proxy_trust_any = true     # --proxy-trust-any (instead of proxy_trusted)
//! ```
//!
//! The defaults are [`StackConfig::default()`]'s, chosen to face the
//! internet; the reasons are in `src/server/stack.rs` and
//! `docs/deployment.md`.

use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;
use versile::ops::{install_prometheus, LogFormat, MetricsEndpoint};
use versile::server::{parse_net, parse_secs_opt, StackConfig};
use versile_middleware::ipnet::IpNet;

/// Limits, filters, PROXY protocol, metrics and logs (`versile serve`).
#[derive(Debug, Default, Args)]
pub struct OpsArgs {
    /// TOML file with these settings (flags win over it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Concurrent connections in all; more are refused (0: unlimited)
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Concurrent connections per client address, IPv6 by /64 (0:
    /// unlimited) [default: 64]. One address cannot take every slot, while
    /// dozens of clients behind one NAT still fit; behind a balancer
    /// without --proxy-protocol, raise it or use 0.
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<u32>,
    /// New connections a second per client address (0: unlimited).
    #[arg(long, value_name = "RATE")]
    rate_per_ip: Option<f64>,
    /// Burst above --rate-per-ip [default: the rate, rounded up].
    #[arg(long, value_name = "N")]
    burst_per_ip: Option<u32>,
    /// Only these client networks may connect (CIDR or address; repeat or
    /// separate with commas).
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = parse_net)]
    allow: Vec<IpNet>,
    /// These client networks may not connect (wins over --allow).
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = parse_net)]
    deny: Vec<IpNet>,
    /// Seconds from accept to an established link, else the connection is
    /// dropped (0: no deadline) [default: 10].
    #[arg(long, value_name = "SECS", value_parser = parse_secs_off)]
    handshake_timeout: Option<f64>,
    /// Close links that made no calls for this many seconds (0: never)
    /// [default: 0: clients may hold a quiet link, dead ones are caught by
    /// --keep-alive].
    #[arg(long, value_name = "SECS", value_parser = parse_secs_off)]
    idle_timeout: Option<f64>,
    /// Ask each client for VOL keep-alive traffic at this interval and
    /// close its link when it stays silent for 1.5 x the interval it
    /// grants (Versile Python grants at least 300 s): dead peers are
    /// closed, idle live ones stay (0: do not ask) [default: 60].
    #[arg(long, value_name = "SECS", value_parser = parse_secs_off)]
    keep_alive: Option<f64>,
    /// Require a PROXY protocol v1/v2 header on every connection (behind
    /// HAProxy `send-proxy-v2` and the like); the real client address is
    /// then used by filters, limits, logs and the call context. Needs
    /// --proxy-trusted or --proxy-trust-any.
    #[arg(long)]
    proxy_protocol: bool,
    /// With --proxy-protocol: only these networks (the balancers) may
    /// connect.
    #[arg(long, value_name = "CIDR", value_delimiter = ',', value_parser = parse_net)]
    proxy_trusted: Vec<IpNet>,
    /// With --proxy-protocol: believe a PROXY header from anyone who can
    /// reach the port (only if a firewall lets nothing but the balancers
    /// in: the header sets the address that limits and filters use).
    #[arg(long)]
    proxy_trust_any: bool,
    /// Set SO_REUSEPORT on the listening socket, so that several
    /// processes can listen on the same address (the kernel spreads
    /// connections over them).
    #[arg(long)]
    reuse_port: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Log line format [default: human].
    #[arg(long, value_name = "FORMAT", value_parser = clap::builder::PossibleValuesParser::new(["human", "json"]))]
    log_format: Option<String>,
    /// Log filter, RUST_LOG syntax (e.g. info,versile=debug) [default:
    /// $RUST_LOG, else warn].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    metrics: Option<String>,
    log_format: Option<LogFormat>,
    log: Option<String>,
    reuse_port: bool,
    stack: StackConfig,
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Ops {
    pub stack: StackConfig,
    pub metrics: Option<String>,
    pub log_format: LogFormat,
    pub log: Option<String>,
    pub reuse_port: bool,
}

/// Seconds, 0 for off (kept as f64: clap gives `Option<Option<_>>` a
/// meaning of its own).
fn parse_secs_off(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    parse_secs_opt(secs).map(|_| secs)
}

impl OpsArgs {
    /// File, then flags; a configuration error as a message for exit 2.
    pub fn resolve(&self) -> Result<Ops, String> {
        let file = match &self.config {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("invalid config {}: {e}", path.display()))?
            }
        };
        let mut stack = file.stack;
        let zero_off = |n: usize| (n != 0).then_some(n);
        if let Some(n) = self.max_connections {
            stack.max_connections = zero_off(n);
        }
        if let Some(n) = self.max_connections_per_ip {
            stack.max_connections_per_ip = (n != 0).then_some(n);
        }
        if let Some(r) = self.rate_per_ip {
            stack.rate_per_ip = (r != 0.0).then_some(r);
        }
        if let Some(b) = self.burst_per_ip {
            stack.burst_per_ip = Some(b);
        }
        if !self.allow.is_empty() {
            stack.allow = self.allow.clone();
        }
        if !self.deny.is_empty() {
            stack.deny = self.deny.clone();
        }
        if let Some(t) = self.handshake_timeout {
            stack.handshake_timeout = parse_secs_opt(t)?;
        }
        if let Some(t) = self.idle_timeout {
            stack.idle_timeout = parse_secs_opt(t)?;
        }
        if let Some(t) = self.keep_alive {
            stack.keep_alive = parse_secs_opt(t)?;
        }
        if self.proxy_protocol {
            stack.proxy_protocol = true;
        }
        if !self.proxy_trusted.is_empty() {
            stack.proxy_trusted = self.proxy_trusted.clone();
        }
        if self.proxy_trust_any {
            stack.proxy_trust_any = true;
        }
        stack.validate().map_err(|e| e.to_string())?;
        let log_format = match &self.log_format {
            Some(f) => f.parse()?,
            None => file.log_format.unwrap_or_default(),
        };
        Ok(Ops {
            stack,
            metrics: self.metrics.clone().or(file.metrics),
            log_format,
            log: self.log.clone().or(file.log),
            reuse_port: self.reuse_port || file.reuse_port,
        })
    }
}

impl Ops {
    /// Install the log subscriber.
    pub fn init_logging(&self) -> Result<(), String> {
        versile::ops::init_logging(self.log_format, self.log.as_deref(), "warn")
    }

    /// Bind the service's listening socket (with SO_REUSEPORT if asked).
    pub async fn bind(&self, listen: &str) -> std::io::Result<tokio::net::TcpListener> {
        if !self.reuse_port {
            return tokio::net::TcpListener::bind(listen).await;
        }
        let mut last = None;
        for addr in tokio::net::lookup_host(listen).await? {
            match bind_reuse_port(addr) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no addresses")))
    }

    /// Install the Prometheus recorder and bind the endpoint, if asked for
    /// (call inside the runtime).
    pub async fn start_metrics(&self) -> Result<Option<MetricsEndpoint>, String> {
        let Some(addr) = &self.metrics else {
            return Ok(None);
        };
        let handle = install_prometheus()?;
        MetricsEndpoint::bind(addr, handle)
            .await
            .map(Some)
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
    }
}

fn bind_reuse_port(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    {
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    tokio::net::TcpListener::from_std(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        ops: OpsArgs,
    }

    fn resolve(args: &[&str]) -> Result<Ops, String> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .ops
            .resolve()
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("versile-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("serve.toml");
        std::fs::write(
            &path,
            "metrics = \"127.0.0.1:0\"\nlog_format = \"json\"\n[stack]\nmax_connections = 5\n\
             idle_timeout = 30\ndeny = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let ops = resolve(&["--config", p]).unwrap();
        assert_eq!(ops.stack.max_connections, Some(5));
        assert_eq!(ops.stack.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(ops.log_format, LogFormat::Json);
        assert_eq!(ops.metrics.as_deref(), Some("127.0.0.1:0"));
        let ops = resolve(&[
            "--config",
            p,
            "--max-connections",
            "0",
            "--idle-timeout",
            "0",
            "--deny",
            "192.0.2.1,198.51.100.0/24",
            "--log-format",
            "human",
            "--proxy-protocol",
            "--proxy-trust-any",
            "--keep-alive",
            "0",
        ])
        .unwrap();
        assert_eq!(ops.stack.max_connections, None);
        assert_eq!(ops.stack.idle_timeout, None);
        assert_eq!(ops.stack.deny.len(), 2);
        assert!(ops.stack.proxy_protocol && ops.stack.proxy_trust_any);
        assert_eq!(ops.stack.keep_alive, None);
        assert_eq!(ops.log_format, LogFormat::Human);

        std::fs::write(&path, "[stack]\nmax_conections = 5\n").unwrap();
        let e = resolve(&["--config", p]).unwrap_err();
        assert!(
            e.contains("max_conections") && e.contains("serve.toml"),
            "{e}"
        );
        assert!(resolve(&["--config", "/nonexistent/x.toml"]).is_err());
        assert!(resolve(&["--allow", "300.1.1.1"]).is_err());
        assert!(resolve(&["--rate-per-ip", "-1"]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn defaults() {
        let ops = resolve(&[]).unwrap();
        assert_eq!(ops.stack, StackConfig::default());
        assert_eq!(ops.stack.max_connections_per_ip, Some(64));
        assert_eq!(ops.stack.keep_alive, Some(Duration::from_secs(60)));
        assert_eq!(ops.metrics, None);
    }

    #[test]
    fn proxy_protocol_needs_trusted_balancers() {
        let e = resolve(&["--proxy-protocol"]).unwrap_err();
        assert!(
            e.contains("--proxy-trusted") && e.contains("--proxy-trust-any"),
            "{e}"
        );
        let ops = resolve(&["--proxy-protocol", "--proxy-trusted", "10.1.0.5"]).unwrap();
        assert_eq!(ops.stack.proxy_trusted.len(), 1);
        assert!(resolve(&["--proxy-protocol", "--proxy-trust-any"]).is_ok());
        assert!(resolve(&["--proxy-trust-any"]).is_err());
        assert!(resolve(&["--proxy-trusted", "10.1.0.5"]).is_err());
    }
}
