//! The service: gives the request its signals.

use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::IdleTimeoutLayer;
use crate::request::ConnectionRequest;
use crate::signals::ConnectionSignals;
use crate::BoxError;

/// Closes idle connections; built by [`IdleTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct IdleTimeoutService<S> {
    inner: S,
    config: IdleTimeoutLayer,
}

impl<S> IdleTimeoutService<S> {
    /// Wrap `inner`.
    pub fn new(inner: S, config: IdleTimeoutLayer) -> Self {
        IdleTimeoutService { inner, config }
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

impl<S, R> Service<R> for IdleTimeoutService<S>
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
        ResponseFuture::new(self.inner.call(req), signals, self.config)
    }
}
