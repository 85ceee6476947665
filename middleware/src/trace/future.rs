//! The response future: polls the inner future inside the span and emits
//! the events.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tracing::Span;

use crate::signals::ConnectionSignals;
use crate::BoxError;

pin_project! {
    /// Future of [`super::Trace`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        signals: ConnectionSignals,
        started: Instant,
        established: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: Span, signals: ConnectionSignals) -> Self {
        ResponseFuture {
            inner,
            span,
            signals,
            started: Instant::now(),
            established: false,
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    T: fmt::Debug,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _enter = this.span.enter();
        let out = this.inner.poll(cx);
        if !*this.established {
            if let Some(at) = this.signals.established_at() {
                *this.established = true;
                let transport = this.signals.transport().unwrap_or("unknown");
                this.span.record("transport", transport);
                tracing::debug!(
                    transport,
                    handshake = ?at.saturating_duration_since(*this.started),
                    "established"
                );
            }
        }
        let Poll::Ready(out) = out else {
            return Poll::Pending;
        };
        let out = out.map_err(Into::into);
        let requested = this.signals.close_request();
        // The link's call rate over its life, on the span and its last event.
        let counters = this.signals.counters();
        let calls = counters.calls_received + counters.calls_sent;
        let secs = this.started.elapsed().as_secs_f64().max(1e-3);
        let calls_per_sec = (calls as f64 / secs * 100.0).round() / 100.0;
        this.span.record("calls", calls);
        this.span.record("calls_per_sec", calls_per_sec);
        match (&out, *this.established) {
            (Ok(response), _) => {
                tracing::debug!(
                    ?response,
                    close_requested = requested,
                    calls,
                    calls_per_sec,
                    "closed"
                )
            }
            (Err(error), true) => {
                tracing::info!(
                    %error,
                    close_requested = requested,
                    calls,
                    calls_per_sec,
                    "closed with error"
                )
            }
            (Err(error), false) => {
                if crate::metrics::rejection_reason(error.as_ref()).is_some() {
                    tracing::info!(%error, "refused");
                } else {
                    tracing::info!(%error, "handshake failed");
                }
            }
        }
        Poll::Ready(out)
    }
}
