//! PROXY protocol v1 and v2 (HAProxy's `proxy-protocol.txt`): behind a load
//! balancer, learn the real client's address from the header the balancer
//! sends first, so that filters, rate limits, logs and the call context
//! see the client and not the balancer.
//!
//! ```text
//! call(conn) ── take the stream out of the request (ConnectionRequest::take_io)
//!     read at most `max_header_len` bytes, within `read_timeout`,
//!     until the `ppp` crate parses a complete v1 or v2 header
//!     ├─ PROXY TCP4/TCP6 (v1), PROXY command with IPv4/IPv6 (v2)
//!     │      → set_peer_addr(source), set_local_addr(destination)
//!     ├─ UNKNOWN (v1), LOCAL command or other families (v2)
//!     │      → addresses kept (a balancer's health check)
//!     ├─ garbage / too long / EOF / timeout → Err(ProxyHeaderError), closed
//!     └─ put the stream back, prefixed with any bytes read past the header
//!        (Rewind), record ProxyInfo in the extensions, call the inner service
//! ```
//!
//! A listener behind a balancer must require the header (the spec forbids
//! guessing), so every connection without one is refused: only enable
//! this layer on listeners that only the balancer can reach (or put a
//! [host filter](crate::filter) for the balancer's addresses before it).
//! Filters and per-IP limits that should see the real client go after it.
//!
//! The default bound on the header is 536 bytes: a v1 header is at most
//! 107 bytes and a v2 header with IPv6 addresses 52, leaving room for the
//! TLVs balancers commonly add; raise it with
//! [`max_header_len`](ProxyProtocolLayer::max_header_len) for large TLVs.
//!
//! ```
//! use std::time::Duration;
//! use versile_middleware::proxy_protocol::ProxyProtocolLayer;
//!
//! let layer = ProxyProtocolLayer::new()
//!     .read_timeout(Duration::from_secs(3))
//!     .max_header_len(1024);
//! # let _ = layer;
//! ```

mod layer;
mod parse;
mod service;

pub use layer::ProxyProtocolLayer;
pub use parse::{parse_header, ParsedHeader, ProxyHeaderError, ProxyInfo};
pub use service::ProxyProtocol;
