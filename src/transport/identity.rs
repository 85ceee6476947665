//! [`ConnectionInfo`], the facts about one connection that become the
//! link's call context, and [`PeerIdentity`], the transport-neutral part of
//! what a handshake proved or heard about the peer.

use std::net::SocketAddr;

use crate::extensions::Extensions;
use crate::vop::Transport;

/// Who the peer is, as its transport handshake established it — the same
/// three facts whichever transport ran (`docs/protocol/vop-service.md` §5.4:
/// Python's `context.credentials` and `claimed_identity`).
///
/// Only the key is authenticated (the handshake proves the peer holds it);
/// certificates and the claimed identity are as presented (SECURITY.md
/// #14): check keys, not names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// `SHA256:<hex>` of the peer's public key, the value `--pin`,
    /// `VtsClientTransport::pin_server_key` and `TlsClientConfig::pinned_key`
    /// take: over the PKCS#1 `RSAPublicKey` for VTS and for TLS with an RSA
    /// key (one pin names the key on both transports), over the
    /// SubjectPublicKeyInfo for other TLS keys. `None` for an anonymous VTS
    /// client or a TLS client without a certificate.
    pub key_fingerprint: Option<String>,
    /// The peer's certificate chain, DER, leaf first; empty if none. VTS
    /// never validates it (`docs/protocol/vts.md` §3.8); TLS does when our
    /// side's verification mode checks chains.
    pub certificates: Vec<Vec<u8>>,
    /// The identity the peer claimed, unverified: hex DER of an X.501 name
    /// for VTS, the leaf certificate's subject common name for TLS.
    pub claimed_identity: Option<String>,
}

/// Facts about a connection, gathered by the accept loop, the layers and
/// the transport handshake; moved into the link's
/// [`CallContext`](crate::CallContext) when the link starts, so it lives
/// as long as the link (kept small: a PLAIN link pays for no identity).
#[derive(Debug, Default)]
pub struct ConnectionInfo {
    /// The network peer (`network_peer` in Python).
    pub peer_addr: Option<SocketAddr>,
    /// Our address of the connection.
    pub local_addr: Option<SocketAddr>,
    /// The negotiated secure protocol; `None` for PLAIN (`sec_protocol`).
    pub protocol: Option<Transport>,
    /// What the secure transport's handshake established about the peer;
    /// `None` for PLAIN. Boxed: one pointer on links that have none.
    pub identity: Option<Box<PeerIdentity>>,
    /// Whatever layers recorded (the transport's own peer record —
    /// `vts::PeerCredentials`, `tls::TlsPeer` — tags, PROXY header...).
    pub extensions: Extensions,
}

impl ConnectionInfo {
    /// What the transport handshake established about the peer (`None`
    /// for PLAIN).
    pub fn peer_identity(&self) -> Option<&PeerIdentity> {
        self.identity.as_deref()
    }

    /// The identity the peer claimed during the transport handshake.
    pub fn claimed_identity(&self) -> Option<&str> {
        self.peer_identity()?.claimed_identity.as_deref()
    }

    /// Record what a transport handshake established (a transport calls
    /// this once it has finished).
    pub fn set_peer_identity(&mut self, identity: PeerIdentity) {
        self.identity = Some(Box::new(identity));
    }
}
