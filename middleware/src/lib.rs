//! Connection-level tower layers, independent of the Versile protocol.
//!
//! Every accepted connection is a request flowing through these layers to
//! a terminal `Service<Conn>` whose future lives as long as the connection.
//! The layers need only the small [`ConnectionRequest`] trait from the
//! request (addresses, the stream, an extension slot), which a server
//! implements for its connection type ([`SimpleConnection`] is a ready
//! one). Limits that end before the connection does (handshake deadline)
//! or watch it while it runs (idle timeout, metrics) talk to the terminal
//! service through [`ConnectionSignals`] that it finds in the extensions.
//!
//! Each layer lives in its own module (`layer.rs` builds, `service.rs`
//! gates calls, `future.rs` carries per-connection state):
//!
//! * [`metrics`] — counters, gauges and the handshake histogram through the
//!   `metrics` facade, rejections by reason;
//! * [`trace`] — a `tracing` span per connection, handshake and close events;
//! * [`limit`] — a global cap on concurrent connections (permit held for
//!   the whole connection);
//! * [`proxy_protocol`] — PROXY protocol v1/v2: the real client address
//!   from a load balancer's header;
//! * [`filter`] — CIDR allow/deny lists, before a byte is read;
//! * [`per_ip`] — concurrent connections and new-connection rate per
//!   address, in a bounded table;
//! * [`deadline`] — accept to established within a deadline (10 s by
//!   default), against silent and trickling clients;
//! * [`idle`] — close established connections with no calls for a while.
//!
//! Rejecting layers fail the connection with a small typed error
//! ([`HostRejected`](filter::HostRejected),
//! [`PerIpRejected`](per_ip::PerIpRejected),
//! [`HandshakeTimeout`](deadline::HandshakeTimeout), ...) as a [`BoxError`];
//! [`metrics::rejection_reason`] maps them to a label.
//!
//! A composed stack, outermost first (the order matters: metrics and
//! tracing see everything inside them; the deadline covers the PROXY header
//! and every handshake inside it; filters and per-IP limits after the PROXY
//! layer see the real client):
//!
//! ```
//! use std::time::Duration;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use versile_middleware::{
//!     deadline::HandshakeDeadlineLayer, filter::HostFilterLayer, idle::IdleTimeoutLayer,
//!     metrics::MetricsLayer, per_ip::PerIpLimitLayer, proxy_protocol::ProxyProtocolLayer,
//!     trace::TraceLayer, BoxError, ConnectionLimitLayer, ConnectionRequest, ConnectionSignals,
//!     SimpleConnection,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! // The terminal service: a toy protocol that is "established" after
//! // reading one line, then echoes it back.
//! let terminal = service_fn(|mut conn: SimpleConnection| async move {
//!     let signals = conn.extension::<ConnectionSignals>().cloned();
//!     let mut line = [0u8; 6];
//!     conn.io.read_exact(&mut line).await?;
//!     if let Some(s) = &signals {
//!         s.mark_established(Some("toy"));
//!     }
//!     conn.io.write_all(&line).await?;
//!     Ok::<_, BoxError>(conn.peer)
//! });
//!
//! let svc = ServiceBuilder::new()
//!     .layer(MetricsLayer::new())
//!     .layer(HandshakeDeadlineLayer::new(Duration::from_secs(10)))
//!     .layer(ConnectionLimitLayer::new(10_000))
//!     .layer(ProxyProtocolLayer::new())
//!     .layer(TraceLayer::new())
//!     .layer(HostFilterLayer::new().deny("192.0.2.0/24".parse::<ipnet::IpNet>()?))
//!     .layer(PerIpLimitLayer::builder().max_concurrent(16).rate(10.0, 50).build())
//!     .layer(IdleTimeoutLayer::new(Duration::from_secs(300)))
//!     .service(terminal);
//!
//! // A load balancer connects from 10.0.0.1 on behalf of 198.51.100.7.
//! let (server_io, mut client) = tokio::io::duplex(1024);
//! let conn = SimpleConnection::new(
//!     Box::pin(server_io),
//!     Some("10.0.0.1:40000".parse()?),
//!     Some("10.0.0.2:4433".parse()?),
//! );
//! client
//!     .write_all(b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 4433\r\nhello\n")
//!     .await?;
//! let peer = svc.oneshot(conn).await?;
//! assert_eq!(peer, Some("198.51.100.7:5555".parse()?));
//! let mut echo = [0u8; 6];
//! client.read_exact(&mut echo).await?;
//! assert_eq!(&echo, b"hello\n");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod deadline;
pub mod filter;
pub mod idle;
pub mod io;
pub mod limit;
pub mod metrics;
pub mod per_ip;
pub mod proxy_protocol;
pub mod request;
pub mod signals;
pub mod trace;

pub use io::{AsyncStream, BoxedIo, Rewind};
/// The CIDR types of the [host filter](filter) (`ipnet`).
pub use ipnet;
pub use limit::{ConnectionLimit, ConnectionLimitLayer};
pub use request::{ConnectionRequest, SimpleConnection};
pub use signals::{ConnectionSignals, LinkCounters};

/// The error type of the layers that can refuse a connection.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
