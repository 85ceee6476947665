//! Running a service in production: a Prometheus endpoint served by hyper
//! in the server's own runtime ([`MetricsEndpoint`]), health and readiness
//! checks on it or in any hyper/axum app ([`HealthService`]), and `tracing` logs to
//! stderr, human or JSON, filtered like `RUST_LOG` ([`init_logging`]).
//! Used by `versile serve` and `examples/production_stack.rs`, together
//! with the layer stack of [`StackConfig`](crate::server::StackConfig).

mod health;
mod logging;
mod metrics_http;

pub use health::{HealthService, HEALTHZ_PATH, READYZ_PATH};
pub use logging::{init_logging, LogFormat};
pub use metrics_http::{install_prometheus, MetricsEndpoint};
