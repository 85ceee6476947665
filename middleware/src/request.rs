//! [`ConnectionRequest`]: what the layers need from a connection, and
//! [`SimpleConnection`], a ready-made implementation.
//!
//! The trait is protocol-free: addresses, the byte stream (for layers that
//! must read before anyone else), and a typed extension slot through which
//! layers leave facts ([`ConnectionSignals`](crate::ConnectionSignals),
//! [`ProxyInfo`](crate::proxy_protocol::ProxyInfo)) for the terminal service
//! and for each other. A server implements it for its own connection type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use crate::io::{detached, BoxedIo};

/// An accepted connection as the layers of this crate see it.
pub trait ConnectionRequest: Send + 'static {
    /// The client's address (after PROXY protocol: the real client's).
    fn peer_addr(&self) -> Option<SocketAddr>;
    /// Replace the client's address (the PROXY protocol layer does).
    fn set_peer_addr(&mut self, addr: SocketAddr);
    /// Our address of the connection.
    fn local_addr(&self) -> Option<SocketAddr>;
    /// Replace our address (the PROXY header's destination). Ignored by
    /// default.
    fn set_local_addr(&mut self, addr: SocketAddr) {
        let _ = addr;
    }
    /// Take the stream out, leaving a placeholder
    /// ([`crate::io::detached`]); put one back with
    /// [`set_io`](Self::set_io).
    fn take_io(&mut self) -> BoxedIo;
    /// Put a stream (back) in.
    fn set_io(&mut self, io: BoxedIo);
    /// The extension of type `T`, if a layer recorded one.
    fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<&T>;
    /// Record an extension, replacing one of the same type.
    fn insert_extension<T: Clone + Send + Sync + 'static>(&mut self, value: T);
}

/// A small type map (one value per type), for [`SimpleConnection`].
#[derive(Default)]
pub struct TypeMap {
    map: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl TypeMap {
    /// The value of type `T`, if any.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }

    /// Insert, replacing a value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl fmt::Debug for TypeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeMap")
            .field("len", &self.map.len())
            .finish()
    }
}

/// A plain connection: stream, addresses, extensions. Handy for servers
/// with nothing more to carry, and for tests.
pub struct SimpleConnection {
    /// The byte stream.
    pub io: BoxedIo,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// Our address.
    pub local: Option<SocketAddr>,
    /// Facts recorded by layers.
    pub extensions: TypeMap,
}

impl SimpleConnection {
    /// A connection over `io` from `peer`.
    pub fn new(io: BoxedIo, peer: Option<SocketAddr>, local: Option<SocketAddr>) -> Self {
        SimpleConnection {
            io,
            peer,
            local,
            extensions: TypeMap::default(),
        }
    }
}

impl fmt::Debug for SimpleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleConnection")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .field("extensions", &self.extensions)
            .finish()
    }
}

impl ConnectionRequest for SimpleConnection {
    fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }
    fn set_peer_addr(&mut self, addr: SocketAddr) {
        self.peer = Some(addr);
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
    fn set_local_addr(&mut self, addr: SocketAddr) {
        self.local = Some(addr);
    }
    fn take_io(&mut self) -> BoxedIo {
        std::mem::replace(&mut self.io, detached())
    }
    fn set_io(&mut self, io: BoxedIo) {
        self.io = io;
    }
    fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions.get::<T>()
    }
    fn insert_extension<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.extensions.insert(value);
    }
}
