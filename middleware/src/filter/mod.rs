//! Host filter: allow and deny lists of CIDR networks, checked against the
//! peer address before a byte of the connection is read.
//!
//! ```text
//! call(conn) ── peer ip (IPv4-mapped IPv6 is checked as IPv4)
//!     ├─ in a deny network                    → Err(HostRejected::Denied)
//!     ├─ allow list not empty, ip not in it   → Err(HostRejected::NotAllowed)
//!     ├─ no peer address and not allowed      → Err(HostRejected::UnknownPeer)
//!     └─ else the inner service runs
//! ```
//!
//! Deny wins over allow. A rejected connection's stream is dropped (closed)
//! at once, unread. Behind a load balancer, put the filter after the
//! [PROXY protocol layer](crate::proxy_protocol) so it sees the real
//! client; a second filter before it can restrict who may act as a proxy.
//!
//! ```
//! use versile_middleware::filter::HostFilterLayer;
//!
//! let layer = HostFilterLayer::new()
//!     .allow("10.0.0.0/8".parse::<ipnet::IpNet>().unwrap())
//!     .allow("2001:db8::/32".parse::<ipnet::IpNet>().unwrap())
//!     .deny("10.6.6.0/24".parse::<ipnet::IpNet>().unwrap());
//! assert!(layer.check(Some("10.1.2.3".parse().unwrap())).is_ok());
//! assert!(layer.check(Some("10.6.6.6".parse().unwrap())).is_err());
//! assert!(layer.check(Some("192.0.2.1".parse().unwrap())).is_err());
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{HostFilterLayer, HostRejected, RejectReason};
pub use service::HostFilter;
