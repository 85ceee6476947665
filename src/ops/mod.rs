//! Running a service in production: a Prometheus endpoint served by hyper
//! in the server's own runtime ([`MetricsEndpoint`]) and `tracing` logs to
//! stderr, human or JSON, filtered like `RUST_LOG` ([`init_logging`]).
//! Used by `versile serve` and `examples/production_stack.rs`, together
//! with the layer stack of [`StackConfig`](crate::server::StackConfig).

mod logging;
mod metrics_http;

pub use logging::{init_logging, LogFormat};
pub use metrics_http::{install_prometheus, MetricsEndpoint};
