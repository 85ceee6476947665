//! [`ConnectionSignals`]: what the terminal service tells the layers about
//! a connection while it runs.
//!
//! Some limits cover only part of a connection (the handshake deadline
//! stops at "link established", the idle timeout watches activity), so a
//! layer cannot just wrap the inner future (`docs/design.md`, "Some limits cover
//! only part of the connection"). Instead the first layer that needs them
//! puts one `ConnectionSignals` into the request's extensions
//! ([`ConnectionSignals::get_or_insert`]); the terminal service finds it
//! there and
//!
//! * calls [`mark_established`](ConnectionSignals::mark_established) when
//!   its protocol handshake is complete,
//! * calls [`report`](ConnectionSignals::report) with its running counters
//!   (bytes, calls, calls in flight) whenever they change,
//! * watches [`close_requested`](ConnectionSignals::close_requested) (or
//!   polls [`poll_close_requested`](ConnectionSignals::poll_close_requested))
//!   and closes the connection gracefully when a layer asks.
//!
//! Everything is a few atomics, two `OnceLock`s, one `Notify` and the
//! closing task's waker: reporting
//! costs no lock and no allocation, and an idle connection's signals stay
//! small (two `watch` channels were 0.7 KiB per connection, issue #8). A terminal service that ignores the signals
//! still works; the layers then see a connection that never establishes
//! and is never active.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::request::ConnectionRequest;

/// Running counters of a connection, as reported by the terminal service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Bytes read from the peer.
    pub bytes_in: u64,
    /// Bytes written to the peer.
    pub bytes_out: u64,
    /// Calls the peer made to us.
    pub calls_received: u64,
    /// Calls we made to the peer.
    pub calls_sent: u64,
    /// Calls (either way) that ended in an error or exception.
    pub call_errors: u64,
    /// Calls started and not yet answered, either way (queued included).
    pub calls_in_flight: u64,
}

/// Shared, cloneable signals of one connection (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct ConnectionSignals {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    created: Instant,
    established_at: OnceLock<(Instant, Option<&'static str>)>,
    /// The first close request's reason.
    close: OnceLock<&'static str>,
    /// Woken when `established_at` or `close` is set.
    changed: Notify,
    /// The task polling [`ConnectionSignals::poll_close_requested`].
    close_waker: AtomicWaker,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    calls_received: AtomicU64,
    calls_sent: AtomicU64,
    call_errors: AtomicU64,
    calls_in_flight: AtomicU64,
    /// Nanoseconds after `created` of the last byte moved.
    last_traffic: AtomicU64,
    /// Nanoseconds after `created` of the last call started or finished.
    last_call: AtomicU64,
}

impl Default for ConnectionSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectionSignals {
    /// Fresh signals: not established, no activity, created now.
    pub fn new() -> Self {
        ConnectionSignals {
            shared: Arc::new(Shared {
                created: Instant::now(),
                established_at: OnceLock::new(),
                close: OnceLock::new(),
                changed: Notify::new(),
                close_waker: AtomicWaker::new(),
                bytes_in: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
                calls_received: AtomicU64::new(0),
                calls_sent: AtomicU64::new(0),
                call_errors: AtomicU64::new(0),
                calls_in_flight: AtomicU64::new(0),
                last_traffic: AtomicU64::new(0),
                last_call: AtomicU64::new(0),
            }),
        }
    }

    /// The request's signals, inserting new ones if no layer did yet.
    pub fn get_or_insert<R: ConnectionRequest>(req: &mut R) -> ConnectionSignals {
        if let Some(s) = req.extension::<ConnectionSignals>() {
            return s.clone();
        }
        let s = ConnectionSignals::new();
        req.insert_extension(s.clone());
        s
    }

    /// Whether two handles are the same connection's signals.
    pub fn same(&self, other: &ConnectionSignals) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    // ---- fired by the terminal service ----

    /// The connection's handshake is complete (for a Versile link: VOP,
    /// transport and VOL handshakes). `transport` names the negotiated
    /// transport for metrics and logs. Only the first call counts.
    pub fn mark_established(&self, transport: Option<&'static str>) {
        let now = Instant::now();
        if self.shared.established_at.set((now, transport)).is_ok() {
            self.touch(&self.shared.last_call, now);
            self.shared.changed.notify_waiters();
        }
    }

    /// Report the running counters (absolute values, not deltas). Any
    /// change of bytes counts as traffic; any change of calls as call
    /// activity. One task reports (the terminal service's).
    pub fn report(&self, c: LinkCounters) {
        let (traffic, calls) = self.store_counters(c);
        if traffic || calls {
            self.stamp(traffic, calls, Instant::now());
        }
    }

    /// [`report`](Self::report), with the time the caller has already read
    /// (a link reads the clock once per wake-up; activity stamps serve
    /// timeouts of seconds).
    pub fn report_at(&self, c: LinkCounters, now: Instant) {
        let (traffic, calls) = self.store_counters(c);
        self.stamp(traffic, calls, now);
    }

    /// Store `c`; whether traffic and whether call activity changed. One
    /// reporter, so a load and a store per counter: no atomic
    /// read-modify-write (six locked instructions on every wake-up of every
    /// link, `docs/performance.md` in the versile crate).
    fn store_counters(&self, c: LinkCounters) -> (bool, bool) {
        let s = &*self.shared;
        let set = |slot: &AtomicU64, v: u64| {
            let changed = slot.load(Ordering::Relaxed) != v;
            if changed {
                slot.store(v, Ordering::Relaxed);
            }
            changed
        };
        let traffic = set(&s.bytes_in, c.bytes_in) | set(&s.bytes_out, c.bytes_out);
        let calls = set(&s.calls_received, c.calls_received)
            | set(&s.calls_sent, c.calls_sent)
            | set(&s.call_errors, c.call_errors)
            | set(&s.calls_in_flight, c.calls_in_flight);
        (traffic, calls)
    }

    fn stamp(&self, traffic: bool, calls: bool, now: Instant) {
        if !(traffic || calls) {
            return;
        }
        let nanos = self.nanos(now);
        if traffic {
            self.shared.last_traffic.fetch_max(nanos, Ordering::Relaxed);
        }
        if calls {
            self.shared.last_call.fetch_max(nanos, Ordering::Relaxed);
        }
    }

    /// Poll form of [`close_requested`](Self::close_requested), for a
    /// terminal service that polls it on every wake-up of its connection:
    /// registering the same waker again costs two atomic operations, where
    /// the future takes the `Notify`'s lock on every poll. One task polls
    /// it (it keeps one waker).
    pub fn poll_close_requested(&self, cx: &mut Context<'_>) -> Poll<&'static str> {
        if let Some(reason) = self.close_request() {
            return Poll::Ready(reason);
        }
        self.shared.close_waker.register(cx.waker());
        // A request between the check and the registration woke no one.
        match self.close_request() {
            Some(reason) => Poll::Ready(reason),
            None => Poll::Pending,
        }
    }

    /// Resolves when a layer asks the connection to close, with the
    /// layer's reason (e.g. `"idle"`). Never resolves otherwise.
    pub async fn close_requested(&self) -> &'static str {
        loop {
            if let Some(reason) = self.wait_changed(|s| s.close.get().copied()).await {
                return reason;
            }
        }
    }

    /// `check`, or after the next change, `None` (the caller loops): the
    /// waiter is registered before the check, so no change is missed.
    async fn wait_changed<T>(&self, check: impl Fn(&Shared) -> Option<T>) -> Option<T> {
        let changed = self.shared.changed.notified();
        let mut changed = std::pin::pin!(changed);
        changed.as_mut().enable();
        if let Some(v) = check(&self.shared) {
            return Some(v);
        }
        changed.await;
        None
    }

    // ---- read by the layers ----

    /// Whether [`mark_established`](Self::mark_established) was called.
    pub fn is_established(&self) -> bool {
        self.shared.established_at.get().is_some()
    }

    /// When the connection was established.
    pub fn established_at(&self) -> Option<Instant> {
        self.shared.established_at.get().map(|(t, _)| *t)
    }

    /// The transport named by the terminal service, once established.
    pub fn transport(&self) -> Option<&'static str> {
        self.shared.established_at.get().and_then(|(_, t)| *t)
    }

    /// Resolves once established (at once if already).
    pub async fn established(&self) {
        while self
            .wait_changed(|s| s.established_at.get().map(|_| ()))
            .await
            .is_none()
        {}
    }

    /// When these signals were created (about when the first layer that
    /// needed them saw the connection).
    pub fn created(&self) -> Instant {
        self.shared.created
    }

    /// The last reported counters.
    pub fn counters(&self) -> LinkCounters {
        let s = &*self.shared;
        LinkCounters {
            bytes_in: s.bytes_in.load(Ordering::Relaxed),
            bytes_out: s.bytes_out.load(Ordering::Relaxed),
            calls_received: s.calls_received.load(Ordering::Relaxed),
            calls_sent: s.calls_sent.load(Ordering::Relaxed),
            call_errors: s.call_errors.load(Ordering::Relaxed),
            calls_in_flight: s.calls_in_flight.load(Ordering::Relaxed),
        }
    }

    /// The last call activity (a call started or finished, or the
    /// connection established; creation time before that).
    pub fn last_call_activity(&self) -> Instant {
        self.at(&self.shared.last_call)
    }

    /// The last byte moved either way (creation time before any).
    pub fn last_traffic(&self) -> Instant {
        self.at(&self.shared.last_traffic)
    }

    /// Ask the terminal service to close the connection gracefully. The
    /// first reason wins.
    pub fn request_close(&self, reason: &'static str) {
        if self.shared.close.set(reason).is_ok() {
            self.shared.close_waker.wake();
            self.shared.changed.notify_waiters();
        }
    }

    /// The reason of the first close request, if any.
    pub fn close_request(&self) -> Option<&'static str> {
        self.shared.close.get().copied()
    }

    fn touch(&self, slot: &AtomicU64, now: Instant) {
        slot.fetch_max(self.nanos(now), Ordering::Relaxed);
    }

    /// `now` as nanoseconds after creation, the stamps' unit.
    fn nanos(&self, now: Instant) -> u64 {
        let nanos = now
            .saturating_duration_since(self.shared.created)
            .as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    fn at(&self, slot: &AtomicU64) -> Instant {
        self.shared.created + std::time::Duration::from_nanos(slot.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn report_moves_the_right_stamps() {
        let s = ConnectionSignals::new();
        let t0 = s.created();
        tokio::time::advance(Duration::from_secs(1)).await;
        s.report(LinkCounters {
            bytes_in: 10,
            ..Default::default()
        });
        assert_eq!(s.last_traffic(), t0 + Duration::from_secs(1));
        assert_eq!(s.last_call_activity(), t0);
        tokio::time::advance(Duration::from_secs(1)).await;
        s.report(LinkCounters {
            bytes_in: 10,
            calls_in_flight: 1,
            ..Default::default()
        });
        assert_eq!(s.last_traffic(), t0 + Duration::from_secs(1));
        assert_eq!(s.last_call_activity(), t0 + Duration::from_secs(2));
        assert_eq!(s.counters().calls_in_flight, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn report_at_stamps_the_given_time_and_only_on_change() {
        let s = ConnectionSignals::new();
        let t0 = s.created();
        let c = LinkCounters {
            bytes_out: 5,
            calls_sent: 1,
            ..Default::default()
        };
        s.report_at(c, t0 + Duration::from_secs(3));
        assert_eq!(s.last_traffic(), t0 + Duration::from_secs(3));
        assert_eq!(s.last_call_activity(), t0 + Duration::from_secs(3));
        // Nothing changed: no stamp moves.
        s.report_at(c, t0 + Duration::from_secs(9));
        assert_eq!(s.last_traffic(), t0 + Duration::from_secs(3));
        assert_eq!(s.counters(), c);
    }

    #[tokio::test]
    async fn poll_close_requested_wakes_the_polling_task() {
        let s = ConnectionSignals::new();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { std::future::poll_fn(|cx| s.poll_close_requested(cx)).await }
        });
        tokio::task::yield_now().await;
        // A change that is not a close request leaves it waiting.
        s.mark_established(None);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        s.request_close("idle");
        s.request_close("other");
        let reason = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("join");
        assert_eq!(reason, "idle");
    }

    #[tokio::test]
    async fn established_and_close_requests() {
        let s = ConnectionSignals::new();
        assert!(!s.is_established());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.established().await }
        });
        s.mark_established(Some("PLAIN"));
        s.mark_established(Some("VTS"));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("join");
        assert_eq!(s.transport(), Some("PLAIN"));

        s.request_close("idle");
        s.request_close("other");
        let reason = tokio::time::timeout(Duration::from_secs(5), s.close_requested())
            .await
            .expect("requested");
        assert_eq!(reason, "idle");
    }
}
