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
//! threads = 2                  # --threads (1: current-thread runtime; default: the CPUs we may use)
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
//!
//! [stack.link]                 # LinkLimits: per link, and shared by all links
//! # sizes in bytes or "64MiB"-style; 0 is refused except max_process_calls
//! max_link_memory = "192MiB"        # --max-link-memory (default 192MiB)
//! link_memory_reserve = "256KiB"    # --link-memory-reserve (default 256KiB)
//! max_process_memory = "512MiB"     # --max-process-memory, all links (default 512MiB)
//! max_unsent_output = "8MiB"        # --max-unsent-output (default 8MiB)
//! max_entity_size = 105906176       # --max-entity-size (default 101MiB)
//! max_decoded_entity = "64MiB"      # --max-decoded-entity (default 64MiB)
//! max_handshake_entity_size = 4096  # --max-handshake-entity-size (default 4KiB)
//! max_handshake_decoded_entity = "64KiB" # --max-handshake-decoded-entity (default 64KiB)
//! max_entity_depth = 256            # --max-entity-depth (default 256)
//! max_exports = 1024                # --max-exports (default 1024)
//! max_imports = 1024                # --max-imports (default 1024)
//! max_calls_in_flight = 256         # --max-calls-in-flight (default 256)
//! max_queued_calls = 1024           # --max-queued-calls (default 1024)
//! max_process_calls = 8192          # --max-process-calls, all links (0: off; default 8192)
//! ```
//!
//! The defaults are [`StackConfig::default()`]'s, chosen to face the
//! internet; the reasons are in `src/server/stack.rs` and
//! `docs/deployment.md`.

use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;
use versile::ops::{install_prometheus, LogFormat, MetricsEndpoint};
use versile::server::flag_syntax::{parse_net, parse_secs_opt, parse_size};
use versile::server::Readiness;
use versile::server::{LinkLimits, StackConfig};
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
    /// Per-link and process-wide resource limits ([stack.link]).
    #[command(flatten)]
    link: LinkLimitArgs,
    /// Set SO_REUSEPORT on the listening socket, so that several
    /// processes can listen on the same address (the kernel spreads
    /// connections over them).
    #[arg(long)]
    reuse_port: bool,
    /// Runtime worker threads; 1 runs everything on one thread (a tokio
    /// current-thread runtime) [default: the CPUs this process may use
    /// (affinity, cgroup quota), so one process uses the machine it is given].
    #[arg(long, value_name = "N", value_parser = parse_nonzero)]
    threads: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics, and health checks
    /// at /healthz (alive) and /readyz (accepting; 503 once draining).
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

/// Flags of [`LinkLimits`] (`[stack.link]`); sizes in bytes or with a
/// KiB/MiB/GiB suffix. Each wins over the file.
#[derive(Debug, Default, Args)]
pub struct LinkLimitArgs {
    /// Memory one link may hold (read buffer, entity being decoded, calls,
    /// unsent output); over it the link stops reading, or is closed if
    /// nothing can drain [default: 192MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    max_link_memory: Option<usize>,
    /// Memory each link may hold without charging --max-process-memory, so
    /// ordinary clients are served while hostile links hold the shared
    /// budget [default: 256KiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    link_memory_reserve: Option<usize>,
    /// Memory all links together may hold beyond their reserves; raise it
    /// with the memory the machine can give this process [default: 512MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    max_process_memory: Option<usize>,
    /// Unsent output after which a link stops reading until the peer reads
    /// [default: 8MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    max_unsent_output: Option<usize>,
    /// Wire size of one entity after the handshake (Python's limit)
    /// [default: 105906176 (101MiB)].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    max_entity_size: Option<usize>,
    /// In-memory cost of one decoded entity after the handshake; over it
    /// the link is closed [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    max_decoded_entity: Option<usize>,
    /// Wire size of one entity before the handshake completes
    /// [default: 4KiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    max_handshake_entity_size: Option<usize>,
    /// In-memory cost of one entity before the handshake completes
    /// [default: 64KiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_nonzero)]
    max_handshake_decoded_entity: Option<usize>,
    /// Nesting depth of one entity [default: 256].
    #[arg(long, value_name = "N", value_parser = parse_nonzero)]
    max_entity_depth: Option<usize>,
    /// Objects one link exports at once; a result that would export more
    /// becomes CALL_ERROR (at least 2) [default: 1024].
    #[arg(long, value_name = "N", value_parser = parse_nonzero)]
    max_exports: Option<usize>,
    /// Peer objects one link imports at once; a peer sending more is
    /// disconnected (at least 2) [default: 1024].
    #[arg(long, value_name = "N", value_parser = parse_nonzero)]
    max_imports: Option<usize>,
    /// Incoming calls of one link running at once; more wait
    /// [default: 256].
    #[arg(long, value_name = "N", value_parser = parse_nonzero)]
    max_calls_in_flight: Option<usize>,
    /// Decoded calls of one link waiting to start; a full queue stops
    /// reading [default: 1024].
    #[arg(long, value_name = "N", value_parser = parse_nonzero)]
    max_queued_calls: Option<usize>,
    /// Incoming calls running at once across all links (0: no shared cap)
    /// [default: 8192].
    #[arg(long, value_name = "N")]
    max_process_calls: Option<usize>,
}

impl LinkLimitArgs {
    /// Overwrite `l` with the flags given.
    fn apply(&self, l: &mut LinkLimits) {
        let set = |dst: &mut usize, src: Option<usize>| {
            if let Some(n) = src {
                *dst = n;
            }
        };
        set(&mut l.max_link_memory, self.max_link_memory);
        set(&mut l.link_memory_reserve, self.link_memory_reserve);
        set(&mut l.max_process_memory, self.max_process_memory);
        set(&mut l.max_unsent_output, self.max_unsent_output);
        set(&mut l.max_entity_size, self.max_entity_size);
        set(&mut l.max_decoded_entity, self.max_decoded_entity);
        set(
            &mut l.max_handshake_entity_size,
            self.max_handshake_entity_size,
        );
        set(
            &mut l.max_handshake_decoded_entity,
            self.max_handshake_decoded_entity,
        );
        set(&mut l.max_entity_depth, self.max_entity_depth);
        set(&mut l.max_exports, self.max_exports);
        set(&mut l.max_imports, self.max_imports);
        set(&mut l.max_calls_in_flight, self.max_calls_in_flight);
        set(&mut l.max_queued_calls, self.max_queued_calls);
        if let Some(n) = self.max_process_calls {
            l.max_process_calls = (n != 0).then_some(n);
        }
    }
}

fn parse_size_nonzero(s: &str) -> Result<usize, String> {
    match parse_size(s)? {
        0 => Err("must be at least 1 (this limit cannot be turned off)".into()),
        n => Ok(n),
    }
}

fn parse_nonzero(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>().map_err(|e| e.to_string())? {
        0 => Err("must be at least 1 (this limit cannot be turned off)".into()),
        n => Ok(n),
    }
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    metrics: Option<String>,
    log_format: Option<LogFormat>,
    log: Option<String>,
    reuse_port: bool,
    threads: Option<usize>,
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
    /// Runtime worker threads (1: current-thread runtime).
    pub threads: usize,
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
        self.link.apply(&mut stack.link);
        stack.validate().map_err(|e| e.to_string())?;
        let log_format = match &self.log_format {
            Some(f) => f.parse()?,
            None => file.log_format.unwrap_or_default(),
        };
        let threads = match self.threads.or(file.threads) {
            Some(0) => return Err("threads must be at least 1".into()),
            Some(n) => n,
            None => default_threads(),
        };
        Ok(Ops {
            threads,
            stack,
            metrics: self.metrics.clone().or(file.metrics),
            log_format,
            log: self.log.clone().or(file.log),
            reuse_port: self.reuse_port || file.reuse_port,
        })
    }
}

/// The default `--threads`: the CPUs this process may use
/// (`available_parallelism` honours `taskset` and cgroup quotas), 1 if
/// that cannot be read.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
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

    /// Install the Prometheus recorder and bind the endpoint, with
    /// `/healthz` and `/readyz` from `readiness`, if asked for (call inside
    /// the runtime).
    pub async fn start_metrics(
        &self,
        readiness: Readiness,
    ) -> Result<Option<MetricsEndpoint>, String> {
        let Some(addr) = &self.metrics else {
            return Ok(None);
        };
        let handle = install_prometheus()?;
        MetricsEndpoint::bind_with_health(addr, handle, readiness)
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
            "metrics = \"127.0.0.1:0\"\nlog_format = \"json\"\nthreads = 3\n[stack]\nmax_connections = 5\n\
             idle_timeout = 30\ndeny = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let ops = resolve(&["--config", p]).unwrap();
        assert_eq!(ops.stack.max_connections, Some(5));
        assert_eq!(ops.stack.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(ops.log_format, LogFormat::Json);
        assert_eq!(ops.metrics.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(ops.threads, 3);
        let ops = resolve(&[
            "--config",
            p,
            "--threads",
            "1",
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
        assert_eq!(ops.threads, 1);
        assert!(resolve(&["--threads", "0"]).is_err());
        std::fs::write(&path, "threads = 0\n").unwrap();
        assert!(resolve(&["--config", p]).unwrap_err().contains("threads"));

        std::fs::write(&path, "[stack]\nmax_conections = 5\n").unwrap();
        let e = resolve(&["--config", p]).unwrap_err();
        assert!(
            e.contains("max_conections") && e.contains("serve.toml"),
            "{e}"
        );
        assert!(resolve(&["--config", "/nonexistent/x.toml"]).is_err());
        assert!(resolve(&["--allow", "300.1.1.1"]).is_err());
        assert!(resolve(&["--rate-per-ip", "-1"]).is_err());

        // [stack.link]: the file sets limits, flags win.
        std::fs::write(
            &path,
            "[stack.link]\nmax_exports = 8\nmax_process_memory = \"1GiB\"\n\
             max_process_calls = 0\nmax_queued_calls = 10\n",
        )
        .unwrap();
        let ops = resolve(&["--config", p]).unwrap();
        let l = &ops.stack.link;
        assert_eq!((l.max_exports, l.max_process_memory), (8, 1 << 30));
        assert_eq!((l.max_process_calls, l.max_queued_calls), (None, 10));
        let ops = resolve(&[
            "--config",
            p,
            "--max-exports",
            "4",
            "--max-process-memory",
            "64MiB",
            "--max-process-calls",
            "100",
            "--max-decoded-entity",
            "4096",
        ])
        .unwrap();
        let l = &ops.stack.link;
        assert_eq!((l.max_exports, l.max_process_memory), (4, 64 << 20));
        assert_eq!((l.max_process_calls, l.max_queued_calls), (Some(100), 10));
        assert_eq!(l.max_decoded_entity, 4096);
        assert!(ops.stack.to_string().contains("max_exports=4"));
        for bad in [
            &["--max-exports", "0"][..],
            &["--max-link-memory", "0"],
            &["--max-link-memory", "12MB"],
            &["--max-imports", "-3"],
        ] {
            assert!(resolve(bad).is_err(), "{bad:?}");
        }
        std::fs::write(&path, "[stack.link]\nmax_imports = 0\n").unwrap();
        let e = resolve(&["--config", p]).unwrap_err();
        assert!(e.contains("max_imports"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn defaults() {
        let ops = resolve(&[]).unwrap();
        assert_eq!(ops.stack, StackConfig::default());
        assert_eq!(ops.stack.max_connections_per_ip, Some(64));
        assert_eq!(ops.stack.keep_alive, Some(Duration::from_secs(60)));
        assert_eq!(ops.stack.link, LinkLimits::default());
        assert_eq!(ops.metrics, None);
        assert_eq!(ops.threads, default_threads());
        assert!(ops.threads >= 1);
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
