//! The layer: timeout, grace, and what counts as activity.

use std::time::Duration;

use tower_layer::Layer;

use super::service::IdleTimeoutService;

/// The error of a connection dropped for idleness (after the graceful
/// close it was asked for did not finish within the grace period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection idle for {idle_for:?}, closed")]
pub struct IdleTimeout {
    /// The configured timeout.
    pub idle_for: Duration,
}

/// Builds [`IdleTimeoutService`]s (see the [module docs](super)).
#[derive(Debug, Clone, Copy)]
pub struct IdleTimeoutLayer {
    pub(crate) timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) count_traffic: bool,
}

impl IdleTimeoutLayer {
    /// Close connections idle for `timeout`; 5 s grace for the graceful
    /// close; only calls count as activity.
    pub fn new(timeout: Duration) -> Self {
        IdleTimeoutLayer {
            // A zero timeout would re-arm the timer at `now` forever.
            timeout: timeout.max(Duration::from_millis(1)),
            grace: Duration::from_secs(5),
            count_traffic: false,
        }
    }

    /// How long the graceful close may take before the connection is
    /// dropped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Whether any byte (keep-alive included) counts as activity.
    pub fn count_traffic(mut self, yes: bool) -> Self {
        self.count_traffic = yes;
        self
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl<S> Layer<S> for IdleTimeoutLayer {
    type Service = IdleTimeoutService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdleTimeoutService::new(inner, *self)
    }
}
