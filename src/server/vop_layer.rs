//! [`VopLayer`]: the VOP transport negotiation as a tower layer
//! (`docs/protocol/vop-service.md` §2).
//!
//! Reads the client's hello line, picks VTS > TLS > PLAIN among offered ∩
//! enabled, writes the answer, hands the stream (with any bytes read past the
//! line) to the chosen [`ServerTransport`], and calls the inner service with
//! the wrapped connection. Any error closes the connection without a word
//! (§2.6). [`SingleTransportLayer`] is the same layer preset to one
//! transport (`VtsLayer`, `TlsLayer`).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use tokio::io::AsyncWriteExt;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::transport::{read_hello, Connection, NegotiatedTransport, Plain, ServerTransport};
use crate::vop::{answer_line, ServerHandshake, Transport, TransportSet};

/// A configuration that could not be used to build a service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// Nothing to negotiate: every connection would fail (`docs/protocol/vop-service.md` §5.3).
    #[error("no transport is enabled; enable VTS or TLS with a key, or allow PLAIN (insecure)")]
    NoTransport,
}

/// Why the VOP negotiation of a connection failed (logged by the server;
/// the peer hears nothing, `docs/protocol/vop-service.md` §2.6). Errors of the hello
/// itself are [`VopError`](crate::vop::VopError)s, of the socket
/// [`std::io::Error`]s.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The client's hello line was not complete within the layer's line
    /// timeout ([`VopLayerBuilder::line_timeout`]).
    #[error("VOP hello not received within {0:?}")]
    HelloTimeout(Duration),
    /// The chosen transport is enabled but has no implementation (cannot
    /// happen with a layer from [`VopLayerBuilder`]).
    #[error("negotiated transport {0} has no implementation")]
    NoImplementation(Transport),
}

/// Negotiates the transport of each connection (`docs/protocol/vop-service.md` §2).
#[derive(Clone)]
pub struct VopLayer {
    transports: Arc<BTreeMap<Transport, Arc<dyn ServerTransport>>>,
    enabled: TransportSet,
    line_timeout: Duration,
}

impl VopLayer {
    /// A layer with the given transports. PLAIN is enabled only through
    /// [`allow_insecure`](VopLayerBuilder::allow_insecure), as in Python.
    pub fn builder() -> VopLayerBuilder {
        VopLayerBuilder {
            transports: BTreeMap::new(),
            line_timeout: DEFAULT_LINE_TIMEOUT,
        }
    }

    /// PLAIN only: Python's `VOPInsecureServiceConfig`.
    pub fn insecure() -> Self {
        Self::builder()
            .allow_insecure()
            .build()
            .expect("PLAIN is enabled")
    }

    /// A layer that accepts `transport` only.
    pub fn only(transport: impl ServerTransport) -> Self {
        Self::builder()
            .transport(transport)
            .build()
            // One transport is enabled, so building cannot fail.
            .unwrap_or_else(|_| unreachable!("one transport is enabled"))
    }

    /// The transports this layer accepts.
    pub fn enabled(&self) -> TransportSet {
        self.enabled
    }
}

/// Builds a [`VopLayer`].
pub struct VopLayerBuilder {
    transports: BTreeMap<Transport, Arc<dyn ServerTransport>>,
    line_timeout: Duration,
}

/// How long a client may take to send its hello line (Python waits
/// forever, `docs/protocol/vop-service.md` §2.4; §2.9 rule 5 asks for a limit).
pub const DEFAULT_LINE_TIMEOUT: Duration = Duration::from_secs(10);

impl VopLayerBuilder {
    /// Accept PLAIN (no encryption, no authentication of the peer).
    pub fn allow_insecure(mut self) -> Self {
        self.transports.insert(Transport::Plain, Arc::new(Plain));
        self
    }

    /// Accept a secure transport.
    pub fn transport(mut self, t: impl ServerTransport) -> Self {
        self.transports.insert(t.transport(), Arc::new(t));
        self
    }

    /// Limit the time until the client's hello line is complete.
    pub fn line_timeout(mut self, timeout: Duration) -> Self {
        self.line_timeout = timeout;
        self
    }

    /// Finish; fails if nothing is enabled.
    pub fn build(self) -> Result<VopLayer, ConfigError> {
        let enabled: TransportSet = self.transports.keys().copied().collect();
        if enabled.is_empty() {
            return Err(ConfigError::NoTransport);
        }
        Ok(VopLayer {
            transports: Arc::new(self.transports),
            enabled,
            line_timeout: self.line_timeout,
        })
    }
}

impl<S> Layer<S> for VopLayer {
    type Service = VopService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        VopService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`VopLayer`].
#[derive(Clone)]
pub struct VopService<S> {
    inner: S,
    layer: VopLayer,
}

impl<S> Service<Connection> for VopService<S>
where
    S: Service<Connection> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Send,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner service is only needed after the handshake; its
        // readiness is awaited then.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, conn: Connection) -> Self::Future {
        let inner = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, inner);
        let layer = self.layer.clone();
        // The handshake (boxed), then the inner service's future: `and_then`
        // holds one at a time, where one `async` block would keep the
        // connection, the inner service and the handshake's state for the
        // link's lifetime (idle links, issue #8).
        let handshake = async move {
            let (mut conn, chosen) =
                tokio::time::timeout(layer.line_timeout, negotiate(conn, layer.enabled))
                    .await
                    .map_err(|_| NegotiationError::HelloTimeout(layer.line_timeout))??;
            conn.info.protocol = (chosen != Transport::Plain).then_some(chosen);
            conn.info.extensions.insert(NegotiatedTransport(chosen));
            let transport = layer
                .transports
                .get(&chosen)
                .ok_or(NegotiationError::NoImplementation(chosen))?
                .clone();
            transport.accept(conn).await
        }
        .boxed();
        Box::pin(handshake.and_then(move |conn| {
            inner
                .ready_oneshot()
                .and_then(move |mut svc| svc.call(conn))
                .map_err(Into::into)
        }))
    }
}

/// The server's half of the VOP handshake on `conn.io`; bytes read past the
/// client's line are put back in front of the stream (§2.9 rule 4).
async fn negotiate(
    conn: Connection,
    enabled: TransportSet,
) -> Result<(Connection, Transport), BoxError> {
    let Connection { io, info } = conn;
    let mut hs = ServerHandshake::new(enabled)?;
    let (chosen, mut io) = read_hello::<BoxError>(&mut hs, io).await?;
    io.write_all(answer_line(chosen)).await?;
    Ok((Connection { io, info }, chosen))
}

/// A [`VopLayer`] that accepts one transport only, typed by it:
/// [`VtsLayer`](crate::VtsLayer) and `TlsLayer` are this layer for
/// VTS and TLS, with their own `new` constructors.
pub struct SingleTransportLayer<T> {
    inner: VopLayer,
    transport: PhantomData<fn() -> T>,
}

impl<T: ServerTransport> SingleTransportLayer<T> {
    /// A layer accepting `transport` only.
    pub fn with_transport(transport: T) -> Self {
        SingleTransportLayer {
            inner: VopLayer::only(transport),
            transport: PhantomData,
        }
    }
}

impl<T> SingleTransportLayer<T> {
    /// The underlying negotiation layer.
    pub fn vop_layer(&self) -> &VopLayer {
        &self.inner
    }
}

impl<T> Clone for SingleTransportLayer<T> {
    fn clone(&self) -> Self {
        SingleTransportLayer {
            inner: self.inner.clone(),
            transport: PhantomData,
        }
    }
}

impl<T> From<SingleTransportLayer<T>> for VopLayer {
    fn from(l: SingleTransportLayer<T>) -> VopLayer {
        l.inner
    }
}

impl<T, S> Layer<S> for SingleTransportLayer<T> {
    type Service = VopService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
