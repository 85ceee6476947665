//! # versile
//!
//! Serve and call Versile objects over the Versile Object Platform, wire
//! compatible with Versile Python 0.8.5, built as a tower stack.
//!
//! ## One connection, end to end
//!
//! ```text
//! TcpListener::accept                      server::Server (accept loop, one task each)
//!   → Connection { io, info }              server::Connection
//!   → VopLayer                             VOP hello, choose VTS | TLS | PLAIN (vop-service.md §2)
//!   → (transport)                          stream wrapped by the chosen transport
//!   → GatewayService                       gateway from the factory, then the link task:
//!        VEC hello + entities              vec   (vec.md)
//!        VOL handshake, calls, releases    vol   (vol.md)
//!        objects and calls                 object, runtime
//! ```
//!
//! ## Layout
//!
//! The protocol core is sans-IO — state machines over byte buffers, no
//! tokio inside — so every input can be tested in memory:
//! * [`vec`](mod@vec) — entity codec and the VEC hello line;
//! * [`vop`] — the VOP transport negotiation lines;
//! * [`vol`] — the VOL link: handshake, messages, reference counting;
//! * [`vri`] — `vop://` URLs;
//! * [`vts`] — VTS, the secure transport Versile Python uses by default
//!   (handshake and records sans-IO, plus the [`VtsStream`] adapter).
//!
//! The runtime runs them on tokio:
//! * [`runtime`] — the link task and [`LinkHandle`];
//! * [`object`] — [`LocalObject`]s you serve ([`ObjectBuilder`]),
//!   [`RemoteObject`]s you call, [`CallContext`];
//! * [`server`] — [`Connection`], [`VopLayer`], [`GatewayService`], [`Server`];
//! * [`client`] — [`Client`] and VRI resolution;
//! * [`reconnect`] — a client that re-resolves its VRI after a lost link,
//!   with backoff, and reports the calls the lost link took with it;
//! * [`tls`] — TLS 1.2/1.3 as a negotiable
//!   transport on rustls, for our own peers and standard tooling (Versile
//!   Python's TLS cannot interoperate, `vop-service.md` §3.6);
//! * [`dispatch`] — a path-tree gateway for VRI resolution;
//! * [`demo`] — `Echoer`, `Adder`, `SimpleGateway`;
//! * [`bench`](mod@bench) — the measurements behind `versile bench`;
//! * [`limits`] — the counter every resource limit reports to;
//! * [`ops`] — Prometheus endpoint and logging for production services
//!   (with [`server::StackConfig`], the layer stack).
//!
//! ## A service in a few lines
//!
//! ```no_run
//! use tower::ServiceBuilder;
//! use versile::{demo::Echoer, GatewayService, Server, VopLayer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let svc = ServiceBuilder::new()
//!     .layer(VopLayer::insecure())
//!     .service(GatewayService::new(|| Echoer));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4433").await?;
//! let server = Server::serve(listener, svc)?;
//! # let _ = server; Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod bench;
pub mod client;
pub mod demo;
pub mod dispatch;
pub mod extensions;
pub mod limits;
pub mod object;
pub mod ops;
pub mod reconnect;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod value;
pub mod vec;
pub mod vol;
pub mod vop;
pub mod vri;
pub mod vts;

pub use client::{Client, ClientConfig};
pub use object::{
    Call, CallContext, CallError, LocalObject, MethodSpec, Object, ObjectBuilder, RemoteObject,
    VObject,
};
pub use runtime::{LinkHandle, LinkOptions};
pub use server::{Connection, GatewayService, Server, ServerState, StateSet, StopLinks, VopLayer};
pub use tls::{
    TlsClientConfig, TlsClientTransport, TlsLayer, TlsPeer, TlsServerConfig, TlsServerTransport,
};
pub use value::{FromArgs, FromValue, IntoArgs, Value, ValueError};
pub use vec::Entity;
pub use vts::{RsaKeyPair, VtsClientTransport, VtsConfig, VtsLayer, VtsServerTransport, VtsStream};
