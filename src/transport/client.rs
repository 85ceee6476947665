//! [`ClientTransport`]: the client side of one byte transport.

use futures::future::BoxFuture;

use super::{BoxedIo, ConnectionInfo, TransportError};
use crate::vop::Transport;

/// The client side of one byte transport (VTS and TLS plug in here; see
/// the [module docs](super) for adding one).
pub trait ClientTransport: Send + Sync + 'static {
    /// Which VOP token this transport answers to.
    fn transport(&self) -> Transport;
    /// Run the client handshake on `io` and return the plaintext stream
    /// with `info` updated by what the handshake learned: `protocol`, the
    /// [`PeerIdentity`](super::PeerIdentity), the transport's own peer
    /// record in `extensions` (`docs/protocol/vop-service.md` §5.4). `info`
    /// arrives with the network addresses and the [`TargetHost`] filled
    /// in; the link's [`CallContext`](crate::CallContext) is built from
    /// what is returned.
    fn connect(
        &self,
        io: BoxedIo,
        info: ConnectionInfo,
    ) -> BoxFuture<'static, Result<(BoxedIo, ConnectionInfo), TransportError>>;
}

/// The host part of the address the client connected to (a DNS name or an
/// IP address, without brackets), recorded in the connection info before
/// the transport handshake (TLS uses it for SNI and the name check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHost(pub String);
