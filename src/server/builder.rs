//! [`ServerBuilder`]: where and how a [`Server`] listens (`docs/protocol/vop-service.md`
//! §5.1 `sock`/`internal`/`buf_size`, §5.2 `iface`/`port`; S01–S03, S26),
//! whether it is admission-controlled (§5.7), and its link hooks.
//!
//! The options and their defaults are listed on [`ServerBuilder`].

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::TcpListener;
use tower::{BoxError, Service};

use super::admission::AdmissionNode;
use super::readiness::Readiness;
use super::registry::{LinkInfo, LinkRegistry};
use super::serve::{AcceptOptions, Server};
use crate::transport::Connection;

/// Python's `internal=True` buffer size (512 KiB).
pub const INTERNAL_BUFFER_SIZE: usize = 512 * 1024;

/// Default listen backlog.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Neither `listen` nor a listener was given.
    #[error("no address to listen on (use listen(addr) or listener(..))")]
    NoListener,
    /// A listen address did not resolve.
    #[error("cannot resolve listen address {addr}: {source}")]
    Resolve {
        /// The address as given to `listen`.
        addr: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Creating, configuring, binding or listening on a socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The resolved address the socket was for.
        addr: SocketAddr,
        /// The failing socket call's error.
        source: io::Error,
    },
    /// A pre-bound listener could not be used.
    #[error("cannot use the given listener{}: {source}", fmt_opt(.addr))]
    Listener {
        /// The listener's local address, if it could be read.
        addr: Option<SocketAddr>,
        /// The error from reading or configuring the listener.
        source: io::Error,
    },
}

fn fmt_opt(addr: &Option<SocketAddr>) -> String {
    addr.map(|a| format!(" ({a})")).unwrap_or_default()
}

impl From<ServerError> for io::Error {
    fn from(e: ServerError) -> io::Error {
        let kind = match &e {
            ServerError::NoListener => io::ErrorKind::InvalidInput,
            ServerError::Resolve { source, .. }
            | ServerError::Bind { source, .. }
            | ServerError::Listener { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}

enum Listen {
    Addr {
        text: String,
        addrs: io::Result<Vec<SocketAddr>>,
    },
    Tokio(TcpListener),
    Std(std::net::TcpListener),
}

/// Builds a [`Server`].
///
/// Sockets are made with `socket2` so that the options Python sets (address
/// reuse, backlog, buffer sizes) and IPv6 dual-stack can be chosen before
/// `bind`/`listen`:
///
/// * `listen(addr)` may be repeated; each address gets its own socket, all
///   served by one accept loop. A host name is resolved when `listen` is
///   called; the first of its addresses that binds is used.
/// * IPv6 sockets are dual-stack by default (`IPV6_V6ONLY` off), so
///   `[::]:PORT` also takes IPv4 clients. To listen on `0.0.0.0:P` and
///   `[::]:P` side by side, set [`ipv6_only(true)`](ServerBuilder::ipv6_only).
/// * Backlog 1024 (as tokio; Python used 10), address reuse on (not on
///   Windows, where `SO_REUSEADDR` lets another process steal the port).
/// * [`buffer_size`](ServerBuilder::buffer_size) sets `SO_RCVBUF` and
///   `SO_SNDBUF` on the listening socket (before `listen`, so the TCP window
///   scale fits) and on each accepted socket; [`internal`](ServerBuilder::internal)
///   is Python's 512 KiB preset for local links. (Python's `internal` also
///   enlarged its VEC buffers; this implementation has no such buffers.)
/// * Pre-bound listeners ([`listener`](ServerBuilder::listener),
///   [`std_listener`](ServerBuilder::std_listener)) are used as they are,
///   apart from the buffer sizes; a std listener is made non-blocking.
///
/// [`serve`](ServerBuilder::serve) must be called inside a tokio runtime.
/// Its errors name the address that failed.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use tower::ServiceBuilder;
/// use versile::{demo::Echoer, GatewayService, Server, VopLayer};
///
/// let svc = ServiceBuilder::new()
///     .layer(VopLayer::insecure())
///     .service(GatewayService::new(|| Echoer));
/// let server = Server::builder()
///     .listen("127.0.0.1:4433")
///     .listen("[::1]:4433")
///     .internal()
///     .serve(svc)?;
/// println!("{:?}", server.local_addrs());
/// # Ok(()) }
/// ```
pub struct ServerBuilder {
    listens: Vec<Listen>,
    backlog: u32,
    reuse_address: bool,
    reuse_port: bool,
    ipv6_only: bool,
    buffer_size: Option<usize>,
    node: Option<AdmissionNode>,
    links: LinkRegistry,
    readiness: Readiness,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// Nothing to listen on yet; defaults as listed on [`ServerBuilder`].
    pub fn new() -> Self {
        ServerBuilder {
            listens: Vec::new(),
            backlog: DEFAULT_BACKLOG,
            reuse_address: true,
            reuse_port: false,
            ipv6_only: false,
            buffer_size: None,
            node: None,
            links: LinkRegistry::new(),
            readiness: Readiness::new(),
        }
    }

    /// Listen on `addr` (`"127.0.0.1:4433"`, `"[::]:0"`, a `SocketAddr`,
    /// `"localhost:4433"`). Repeat for several addresses.
    pub fn listen<A: ToSocketAddrs + fmt::Display>(mut self, addr: A) -> Self {
        let text = addr.to_string();
        let addrs = addr.to_socket_addrs().map(Iterator::collect);
        self.listens.push(Listen::Addr { text, addrs });
        self
    }

    /// Also accept on an already bound and listening tokio listener.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listens.push(Listen::Tokio(listener));
        self
    }

    /// Also accept on an already bound and listening std listener (Python's
    /// `sock`); it is switched to non-blocking mode.
    pub fn std_listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listens.push(Listen::Std(listener));
        self
    }

    /// Listen backlog for the sockets this builder creates.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// `SO_REUSEADDR` for the sockets this builder creates (default on;
    /// ignored on Windows).
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = on;
        self
    }

    /// `SO_REUSEPORT` for the sockets this builder creates (default off;
    /// Unix only, ignored elsewhere): several processes bind the same
    /// address and the kernel spreads new connections over them
    /// (`docs/deployment.md`).
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// `IPV6_V6ONLY` for IPv6 sockets this builder creates (default off:
    /// dual-stack).
    pub fn ipv6_only(mut self, on: bool) -> Self {
        self.ipv6_only = on;
        self
    }

    /// Socket receive and send buffer sizes (Python's `buf_size`).
    pub fn buffer_size(mut self, bytes: usize) -> Self {
        self.buffer_size = Some(bytes);
        self
    }

    /// Large buffers for local links: [`INTERNAL_BUFFER_SIZE`] (Python's
    /// `internal=True`). A later [`buffer_size`](Self::buffer_size) wins.
    pub fn internal(self) -> Self {
        self.buffer_size(INTERNAL_BUFFER_SIZE)
    }

    /// Accept only with permits from `node`'s controller
    /// ([`Admission`](super::Admission), `docs/protocol/vop-service.md` §5.7).
    pub fn admission(mut self, node: AdmissionNode) -> Self {
        self.node = Some(node);
        self
    }

    /// Report health to `readiness` (default: a new handle, available as
    /// [`Server::readiness`]). Pass one when the health endpoint must exist
    /// before the server, as `versile serve` does: it answers 503 until the
    /// accept loop runs.
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// Call `hook` for every link that joins the server's registry.
    pub fn on_link_added(self, hook: impl Fn(&LinkInfo) + Send + Sync + 'static) -> Self {
        self.links.on_link_added(hook);
        self
    }

    /// Call `hook` for every link that leaves the server's registry.
    pub fn on_link_closed(self, hook: impl Fn(&LinkInfo) + Send + Sync + 'static) -> Self {
        self.links.on_link_closed(hook);
        self
    }

    /// Bind everything and start accepting; each connection goes through
    /// `service`. Nothing is left listening if any address fails.
    pub fn serve<S>(mut self, service: S) -> Result<Server, ServerError>
    where
        S: Service<Connection> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        S::Response: Send + 'static,
    {
        if self.listens.is_empty() {
            return Err(ServerError::NoListener);
        }
        let opts = self.socket_options();
        let mut listeners = Vec::with_capacity(self.listens.len());
        for listen in std::mem::take(&mut self.listens) {
            let l = match listen {
                Listen::Addr { text, addrs } => {
                    let addrs = addrs.map_err(|source| ServerError::Resolve {
                        addr: text.clone(),
                        source,
                    })?;
                    bind_first(&text, &addrs, &opts)?
                }
                Listen::Tokio(l) => {
                    size_buffers(&opts, SockRef::from(&l), l.local_addr().ok())?;
                    l
                }
                Listen::Std(l) => {
                    let addr = l.local_addr().ok();
                    let err = |source| ServerError::Listener { addr, source };
                    size_buffers(&opts, SockRef::from(&l), addr)?;
                    l.set_nonblocking(true).map_err(err)?;
                    TcpListener::from_std(l).map_err(err)?
                }
            };
            listeners.push(l);
        }
        let options = AcceptOptions {
            buffer_size: self.buffer_size,
            node: self.node,
            links: self.links,
            readiness: self.readiness,
        };
        Server::start(listeners, service, options)
            .map_err(|source| ServerError::Listener { addr: None, source })
    }

    fn socket_options(&self) -> SocketOptions {
        SocketOptions {
            backlog: self.backlog,
            reuse_address: self.reuse_address,
            reuse_port: self.reuse_port,
            ipv6_only: self.ipv6_only,
            buffer_size: self.buffer_size,
        }
    }
}

struct SocketOptions {
    backlog: u32,
    reuse_address: bool,
    reuse_port: bool,
    ipv6_only: bool,
    buffer_size: Option<usize>,
}

fn size_buffers(
    opts: &SocketOptions,
    sock: SockRef<'_>,
    addr: Option<SocketAddr>,
) -> Result<(), ServerError> {
    if let Some(n) = opts.buffer_size {
        set_buffers(&sock, n).map_err(|source| ServerError::Listener { addr, source })?;
    }
    Ok(())
}

fn set_buffers(sock: &Socket, n: usize) -> io::Result<()> {
    sock.set_recv_buffer_size(n)?;
    sock.set_send_buffer_size(n)
}

/// Bind the first address of `addrs` that works (as `TcpListener::bind`).
fn bind_first(
    text: &str,
    addrs: &[SocketAddr],
    opts: &SocketOptions,
) -> Result<TcpListener, ServerError> {
    let mut last = None;
    for &addr in addrs {
        match bind(addr, opts) {
            Ok(l) => return Ok(l),
            Err(source) => last = Some(ServerError::Bind { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| ServerError::Resolve {
        addr: text.to_owned(),
        source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    }))
}

fn bind(addr: SocketAddr, opts: &SocketOptions) -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        sock.set_only_v6(opts.ipv6_only)?;
    }
    #[cfg(not(windows))]
    sock.set_reuse_address(opts.reuse_address)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    if opts.reuse_port {
        sock.set_reuse_port(true)?;
    }
    if let Some(n) = opts.buffer_size {
        set_buffers(&sock, n)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(i32::try_from(opts.backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(sock.into())
}
