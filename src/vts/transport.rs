//! VTS as a VOP transport: [`VtsServerTransport`] for
//! [`VopLayer`](crate::server::VopLayer) and [`VtsClientTransport`] for
//! [`ClientConfig`](crate::client::ClientConfig) (`vop-service.md` §2.8).
//!
//! Both record the peer's [`PeerCredentials`] in the connection's
//! extensions; an identity claim also goes to `claimed_identity` (as hex
//! DER: it is unverified, §3.8).

use std::sync::Arc;

use futures::future::BoxFuture;
use tower::BoxError;

use super::config::{Credentials, PeerCredentials, VtsConfig};
use super::keys::RsaKeyPair;
use super::stream::VtsStream;
use crate::client::{ClientError, ClientTransport};
use crate::object::ConnectionInfo;
use crate::runtime::BoxedIo;
use crate::server::{Connection, ServerTransport};
use crate::vop::Transport;

fn record(info: &mut ConnectionInfo, peer: Option<&PeerCredentials>) {
    if let Some(p) = peer {
        if let Some(Credentials::Identity(der)) = &p.credentials {
            info.claimed_identity = Some(der.iter().map(|b| format!("{b:02x}")).collect());
        }
        info.extensions.insert(p.clone());
        let slot = VtsPeer::default();
        slot.set(p.clone());
        info.extensions.insert(slot);
    }
}

/// The server side of VTS: needs our RSA key pair.
#[derive(Clone)]
pub struct VtsServerTransport {
    key: RsaKeyPair,
    config: Arc<VtsConfig>,
}

impl VtsServerTransport {
    /// VTS with `key` and the default configuration.
    pub fn new(key: RsaKeyPair) -> Self {
        Self::with_config(key, VtsConfig::default())
    }

    /// VTS with `key` and `config`.
    pub fn with_config(key: RsaKeyPair, config: VtsConfig) -> Self {
        VtsServerTransport {
            key,
            config: Arc::new(config),
        }
    }
}

impl ServerTransport for VtsServerTransport {
    fn transport(&self) -> Transport {
        Transport::Vts
    }

    fn accept(&self, conn: Connection) -> BoxFuture<'static, Result<Connection, BoxError>> {
        let (key, config) = (self.key.clone(), self.config.clone());
        Box::pin(async move {
            let Connection { io, mut info } = conn;
            let stream = VtsStream::accept(io, config, key).await?;
            info.protocol = Some(Transport::Vts);
            record(&mut info, stream.peer());
            Ok(Connection {
                io: Box::pin(stream),
                info,
            })
        })
    }
}

/// The client side of VTS: anonymous, or with our key pair.
#[derive(Clone)]
pub struct VtsClientTransport {
    key: Option<RsaKeyPair>,
    config: Arc<VtsConfig>,
}

impl VtsClientTransport {
    /// VTS with the default configuration. Without a pin or authorizer any
    /// server key is accepted, as in Python (`vts.md` §10 #2: vulnerable
    /// to a man in the middle); see [`pin_server_key`](Self::pin_server_key).
    pub fn new(key: Option<RsaKeyPair>) -> Self {
        Self::with_config(key, VtsConfig::default())
    }

    /// VTS with `config` (its authorizer checks the server).
    pub fn with_config(key: Option<RsaKeyPair>, config: VtsConfig) -> Self {
        VtsClientTransport {
            key,
            config: Arc::new(config),
        }
    }

    /// Accept only the server key with this fingerprint (`SHA256:<hex>`).
    pub fn pin_server_key(self, fingerprint: impl Into<String>) -> Self {
        let config = (*self.config).clone().pin_peer_key(fingerprint);
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
        info: &mut ConnectionInfo,
    ) -> BoxFuture<'static, Result<BoxedIo, ClientError>> {
        let (key, config) = (self.key.clone(), self.config.clone());
        // The trait's future cannot borrow `info`: a shared slot goes into
        // the extensions now and is filled when the handshake completes,
        // before the link starts.
        let slot = VtsPeer::default();
        info.extensions.insert(slot.clone());
        Box::pin(async move {
            let stream = VtsStream::connect(io, config, key)
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            if let Some(p) = stream.peer() {
                slot.set(p.clone());
            }
            Ok::<BoxedIo, ClientError>(Box::pin(stream))
        })
    }
}

/// The peer's VTS credentials, in the connection's (and so every call
/// context's) extensions on both sides: `ctx.extensions.get::<VtsPeer>()`.
#[derive(Clone, Default, Debug)]
pub struct VtsPeer(Arc<std::sync::Mutex<Option<PeerCredentials>>>);

impl VtsPeer {
    fn set(&self, p: PeerCredentials) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(p);
        }
    }

    /// The credentials (`None` only before the handshake completed).
    pub fn get(&self) -> Option<PeerCredentials> {
        self.0.lock().ok().and_then(|g| g.clone())
    }

    /// The peer's public key, if it has one.
    pub fn public_key(&self) -> Option<super::keys::PublicKey> {
        self.get().and_then(|p| p.key)
    }
}
