//! The layer: owns the shared semaphore.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tower_layer::Layer;

use super::service::ConnectionLimit;

/// Limits the number of connections served at once, across every service
/// this layer wraps (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct ConnectionLimitLayer {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl ConnectionLimitLayer {
    /// A limit of `max` concurrent connections. `max == 0` admits nothing.
    ///
    /// # Panics
    ///
    /// If `max` exceeds [`Semaphore::MAX_PERMITS`].
    pub fn new(max: usize) -> Self {
        ConnectionLimitLayer {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The configured maximum.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections that could start right now (for metrics and tests).
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// Connections holding a permit right now.
    pub fn in_use(&self) -> usize {
        self.max.saturating_sub(self.available())
    }
}

impl<S> Layer<S> for ConnectionLimitLayer {
    type Service = ConnectionLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectionLimit::new(inner, self.semaphore.clone())
    }
}
