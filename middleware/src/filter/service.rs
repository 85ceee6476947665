//! The service: checks the peer in `call`, before the inner service sees
//! the connection.

use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::HostFilterLayer;
use crate::request::ConnectionRequest;
use crate::BoxError;

/// Refuses connections from filtered hosts; built by [`HostFilterLayer`].
#[derive(Debug, Clone)]
pub struct HostFilter<S> {
    inner: S,
    rules: HostFilterLayer,
}

impl<S> HostFilter<S> {
    /// Wrap `inner` with `rules`.
    pub fn new(inner: S, rules: HostFilterLayer) -> Self {
        HostFilter { inner, rules }
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

impl<S, R> Service<R> for HostFilter<S>
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

    fn call(&mut self, req: R) -> Self::Future {
        match self.rules.check(req.peer_addr().map(|a| a.ip())) {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            // Dropping `req` closes the stream unread.
            Err(e) => ResponseFuture::rejected(e.into()),
        }
    }
}
