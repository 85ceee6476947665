//! VTS as a VOP transport: [`VtsServerTransport`] for
//! [`VopLayer`](crate::server::VopLayer) and [`VtsClientTransport`] for
//! [`ClientConfig`](crate::client::ClientConfig) (`docs/protocol/vop-service.md` §2.8).
//!
//! Both record, on their side of the link, what `docs/protocol/vop-service.md` §5.4 puts
//! in Python's link context: `protocol = Some(Vts)` (`sec_protocol`), the
//! neutral [`PeerIdentity`] (the peer key's fingerprint, its certificate
//! chain, an identity claim as hex DER of the X.501 name — the last two
//! unverified, `docs/protocol/vts.md` §3.8; read it with
//! [`CallContext::peer_identity`](crate::CallContext::peer_identity)), and
//! the full [`PeerCredentials`] (the key itself, the suite) in the
//! connection's extensions (`ctx.extensions().get::<PeerCredentials>()`).
//!
//! Credential checks run inside the handshake (`VtsConfig::authorizer`,
//! Python's `VAuth.accept_credentials`): a refused peer is closed on
//! without a word (§7).

use std::sync::Arc;

use futures::future::BoxFuture;
use tower::BoxError;

use super::config::{Credentials, PeerCredentials, VtsConfig};
use super::connection::VtsConnection;
use super::keys::{KeyPolicy, RsaKeyPair};
use super::rsa_pool::RsaPool;
use super::stream::VtsStream;
use crate::transport::{
    BoxedIo, ClientTransport, Connection, ConnectionInfo, PeerIdentity, ServerTransport,
    TransportError,
};
use crate::vop::Transport;

/// Record what the handshake learned (see the module docs).
fn record(info: &mut ConnectionInfo, peer: Option<&PeerCredentials>) {
    info.protocol = Some(Transport::Vts);
    let mut identity = PeerIdentity::default();
    if let Some(p) = peer {
        identity.key_fingerprint = p.key.as_ref().map(|k| k.fingerprint());
        match &p.credentials {
            Some(Credentials::Identity(der)) => {
                identity.claimed_identity = Some(hex(der));
            }
            Some(Credentials::Certificates(chain)) => {
                // Python takes the identity from the leaf's subject (§3.8);
                // without an X.509 parser we record no claim, only the chain.
                identity.certificates = chain.clone();
            }
            None => {}
        }
        info.extensions.insert(p.clone());
    }
    info.set_peer_identity(identity);
}

/// The peer learns nothing of a failed handshake (§7); the log says why.
/// A refused key is a warning: it is usually a legitimate but weak key
/// that the operator may choose to allow.
fn log_failure(peer: Option<std::net::SocketAddr>, e: &super::VtsError) {
    match e {
        super::VtsError::KeyRefused(_) => {
            tracing::warn!(peer = ?peer, error = %e, "VTS handshake refused")
        }
        _ => tracing::info!(peer = ?peer, error = %e, "VTS handshake failed"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server side of VTS: needs our RSA key pair. Clones share one
/// [`RsaPool`] (sized by [`VtsConfig::rsa_workers`] and
/// [`VtsConfig::rsa_queue`]) for the RSA work of all their connections.
#[derive(Clone)]
pub struct VtsServerTransport {
    key: RsaKeyPair,
    config: Arc<VtsConfig>,
    pool: RsaPool,
}

impl VtsServerTransport {
    /// VTS with `key` and the default configuration (peer keys ≥ 1024
    /// bits, any client accepted).
    pub fn new(key: RsaKeyPair) -> Self {
        Self::with_config(key, VtsConfig::default())
    }

    /// VTS with `key` and `config`.
    pub fn with_config(key: RsaKeyPair, config: VtsConfig) -> Self {
        VtsServerTransport {
            key,
            pool: RsaPool::new(
                config.rsa_workers,
                config.rsa_queue,
                config.rsa_reserved_workers,
            ),
            config: Arc::new(config),
        }
    }

    /// Our key.
    pub fn key(&self) -> &RsaKeyPair {
        &self.key
    }

    /// The pool running this server's RSA private-key operations.
    pub fn rsa_pool(&self) -> &RsaPool {
        &self.pool
    }

    /// Size the RSA pool: `workers` threads, `queue` waiting jobs
    /// ([`VtsConfig::rsa_workers`], [`VtsConfig::rsa_queue`]).
    pub fn rsa_limits(self, workers: usize, queue: usize) -> Self {
        let config = (*self.config).clone().rsa_pool(workers, queue);
        Self::with_config(self.key, config)
    }

    /// Check each client's credentials during the handshake (Python's
    /// server-side `VAuth.accept_credentials`); a refused client is closed
    /// on. For checks that need the network address or are async, use
    /// [`CredentialCheckLayer`](crate::server::CredentialCheckLayer).
    pub fn authorizer(self, f: impl Fn(&PeerCredentials) -> bool + Send + Sync + 'static) -> Self {
        let config = (*self.config).clone().authorizer(f);
        Self::with_config(self.key, config)
    }

    /// Refuse anonymous clients (Python's `VAuth(key=True)`).
    pub fn require_client_key(self) -> Self {
        let mut config = (*self.config).clone();
        config.require_peer_key = true;
        Self::with_config(self.key, config)
    }

    /// Set the policy for client keys.
    pub fn key_policy(self, policy: KeyPolicy) -> Self {
        let config = (*self.config).clone().key_policy(policy);
        Self::with_config(self.key, config)
    }
}

impl ServerTransport for VtsServerTransport {
    fn transport(&self) -> Transport {
        Transport::Vts
    }

    fn accept(&self, conn: Connection) -> BoxFuture<'static, Result<Connection, BoxError>> {
        let (key, config, pool) = (self.key.clone(), self.config.clone(), self.pool.clone());
        Box::pin(async move {
            let Connection { io, mut info } = conn;
            let peer = info.peer_addr;
            let vts = VtsConnection::server(config, key);
            let stream = VtsStream::handshake_on(io, vts, Some(pool), peer.map(|p| p.ip()))
                .await
                .inspect_err(|e| log_failure(peer, e))?;
            record(&mut info, stream.peer());
            Ok(Connection {
                io: Box::pin(stream),
                info,
            })
        })
    }
}

/// The client side of VTS: anonymous, or with our key pair. In client-key
/// mode the RSA private-key operation (M6) runs on a pool shared by the
/// clones, sized like the server's.
#[derive(Clone)]
pub struct VtsClientTransport {
    key: Option<RsaKeyPair>,
    config: Arc<VtsConfig>,
    pool: RsaPool,
}

impl VtsClientTransport {
    /// VTS with the default configuration. Without a pin or authorizer any
    /// server key is accepted, as in Python (`docs/protocol/vts.md` §10 #2: vulnerable
    /// to a man in the middle); see [`pin_server_key`](Self::pin_server_key).
    pub fn new(key: Option<RsaKeyPair>) -> Self {
        Self::with_config(key, VtsConfig::default())
    }

    /// VTS with `config` (its authorizer checks the server).
    pub fn with_config(key: Option<RsaKeyPair>, config: VtsConfig) -> Self {
        VtsClientTransport {
            key,
            pool: RsaPool::new(
                config.rsa_workers,
                config.rsa_queue,
                config.rsa_reserved_workers,
            ),
            config: Arc::new(config),
        }
    }

    /// Accept only the server key with this fingerprint (`SHA256:<hex>`,
    /// as printed by `versile serve` and [`RsaKeyPair::fingerprint`]).
    pub fn pin_server_key(self, fingerprint: impl Into<String>) -> Self {
        let config = (*self.config).clone().pin_peer_key(fingerprint);
        Self::with_config(self.key, config)
    }

    /// Check the server's key and credentials with `f` during the
    /// handshake (Python's client-side `VAuth.accept_credentials`); `false`
    /// fails the connection. Combines with a pin: both must accept.
    pub fn authorizer(self, f: impl Fn(&PeerCredentials) -> bool + Send + Sync + 'static) -> Self {
        let config = (*self.config).clone().authorizer(f);
        Self::with_config(self.key, config)
    }

    /// Set the policy for server keys.
    pub fn key_policy(self, policy: KeyPolicy) -> Self {
        let config = (*self.config).clone().key_policy(policy);
        Self::with_config(self.key, config)
    }
}

impl ClientTransport for VtsClientTransport {
    fn transport(&self) -> Transport {
        Transport::Vts
    }

    fn connect(
        &self,
        io: BoxedIo,
        mut info: ConnectionInfo,
    ) -> BoxFuture<'static, Result<(BoxedIo, ConnectionInfo), TransportError>> {
        let (key, config, pool) = (self.key.clone(), self.config.clone(), self.pool.clone());
        Box::pin(async move {
            let peer = info.peer_addr.map(|p| p.ip());
            let vts = VtsConnection::client(config, key);
            let stream = VtsStream::handshake_on(io, vts, Some(pool), peer)
                .await
                .map_err(TransportError::Vts)?;
            record(&mut info, stream.peer());
            Ok::<_, TransportError>((Box::pin(stream) as BoxedIo, info))
        })
    }
}
