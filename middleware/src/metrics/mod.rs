//! Metrics through the [`metrics`](https://docs.rs/metrics) facade: the
//! application installs whatever recorder it likes (Prometheus exporter,
//! StatsD, ...); with none installed every update is a no-op.
//!
//! | name | kind | labels | when |
//! |---|---|---|---|
//! | `versile_connections_accepted_total` | counter | | a connection reaches this layer |
//! | `versile_connections_active` | gauge | | connections inside this layer |
//! | `versile_connections_rejected_total` | counter | `reason` | an inner layer refused it (see [`rejection_reason`]) |
//! | `versile_connections_failed_total` | counter | | ended with any other error |
//! | `versile_handshake_seconds` | histogram | `transport` | accept → established |
//! | `versile_links_active` | gauge | | established connections still open |
//! | `versile_calls_received_total` | counter | | calls from peers |
//! | `versile_calls_sent_total` | counter | | calls to peers |
//! | `versile_call_errors_total` | counter | | calls (either way) that failed |
//! | `versile_calls_in_flight` | gauge | | calls (either way, queued included) not yet answered |
//! | `versile_bytes_received_total` | counter | | bytes read |
//! | `versile_bytes_sent_total` | counter | | bytes written |
//!
//! The call and byte counters come from the terminal service's
//! [`ConnectionSignals::report`](crate::ConnectionSignals::report); they
//! are forwarded as deltas whenever this layer's future is polled, so a
//! long-lived link shows up while it runs, not only when it closes.
//!
//! Put this layer outermost, so it sees every connection and every
//! rejection of the layers inside it.
//!
//! ```
//! use tower::ServiceBuilder;
//! use versile_middleware::{metrics::MetricsLayer, filter::HostFilterLayer};
//! # let svc = tower::service_fn(|_: versile_middleware::SimpleConnection| async { Ok::<_, std::convert::Infallible>(()) });
//! let svc = ServiceBuilder::new()
//!     .layer(MetricsLayer::new())
//!     .layer(HostFilterLayer::new())
//!     .service(svc);
//! # let _ = svc;
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{rejection_reason, MetricsLayer};
pub use service::Metrics;

/// Metric names.
pub mod names {
    /// Counter: connections that reached the layer.
    pub const ACCEPTED: &str = "versile_connections_accepted_total";
    /// Gauge: connections inside the layer.
    pub const ACTIVE: &str = "versile_connections_active";
    /// Counter, label `reason`: connections refused by an inner layer.
    pub const REJECTED: &str = "versile_connections_rejected_total";
    /// Counter: connections that ended with another error.
    pub const FAILED: &str = "versile_connections_failed_total";
    /// Histogram, label `transport`: seconds from accept to established.
    pub const HANDSHAKE_SECONDS: &str = "versile_handshake_seconds";
    /// Gauge: established connections still open.
    pub const LINKS_ACTIVE: &str = "versile_links_active";
    /// Counter: calls received.
    pub const CALLS_RECEIVED: &str = "versile_calls_received_total";
    /// Counter: calls sent.
    pub const CALLS_SENT: &str = "versile_calls_sent_total";
    /// Counter: calls that failed.
    pub const CALL_ERRORS: &str = "versile_call_errors_total";
    /// Gauge: calls either way (queued included) not yet answered.
    pub const CALLS_IN_FLIGHT: &str = "versile_calls_in_flight";
    /// Counter: bytes read.
    pub const BYTES_RECEIVED: &str = "versile_bytes_received_total";
    /// Counter: bytes written.
    pub const BYTES_SENT: &str = "versile_bytes_sent_total";
}
