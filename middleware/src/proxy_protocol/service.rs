//! The service: reads the header, fixes the addresses, calls the inner
//! service with the rest of the stream.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_service::Service;

use super::layer::ProxyProtocolLayer;
use super::parse::{read_header, ProxyHeaderError, ProxyInfo};
use crate::io::Rewind;
use crate::request::ConnectionRequest;
use crate::BoxError;

/// Reads a PROXY protocol header first; built by [`ProxyProtocolLayer`].
#[derive(Debug, Clone)]
pub struct ProxyProtocol<S> {
    inner: S,
    config: ProxyProtocolLayer,
}

impl<S> ProxyProtocol<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, config: ProxyProtocolLayer) -> Self {
        ProxyProtocol { inner, config }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R> Service<R> for ProxyProtocol<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    R: ConnectionRequest,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: R) -> Self::Future {
        // The ready service goes with this connection; the clone stays
        // (tower's usual hand-over, so readiness-held permits move along).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config;
        Box::pin(async move {
            let mut io = req.take_io();
            let read = read_header(&mut io, config.max_header_len);
            let (header, rest) = match tokio::time::timeout(config.read_timeout, read).await {
                Ok(r) => r?,
                Err(_) => return Err(ProxyHeaderError::Timeout(config.read_timeout).into()),
            };
            let proxy_addr = req.peer_addr();
            if let Some((source, destination)) = header.addresses {
                req.set_peer_addr(source);
                req.set_local_addr(destination);
            }
            tracing::trace!(?proxy_addr, ?header, "PROXY protocol header");
            req.insert_extension(ProxyInfo { proxy_addr, header });
            if rest.is_empty() {
                req.set_io(io);
            } else {
                req.set_io(Box::pin(Rewind::new(rest.freeze(), io)));
            }
            inner.call(req).await.map_err(Into::into)
        })
    }
}
