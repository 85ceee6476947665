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
//! HostFilterLayer         proxy_trusted: who may send a PROXY header (if set)
//! ProxyProtocolLayer      the real client address from the balancer
//! TraceLayer              one span per connection, with the real client
//! HostFilterLayer         allow / deny (real client)
//! PerIpLimitLayer         concurrent connections and rate per client address
//! IdleTimeoutLayer        close links without calls for a while
//! VopLayer → gateway      transport negotiation, then the link
//! ```
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
//! let svc = config.build(VopLayer::insecure(), GatewayService::new(SimpleGateway::new));
//! # let _ = svc;
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

use super::{Connection, VopLayer};
use crate::runtime::LinkOutcome;

/// The boxed service a [`StackConfig`] builds (the layer types nest too
/// deeply to name); give it to [`Server::serve`](super::Server::serve).
pub type StackService = BoxCloneService<Connection, LinkOutcome, BoxError>;

/// Settings of every layer of the production stack. `Default` is the
/// stack `versile serve` runs without options: at most
/// [`DEFAULT_MAX_CONNECTIONS`](Self::DEFAULT_MAX_CONNECTIONS) connections,
/// a 10 s handshake deadline, metrics and tracing on, everything else off.
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
    /// Concurrent connections per client address (`per_ip_concurrent`).
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
    /// Close links with no calls for this long (`None`: never).
    #[serde(deserialize_with = "de_secs")]
    pub idle_timeout: Option<Duration>,
    /// Require a PROXY protocol v1/v2 header (behind a load balancer).
    pub proxy_protocol: bool,
    /// With `proxy_protocol`: only these networks may connect and send the
    /// header (the balancers; empty: anyone who can reach the port).
    #[serde(deserialize_with = "de_nets")]
    pub proxy_trusted: Vec<IpNet>,
    /// Record metrics through the `metrics` facade.
    pub metrics: bool,
    /// A tracing span per connection.
    pub trace: bool,
}

impl StackConfig {
    /// The default global connection cap.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// The default handshake deadline.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// No layer at all except metrics and tracing: no limits, no deadline.
    pub fn unlimited() -> Self {
        StackConfig {
            max_connections: None,
            handshake_timeout: None,
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

    /// Check the settings that `Deserialize` cannot.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(r) = self.rate_per_ip {
            if !(r.is_finite() && r > 0.0) {
                return Err(format!("rate_per_ip must be a positive number, not {r}"));
            }
        }
        if self.burst_per_ip == Some(0) {
            return Err("burst_per_ip must be at least 1".into());
        }
        if !self.proxy_trusted.is_empty() && !self.proxy_protocol {
            return Err("proxy_trusted needs proxy_protocol".into());
        }
        Ok(())
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
    /// (usually a [`GatewayService`](super::GatewayService)).
    pub fn build<S>(&self, vop: VopLayer, gateway: S) -> StackService
    where
        S: Service<Connection, Response = LinkOutcome> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
    {
        let proxy = self.proxy_protocol;
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
            .layer(vop)
            .map_err(Into::<BoxError>::into)
            .service(gateway);
        BoxCloneService::new(svc)
    }
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            max_connections: Some(Self::DEFAULT_MAX_CONNECTIONS),
            max_connections_per_ip: None,
            rate_per_ip: None,
            burst_per_ip: None,
            allow: Vec::new(),
            deny: Vec::new(),
            handshake_timeout: Some(Self::DEFAULT_HANDSHAKE_TIMEOUT),
            idle_timeout: None,
            proxy_protocol: false,
            proxy_trusted: Vec::new(),
            metrics: true,
            trace: true,
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
        if self.proxy_protocol {
            parts.push("proxy_protocol".into());
        }
        if parts.is_empty() {
            parts.push("no limits".into());
        }
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
             handshake_timeout = 0.5\nidle_timeout = 0\nproxy_protocol = true",
        )
        .unwrap();
        assert_eq!(c.max_connections, None);
        assert_eq!((c.rate_per_ip, c.burst()), (Some(2.5), Some(3)));
        assert_eq!(c.allow[0], "127.0.0.1/32".parse::<IpNet>().unwrap());
        assert_eq!(c.handshake_timeout, Some(Duration::from_millis(500)));
        assert_eq!(c.idle_timeout, None);
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<StackConfig>("bogus = 1").is_err());
        assert!(toml::from_str::<StackConfig>("deny = [\"10.0.0.0/99\"]").is_err());
        assert!(toml::from_str::<StackConfig>("handshake_timeout = -1").is_err());
        let c = StackConfig {
            rate_per_ip: Some(f64::NAN),
            ..StackConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
