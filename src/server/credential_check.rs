//! [`CredentialCheckLayer`]: accept or refuse a connection on what its
//! transport handshake established (`docs/protocol/vop-service.md` §5.4, the service's
//! `p_auth.accept_credentials` with the network address added).
//!
//! Placed after (inside) [`VopLayer`](super::VopLayer), it sees every
//! connection once its transport has finished: the peer's address, the
//! protocol and the transport-neutral identity — key fingerprint, claimed
//! identity, certificates ([`PeerInfo`], filled from the
//! [`PeerIdentity`]) — so one check serves VTS and TLS alike. What only
//! one transport knows is in [`PeerInfo::extensions`] (e.g.
//! `p.extensions.get::<versile::vts::PeerCredentials>()` for the RSA key
//! itself). A refusal drops the connection before the link starts,
//! without a word (as every VTS failure, `docs/protocol/vts.md` §7). The check may be
//! sync ([`CredentialCheckLayer::new`]) or async
//! ([`CredentialCheckLayer::new_async`]).
//!
//! ```
//! use tower::ServiceBuilder;
//! use versile::demo::SimpleGateway;
//! use versile::server::{CredentialCheckLayer, PeerInfo};
//! use versile::{GatewayService, RsaKeyPair, VtsLayer};
//!
//! # fn f(key: RsaKeyPair, allowed: String) {
//! let svc = ServiceBuilder::new()
//!     .layer(VtsLayer::new(key))
//!     .layer(CredentialCheckLayer::new(move |p: &PeerInfo| {
//!         p.key_fingerprint.as_deref() == Some(allowed.as_str())
//!     }))
//!     .service(GatewayService::new(SimpleGateway::new));
//! # let _ = svc; }
//! ```
//!
//! The link-level hook, `LinkOptions::authorizer` (Python's `auth(link)`),
//! runs later with the same facts in its
//! [`CallContext`](crate::CallContext).

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::extensions::Extensions;
use crate::transport::{Connection, ConnectionInfo, PeerIdentity};
use crate::vop::Transport;

/// What the transport handshake established about a peer, whichever
/// transport ran: the address, the protocol, the [`PeerIdentity`] facts.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The network peer.
    pub peer_addr: Option<SocketAddr>,
    /// `Some(Vts)` / `Some(Tls)`, `None` for PLAIN.
    pub protocol: Option<Transport>,
    /// The identity the peer claimed (unverified; hex DER of an X.501
    /// name for VTS, the certificate's subject common name for TLS).
    pub claimed_identity: Option<String>,
    /// The peer's certificate chain, DER, leaf first; empty if none
    /// (unverified for VTS, `docs/protocol/vts.md` §3.8).
    pub certificates: Vec<Vec<u8>>,
    /// `SHA256:<hex>` of the peer's key, the value `--pin` takes
    /// ([`PeerIdentity::key_fingerprint`]); `None` for PLAIN and for a peer
    /// without a key (an anonymous VTS client).
    pub key_fingerprint: Option<String>,
    /// Everything the layers and the transport recorded (VTS's
    /// `PeerCredentials`, TLS's `TlsPeer`, a PROXY header...).
    pub extensions: Extensions,
}

impl PeerInfo {
    /// The facts in `info`.
    pub fn from_info(info: &ConnectionInfo) -> Self {
        let PeerIdentity {
            key_fingerprint,
            certificates,
            claimed_identity,
        } = info.peer_identity().cloned().unwrap_or_default();
        PeerInfo {
            peer_addr: info.peer_addr,
            protocol: info.protocol,
            claimed_identity,
            certificates,
            key_fingerprint,
            extensions: info.extensions.clone(),
        }
    }
}

/// An async credential check: `true` accepts the peer.
pub type CredentialCheck = Arc<dyn Fn(PeerInfo) -> BoxFuture<'static, bool> + Send + Sync>;

/// Runs a [`CredentialCheck`] on each connection (see the module docs).
#[derive(Clone)]
pub struct CredentialCheckLayer {
    check: CredentialCheck,
}

impl CredentialCheckLayer {
    /// A synchronous check.
    pub fn new(f: impl Fn(&PeerInfo) -> bool + Send + Sync + 'static) -> Self {
        let f = Arc::new(f);
        CredentialCheckLayer {
            check: Arc::new(move |p: PeerInfo| {
                let ok = f(&p);
                Box::pin(async move { ok })
            }),
        }
    }

    /// An asynchronous check (a lookup in a key store, a remote service).
    pub fn new_async<F, Fut>(f: F) -> Self
    where
        F: Fn(PeerInfo) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = bool> + Send + 'static,
    {
        CredentialCheckLayer {
            check: Arc::new(move |p: PeerInfo| Box::pin(f(p))),
        }
    }
}

impl<S> Layer<S> for CredentialCheckLayer {
    type Service = CredentialCheckService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CredentialCheckService {
            inner,
            check: self.check.clone(),
        }
    }
}

/// The service produced by [`CredentialCheckLayer`].
#[derive(Clone)]
pub struct CredentialCheckService<S> {
    inner: S,
    check: CredentialCheck,
}

/// The error a refused connection ends with (logged by the server).
#[derive(Debug, thiserror::Error)]
#[error("peer refused by the credential check")]
pub struct CredentialsRefused;

impl<S> Service<Connection> for CredentialCheckService<S>
where
    S: Service<Connection> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Send,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // As VopService: the inner service is awaited after the check.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        let check = self.check.clone();
        Box::pin(async move {
            let peer = PeerInfo::from_info(&conn.info);
            let addr = peer.peer_addr;
            let fingerprint = peer.key_fingerprint.clone();
            if !check(peer).await {
                tracing::info!(peer = ?addr, key = ?fingerprint, "peer refused by the credential check");
                return Err(CredentialsRefused.into());
            }
            inner.oneshot(conn).await.map_err(Into::into)
        })
    }
}
