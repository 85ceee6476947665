//! Per-method call metrics of [`ObjectBuilder`](super::ObjectBuilder)
//! objects, with labels a peer cannot multiply.
//!
//! A peer chooses the method names it sends, so a label may only come from
//! the names an object *declares*: when a method is published, its name is
//! looked up in a process-wide table of label values ([`MethodMetrics`],
//! created once per distinct name and kept for the life of the process).
//! Calls of names the object does not declare, meta calls and malformed
//! calls count under the one label [`OTHER_LABEL`]; once the table holds
//! [`method_label_cap`] names, newly declared methods count there too. So
//! the `method` label has at most cap + 1 values, whatever peers send or how
//! many objects are built. (A method declared with the name `other` shares that
//! label.)
//!
//! Per call: one atomic load to find the registered handles, an `Instant`,
//! a gauge up and down, one counter, two atomic additions for the duration;
//! no allocation and no lock. Counters and gauges go through the `metrics`
//! facade; their handles are registered with the global recorder at a
//! method's first call, so install the recorder
//! ([`install_prometheus`](crate::ops::install_prometheus)) before serving.
//! The duration histogram is aggregated here (fixed memory, whatever the
//! call rate) and appended to a Prometheus page by [`write_prometheus`]
//! ([`MetricsEndpoint`](crate::ops::MetricsEndpoint) does it).
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `versile_method_calls_total` | counter | `method`, `outcome` | calls answered (or abandoned), by outcome |
//! | `versile_method_call_duration_seconds` | histogram ([`METHOD_CALL_BUCKETS`]) | `method` | call start → answer |
//! | `versile_method_calls_in_flight` | gauge | `method` | calls running now |
//!
//! `outcome` is one of [`CallOutcome::as_str`]: `result`, `exception`,
//! `call_error`, `cancelled`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use metrics::{counter, gauge, Counter, Gauge};
use pin_project_lite::pin_project;

use super::call_durations::DurationHistogram;
pub use super::call_durations::METHOD_CALL_BUCKETS;
use super::CallError;
use crate::value::Value;

/// Counter, labels `method`, `outcome`: calls that ended.
pub const METHOD_CALLS: &str = "versile_method_calls_total";
/// Histogram, label `method`: seconds from call start to answer.
pub const METHOD_CALL_SECONDS: &str = "versile_method_call_duration_seconds";
/// Gauge, label `method`: calls running.
pub const METHOD_CALLS_IN_FLIGHT: &str = "versile_method_calls_in_flight";

/// The `method` label of every call that has no label of its own.
pub const OTHER_LABEL: &str = "other";

/// Default cap on distinct `method` label values (besides `other`).
///
/// Each value makes about 22 Prometheus series (4 outcomes, the histogram's
/// buckets, sum and count, the gauge), so 256 methods stay under ~6k series
/// — comfortable for one Prometheus — while being far above what a service
/// declares by hand. Raise it with [`set_method_label_cap`].
pub const DEFAULT_METHOD_LABEL_CAP: usize = 256;

static CAP: AtomicUsize = AtomicUsize::new(DEFAULT_METHOD_LABEL_CAP);
static TABLE: OnceLock<Mutex<HashMap<String, &'static MethodMetrics>>> = OnceLock::new();
static OTHER: MethodMetrics = MethodMetrics {
    label: OTHER_LABEL,
    handles: OnceLock::new(),
    durations: DurationHistogram::new(),
};

/// Whether the cap has been reported in the log (once per process).
static CAP_REPORTED: AtomicBool = AtomicBool::new(false);

/// Set the cap on distinct declared `method` label values, process-wide
/// (default [`DEFAULT_METHOD_LABEL_CAP`]). Names already labelled keep
/// their label; methods published after the cap is reached count as
/// [`OTHER_LABEL`].
pub fn set_method_label_cap(cap: usize) {
    CAP.store(cap, Ordering::Relaxed);
}

/// The current cap (see [`set_method_label_cap`]).
pub fn method_label_cap() -> usize {
    CAP.load(Ordering::Relaxed)
}

/// Append the `versile_method_call_duration_seconds` histogram of every
/// method label that has seen a call, in the Prometheus text format, to
/// `page` (a page rendered by the Prometheus recorder: `/metrics` of
/// [`MetricsEndpoint`](crate::ops::MetricsEndpoint) does this; an
/// embedder serving its own page calls it after `render()`).
pub fn write_prometheus(page: &mut String) {
    let start = page.len();
    let mut write = |m: &MethodMetrics| m.durations.write(METHOD_CALL_SECONDS, m.label, page);
    write(&OTHER);
    if let Some(table) = TABLE.get() {
        let table = table.lock().unwrap_or_else(|e| e.into_inner());
        for m in table.values() {
            write(m);
        }
    }
    if page.len() > start {
        let series = page.split_off(start);
        page.push_str(&format!(
            "# HELP {METHOD_CALL_SECONDS} Seconds from call start to answer, per declared method.\n\
             # TYPE {METHOD_CALL_SECONDS} histogram\n"
        ));
        page.push_str(&series);
    }
}

/// How a served call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Answered with CALL_RESULT.
    Result,
    /// Answered with CALL_EXCEPTION.
    Exception,
    /// Answered with CALL_ERROR (unknown method, bad arguments, failure,
    /// panic).
    CallError,
    /// Abandoned before an answer: the link closed or was forced down.
    Cancelled,
}

impl CallOutcome {
    /// The outcome of a method's return value.
    pub fn of(r: &Result<Value, CallError>) -> CallOutcome {
        match r {
            Ok(_) => CallOutcome::Result,
            Err(CallError::Exception(_)) => CallOutcome::Exception,
            Err(_) => CallOutcome::CallError,
        }
    }

    /// The `outcome` label: `result`, `exception`, `call_error`,
    /// `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Result => "result",
            CallOutcome::Exception => "exception",
            CallOutcome::CallError => "call_error",
            CallOutcome::Cancelled => "cancelled",
        }
    }

    const ALL: [CallOutcome; 4] = [
        CallOutcome::Result,
        CallOutcome::Exception,
        CallOutcome::CallError,
        CallOutcome::Cancelled,
    ];
}

/// One `method` label value and its metric handles.
#[derive(Debug)]
pub struct MethodMetrics {
    label: &'static str,
    handles: OnceLock<Handles>,
    durations: DurationHistogram,
}

#[derive(Debug)]
struct Handles {
    /// Indexed by `CallOutcome as usize`.
    calls: [Counter; 4],
    in_flight: Gauge,
}

impl MethodMetrics {
    /// The metrics of the declared method `name`: its own label while the
    /// table has room, else [`OTHER_LABEL`].
    pub fn declared(name: &str) -> &'static MethodMetrics {
        if name == OTHER_LABEL {
            return &OTHER;
        }
        let table = TABLE.get_or_init(Default::default);
        let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = table.get(name) {
            return m;
        }
        if table.len() >= method_label_cap() {
            // Runs per object built (a gateway per connection), not per
            // call: counted each time, logged once per process.
            crate::limits::limit_exceeded("method_labels");
            if !CAP_REPORTED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    method = name,
                    cap = method_label_cap(),
                    "method label cap reached: methods declared from now on count as `other`"
                );
            }
            return &OTHER;
        }
        // Bounded by the cap: at most `cap` of these live, for good.
        let label: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let m: &'static MethodMetrics = Box::leak(Box::new(MethodMetrics {
            label,
            handles: OnceLock::new(),
            durations: DurationHistogram::new(),
        }));
        table.insert(name.to_owned(), m);
        m
    }

    /// The metrics of calls without a label of their own.
    pub fn other() -> &'static MethodMetrics {
        &OTHER
    }

    /// The `method` label value.
    pub fn label(&self) -> &'static str {
        self.label
    }

    fn handles(&self) -> &Handles {
        self.handles.get_or_init(|| {
            let method = self.label;
            Handles {
                calls: CallOutcome::ALL
                    .map(|o| counter!(METHOD_CALLS, "method" => method, "outcome" => o.as_str())),
                in_flight: gauge!(METHOD_CALLS_IN_FLIGHT, "method" => method),
            }
        })
    }

    /// Count a call that ended at once (refused before running).
    pub(crate) fn record_immediate(&'static self, r: &Result<Value, CallError>) {
        let h = self.handles();
        h.calls[CallOutcome::of(r) as usize].increment(1);
        self.durations.record(std::time::Duration::ZERO);
    }

    /// Watch `fut`, a running call of this method.
    pub(crate) fn observe<F>(&'static self, fut: F) -> Observed<F> {
        self.handles().in_flight.increment(1.0);
        Observed {
            inner: fut,
            guard: CallGuard {
                metrics: self,
                started: Instant::now(),
                finished: false,
            },
        }
    }
}

/// Ends a call's accounting exactly once: on its answer, or when dropped
/// unanswered.
struct CallGuard {
    metrics: &'static MethodMetrics,
    started: Instant,
    finished: bool,
}

impl CallGuard {
    fn finish(&mut self, outcome: CallOutcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let h = self.metrics.handles();
        h.in_flight.decrement(1.0);
        h.calls[outcome as usize].increment(1);
        self.metrics.durations.record(self.started.elapsed());
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.finish(CallOutcome::Cancelled);
    }
}

pin_project! {
    /// A call future with its method's accounting
    /// ([`MethodMetrics::observe`]).
    pub(crate) struct Observed<F> {
        #[pin]
        inner: F,
        guard: CallGuard,
    }
}

impl<F> Future for Observed<F>
where
    F: Future<Output = Result<Value, CallError>>,
{
    type Output = Result<Value, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        // A panic is caught further out (the link answers CALL_ERROR) and
        // this future dropped later, when no longer unwinding: count it here.
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx)));
        let out = match polled {
            Ok(Poll::Ready(out)) => out,
            Ok(Poll::Pending) => return Poll::Pending,
            Err(panic) => {
                this.guard.finish(CallOutcome::CallError);
                std::panic::resume_unwind(panic)
            }
        };
        this.guard.finish(CallOutcome::of(&out));
        Poll::Ready(out)
    }
}
