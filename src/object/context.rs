//! The per-link call context (`docs/protocol/vol.md` §4.8, `docs/protocol/vop-service.md` §5.4): who the
//! peer is and what the transport learned, visible to every method.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::extensions::Extensions;
use crate::runtime::LinkHandle;
use crate::transport::{ConnectionInfo, PeerIdentity};
use crate::value::Value;
use crate::vop::Transport;

/// What a link knows about its peer, shared by all calls on that link.
///
/// Cheap to clone. Methods receive it in [`Call::ctx`](crate::Call::ctx).
#[derive(Clone)]
pub struct CallContext {
    pub(crate) link: LinkHandle,
}

#[derive(Default)]
pub(crate) struct ContextState {
    pub(crate) authorized: bool,
    pub(crate) identity: Option<String>,
    pub(crate) entries: HashMap<String, Value>,
}

impl CallContext {
    /// The link the call arrived on.
    pub fn link(&self) -> &LinkHandle {
        &self.link
    }

    fn info(&self) -> &ConnectionInfo {
        &self.link.shared.info
    }

    /// The peer's network address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.info().peer_addr
    }

    /// Our local address of the connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.info().local_addr
    }

    /// `Some(Vts)`/`Some(Tls)` on a secure transport, `None` on PLAIN.
    pub fn protocol(&self) -> Option<Transport> {
        self.info().protocol
    }

    /// The identity the peer claimed during the transport handshake
    /// (unverified).
    pub fn claimed_identity(&self) -> Option<&str> {
        self.info().claimed_identity()
    }

    /// What the transport handshake established about the peer — key
    /// fingerprint, certificates, claimed identity — whichever transport
    /// ran (Python's `context.credentials`, `docs/protocol/vop-service.md`
    /// §5.4); `None` for PLAIN. The transport's own record is in
    /// [`extensions`](Self::extensions): `vts::PeerCredentials` (the key
    /// itself, the suite), `tls::TlsPeer`.
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.info().peer_identity()
    }

    /// Typed facts recorded by layers and the transport (e.g.
    /// `ctx.extensions().get::<versile::vts::PeerCredentials>()`).
    pub fn extensions(&self) -> &Extensions {
        &self.info().extensions
    }

    /// Whether an authorizer marked the peer as authorized.
    pub fn is_authorized(&self) -> bool {
        self.state().authorized
    }

    /// The identity an authorizer established (only while authorized).
    pub fn identity(&self) -> Option<String> {
        let st = self.state();
        st.authorized.then(|| st.identity.clone()).flatten()
    }

    /// Mark the peer authorized, optionally with an identity (Python's
    /// `_v_authorize` / `_v_set_identity`, without its identity bug).
    pub fn authorize(&self, identity: Option<String>) {
        let mut st = self.state();
        st.authorized = true;
        st.identity = identity;
    }

    /// A per-link entry.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.state().entries.get(key).cloned()
    }

    /// Set a per-link entry, visible to later calls on the same link.
    pub fn set(&self, key: impl Into<String>, value: Value) {
        self.state().entries.insert(key.into(), value);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ContextState> {
        // A poisoned lock only means a method panicked mid-update; the
        // state is plain data, so keep going.
        self.link
            .shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("peer_addr", &self.peer_addr())
            .field("protocol", &self.protocol())
            .field("authorized", &self.is_authorized())
            .finish()
    }
}
