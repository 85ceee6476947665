//! The response future: the inner future plus the permit it keeps alive.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;

pin_project! {
    /// Future of [`super::ConnectionLimit`]: resolves like the inner future;
    /// the connection permit is released when this future is dropped, which
    /// for a connection service is when the connection is over.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        _permit: OwnedSemaphorePermit,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, permit: OwnedSemaphorePermit) -> Self {
        ResponseFuture {
            inner,
            _permit: permit,
        }
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}
