//! [`ServerTransport`]: the server side of one byte transport, and PLAIN.

use futures::future::BoxFuture;
use tower::BoxError;

use super::Connection;
use crate::vop::Transport;

/// The server side of one byte transport (`docs/protocol/vop-service.md` §1 layer 2).
///
/// PLAIN is built in; VTS and TLS plug in through this trait (see the
/// [module docs](super) for adding one).
pub trait ServerTransport: Send + Sync + 'static {
    /// Which VOP token this transport answers to.
    fn transport(&self) -> Transport;
    /// Run the transport's server handshake on `conn.io` and return the
    /// connection with the plaintext stream, `protocol` set and the
    /// [`PeerIdentity`](super::PeerIdentity) recorded.
    fn accept(&self, conn: Connection) -> BoxFuture<'static, Result<Connection, BoxError>>;
}

/// PLAIN: the stream as it is, no identity (`docs/protocol/vop-service.md` §2.7).
pub(crate) struct Plain;

impl ServerTransport for Plain {
    fn transport(&self) -> Transport {
        Transport::Plain
    }
    fn accept(&self, conn: Connection) -> BoxFuture<'static, Result<Connection, BoxError>> {
        Box::pin(async move { Ok(conn) })
    }
}
