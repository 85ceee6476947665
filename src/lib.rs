//! # versile
//!
//! Serve and call Versile objects over the Versile Object Platform, wire
//! compatible with Versile Python 0.8.5, built as a tower stack.
//!
//! ## One connection, end to end
//!
//! ```text
//! TcpListener::accept                      server::Server (accept loop, one task each)
//!   → Connection { io, info }              transport::Connection
//!   → VopLayer                             VOP hello, choose VTS | TLS | PLAIN (docs/protocol/vop-service.md §2)
//!   → ServerTransport::accept              vts | tls: stream wrapped, PeerIdentity recorded
//!   → CredentialCheckLayer (optional)      server: accept or refuse on PeerInfo
//!   → GatewayService                       gateway from the factory, then the link task:
//!        VEC hello + entities              vec   (docs/protocol/vec.md)
//!        VOL handshake, calls, releases    vol   (docs/protocol/vol.md)
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
//! * [`object`](mod@object) — [`LocalObject`]s you serve ([`macro@object`],
//!   [`ObjectBuilder`]), [`RemoteObject`]s you call ([`macro@client`]),
//!   [`CallContext`];
//! * [`transport`] — the seam every transport plugs into: [`Connection`],
//!   [`ConnectionInfo`](transport::ConnectionInfo), the neutral
//!   [`PeerIdentity`](transport::PeerIdentity), the server and client
//!   transport traits (and how to add a transport);
//! * [`server`] — [`VopLayer`], [`GatewayService`], [`Server`];
//! * [`client`](mod@client) — [`Client`] and VRI resolution;
//! * [`reconnect`] — a client that re-resolves its VRI after a lost link,
//!   with backoff, and reports the calls the lost link took with it;
//! * [`tls`] — TLS 1.2/1.3 as a negotiable
//!   transport on rustls, for our own peers and standard tooling (Versile
//!   Python's TLS cannot interoperate, `docs/protocol/vop-service.md` §3.6);
//! * [`dispatch`] — a path-tree gateway for VRI resolution;
//! * [`limits`] — the counter every resource limit reports to;
//! * [`ops`] — Prometheus endpoint and logging for production services
//!   (with [`server::StackConfig`], the layer stack).
//!
//! Also: [`demo`] — the objects the README's tour serves (`Echoer`,
//! `Adder`, `SimpleGateway`), ready-made for examples and tests, not a
//! part of the protocol. The measurements behind `versile bench` live in a
//! hidden `bench` module (feature `cli`): public only because the binary
//! and `benches/` are other crates, not an API.
//!
//! ## A service in a few lines
//!
//! An object is a struct whose `impl` block carries `#[versile::object]`:
//! each `async fn` is a published method, its arguments and result
//! converted with [`FromValue`] and `Into<Value>`, its doc comments the
//! documentation that the meta calls return (`docs/protocol/vol.md` §4.1–4.5). A client
//! declares the methods it calls in a trait with `#[versile::client]` and
//! gets a typed proxy (`CounterClient`) over a [`RemoteObject`]:
//!
//! ```
//! use std::sync::atomic::{AtomicI64, Ordering};
//! use versile::{CallError, Client, ClientConfig, GatewayService, Server, VopLayer};
//!
//! #[derive(Default)]
//! struct Counter {
//!     total: AtomicI64, // calls run concurrently: state behind &self
//! }
//!
//! /// Counts.
//! #[versile::object]
//! impl Counter {
//!     /// Adds `n` (wrong arity or type → CALL_ERROR), returns the total.
//!     async fn add(&self, n: i64) -> Result<i64, CallError> {
//!         if n < 0 {
//!             return Err(CallError::exception(("negative", n))); // CALL_EXCEPTION
//!         }
//!         Ok(self.total.fetch_add(n, Ordering::SeqCst) + n)
//!     }
//! }
//!
//! // The trait is not emitted, so it may share the struct's name.
//! #[versile::client]
//! trait Counter {
//!     async fn add(&self, n: i64) -> i64;
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::time::timeout(std::time::Duration::from_secs(30), async {
//! let svc = tower::ServiceBuilder::new()
//!     .layer(VopLayer::insecure())
//!     .service(GatewayService::new(Counter::default)); // a Counter per link
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = Server::serve(listener, svc)?;
//!
//! let client = Client::new(ClientConfig::insecure());
//! let (_link, gateway) = client.connect(&server.local_addr().to_string()).await?;
//! let counter = CounterClient::new(gateway);
//! assert_eq!(counter.add(5).await?, 5);
//! assert_eq!(counter.add(2).await?, 7);
//! let err = counter.add(-1).await.unwrap_err();
//! assert_eq!(err.exception_args().map(|a| a.len()), Some(2));
//! server.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).await?
//! # }
//! ```
//!
//! A method may also take `&CallContext` (the peer's address, transport,
//! per-link entries) or `self: Arc<Self>`, return another object
//! (`LocalObject`, or a typed client's `RemoteObject`), and carry `#[versile(name = "..")]`,
//! `#[versile(hidden)]` or `#[versile(skip)]`; see [`macro@object`] and
//! [`macro@client`]. [`ObjectBuilder`] stays the dynamic API underneath,
//! for methods only known at run time (and [`Publish::into_builder`] mixes
//! the two).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// `versile bench`'s measurements: public for the binary (src/cli) and
// benches/, which are other crates; it reaches into VTS internals and
// changes with the benchmark, so it is not an API.
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod bench;
pub mod client;
pub mod demo;
pub mod dispatch;
pub mod extensions;
pub mod limits;
pub mod object;
#[cfg(feature = "ops")]
pub mod ops;
pub mod reconnect;
pub mod runtime;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;
pub mod transport;
pub mod value;
pub mod vec;
pub mod vol;
pub mod vop;
pub mod vri;
pub mod vts;

pub use client::{Client, ClientConfig};
pub use object::{
    Call, CallContext, CallError, LocalObject, MethodSpec, Object, ObjectBuilder, ProxyError,
    Publish, RemoteObject, VObject,
};
pub use runtime::{LinkHandle, LinkOptions, LinkShutdown};
pub use server::{GatewayService, Server, ServerState, StateSet, StopLinks, VopLayer};
#[cfg(feature = "tls")]
pub use tls::{
    TlsClientConfig, TlsClientTransport, TlsLayer, TlsPeer, TlsServerConfig, TlsServerTransport,
};
pub use transport::Connection;
pub use value::{FromArgs, FromValue, IntoArgs, Value, ValueError};
pub use vec::Entity;
pub use versile_macros::{client, object};
pub use vts::{RsaKeyPair, VtsClientTransport, VtsConfig, VtsLayer, VtsServerTransport, VtsStream};

/// The README's Rust blocks are doc-tests: its library example is one
/// program that compiles and runs as written.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// What the code generated by `#[versile::object]` and `#[versile::client]`
/// calls; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::object::typed::{arg, call, Args};
    pub use crate::object::IntoCallResult;
}
