//! The service: counts the connection in, hands per-connection state to
//! the future.

use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use crate::request::ConnectionRequest;
use crate::signals::ConnectionSignals;
use crate::BoxError;

/// Records connection metrics; built by [`MetricsLayer`](super::MetricsLayer).
#[derive(Debug, Clone)]
pub struct Metrics<S> {
    inner: S,
}

impl<S> Metrics<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Metrics { inner }
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

impl<S, R> Service<R> for Metrics<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    R: ConnectionRequest,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: R) -> Self::Future {
        let signals = ConnectionSignals::get_or_insert(&mut req);
        ResponseFuture::new(self.inner.call(req), signals)
    }
}
