//! [`CredentialCheckLayer`]: accept or refuse a connection on what its
//! transport handshake established (`docs/protocol/vop-service.md` §5.4, the service's
//! `p_auth.accept_credentials` with the network address added).
//!
//! Placed after (inside) [`VopLayer`](super::VopLayer), it sees every
//! connection once VTS or TLS has finished: the peer's address, the
//! protocol, the peer's key, its claimed identity and certificates
//! ([`PeerInfo`]). A refusal drops the connection before the link starts,
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
//!         p.key.as_ref().is_some_and(|k| k.fingerprint() == allowed)
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

use super::connection::Connection;
use crate::extensions::Extensions;
use crate::object::ConnectionInfo;
use crate::vop::Transport;
use crate::vts::{Credentials, PeerCredentials, PublicKey};

/// What the transport handshake established about a peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The network peer.
    pub peer_addr: Option<SocketAddr>,
    /// `Some(Vts)` / `Some(Tls)`, `None` for PLAIN.
    pub protocol: Option<Transport>,
    /// The peer's RSA key (VTS; `None` for an anonymous VTS client, for
    /// TLS and for PLAIN: see [`key_fingerprint`](Self::key_fingerprint)).
    pub key: Option<PublicKey>,
    /// The identity the peer claimed (unverified; hex DER of an X.501
    /// name for VTS).
    pub claimed_identity: Option<String>,
    /// The peer's certificate chain, DER, leaf first (unverified for VTS,
    /// `docs/protocol/vts.md` §3.8; from `TlsPeer` for TLS); empty if none.
    pub certificates: Vec<Vec<u8>>,
    /// `SHA256:<hex>` of the peer's RSA key in the VTS form (PKCS#1), for
    /// VTS and for TLS with an RSA certificate; for other TLS keys, of the
    /// SubjectPublicKeyInfo. The value `--pin` takes.
    pub key_fingerprint: Option<String>,
    /// The full VTS credentials (key, claim, suite), if VTS ran.
    pub vts: Option<PeerCredentials>,
    /// Everything the layers recorded (other transports put their own
    /// facts here).
    pub extensions: Extensions,
}

impl PeerInfo {
    /// The facts in `info`.
    pub fn from_info(info: &ConnectionInfo) -> Self {
        let vts = info.extensions.get::<PeerCredentials>().cloned();
        #[cfg(feature = "tls")]
        let tls = info.extensions.get::<crate::tls::TlsPeer>();
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut certificates = match vts.as_ref().and_then(|p| p.credentials.as_ref()) {
            Some(Credentials::Certificates(chain)) => chain.clone(),
            _ => Vec::new(),
        };
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut key_fingerprint = vts
            .as_ref()
            .and_then(|p| p.key.as_ref())
            .map(|k| k.fingerprint());
        #[cfg(feature = "tls")]
        if let Some(t) = tls {
            certificates = t.certificates.iter().map(|c| c.to_vec()).collect();
            key_fingerprint = t
                .rsa_key_fingerprint
                .clone()
                .or_else(|| t.key_fingerprint.clone());
        }
        PeerInfo {
            peer_addr: info.peer_addr,
            protocol: info.protocol,
            key: vts.as_ref().and_then(|p| p.key.clone()),
            claimed_identity: info.claimed_identity.clone(),
            certificates,
            key_fingerprint,
            vts,
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
            let fingerprint = peer.key.as_ref().map(|k| k.fingerprint());
            if !check(peer).await {
                tracing::info!(peer = ?addr, key = ?fingerprint, "peer refused by the credential check");
                return Err(CredentialsRefused.into());
            }
            inner.oneshot(conn).await.map_err(Into::into)
        })
    }
}
