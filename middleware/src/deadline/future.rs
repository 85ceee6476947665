//! The response future: races the inner future against the deadline until
//! the connection is established.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::layer::HandshakeTimeout;
use crate::signals::ConnectionSignals;
use crate::BoxError;

pin_project! {
    /// Future of [`super::HandshakeDeadline`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        armed: bool,
        signals: ConnectionSignals,
        timeout: Duration,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, signals: ConnectionSignals, timeout: Duration) -> Self {
        ResponseFuture {
            inner,
            sleep: tokio::time::sleep(timeout),
            armed: true,
            signals,
            timeout,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out.map_err(Into::into));
        }
        if *this.armed {
            // Established during the poll above (or earlier): the deadline
            // no longer applies; the timer is simply never polled again.
            if this.signals.is_established() {
                *this.armed = false;
            } else if this.sleep.poll(cx).is_ready() {
                *this.armed = false;
                tracing::debug!(timeout = ?this.timeout, "handshake deadline passed");
                return Poll::Ready(Err(HandshakeTimeout {
                    after: *this.timeout,
                }
                .into()));
            }
        }
        Poll::Pending
    }
}
