//! The layer: the read bounds.

use std::time::Duration;

use tower_layer::Layer;

use super::service::ProxyProtocol;

/// Builds [`ProxyProtocol`] services (see the [module docs](super)).
#[derive(Debug, Clone, Copy)]
pub struct ProxyProtocolLayer {
    pub(crate) read_timeout: Duration,
    pub(crate) max_header_len: usize,
}

impl Default for ProxyProtocolLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyProtocolLayer {
    /// Require a v1 or v2 header within 5 s and 536 bytes.
    pub fn new() -> Self {
        ProxyProtocolLayer {
            read_timeout: Duration::from_secs(5),
            max_header_len: 536,
        }
    }

    /// How long the header may take to arrive.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The longest header accepted (at least 16 bytes, the v2 fixed part).
    pub fn max_header_len(mut self, len: usize) -> Self {
        self.max_header_len = len.max(16);
        self
    }
}

impl<S> Layer<S> for ProxyProtocolLayer {
    type Service = ProxyProtocol<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProxyProtocol::new(inner, *self)
    }
}
