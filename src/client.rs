//! The client: connect to a VOP service, run the link, resolve `vop://`
//! VRIs (`docs/protocol/vop-service.md` §2.2, §2.5, §4.4).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use versile::client::{Client, ClientConfig};
//! use versile::VtsClientTransport;
//!
//! // VTS, accepting only the server key with this fingerprint
//! // (`versile serve` prints it). `ClientConfig::insecure()` is PLAIN.
//! let vts = VtsClientTransport::new(None).pin_server_key("SHA256:<hex>");
//! let client = Client::new(ClientConfig::default().transport(vts));
//! let vri: versile::vri::Vri = "vop://127.0.0.1:4433/math/adder/".parse()?;
//! let resolved = client.resolve(&vri).await?;
//! let adder = resolved.value.as_remote().expect("an object");
//! adder.call("add", (5,)).await?;
//! resolved.link.shutdown(versile::LinkShutdown::Graceful);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::object::{CallError, LocalObject, ObjectBuilder, RemoteObject};
use crate::runtime::{connect_link, LinkHandle, LinkOptions, LinkShutdown};
use crate::transport::{read_hello, BoxedIo, ConnectionInfo};
use crate::value::Value;
use crate::vec::{Entity, Tagged};
use crate::vol::LinkError;
use crate::vop::{ClientHandshake, Transport, TransportSet, VopError};
use crate::vri::{urlget_arg, Query, Vri};

// The transport seam's types, where they were before `transport` existed.
pub use crate::transport::{ClientTransport, TargetHost, TransportError};

/// Client settings (Python's `VOPUrlConfig`, `docs/protocol/vop-service.md` §4.6).
#[derive(Clone)]
pub struct ClientConfig {
    transports: BTreeMap<Transport, Arc<dyn ClientTransport>>,
    allow_insecure: bool,
    /// Link settings.
    pub link: LinkOptions,
    /// Limit for TCP connect + VOP + transport + VOL handshakes.
    pub connect_timeout: Duration,
    /// The gateway we offer to the server (default: an object without
    /// methods, as Python's default client gateway).
    pub gateway: Option<LocalObject>,
}

impl Default for ClientConfig {
    /// Offer VTS only, anonymous and accepting any server key, like
    /// Python's `VOPUrlConfig` (`docs/protocol/vts.md` §10 #2: pin the server key with
    /// [`VtsClientTransport::pin_server_key`](crate::VtsClientTransport::pin_server_key)
    /// and [`transport`](Self::transport) where it is known).
    fn default() -> Self {
        let transports = crate::transport::default_client_transports()
            .into_iter()
            .map(|t| (t.transport(), t))
            .collect();
        ClientConfig {
            transports,
            allow_insecure: false,
            link: LinkOptions::default(),
            connect_timeout: Duration::from_secs(30),
            gateway: None,
        }
    }
}

impl ClientConfig {
    /// Offer only PLAIN (Python's `VOPInsecureUrlConfig`).
    pub fn insecure() -> Self {
        ClientConfig {
            allow_insecure: true,
            ..Self::default()
        }
        .without_transports()
    }

    /// Offer no secure transport (add some with [`transport`](Self::transport)).
    pub fn without_transports(mut self) -> Self {
        self.transports.clear();
        self
    }

    /// Also offer PLAIN.
    pub fn allow_insecure(mut self, allow: bool) -> Self {
        self.allow_insecure = allow;
        self
    }

    /// Offer a secure transport.
    pub fn transport(mut self, t: impl ClientTransport) -> Self {
        self.transports.insert(t.transport(), Arc::new(t));
        self
    }

    /// Offer `gateway` to the server.
    pub fn gateway(mut self, gateway: LocalObject) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// The tokens the client hello will carry, in the order VTS, TLS, PLAIN.
    pub fn offered(&self) -> TransportSet {
        let mut set: TransportSet = self.transports.keys().copied().collect();
        if self.allow_insecure {
            set.insert(Transport::Plain);
        }
        set
    }
}

/// Why connecting or resolving failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing to offer, or the server chose a transport we have no
    /// implementation for.
    #[error("no transport enabled: offer VTS (ClientConfig::default(), VtsClientTransport) or TLS, or allow PLAIN (insecure)")]
    NoTransport,
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as given (`host:port`).
        addr: String,
        /// Why the connection failed.
        source: std::io::Error,
    },
    /// The server's VOP answer was malformed, named a transport we did not
    /// offer, or did not come (`docs/protocol/vop-service.md` §2.6).
    #[error("VOP handshake failed: {0}")]
    Vop(#[from] VopError),
    /// The socket failed during the VOP handshake.
    #[error("I/O error during the handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The chosen transport's handshake failed; match the
    /// [`TransportError`] for the reason (a VTS key refusal, a TLS pin
    /// mismatch, a timeout).
    #[error("transport handshake failed: {0}")]
    Transport(#[from] TransportError),
    /// A relative VRI (`/path/[query]`) did not parse.
    #[error("bad VRI: {0}")]
    Vri(#[from] crate::vri::VriError),
    /// The VEC/VOL handshake failed or the link broke.
    #[error("link failed: {0}")]
    Link(#[from] LinkError),
    /// Connecting took longer than
    /// [`ClientConfig::connect_timeout`] (TCP connect, VOP, transport and
    /// VOL handshakes together).
    #[error("timed out connecting")]
    Timeout,
    /// `urlget` on the gateway failed (`docs/protocol/vop-service.md` §4.4 step 4).
    #[error("VRI path did not resolve: {0}")]
    PathNotResolved(CallError),
    /// The query call raised or failed (§4.4 step 5).
    #[error(transparent)]
    Call(#[from] CallError),
}

/// A resolved VRI: the resource and the link it lives on.
#[derive(Debug)]
pub struct Resolved {
    /// The gateway, the object `urlget` returned, or the query call's result.
    pub value: Value,
    /// The link; shut it down when done (`docs/protocol/vop-service.md` §4.5).
    pub link: LinkHandle,
}

/// Connects to VOP services.
#[derive(Clone, Default)]
pub struct Client {
    config: ClientConfig,
}

impl Client {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> Self {
        Client { config }
    }

    /// Connect to `addr` (`host:port`) and return the link and the
    /// server's gateway.
    pub async fn connect(&self, addr: &str) -> Result<(LinkHandle, RemoteObject), ClientError> {
        tokio::time::timeout(self.config.connect_timeout, self.connect_inner(addr))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn connect_inner(&self, addr: &str) -> Result<(LinkHandle, RemoteObject), ClientError> {
        let offered = self.config.offered();
        if offered.is_empty() {
            return Err(ClientError::NoTransport);
        }
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        stream.set_nodelay(true)?;
        let mut info = ConnectionInfo {
            peer_addr: stream.peer_addr().ok(),
            local_addr: stream.local_addr().ok(),
            ..ConnectionInfo::default()
        };
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        info.extensions.insert(TargetHost(host.to_owned()));
        // VOP client handshake: send the hello, then nothing until the
        // whole answer is read (`docs/protocol/vop-service.md` §2.9 client rules 2–4).
        let mut hs = ClientHandshake::new(offered)?;
        let mut io: BoxedIo = Box::pin(stream);
        io.write_all(&hs.hello()).await?;
        let (chosen, mut io) = read_hello::<ClientError>(&mut hs, io).await?;
        if chosen != Transport::Plain {
            info.protocol = Some(chosen);
            let transport = self
                .config
                .transports
                .get(&chosen)
                .ok_or(ClientError::NoTransport)?
                .clone();
            (io, info) = transport.connect(io, info).await?;
        }
        let gateway = self
            .config
            .gateway
            .clone()
            .unwrap_or_else(|| ObjectBuilder::new(()).build());
        let link = connect_link(io, gateway, info, self.config.link.clone()).await?;
        Ok(link)
    }

    /// Resolve a VRI (`docs/protocol/vop-service.md` §4.4): connect, `urlget` the path on
    /// the gateway if it is not empty, then make the query call if any.
    pub async fn resolve(&self, vri: &Vri) -> Result<Resolved, ClientError> {
        let (link, gateway) = self.connect(&vri.authority()).await?;
        match resolve_on(&gateway, &vri.path, vri.query.as_ref()).await {
            Ok(value) => Ok(Resolved { value, link }),
            Err(e) => {
                link.shutdown(LinkShutdown::Graceful);
                Err(e)
            }
        }
    }
}

/// Resolve `"/path/[query]"` on an already connected gateway
/// (Python's `VUrl.relative`, `docs/protocol/vop-service.md` §4.4).
pub async fn resolve_relative(
    gateway: &RemoteObject,
    relative: &str,
) -> Result<Value, ClientError> {
    let (path, query) = crate::vri::resolve_relative(relative).map_err(ClientError::Vri)?;
    resolve_on(gateway, &path, query.as_ref()).await
}

async fn resolve_on(
    gateway: &RemoteObject,
    path: &[String],
    query: Option<&Query>,
) -> Result<Value, ClientError> {
    let resource: Value = match urlget_arg::<crate::object::Object>(path) {
        None => gateway.clone().into(),
        Some(arg) => gateway.call("urlget", (arg,)).await.map_err(|e| match e {
            CallError::Link(l) => ClientError::Link(l),
            other => ClientError::PathNotResolved(other),
        })?,
    };
    let Some(query) = query else {
        return Ok(resource);
    };
    let target = match &resource {
        Entity::Ref(crate::object::Object::Remote(r)) => r.clone(),
        _ => {
            return Err(ClientError::PathNotResolved(CallError::failed(
                "urlget did not return an object",
            )))
        }
    };
    Ok(call_query(&target, query, Vec::new()).await?)
}

/// Call a VRI's query method on the object its path resolved to: the
/// query's positional arguments, then `extra`, then the keyword arguments
/// as one trailing frozendict (`docs/protocol/vop-service.md` §4.4 step 5). `versile call
/// vop://HOST/echo x` passes its command-line arguments as `extra`.
pub async fn call_query(
    target: &RemoteObject,
    query: &Query,
    extra: Vec<Value>,
) -> Result<Value, CallError> {
    let mut args: Vec<Value> = query.positional_entities();
    args.extend(extra);
    if !query.kwargs.is_empty() {
        // Keyword arguments travel as one trailing frozendict (§4.4 step 5).
        let mut flat = Vec::with_capacity(query.kwargs.len() * 2);
        for (k, v) in &query.kwargs {
            flat.push(Value::from(k.as_str()));
            flat.push(v.to_entity());
        }
        args.push(Entity::Tagged(Box::new(Tagged {
            value: Entity::Tuple(flat),
            // VSE container.frozendict: tags 21, 1, 2 (`docs/protocol/vec.md` §6, §7).
            tags: vec![Entity::Int(21), Entity::Int(1), Entity::Int(2)],
        })));
    }
    target.call(&query.name, args).await
}
