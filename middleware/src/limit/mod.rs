//! A global limit on concurrent connections.
//!
//! [`ConnectionLimitLayer::new`]`(max)` owns one semaphore with `max`
//! permits, shared by every service the layer builds and by all their clones.
//! Data flow per connection:
//!
//! ```text
//! poll_ready ── acquire a permit (Pending while all `max` are taken)
//!     └─ then poll the inner service's readiness
//! call(conn) ── move the permit into the ResponseFuture
//! ResponseFuture ── polls the inner future; the permit is released when the
//!                   future completes or is dropped (connection over)
//! ```
//!
//! Because the inner future of a connection service lives as long as the
//! connection, the permit covers the whole connection, not only its setup.
//!
//! Caveat (as for every tower readiness-based limit): a service that has
//! been polled ready holds a permit until it is called or dropped, so an
//! accept loop should call `ready` only when it has a connection in hand
//! (e.g. `svc.clone().oneshot(conn)` per connection).
//!
//! [`MaxConnectionsLayer`] is the refusing variant: over the limit, a new
//! connection is closed at once with [`ConnectionLimitReached`] (counted
//! by the [metrics layer](crate::metrics) as `max_connections`).

mod future;
mod layer;
mod refuse;
mod service;

pub use future::ResponseFuture;
pub use layer::ConnectionLimitLayer;
pub use refuse::{
    ConnectionLimitReached, MaxConnections, MaxConnectionsFuture, MaxConnectionsLayer,
};
pub use service::ConnectionLimit;
