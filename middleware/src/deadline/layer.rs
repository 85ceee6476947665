//! The layer: just the duration.

use std::time::Duration;

use tower_layer::Layer;

use super::service::HandshakeDeadline;

/// The error of a connection not established in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection not established within {after:?} of accept")]
pub struct HandshakeTimeout {
    /// The configured deadline.
    pub after: Duration,
}

/// Builds [`HandshakeDeadline`] services (see the [module docs](super)).
#[derive(Debug, Clone, Copy)]
pub struct HandshakeDeadlineLayer {
    timeout: Duration,
}

impl HandshakeDeadlineLayer {
    /// The default deadline: 10 seconds.
    pub const DEFAULT: Duration = Duration::from_secs(10);

    /// Connections must be established within `timeout` of the call.
    pub fn new(timeout: Duration) -> Self {
        HandshakeDeadlineLayer { timeout }
    }

    /// The deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for HandshakeDeadlineLayer {
    fn default() -> Self {
        Self::new(Self::DEFAULT)
    }
}

impl<S> Layer<S> for HandshakeDeadlineLayer {
    type Service = HandshakeDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HandshakeDeadline::new(inner, self.timeout)
    }
}
