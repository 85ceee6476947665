//! The layer.

use tower_layer::Layer;

use super::service::Trace;

/// Builds [`Trace`] services (see the [module docs](super)).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer {
    _private: (),
}

impl TraceLayer {
    /// A span per connection.
    pub fn new() -> Self {
        TraceLayer { _private: () }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace::new(inner)
    }
}
