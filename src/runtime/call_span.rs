//! A `tracing` span per incoming call (target `versile::call`, level
//! DEBUG), opened where the link task starts the call and closed when the
//! answer is handed back. Its parent is the span current in the link task —
//! the `connection` span of the trace layer on a server — so a call's
//! events carry the connection's fields too.
//!
//! Fields: `link` (the link id), `peer` (address), `method` (the declared
//! method's metric label, recorded by the object, `other` for undeclared
//! names; empty for objects not built with `ObjectBuilder`), `outcome`
//! ([`CallOutcome`]) and `duration_us`. At the end one DEBUG event
//! `answered` is emitted inside the span.
//!
//! With the level off (the default filter is `warn`) a global level check
//! skips everything: no span, no clock, no instrumentation of the task.

use std::time::Instant;

use tracing::field::{display, Empty};
use tracing::{Level, Span};

use crate::object::call_metrics::CallOutcome;
use crate::object::CallContext;

/// The span of one running call; records `cancelled` if dropped before
/// [`finish`](Self::finish) (the link was closed under it). Off, it is a
/// null pointer: the call's task stays small and nothing is instrumented.
pub(crate) struct CallSpan(Option<Box<Active>>);

struct Active {
    span: Span,
    started: Instant,
}

impl CallSpan {
    /// Open the span of a call on link `link` (child of the current span).
    pub(crate) fn start(link: u64, ctx: &CallContext) -> CallSpan {
        // A global level check first: with tracing's `log` feature on, even
        // a disabled `span!` does work per call.
        if !tracing::level_enabled!(Level::DEBUG) {
            return CallSpan(None);
        }
        let span = tracing::span!(
            target: "versile::call",
            Level::DEBUG,
            "call",
            link,
            peer = Empty,
            method = Empty,
            outcome = Empty,
            duration_us = Empty,
        );
        if span.is_disabled() {
            return CallSpan(None);
        }
        if let Some(p) = ctx.peer_addr() {
            span.record("peer", display(p));
        }
        CallSpan(Some(Box::new(Active {
            span,
            started: Instant::now(),
        })))
    }

    /// The span to run the call in, if on.
    pub(crate) fn span(&self) -> Option<Span> {
        self.0.as_ref().map(|a| a.span.clone())
    }

    /// Record the outcome and duration, and emit `answered`.
    pub(crate) fn finish(&mut self, outcome: CallOutcome) {
        let Some(a) = self.0.take() else {
            return;
        };
        let us = u64::try_from(a.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        a.span.record("outcome", outcome.as_str());
        a.span.record("duration_us", us);
        a.span.in_scope(|| {
            tracing::debug!(target: "versile::call", outcome = outcome.as_str(), duration_us = us, "answered");
        });
    }
}

impl Drop for CallSpan {
    fn drop(&mut self) {
        self.finish(CallOutcome::Cancelled);
    }
}

/// Record the call's `method` label on the current call span (called by
/// the object that knows which declared method runs). Free when the call
/// spans are off: a global level check.
pub(crate) fn record_method(label: &'static str) {
    if tracing::level_enabled!(Level::DEBUG) {
        Span::current().record("method", label);
    }
}
