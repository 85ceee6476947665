//! The layer and its builder: owns the shared table.

use std::net::IpAddr;
use std::sync::Arc;

use tower_layer::Layer;

use super::service::PerIpLimit;
use super::table::{Config, PerIpGuard, PerIpRejected, Table};

/// Per-IP connection limits shared by every service built from this layer
/// and its clones (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct PerIpLimitLayer {
    table: Arc<Table>,
}

/// Builds a [`PerIpLimitLayer`]. Without `max_concurrent` or `rate`, that
/// limit is off.
#[derive(Debug, Clone)]
pub struct PerIpLimitBuilder {
    config: Config,
}

impl PerIpLimitBuilder {
    /// At most `n` live connections per address.
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.config.max_concurrent = Some(n);
        self
    }

    /// New connections per address: a token bucket of `burst` tokens that
    /// refills at `per_second` tokens a second (a negative or non-finite
    /// rate refills nothing).
    pub fn rate(mut self, per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            0.0
        };
        self.config.rate = Some((per_second, burst));
        self
    }

    /// At most `n` addresses tracked at once (default 65 536; at least 1).
    pub fn max_tracked(mut self, n: usize) -> Self {
        self.config.max_tracked = n.max(1);
        self
    }

    /// IPv6 peers are grouped by this prefix length (default 64: one
    /// subscriber usually holds a whole /64). 128 tracks single addresses.
    pub fn ipv6_prefix(mut self, len: u8) -> Self {
        self.config.ipv6_prefix = len.min(128);
        self
    }

    /// Finish.
    pub fn build(self) -> PerIpLimitLayer {
        PerIpLimitLayer {
            table: Arc::new(Table::new(self.config)),
        }
    }
}

impl PerIpLimitLayer {
    /// A builder with no limit set, tracking up to 65 536 addresses.
    pub fn builder() -> PerIpLimitBuilder {
        PerIpLimitBuilder {
            config: Config {
                max_concurrent: None,
                rate: None,
                max_tracked: 65_536,
                ipv6_prefix: 64,
            },
        }
    }

    /// Addresses tracked right now (bounded by `max_tracked`).
    pub fn tracked(&self) -> usize {
        self.table.tracked()
    }

    /// Live connections of `ip` (of its /64 for IPv6 by default).
    pub fn active(&self, ip: IpAddr) -> u32 {
        self.table.active(ip)
    }

    /// Admit a connection from `ip` by hand (the service does this in
    /// `call`); the guard holds it until dropped.
    pub fn admit(&self, ip: IpAddr) -> Result<PerIpGuard, PerIpRejected> {
        self.table.admit(ip)
    }
}

impl<S> Layer<S> for PerIpLimitLayer {
    type Service = PerIpLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PerIpLimit::new(inner, self.clone())
    }
}
