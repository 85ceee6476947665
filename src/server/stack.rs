//! The production connection stack: every `versile_middleware` layer in
//! front of a [`VopLayer`] and a [`GatewayService`](super::GatewayService),
//! configured by one [`StackConfig`] (which is also the `[stack]` part of
//! `versile serve --config FILE`). `versile serve` builds its service with
//! [`StackConfig::build`]; so does `examples/production_stack.rs`.
//!
//! Order, outermost first (the reasons are in the middleware crate docs):
//!
//! ```text
//! MetricsLayer            counts every connection and every refusal below
//! HandshakeDeadlineLayer  accept → established, covering PROXY and all handshakes
//! MaxConnectionsLayer     global cap; the excess is closed at once
//! HostFilterLayer         proxy_trusted: who may send a PROXY header
//! ProxyProtocolLayer      the real client address from the balancer
//! TraceLayer              one span per connection, with the real client
//! HostFilterLayer         allow / deny (real client)
//! PerIpLimitLayer         concurrent connections and rate per client address
//! IdleTimeoutLayer        close links without calls for a while
//! (link settings)         link limits, shared budgets, VOL keep-alive request
//! VopLayer → gateway      transport negotiation, then the link
//! ```
//!
//! ## Safe defaults
//!
//! [`StackConfig::default()`] is meant to face the internet (issue #7):
//!
//! * at most [`DEFAULT_MAX_CONNECTIONS`](StackConfig::DEFAULT_MAX_CONNECTIONS)
//!   connections in all and
//!   [`DEFAULT_MAX_CONNECTIONS_PER_IP`](StackConfig::DEFAULT_MAX_CONNECTIONS_PER_IP)
//!   per client address (an IPv6 /64 counts as one), so one address cannot
//!   take every slot;
//! * a [handshake deadline](StackConfig::DEFAULT_HANDSHAKE_TIMEOUT) for
//!   everything before the link is up;
//! * dead-peer detection on established links: every link asks its peer for
//!   VOL keep-alive traffic ([`DEFAULT_KEEP_ALIVE`](StackConfig::DEFAULT_KEEP_ALIVE),
//!   `docs/protocol/vol.md` §8) and is closed when the peer stays silent for 1.5 × the
//!   interval it granted; idle but live clients (Python's included) answer
//!   with keep-alive messages and stay, so the idle timeout stays off;
//! * PROXY protocol only with a list of trusted balancers
//!   ([`proxy_trusted`](StackConfig::proxy_trusted)) or an explicit
//!   [`proxy_trust_any`](StackConfig::proxy_trust_any): otherwise
//!   [`validate`](StackConfig::validate) and [`build`](StackConfig::build)
//!   refuse with [`StackConfigError::UntrustedProxy`], since any client
//!   could claim any address and every address-based limit would be void;
//! * per-link and process-wide resource limits ([`LinkLimits`], the
//!   [`link`](StackConfig::link) field, `[stack.link]` in TOML): memory,
//!   entity sizes, object tables, calls; one process-wide memory budget
//!   and one call budget per built stack, shared by all its links.
//!
//! ```
//! use std::time::Duration;
//! use versile::server::StackConfig;
//! use versile::{demo::SimpleGateway, GatewayService, VopLayer};
//!
//! let config: StackConfig = toml::from_str(r#"
//!     max_connections = 1000
//!     max_connections_per_ip = 20
//!     rate_per_ip = 5.0
//!     deny = ["192.0.2.0/24"]
//!     handshake_timeout = 5
//!     idle_timeout = 300
//! "#).unwrap();
//! assert_eq!(config.handshake_timeout, Some(Duration::from_secs(5)));
//! let svc = config.build(VopLayer::insecure(), GatewayService::new(SimpleGateway::new))?;
//! # let _ = svc;
//!
//! // PROXY protocol needs to know whom to believe.
//! let behind_lb: StackConfig = toml::from_str("proxy_protocol = true").unwrap();
//! assert!(behind_lb.validate().is_err());
//! # Ok::<(), versile::server::StackConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use tower::util::BoxCloneService;
use tower::{Service, ServiceBuilder};
use versile_middleware::deadline::HandshakeDeadlineLayer;
use versile_middleware::filter::HostFilterLayer;
use versile_middleware::idle::IdleTimeoutLayer;
use versile_middleware::ipnet::IpNet;
use versile_middleware::limit::MaxConnectionsLayer;
use versile_middleware::metrics::MetricsLayer;
use versile_middleware::per_ip::PerIpLimitLayer;
use versile_middleware::proxy_protocol::ProxyProtocolLayer;
use versile_middleware::trace::TraceLayer;
use versile_middleware::BoxError;

use super::link_limits::LinkLimits;
use super::{Connection, VopLayer};
use crate::runtime::LinkOutcome;

/// The boxed service a [`StackConfig`] builds (the layer types nest too
/// deeply to name); give it to [`Server::serve`](super::Server::serve).
pub type StackService = BoxCloneService<Connection, LinkOutcome, BoxError>;

/// Settings of every layer of the production stack. `Default` is the
/// stack `versile serve` runs without options (the module's "Safe
/// defaults"): at most
/// [`DEFAULT_MAX_CONNECTIONS`](Self::DEFAULT_MAX_CONNECTIONS) connections
/// and [`DEFAULT_MAX_CONNECTIONS_PER_IP`](Self::DEFAULT_MAX_CONNECTIONS_PER_IP)
/// per address, a 10 s handshake deadline, VOL keep-alive requested
/// every [`DEFAULT_KEEP_ALIVE`](Self::DEFAULT_KEEP_ALIVE), metrics and
/// tracing on, no rate limit, no filter, no idle timeout, no PROXY protocol.
///
/// Deserializes from TOML/JSON with these keys (durations in seconds,
/// fractions allowed; networks as CIDR or a single address; `0` turns a
/// timeout or limit off); unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StackConfig {
    /// Concurrent connections in all (`None`: unlimited); the excess is
    /// refused (`max_connections`).
    #[serde(deserialize_with = "de_limit")]
    pub max_connections: Option<usize>,
    /// Concurrent connections per client address, IPv6 by /64
    /// (`per_ip_concurrent`; default
    /// [`DEFAULT_MAX_CONNECTIONS_PER_IP`](Self::DEFAULT_MAX_CONNECTIONS_PER_IP)).
    /// Behind a balancer without PROXY protocol every connection comes
    /// from the balancer's address: raise it or turn it off (`0`).
    #[serde(deserialize_with = "de_limit")]
    pub max_connections_per_ip: Option<u32>,
    /// New connections a second per client address (`per_ip_rate`).
    #[serde(deserialize_with = "de_rate")]
    pub rate_per_ip: Option<f64>,
    /// Burst allowed above `rate_per_ip` (default: the rate rounded up,
    /// at least 1).
    pub burst_per_ip: Option<u32>,
    /// Only these client networks may connect (empty: all).
    #[serde(deserialize_with = "de_nets")]
    pub allow: Vec<IpNet>,
    /// These client networks may not (wins over `allow`).
    #[serde(deserialize_with = "de_nets")]
    pub deny: Vec<IpNet>,
    /// Accept → link established within this time (`None`: no deadline).
    #[serde(deserialize_with = "de_secs")]
    pub handshake_timeout: Option<Duration>,
    /// Close links with no calls for this long (`None`: never, the
    /// default: a client may hold a link without calls for as long as it
    /// likes, e.g. to receive callbacks; dead peers are caught by
    /// [`keep_alive`](Self::keep_alive) instead).
    #[serde(deserialize_with = "de_secs")]
    pub idle_timeout: Option<Duration>,
    /// Ask every peer to send VOL keep-alive traffic at this interval
    /// (`docs/protocol/vol.md` §8, H6); a peer that then stays silent for 1.5 × the
    /// interval it granted is closed (`None`: not requested). Default
    /// [`DEFAULT_KEEP_ALIVE`](Self::DEFAULT_KEEP_ALIVE). Overrides the
    /// gateway service's [`LinkConfig::keep_alive_request`](crate::vol::LinkConfig::keep_alive_request).
    #[serde(deserialize_with = "de_secs")]
    pub keep_alive: Option<Duration>,
    /// Require a PROXY protocol v1/v2 header (behind a load balancer).
    /// Needs [`proxy_trusted`](Self::proxy_trusted) or
    /// [`proxy_trust_any`](Self::proxy_trust_any).
    pub proxy_protocol: bool,
    /// With `proxy_protocol`: only these networks may connect and send the
    /// header (the balancers).
    #[serde(deserialize_with = "de_nets")]
    pub proxy_trusted: Vec<IpNet>,
    /// With `proxy_protocol` and no `proxy_trusted`: believe a PROXY header
    /// from anyone who can reach the port. Only safe when nothing but the
    /// balancers can (firewall, private network); off by default because
    /// the header sets the address that filters and per-IP limits use.
    pub proxy_trust_any: bool,
    /// Record metrics through the `metrics` facade.
    pub metrics: bool,
    /// A tracing span per connection.
    pub trace: bool,
    /// Resource limits of every link (`[stack.link]`; default
    /// [`LinkLimits::default()`], the [`LinkOptions`](crate::LinkOptions)
    /// defaults). [`build`](Self::build) creates the process-wide budgets
    /// once, shared by all connections of the built stack; these replace
    /// the limits of the gateway service's own options. A nested table
    /// because these act inside each link, not on connections, and keep
    /// the key names of their flags.
    pub link: LinkLimits,
}

impl StackConfig {
    /// The default global connection cap.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// The default per-address cap: 64 connections at once from one
    /// address (one IPv6 /64). A client needs one link per server, so 64
    /// leaves room for dozens of clients behind one NAT, while filling the
    /// default 10 000 slots takes at least 157 addresses.
    pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u32 = 64;
    /// The default handshake deadline.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default keep-alive request: 60 s. Peers grant at least their own
    /// minimum (Versile Python and this crate: 300 s, `docs/protocol/vol.md` §8), so a
    /// default peer sends something every 5 min when otherwise silent, and
    /// a dead or silent one is closed after 7.5 min; peers that allow less
    /// are checked sooner.
    pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);

    /// No layer at all except metrics and tracing: no connection limits, no
    /// deadline, no keep-alive request (the [`link`](Self::link) limits
    /// keep their defaults).
    pub fn unlimited() -> Self {
        StackConfig {
            max_connections: None,
            max_connections_per_ip: None,
            handshake_timeout: None,
            keep_alive: None,
            ..Self::default()
        }
    }

    /// The burst of the per-IP rate limit.
    pub fn burst(&self) -> Option<u32> {
        let rate = self.rate_per_ip?;
        Some(
            self.burst_per_ip
                .unwrap_or_else(|| rate.ceil().clamp(1.0, u32::MAX as f64) as u32),
        )
    }

    /// Check the settings that `Deserialize` cannot ([`build`](Self::build)
    /// does too).
    pub fn validate(&self) -> Result<(), StackConfigError> {
        if let Some(r) = self.rate_per_ip {
            if !(r.is_finite() && r > 0.0) {
                return Err(StackConfigError::InvalidRate(r));
            }
        }
        if self.burst_per_ip == Some(0) {
            return Err(StackConfigError::ZeroBurst);
        }
        if let Some(key) = self.link.first_zero() {
            return Err(StackConfigError::ZeroLinkLimit(key));
        }
        let trusted = !self.proxy_trusted.is_empty();
        match (self.proxy_protocol, trusted, self.proxy_trust_any) {
            (false, true, _) | (false, _, true) => Err(StackConfigError::ProxyTrustWithoutProxy),
            (true, false, false) => Err(StackConfigError::UntrustedProxy),
            (true, true, true) => Err(StackConfigError::ProxyTrustConflict),
            _ => Ok(()),
        }
    }

    /// The host filter for the real client, if any rule is set.
    fn host_filter(&self) -> Option<HostFilterLayer> {
        nets_filter(&self.allow, &self.deny)
    }

    /// The per-IP layer, if a per-IP limit is set.
    fn per_ip(&self) -> Option<PerIpLimitLayer> {
        if self.max_connections_per_ip.is_none() && self.rate_per_ip.is_none() {
            return None;
        }
        let mut b = PerIpLimitLayer::builder();
        if let Some(n) = self.max_connections_per_ip {
            b = b.max_concurrent(n);
        }
        if let (Some(rate), Some(burst)) = (self.rate_per_ip, self.burst()) {
            b = b.rate(rate, burst);
        }
        Some(b.build())
    }

    /// The whole stack around `vop` and the terminal `gateway` service
    /// (usually a [`GatewayService`](super::GatewayService)), once the
    /// settings pass [`validate`](Self::validate).
    pub fn build<S>(&self, vop: VopLayer, gateway: S) -> Result<StackService, StackConfigError>
    where
        S: Service<Connection, Response = LinkOutcome> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
    {
        self.validate()?;
        let proxy = self.proxy_protocol;
        // Read by GatewayService when it sets up the link; the
        // process-wide budgets are created here, once per built stack.
        let link = self.link.settings(self.keep_alive);
        let link = tower::util::MapRequestLayer::new(move |mut conn: Connection| {
            conn.extensions_mut().insert(link.clone());
            conn
        });
        let svc = ServiceBuilder::new()
            .option_layer(self.metrics.then(MetricsLayer::new))
            .option_layer(self.handshake_timeout.map(HandshakeDeadlineLayer::new))
            .option_layer(self.max_connections.map(MaxConnectionsLayer::new))
            .option_layer(
                proxy
                    .then(|| nets_filter(&self.proxy_trusted, &[]))
                    .flatten(),
            )
            .option_layer(proxy.then(ProxyProtocolLayer::new))
            .option_layer(self.trace.then(TraceLayer::new))
            .option_layer(self.host_filter())
            .option_layer(self.per_ip())
            .option_layer(self.idle_timeout.map(IdleTimeoutLayer::new))
            // (as an option layer, like the others: with `.layer` the
            // debug build of this crate ran out of hand, 14 GB of rustc)
            .option_layer(Some(link))
            .layer(vop)
            .map_err(Into::<BoxError>::into)
            .service(gateway);
        Ok(BoxCloneService::new(svc))
    }
}

/// A [`StackConfig`] that must not be started.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StackConfigError {
    /// `rate_per_ip` is not a positive number.
    #[error("rate_per_ip (--rate-per-ip) must be a positive number, not {0}")]
    InvalidRate(f64),
    /// `burst_per_ip = 0` would refuse every connection.
    #[error("burst_per_ip (--burst-per-ip) must be at least 1")]
    ZeroBurst,
    /// PROXY protocol without saying whom to believe: any client could
    /// claim any address and walk around every address-based limit.
    #[error(
        "proxy_protocol (--proxy-protocol) needs the balancers that may send the PROXY header: \
         proxy_trusted = [\"CIDR\", ...] (--proxy-trusted CIDR), or proxy_trust_any = true \
         (--proxy-trust-any) if nothing but the balancers can reach this port; otherwise any \
         client can claim any address and bypass the address-based limits"
    )]
    UntrustedProxy,
    /// `proxy_trusted` or `proxy_trust_any` without `proxy_protocol`.
    #[error(
        "proxy_trusted (--proxy-trusted) and proxy_trust_any (--proxy-trust-any) need \
         proxy_protocol (--proxy-protocol)"
    )]
    ProxyTrustWithoutProxy,
    /// A link limit that cannot be turned off is `0`.
    #[error(
        "{0} (--{flag}) must be at least 1",
        flag = .0.replace('_', "-")
    )]
    ZeroLinkLimit(&'static str),
    /// Both a trusted list and trust-any: one of them is a mistake.
    #[error(
        "proxy_trusted (--proxy-trusted) and proxy_trust_any (--proxy-trust-any) contradict \
         each other; give one"
    )]
    ProxyTrustConflict,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            max_connections: Some(Self::DEFAULT_MAX_CONNECTIONS),
            max_connections_per_ip: Some(Self::DEFAULT_MAX_CONNECTIONS_PER_IP),
            rate_per_ip: None,
            burst_per_ip: None,
            allow: Vec::new(),
            deny: Vec::new(),
            handshake_timeout: Some(Self::DEFAULT_HANDSHAKE_TIMEOUT),
            idle_timeout: None,
            keep_alive: Some(Self::DEFAULT_KEEP_ALIVE),
            proxy_protocol: false,
            proxy_trusted: Vec::new(),
            proxy_trust_any: false,
            metrics: true,
            trace: true,
            link: LinkLimits::default(),
        }
    }
}

fn nets_filter(allow: &[IpNet], deny: &[IpNet]) -> Option<HostFilterLayer> {
    if allow.is_empty() && deny.is_empty() {
        return None;
    }
    let f = allow
        .iter()
        .fold(HostFilterLayer::new(), |f, n| f.allow(*n));
    Some(deny.iter().fold(f, |f, n| f.deny(*n)))
}

/// A CIDR network, or a single address as a /32 or /128.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("invalid network {s:?} (expected CIDR like 10.0.0.0/8 or an address)"))
}

/// Seconds (fractions allowed) as a Duration; `0` is `None` (off).
pub fn parse_secs_opt(secs: f64) -> Result<Option<Duration>, String> {
    if secs == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|e| format!("invalid duration {secs}: {e}"))
}

fn de_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_net(s).map_err(serde::de::Error::custom))
        .collect()
}

fn de_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    parse_secs_opt(f64::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_limit<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default + PartialEq,
{
    let n = T::deserialize(d)?;
    Ok((n != T::default()).then_some(n))
}

fn de_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let r = f64::deserialize(d)?;
    Ok((r != 0.0).then_some(r))
}

impl fmt::Display for StackConfig {
    /// One line for the log: the layers that are on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(n) = self.max_connections {
            parts.push(format!("max_connections={n}"));
        }
        if let Some(n) = self.max_connections_per_ip {
            parts.push(format!("max_connections_per_ip={n}"));
        }
        if let (Some(r), Some(b)) = (self.rate_per_ip, self.burst()) {
            parts.push(format!("rate_per_ip={r}/s burst={b}"));
        }
        if !self.allow.is_empty() || !self.deny.is_empty() {
            parts.push(format!("allow={:?} deny={:?}", self.allow, self.deny));
        }
        if let Some(t) = self.handshake_timeout {
            parts.push(format!("handshake_timeout={t:?}"));
        }
        if let Some(t) = self.idle_timeout {
            parts.push(format!("idle_timeout={t:?}"));
        }
        if let Some(t) = self.keep_alive {
            parts.push(format!("keep_alive={t:?}"));
        }
        if self.proxy_protocol {
            parts.push(if self.proxy_trust_any {
                "proxy_protocol(trust any)".into()
            } else {
                format!("proxy_protocol(trusted={:?})", self.proxy_trusted)
            });
        }
        parts.push(self.link.to_string());
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_and_defaults() {
        let c: StackConfig = toml::from_str("").unwrap();
        assert_eq!(c, StackConfig::default());
        let c: StackConfig = toml::from_str(
            "max_connections = 0\nrate_per_ip = 2.5\nallow = [\"127.0.0.1\", \"10.0.0.0/8\"]\n\
             handshake_timeout = 0.5\nidle_timeout = 0\nkeep_alive = 0\nproxy_protocol = true\n\
             proxy_trusted = [\"10.1.0.5\"]\nmax_connections_per_ip = 0",
        )
        .unwrap();
        assert_eq!(c.max_connections, None);
        assert_eq!((c.rate_per_ip, c.burst()), (Some(2.5), Some(3)));
        assert_eq!(c.allow[0], "127.0.0.1/32".parse::<IpNet>().unwrap());
        assert_eq!(c.handshake_timeout, Some(Duration::from_millis(500)));
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.keep_alive, None);
        assert_eq!(c.max_connections_per_ip, None);
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<StackConfig>("bogus = 1").is_err());
        assert!(toml::from_str::<StackConfig>("deny = [\"10.0.0.0/99\"]").is_err());
        assert!(toml::from_str::<StackConfig>("handshake_timeout = -1").is_err());
        let c = StackConfig {
            rate_per_ip: Some(f64::NAN),
            ..StackConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(StackConfigError::InvalidRate(_))
        ));
    }

    #[test]
    fn link_table() {
        let c: StackConfig = toml::from_str(
            "max_connections = 5\n[link]\nmax_exports = 4\nmax_link_memory = \"1MiB\"",
        )
        .unwrap();
        assert_eq!((c.link.max_exports, c.link.max_link_memory), (4, 1 << 20));
        assert_eq!(c.link.max_imports, LinkLimits::default().max_imports);
        assert!(toml::from_str::<StackConfig>("[link]\nmax_export = 4").is_err());
        assert!(toml::from_str::<StackConfig>("[link]\nmax_exports = 0").is_err());
        // Built in code, 0 is refused by validate and build.
        let mut c = StackConfig::default();
        c.link.max_queued_calls = 0;
        let e = c.validate().unwrap_err();
        assert_eq!(e, StackConfigError::ZeroLinkLimit("max_queued_calls"));
        assert!(e.to_string().contains("--max-queued-calls"), "{e}");
        let gateway = super::super::GatewayService::new(crate::demo::SimpleGateway::new);
        assert!(c.build(VopLayer::insecure(), gateway).is_err());
    }

    #[test]
    fn defaults_are_safe() {
        let c = StackConfig::default();
        assert_eq!(c.max_connections, Some(10_000));
        assert_eq!(c.max_connections_per_ip, Some(64));
        assert_eq!(c.handshake_timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.keep_alive, Some(Duration::from_secs(60)));
        assert_eq!(c.idle_timeout, None);
        assert!(!c.proxy_protocol && !c.proxy_trust_any);
        assert!(c.validate().is_ok());
        let line = c.to_string();
        assert!(
            line.contains("max_connections_per_ip=64")
                && line.contains("keep_alive=60s")
                && line.contains("max_process_memory=512MiB")
                && line.contains("max_process_calls=8192"),
            "{line}"
        );
    }

    #[test]
    fn proxy_protocol_refuses_to_build_without_trusted_balancers() {
        let gateway = || super::super::GatewayService::new(crate::demo::SimpleGateway::new);
        let proxy = StackConfig {
            proxy_protocol: true,
            ..StackConfig::default()
        };
        assert_eq!(proxy.validate(), Err(StackConfigError::UntrustedProxy));
        let e = proxy
            .build(VopLayer::insecure(), gateway())
            .expect_err("build refuses");
        assert_eq!(e, StackConfigError::UntrustedProxy);
        let msg = e.to_string();
        for flag in [
            "proxy_trusted",
            "--proxy-trusted",
            "proxy_trust_any",
            "--proxy-trust-any",
        ] {
            assert!(msg.contains(flag), "{msg}");
        }

        let trusted = StackConfig {
            proxy_trusted: vec![parse_net("10.1.0.5").unwrap()],
            ..proxy.clone()
        };
        assert!(trusted.build(VopLayer::insecure(), gateway()).is_ok());
        let any = StackConfig {
            proxy_trust_any: true,
            ..proxy.clone()
        };
        assert!(any.build(VopLayer::insecure(), gateway()).is_ok());
        let both = StackConfig {
            proxy_trust_any: true,
            ..trusted.clone()
        };
        assert_eq!(both.validate(), Err(StackConfigError::ProxyTrustConflict));
        for no_proxy in [
            StackConfig {
                proxy_protocol: false,
                ..trusted
            },
            StackConfig {
                proxy_protocol: false,
                ..any
            },
        ] {
            assert_eq!(
                no_proxy.validate(),
                Err(StackConfigError::ProxyTrustWithoutProxy)
            );
        }
    }
}
