//! The layer, and the mapping from errors to rejection reasons.

use std::error::Error;

use tower_layer::Layer;

use super::service::Metrics;
use crate::deadline::HandshakeTimeout;
use crate::filter::HostRejected;
use crate::idle::IdleTimeout;
use crate::per_ip::{PerIpReason, PerIpRejected};
use crate::proxy_protocol::ProxyHeaderError;

/// Builds [`Metrics`] services (see the [module docs](super)).
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer {
    _private: (),
}

impl MetricsLayer {
    /// Record the [standard metrics](super).
    pub fn new() -> Self {
        MetricsLayer { _private: () }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics::new(inner)
    }
}

/// The `reason` label for an error of one of this crate's layers (looked
/// for along the error's `source` chain), or `None` for other errors.
///
/// `host_filter`, `per_ip_concurrent`, `per_ip_rate`, `per_ip_table_full`,
/// `proxy_header`, `handshake_timeout`, `idle_timeout`.
pub fn rejection_reason(err: &(dyn Error + 'static)) -> Option<&'static str> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<HostRejected>() {
            return Some("host_filter");
        }
        if let Some(r) = e.downcast_ref::<PerIpRejected>() {
            return Some(match r.reason {
                PerIpReason::TooManyConnections => "per_ip_concurrent",
                PerIpReason::RateLimited => "per_ip_rate",
                PerIpReason::TableFull => "per_ip_table_full",
            });
        }
        if e.is::<ProxyHeaderError>() {
            return Some("proxy_header");
        }
        if e.is::<HandshakeTimeout>() {
            return Some("handshake_timeout");
        }
        if e.is::<IdleTimeout>() {
            return Some("idle_timeout");
        }
        cur = e.source();
    }
    None
}
