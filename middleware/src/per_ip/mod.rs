//! Per-IP limits: concurrent connections and a new-connection rate (token
//! bucket), with a bounded table of tracked addresses.
//!
//! ```text
//! call(conn) ── key = peer ip (IPv6 masked to a /64 by default;
//!               IPv4-mapped IPv6 counts as IPv4)
//!     ├─ table full of addresses with live connections → Err(TableFull)
//!     ├─ key has max_concurrent live connections      → Err(TooManyConnections)
//!     ├─ key's bucket has no token (refills at `rate`) → Err(RateLimited)
//!     └─ take a token, count the connection; the count drops when the
//!        ResponseFuture completes or is dropped (connection over)
//! ```
//!
//! The layer is `Clone`; clones and every service built from them share one
//! table. Memory is bounded by [`max_tracked`](PerIpLimitBuilder::max_tracked):
//! when a new address arrives at a full table, the address idle (no live
//! connection) the longest is forgotten, so it gets a fresh bucket if it
//! returns. Addresses with live connections are never forgotten; if all
//! tracked addresses have one, new addresses are refused (fail closed)
//! until one closes. Connections without a peer address are not limited.
//!
//! ```
//! use std::time::Duration;
//! use versile_middleware::per_ip::PerIpLimitLayer;
//!
//! let layer = PerIpLimitLayer::builder()
//!     .max_concurrent(8)
//!     .rate(5.0, 20) // 5 new connections a second, bursts of 20
//!     .max_tracked(100_000)
//!     .build();
//! assert_eq!(layer.tracked(), 0);
//! ```

mod future;
mod layer;
mod service;
mod table;

pub use future::ResponseFuture;
pub use layer::{PerIpLimitBuilder, PerIpLimitLayer};
pub use service::PerIpLimit;
pub use table::{PerIpGuard, PerIpReason, PerIpRejected};
