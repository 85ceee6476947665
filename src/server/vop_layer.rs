//! [`VopLayer`]: the VOP transport negotiation as a tower layer
//! (`docs/protocol/vop-service.md` §2).
//!
//! Reads the client's hello line, picks VTS > TLS > PLAIN among offered ∩
//! enabled, writes the answer, hands the stream (with any bytes read past the
//! line) to the chosen [`ServerTransport`], and calls the inner service with
//! the wrapped connection. Any error closes the connection without a word
//! (§2.6).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{BoxError, Layer, Service, ServiceExt};

use super::connection::{Connection, NegotiatedTransport};
use crate::runtime::Rewind;
use crate::vop::{answer_line, ServerHandshake, Transport, TransportSet};

/// The server side of one byte transport (`docs/protocol/vop-service.md` §1 layer 2).
///
/// PLAIN is built in; VTS and TLS plug in through this trait.
pub trait ServerTransport: Send + Sync + 'static {
    /// Which VOP token this transport answers to.
    fn transport(&self) -> Transport;
    /// Run the transport's server handshake on `conn.io` and return the
    /// connection with the plaintext stream and what was learned.
    fn accept(&self, conn: Connection) -> BoxFuture<'static, Result<Connection, BoxError>>;
}

/// PLAIN: the stream as it is (`docs/protocol/vop-service.md` §2.7).
struct Plain;

impl ServerTransport for Plain {
    fn transport(&self) -> Transport {
        Transport::Plain
    }
    fn accept(&self, conn: Connection) -> BoxFuture<'static, Result<Connection, BoxError>> {
        Box::pin(async move { Ok(conn) })
    }
}

/// A configuration that could not be used to build a service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// Nothing to negotiate: every connection would fail (`docs/protocol/vop-service.md` §5.3).
    #[error("no transport is enabled; enable VTS or TLS with a key, or allow PLAIN (insecure)")]
    NoTransport,
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
                    .map_err(|_| "VOP hello not received in time")??;
            conn.info.protocol = (chosen != Transport::Plain).then_some(chosen);
            conn.info.extensions.insert(NegotiatedTransport(chosen));
            let transport = layer
                .transports
                .get(&chosen)
                .ok_or("negotiated transport has no implementation")?
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
    let Connection { mut io, info } = conn;
    let mut hs = ServerHandshake::new(enabled)?;
    let mut buf = BytesMut::with_capacity(128);
    let chosen = loop {
        if let Some(t) = hs.feed(&mut buf)? {
            break t;
        }
        if io.read_buf(&mut buf).await? == 0 {
            break hs.feed_eof(&mut buf)?;
        }
    };
    io.write_all(answer_line(chosen)).await?;
    if !buf.is_empty() {
        io = Box::pin(Rewind::new(buf.freeze(), io));
    }
    Ok((Connection { io, info }, chosen))
}
