//! Idle timeout: close established connections that have had no calls for
//! a while.
//!
//! Activity comes from the terminal service through
//! [`ConnectionSignals::report`](crate::ConnectionSignals::report). A
//! connection is idle when no call is in flight (either way, queued
//! included) and none started or finished for `timeout`. It is
//! *keep-alive aware*: by default bytes alone do not count, so a peer that
//! only answers keep-alive probes (or sends them) is still idle; switch to
//! [`count_traffic`](IdleTimeoutLayer::count_traffic) to treat any byte as
//! activity.
//!
//! ```text
//! timer at last_activity + timeout
//!     ├─ calls in flight      → check again in `timeout`
//!     ├─ activity since       → re-arm at the new last_activity + timeout
//!     └─ idle → signals.request_close("idle") (graceful close by the
//!               terminal service), then after `grace` drop the inner
//!               future: Err(IdleTimeout)
//! ```
//!
//! The clock only starts once the connection is established (before that,
//! the [handshake deadline](crate::deadline) applies).
//!
//! ```
//! use std::time::Duration;
//! use versile_middleware::idle::IdleTimeoutLayer;
//!
//! let layer = IdleTimeoutLayer::new(Duration::from_secs(300))
//!     .grace(Duration::from_secs(10));
//! assert_eq!(layer.timeout(), Duration::from_secs(300));
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{IdleTimeout, IdleTimeoutLayer};
pub use service::IdleTimeoutService;
