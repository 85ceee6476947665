//! The service: gives the request its signals and starts the clock.

use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::future::ResponseFuture;
use crate::request::ConnectionRequest;
use crate::signals::ConnectionSignals;
use crate::BoxError;

/// Drops connections not established in time; built by
/// [`HandshakeDeadlineLayer`](super::HandshakeDeadlineLayer).
#[derive(Debug, Clone)]
pub struct HandshakeDeadline<S> {
    inner: S,
    timeout: Duration,
}

impl<S> HandshakeDeadline<S> {
    /// Wrap `inner` with a deadline of `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        HandshakeDeadline { inner, timeout }
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

impl<S, R> Service<R> for HandshakeDeadline<S>
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
        ResponseFuture::new(self.inner.call(req), signals, self.timeout)
    }
}
