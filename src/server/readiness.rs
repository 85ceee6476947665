//! [`Readiness`]: whether a server is alive and whether it should get new
//! connections, for a load balancer's health check or an orchestrator's
//! probe.
//!
//! The [`Server`](super::Server) owns one (or uses the one given to
//! [`ServerBuilder::readiness`](super::ServerBuilder::readiness)) and moves
//! it along its life: the accept loop marks it [`Phase::Accepting`] when it
//! starts; [`Server::stop`](super::Server::stop), a stop signal in
//! `versile serve` and [`Admission::stop`](super::Admission::stop) mark it
//! [`Phase::Draining`] at once, before any link is shut down, so a balancer
//! polling `/readyz` takes the instance out of rotation while running calls
//! still finish. An accept loop that ends without being stopped (a panic)
//! leaves [`Phase::Failed`]. Independently, the operator can close the
//! [`Gate`] to take a running instance out of rotation without stopping it.
//!
//! Reading is two atomic loads; the HTTP side is
//! [`HealthService`](crate::ops::HealthService).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Where a server is, as a health check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Phase {
    /// Created; the accept loop has not run yet.
    Starting = 0,
    /// The accept loop runs and no stop was asked for.
    Accepting = 1,
    /// A stop was asked for: no new connections; open links drain.
    Draining = 2,
    /// The accept loop ended without a stop (it panicked).
    Failed = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Starting,
            1 => Phase::Accepting,
            2 => Phase::Draining,
            _ => Phase::Failed,
        }
    }

    /// Alive (liveness, `/healthz`): accepting or draining. A draining
    /// process is doing its job, so a liveness probe must not kill it.
    pub fn live(self) -> bool {
        matches!(self, Phase::Accepting | Phase::Draining)
    }

    /// A short lowercase name (`starting`, `accepting`, `draining`,
    /// `failed`), used as the health endpoints' response body.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Accepting => "accepting",
            Phase::Draining => "draining",
            Phase::Failed => "failed",
        }
    }
}

/// Whether the operator lets new connections come (independent of the
/// server's [`Phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// New connections welcome (the default).
    Open,
    /// Out of rotation: `/readyz` answers 503, but the server still
    /// accepts what reaches it (so a balancer can move clients away before
    /// a stop).
    Closed,
}

/// A server's health as a shared, cheaply cloneable handle. Every clone
/// sees the same state.
#[derive(Clone, Debug)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    phase: AtomicU8,
    gate_closed: AtomicU8,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// A new handle in [`Phase::Starting`] with the [`Gate`] open.
    pub fn new() -> Self {
        Readiness {
            inner: Arc::new(Inner {
                phase: AtomicU8::new(Phase::Starting as u8),
                gate_closed: AtomicU8::new(0),
            }),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.inner.phase.load(Ordering::Acquire))
    }

    /// The operator's gate.
    pub fn gate(&self) -> Gate {
        match self.inner.gate_closed.load(Ordering::Acquire) {
            0 => Gate::Open,
            _ => Gate::Closed,
        }
    }

    /// Open or close the gate (`/readyz` answers 503 while closed).
    pub fn set_gate(&self, gate: Gate) {
        let v = u8::from(gate == Gate::Closed);
        self.inner.gate_closed.store(v, Ordering::Release);
    }

    /// Alive (`/healthz`): see [`Phase::live`].
    pub fn is_live(&self) -> bool {
        self.phase().live()
    }

    /// Should get new connections (`/readyz`): accepting and the gate open.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Accepting && self.gate() == Gate::Open
    }

    /// `Starting` → `Accepting` (the accept loop started). Never undoes a
    /// drain or failure.
    pub(crate) fn mark_accepting(&self) {
        let _ = self.inner.phase.compare_exchange(
            Phase::Starting as u8,
            Phase::Accepting as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Any phase but `Failed` → `Draining` (a stop was asked for).
    pub(crate) fn mark_draining(&self) {
        let _ = self
            .inner
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p != Phase::Failed as u8).then_some(Phase::Draining as u8)
            });
    }

    /// The accept loop ended without a stop.
    pub(crate) fn mark_failed(&self) {
        self.inner
            .phase
            .store(Phase::Failed as u8, Ordering::Release);
    }
}

/// Marks the readiness failed if the accept loop's future is dropped
/// (panic, runtime shut down) before a stop was asked for.
pub(crate) struct AcceptLoopGuard {
    pub readiness: Readiness,
    pub stopped: tokio_util::sync::CancellationToken,
}

impl Drop for AcceptLoopGuard {
    fn drop(&mut self) {
        if !self.stopped.is_cancelled() {
            self.readiness.mark_failed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_gate() {
        let r = Readiness::new();
        let seen = r.clone();
        assert!(!seen.is_live() && !seen.is_ready());
        r.mark_accepting();
        assert!(seen.is_live() && seen.is_ready());
        r.set_gate(Gate::Closed);
        assert!(seen.is_live() && !seen.is_ready());
        r.set_gate(Gate::Open);
        r.mark_draining();
        assert!(seen.is_live() && !seen.is_ready());
        // A late accept-loop start never undoes a drain.
        r.mark_accepting();
        assert_eq!(seen.phase(), Phase::Draining);
        r.mark_failed();
        r.mark_draining();
        assert_eq!(seen.phase(), Phase::Failed);
        assert!(!seen.is_live());
    }

    #[tokio::test]
    async fn dropped_accept_loop_without_stop_is_failed() {
        let r = Readiness::new();
        r.mark_accepting();
        let stop = tokio_util::sync::CancellationToken::new();
        drop(AcceptLoopGuard {
            readiness: r.clone(),
            stopped: stop.clone(),
        });
        assert_eq!(r.phase(), Phase::Failed);

        let r = Readiness::new();
        stop.cancel();
        r.mark_draining();
        drop(AcceptLoopGuard {
            readiness: r.clone(),
            stopped: stop,
        });
        assert_eq!(r.phase(), Phase::Draining);
    }
}
