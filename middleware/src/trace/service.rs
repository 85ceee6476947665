//! The service: opens the span.

use std::fmt;
use std::task::{Context, Poll};

use tower_service::Service;
use tracing::field::{display, Empty};

use super::future::ResponseFuture;
use crate::request::ConnectionRequest;
use crate::signals::ConnectionSignals;
use crate::BoxError;

/// Traces connections; built by [`TraceLayer`](super::TraceLayer).
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

impl<S> Trace<S> {
    /// Wrap `inner`.
    pub fn new(inner: S) -> Self {
        Trace { inner }
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

impl<S, R> Service<R> for Trace<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    S::Response: fmt::Debug,
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
        let span = tracing::info_span!(
            "connection",
            peer = Empty,
            local = Empty,
            transport = Empty,
            calls = Empty,
            calls_per_sec = Empty,
        );
        if let Some(p) = req.peer_addr() {
            span.record("peer", display(p));
        }
        if let Some(l) = req.local_addr() {
            span.record("local", display(l));
        }
        let fut = {
            let _enter = span.enter();
            self.inner.call(req)
        };
        ResponseFuture::new(fut, span, signals)
    }
}
