//! The service: admits or refuses in `call` (the address is not known in
//! `poll_ready`), and hands the guard to the future.

use std::task::{Context, Poll};

use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::PerIpLimitLayer;
use crate::request::ConnectionRequest;
use crate::BoxError;

/// Applies per-IP limits; built by [`PerIpLimitLayer`].
#[derive(Debug, Clone)]
pub struct PerIpLimit<S> {
    inner: S,
    limits: PerIpLimitLayer,
}

impl<S> PerIpLimit<S> {
    /// Wrap `inner` with the shared `limits`.
    pub fn new(inner: S, limits: PerIpLimitLayer) -> Self {
        PerIpLimit { inner, limits }
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

impl<S, R> Service<R> for PerIpLimit<S>
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
        let Some(peer) = req.peer_addr() else {
            return ResponseFuture::admitted(self.inner.call(req), None);
        };
        match self.limits.admit(peer.ip()) {
            Ok(guard) => ResponseFuture::admitted(self.inner.call(req), Some(guard)),
            Err(e) => ResponseFuture::rejected(e.into()),
        }
    }
}
