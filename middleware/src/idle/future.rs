//! The response future: a timer re-armed from the activity stamps.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::layer::{IdleTimeout, IdleTimeoutLayer};
use crate::signals::ConnectionSignals;
use crate::BoxError;

pin_project! {
    /// Future of [`super::IdleTimeoutService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        draining: bool,
        signals: ConnectionSignals,
        config: IdleTimeoutLayer,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, signals: ConnectionSignals, config: IdleTimeoutLayer) -> Self {
        ResponseFuture {
            inner,
            sleep: tokio::time::sleep(config.timeout),
            draining: false,
            signals,
            config,
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
        let mut this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out.map_err(Into::into));
        }
        // The timer only fires at the earliest moment the connection could
        // be idle; activity in between needs no wake-up, just a re-arm.
        while this.sleep.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let timeout = this.config.timeout;
            if *this.draining {
                tracing::debug!(?timeout, "idle connection did not close in time, dropping");
                return Poll::Ready(Err(IdleTimeout { idle_for: timeout }.into()));
            }
            let s = &*this.signals;
            let next = match s.established_at() {
                None => now + timeout,
                Some(_) if s.counters().calls_in_flight > 0 => now + timeout,
                Some(est) => {
                    let mut last = s.last_call_activity().max(est);
                    if this.config.count_traffic {
                        last = last.max(s.last_traffic());
                    }
                    let due = last + timeout;
                    if due > now {
                        due
                    } else {
                        tracing::debug!(?timeout, "connection idle, asking it to close");
                        s.request_close("idle");
                        *this.draining = true;
                        now + this.config.grace
                    }
                }
            };
            this.sleep.as_mut().reset(next);
        }
        Poll::Pending
    }
}
