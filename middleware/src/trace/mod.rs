//! Tracing: one span per connection, events for the handshake result and
//! the close.
//!
//! The `connection` span (level INFO) carries `peer`, `local` and, once
//! established, `transport`; the inner future runs inside it, so every
//! event of the inner layers and of the link (when it runs in the
//! connection's task) is attributed to the connection. Events:
//!
//! * `established` (DEBUG) with the handshake time;
//! * `refused` / `handshake failed` (INFO) with the error, when the
//!   connection ends before being established;
//! * `closed` (DEBUG) with the inner service's response (for a Versile
//!   link, its outcome: close reason and counters), or `closed with error`
//!   (INFO), plus the reason of any close a layer requested (e.g. `idle`).
//!
//! Behind a load balancer, put it after the [PROXY protocol
//! layer](crate::proxy_protocol) to log the real client.
//!
//! ```
//! use versile_middleware::trace::TraceLayer;
//! let layer = TraceLayer::new();
//! # let _ = layer;
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::TraceLayer;
pub use service::Trace;
