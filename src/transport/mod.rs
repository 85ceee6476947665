//! The seam between the VOP negotiation and the byte transports (VTS,
//! TLS, PLAIN): what every transport is given, what it must return and
//! what it records about the peer (`docs/protocol/vop-service.md` §1 layer 2, §2.8, §5.4).
//!
//! ```text
//! server: TcpListener::accept → Connection { io: BoxedIo, info: ConnectionInfo }
//!         → VopLayer reads the hello (read_hello), answers, picks a token
//!         → ServerTransport::accept(conn) → Connection { io: plaintext, info + PeerIdentity }
//! client: TcpStream::connect → hello written, answer read (read_hello)
//!         → ClientTransport::connect(io, info) → (plaintext io, info + PeerIdentity)
//! both:   → the link runs over io; info becomes the link's CallContext
//! ```
//!
//! A transport's handshake fills in the neutral [`PeerIdentity`] (key
//! fingerprint, certificate chain, claimed identity) in
//! [`ConnectionInfo::identity`], which is what
//! [`CredentialCheckLayer`](crate::server::CredentialCheckLayer),
//! [`CallContext::peer_identity`](crate::CallContext::peer_identity) and the
//! client read; its own facts (VTS's `PeerCredentials`, TLS's `TlsPeer`)
//! go in [`ConnectionInfo::extensions`] for code that wants them.
//!
//! # Adding a transport
//!
//! One folder (as `src/vts/` and `src/tls/`) with a type implementing
//! [`ServerTransport`] and one implementing [`ClientTransport`]: each runs
//! its handshake on the stream it is given (bytes read past the VOP line
//! are already in front of it, [`Rewind`]), sets
//! [`ConnectionInfo::protocol`], calls [`ConnectionInfo::set_peer_identity`]
//! and returns the plaintext stream. Users enable it with
//! `VopLayer::builder().transport(..)` / `ClientConfig::transport(..)`, or
//! as the only transport with [`SingleTransportLayer::with_transport`](crate::server::SingleTransportLayer::with_transport).
//! The registration points outside the folder: the VOP token in
//! [`Transport`](crate::vop::Transport) (the wire names the transports),
//! `pub mod` in `lib.rs`, and, for typed client errors, a variant of
//! [`TransportError`] (else [`TransportError::Other`]).

mod client;
mod connection;
mod error;
mod hello;
mod identity;
mod server;

pub use client::{ClientTransport, TargetHost};
pub use connection::{Connection, NegotiatedTransport};
pub use error::TransportError;
pub(crate) use hello::read_hello;
pub use identity::{ConnectionInfo, PeerIdentity};
pub(crate) use server::Plain;
pub use server::ServerTransport;
pub use versile_middleware::io::{AsyncStream, BoxedIo, Rewind};

use std::sync::Arc;

/// What [`ClientConfig::default`](crate::ClientConfig) offers: VTS,
/// anonymous and accepting any server key, like Python's `VOPUrlConfig`
/// (`docs/protocol/vop-service.md` §4.6). Kept here, with the other
/// registration points, so the client names no transport.
pub(crate) fn default_client_transports() -> Vec<Arc<dyn ClientTransport>> {
    vec![Arc::new(crate::vts::VtsClientTransport::new(None))]
}
