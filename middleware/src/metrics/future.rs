//! The response future: forwards counter deltas on every poll, records the
//! handshake once, and the outcome at the end. Gauges are released by a
//! guard, so a dropped connection (server forced shutdown) is counted out
//! too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use metrics::{counter, gauge, histogram, Counter, Gauge};
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::layer::rejection_reason;
use super::names;
use crate::signals::{ConnectionSignals, LinkCounters};
use crate::BoxError;

/// Per-connection handles and state (not pinned).
#[derive(Debug)]
struct State {
    signals: ConnectionSignals,
    started: Instant,
    seen: LinkCounters,
    active: Gauge,
    links: Gauge,
    established: bool,
    calls_received: Counter,
    calls_sent: Counter,
    calls_in_flight: Gauge,
    call_errors: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
}

impl State {
    fn sync(&mut self) {
        if !self.established {
            if let Some(at) = self.signals.established_at() {
                self.established = true;
                self.links.increment(1.0);
                let transport = self.signals.transport().unwrap_or("unknown");
                histogram!(names::HANDSHAKE_SECONDS, "transport" => transport)
                    .record(at.saturating_duration_since(self.started).as_secs_f64());
            }
        }
        let now = self.signals.counters();
        let old = std::mem::replace(&mut self.seen, now);
        if now.calls_in_flight != old.calls_in_flight {
            // Exact in f64 far beyond any real call count.
            self.calls_in_flight
                .increment(now.calls_in_flight as f64 - old.calls_in_flight as f64);
        }
        let delta = |new: u64, old: u64| new.saturating_sub(old);
        for (c, d) in [
            (
                &self.calls_received,
                delta(now.calls_received, old.calls_received),
            ),
            (&self.calls_sent, delta(now.calls_sent, old.calls_sent)),
            (&self.call_errors, delta(now.call_errors, old.call_errors)),
            (&self.bytes_in, delta(now.bytes_in, old.bytes_in)),
            (&self.bytes_out, delta(now.bytes_out, old.bytes_out)),
        ] {
            if d > 0 {
                c.increment(d);
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.active.decrement(1.0);
        // This link's calls leave the gauge with it.
        self.calls_in_flight
            .decrement(self.seen.calls_in_flight as f64);
        if self.established {
            self.links.decrement(1.0);
        }
    }
}

pin_project! {
    /// Future of [`super::Metrics`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        state: State,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, signals: ConnectionSignals) -> Self {
        counter!(names::ACCEPTED).increment(1);
        let active = gauge!(names::ACTIVE);
        active.increment(1.0);
        let seen = signals.counters();
        ResponseFuture {
            inner,
            state: State {
                signals,
                started: Instant::now(),
                seen,
                active,
                links: gauge!(names::LINKS_ACTIVE),
                established: false,
                calls_received: counter!(names::CALLS_RECEIVED),
                calls_sent: counter!(names::CALLS_SENT),
                calls_in_flight: gauge!(names::CALLS_IN_FLIGHT),
                call_errors: counter!(names::CALL_ERRORS),
                bytes_in: counter!(names::BYTES_RECEIVED),
                bytes_out: counter!(names::BYTES_SENT),
            },
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
        let out = this.inner.poll(cx);
        this.state.sync();
        let Poll::Ready(out) = out else {
            return Poll::Pending;
        };
        let out = out.map_err(Into::into);
        if let Err(e) = &out {
            match rejection_reason(e.as_ref()) {
                Some(reason) => counter!(names::REJECTED, "reason" => reason).increment(1),
                None => counter!(names::FAILED).increment(1),
            }
        }
        Poll::Ready(out)
    }
}
