//! The layer: the shared, immutable rule lists.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use tower_layer::Layer;

use super::service::HostFilter;

/// Why a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The address is in a deny network.
    Denied,
    /// An allow list is set and the address is in none of its networks.
    NotAllowed,
    /// The connection has no peer address and unknown peers are refused.
    UnknownPeer,
}

/// The error of a connection refused by the [host filter](super).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection from {} refused by the host filter ({reason:?})", peer.map(|p| p.to_string()).unwrap_or_else(|| "an unknown peer".into()))]
pub struct HostRejected {
    /// The peer's address (IPv4-mapped addresses unmapped).
    pub peer: Option<IpAddr>,
    /// Which rule refused it.
    pub reason: RejectReason,
}

#[derive(Debug, Clone, Default)]
struct Rules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
    /// `None`: allowed exactly when the allow list is empty.
    allow_unknown: Option<bool>,
}

/// Builds [`HostFilter`]s sharing one set of rules (see the [module docs](super)).
///
/// Lists are scanned linearly: meant for tens of networks, not for
/// country-sized block lists.
#[derive(Debug, Clone, Default)]
pub struct HostFilterLayer {
    rules: Arc<Rules>,
}

impl HostFilterLayer {
    /// A filter that allows everyone until rules are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allow a network (or a single address). Once any network is allowed,
    /// addresses outside every allowed network are refused.
    pub fn allow(mut self, net: impl Into<IpNet>) -> Self {
        Arc::make_mut(&mut self.rules)
            .allow
            .push(net.into().trunc());
        self
    }

    /// Deny a network (or a single address); deny wins over allow.
    pub fn deny(mut self, net: impl Into<IpNet>) -> Self {
        Arc::make_mut(&mut self.rules).deny.push(net.into().trunc());
        self
    }

    /// Whether connections without a peer address are admitted. Default:
    /// only when no allow list is set.
    pub fn allow_unknown_peer(mut self, allow: bool) -> Self {
        Arc::make_mut(&mut self.rules).allow_unknown = Some(allow);
        self
    }

    /// The decision for `peer`.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), HostRejected> {
        let rules = &*self.rules;
        let Some(ip) = peer.map(|ip| ip.to_canonical()) else {
            let ok = rules.allow_unknown.unwrap_or(rules.allow.is_empty());
            return if ok {
                Ok(())
            } else {
                Err(HostRejected {
                    peer: None,
                    reason: RejectReason::UnknownPeer,
                })
            };
        };
        let reason = if rules.deny.iter().any(|n| n.contains(&ip)) {
            RejectReason::Denied
        } else if !rules.allow.is_empty() && !rules.allow.iter().any(|n| n.contains(&ip)) {
            RejectReason::NotAllowed
        } else {
            return Ok(());
        };
        Err(HostRejected {
            peer: Some(ip),
            reason,
        })
    }
}

impl<S> Layer<S> for HostFilterLayer {
    type Service = HostFilter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HostFilter::new(inner, self.clone())
    }
}
