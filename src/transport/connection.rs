//! [`Connection`]: the request that flows through the server's tower
//! stack, one per accepted TCP connection.

use std::net::SocketAddr;

use versile_middleware::{ConnectionRequest, ConnectionSignals};

use super::{BoxedIo, ConnectionInfo};
use crate::extensions::Extensions;
use crate::vop::Transport;

/// An accepted connection on its way to becoming a link.
///
/// Layers read and replace [`io`](Self::io) (a negotiation layer wraps it in
/// the chosen transport) and record what they learn in the [`info`](Self::info)
/// extensions; the terminal service runs the link over it.
pub struct Connection {
    /// The byte stream (the socket, or a transport wrapped around it).
    pub io: BoxedIo,
    /// Addresses, negotiated protocol, and facts recorded by layers. Moved
    /// into the link's call context when the link starts.
    pub info: ConnectionInfo,
}

/// The transport the VOP handshake chose, recorded in the extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedTransport(pub Transport);

impl Connection {
    /// A connection over `io` between `peer` and `local`.
    pub fn new(io: BoxedIo, peer: Option<SocketAddr>, local: Option<SocketAddr>) -> Self {
        Connection {
            io,
            info: ConnectionInfo {
                peer_addr: peer,
                local_addr: local,
                ..ConnectionInfo::default()
            },
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.info.peer_addr
    }

    /// The local address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.info.local_addr
    }

    /// Facts recorded by layers.
    pub fn extensions(&self) -> &Extensions {
        &self.info.extensions
    }

    /// Record a fact for later layers and for methods.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.info.extensions
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.info.peer_addr)
            .field("local", &self.info.local_addr)
            .finish()
    }
}

/// The middleware layers (`versile_middleware`) see a `Connection` through
/// this trait; their extensions (e.g. [`ConnectionSignals`], the PROXY
/// header) land in `info.extensions`, where [`GatewayService`] and methods
/// find them.
///
/// [`GatewayService`]: crate::server::GatewayService
impl ConnectionRequest for Connection {
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.info.peer_addr
    }
    fn set_peer_addr(&mut self, addr: SocketAddr) {
        self.info.peer_addr = Some(addr);
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        self.info.local_addr
    }
    fn set_local_addr(&mut self, addr: SocketAddr) {
        self.info.local_addr = Some(addr);
    }
    fn take_io(&mut self) -> BoxedIo {
        std::mem::replace(&mut self.io, versile_middleware::io::detached())
    }
    fn set_io(&mut self, io: BoxedIo) {
        self.io = io;
    }
    fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<&T> {
        self.info.extensions.get::<T>()
    }
    fn insert_extension<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.info.extensions.insert(value);
    }
}

impl Connection {
    /// The signals a middleware layer left for the link, if any.
    pub(crate) fn signals(&self) -> Option<ConnectionSignals> {
        self.info.extensions.get::<ConnectionSignals>().cloned()
    }
}
