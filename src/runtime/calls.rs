//! Bounds on the incoming calls of a link (`docs/protocol/vol.md` §6.3): how many run at
//! once per link and across links, how many wait, and the tasks they run in.
//!
//! Data flow inside the link task: an entity decoded into a call is pushed
//! onto the link's queue; the link decodes the next entity only while the
//! queue holds fewer than [`CallLimits::max_queued`] calls, so a burst of
//! tiny calls in one read queues at most that many and the rest stays in
//! the read buffer (and then in the peer's socket). A queued call starts
//! when the link has fewer than [`CallLimits::max_in_flight`] running and,
//! if a [`CallBudget`] is installed, a permit from it; the permit travels
//! with the call's task and returns when the task ends. The tasks live in
//! the link's [`CallTasks`], which aborts them when the link ends, so a
//! peer cannot leave work running by reconnecting.
//!
//! A call that may start runs its first poll inside the link task
//! ([`CallExecution::InlineFirstPoll`]): a method that completes at once (no
//! `.await` that waits) is answered in the same round, without a task, a
//! channel message or a wake-up. One that is still pending moves, as it is,
//! into its own task in [`CallTasks`] and reports back through the link's
//! command channel. Permit, memory charge and in-flight count are held the
//! same way either way.
//!
//! None of this rejects anything on the wire: the spec allows bounding
//! concurrency per link and per service by queueing, never by refusing at
//! the VOL level (`docs/protocol/vol.md` §6.3).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::task::JoinSet;

/// Limits on a link's incoming calls; a field of
/// [`LinkOptions`](super::LinkOptions).
#[derive(Debug, Clone)]
pub struct CallLimits {
    /// Incoming calls of this link running at once; more are queued.
    /// Default 256: enough to keep a pipelining client busy (Python's own
    /// service runs 5 at a time, `docs/protocol/vol.md` §6.3), few enough that one link
    /// cannot hold thousands of tasks. Reaching it counts
    /// `limit="link_calls_in_flight"` once per episode. At least 1.
    pub max_in_flight: usize,
    /// Calls decoded and waiting to start. When the queue is full the link
    /// stops decoding (checked before every entity) and stops reading; the
    /// peer's writes back up into TCP. Default 1024: five times the largest
    /// burst seen from Python (200 calls in one write, `docs/protocol/vol.md` §6.1), while
    /// a flood of tiny calls holds at most 1024 decoded calls in memory.
    /// A pause counts `limit="queued_calls"` once per episode. At least 1
    /// (the handshake entities are decoded under the same check).
    pub max_queued: usize,
    /// Calls running at once across every link sharing this budget. `None`
    /// (the default of a bare [`LinkOptions`](super::LinkOptions)) means no
    /// shared bound; a [`GatewayService`](crate::GatewayService) installs
    /// one budget for all its links (see [`CallBudget::DEFAULT_SIZE`]).
    /// A link that has to wait for it counts
    /// `limit="process_calls_in_flight"`.
    pub budget: Option<CallBudget>,
    /// Where an incoming call runs. Default
    /// [`CallExecution::InlineFirstPoll`]: a call that completes without
    /// waiting costs no task, channel message or wake-up, which is most of
    /// a small call's CPU (`docs/performance.md`).
    pub execution: CallExecution,
}

/// Where an incoming call's method runs (a field of [`CallLimits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallExecution {
    /// Poll the method's future once inside the link task; if it is not
    /// done, move it into its own task. A method that computes for long
    /// without awaiting holds up its link (not others) meanwhile: such a
    /// method should use `tokio::task::spawn_blocking`, or pick
    /// [`CallExecution::Task`].
    #[default]
    InlineFirstPoll,
    /// Run every call in its own task from the start, so that calls of one
    /// link that compute without awaiting run in parallel on a
    /// multi-thread runtime. Costs a task spawn, a channel message and two
    /// wake-ups per call.
    Task,
}

impl CallLimits {
    /// `max_in_flight`, at least 1 (0 would never start a call).
    pub(crate) fn in_flight_limit(&self) -> usize {
        self.max_in_flight.max(1)
    }

    /// `max_queued`, at least 1 (0 would never decode anything).
    pub(crate) fn queue_limit(&self) -> usize {
        self.max_queued.max(1)
    }
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            max_in_flight: 256,
            max_queued: 1024,
            budget: None,
            execution: CallExecution::default(),
        }
    }
}

/// A cap on incoming calls running at once, shared by several links
/// (normally every link of one server). Cloning shares the cap.
///
/// When it is exhausted, calls stay queued on their links (and a link whose
/// queue fills stops reading). Waiting links are served first come, first
/// served, one call per turn: a link gets one permit, starts one call and
/// queues again behind the others, so no link starves another.
#[derive(Clone)]
pub struct CallBudget {
    permits: Arc<Semaphore>,
    size: usize,
}

impl CallBudget {
    /// The size [`GatewayService`](crate::GatewayService) uses by default:
    /// 8192 calls. A running call is a task holding its arguments and its
    /// future, typically a few KiB, so this bounds them to tens of MiB, and
    /// it lets 32 links use their full default `max_in_flight` at once.
    pub const DEFAULT_SIZE: usize = 8192;

    /// A budget of `size` calls running at once (at least one).
    pub fn new(size: usize) -> Self {
        let size = size.clamp(1, Semaphore::MAX_PERMITS);
        CallBudget {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// The cap.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Calls that could start right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

impl Default for CallBudget {
    fn default() -> Self {
        CallBudget::new(Self::DEFAULT_SIZE)
    }
}

impl std::fmt::Debug for CallBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallBudget")
            .field("size", &self.size)
            .field("available", &self.available())
            .finish()
    }
}

/// The right to start one call; returned to the budget when dropped.
pub(crate) struct CallPermit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// One link's place in the queue of a [`CallBudget`]: at most one waiting
/// acquisition per link, so links take turns.
pub(crate) struct BudgetTurn {
    budget: Option<CallBudget>,
    waiting: Option<Acquire>,
}

impl BudgetTurn {
    pub(crate) fn new(budget: Option<CallBudget>) -> Self {
        BudgetTurn {
            budget,
            waiting: None,
        }
    }

    /// A permit for the next call, or `Pending` (the link is woken when one
    /// is handed to it).
    pub(crate) fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<CallPermit> {
        let Some(budget) = &self.budget else {
            return Poll::Ready(CallPermit(None));
        };
        if self.waiting.is_none() {
            // Permits freed while others wait go to the waiters (tokio's
            // semaphore is FIFO), so this cannot jump the queue.
            match budget.permits.clone().try_acquire_owned() {
                Ok(permit) => return Poll::Ready(CallPermit(Some(permit))),
                Err(TryAcquireError::Closed) => return Poll::Ready(CallPermit(None)),
                Err(TryAcquireError::NoPermits) => {
                    tracing::debug!(
                        size = budget.size,
                        "process-wide call budget exhausted: calls stay queued"
                    );
                    crate::limits::limit_exceeded("process_calls_in_flight");
                    self.waiting = Some(Box::pin(budget.permits.clone().acquire_owned()));
                }
            }
        }
        let Some(waiting) = self.waiting.as_mut() else {
            return Poll::Pending;
        };
        match waiting.as_mut().poll(cx) {
            Poll::Ready(permit) => {
                self.waiting = None;
                // The semaphore is never closed; if it were, run unbounded.
                Poll::Ready(CallPermit(permit.ok()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The tasks running a link's incoming calls. Dropping it (the link ended,
/// or its future was dropped) aborts every call still running.
///
/// The set is made with the first task: a `JoinSet` allocates its shared
/// lists up front, and most links never spawn a call task (calls whose
/// first poll finishes are answered inline), idle links least of all
/// (issue #8).
#[derive(Default)]
pub(crate) struct CallTasks {
    tasks: Option<JoinSet<()>>,
}

impl CallTasks {
    /// Run `call` as its own task, holding `permit` until it ends.
    pub(crate) fn spawn(
        &mut self,
        permit: CallPermit,
        call: impl Future<Output = ()> + Send + 'static,
    ) {
        self.tasks
            .get_or_insert_with(JoinSet::new)
            .spawn(async move {
                call.await;
                drop(permit);
            });
    }

    /// Forget finished tasks (their results came back as commands), once
    /// more than `running` are held, so the usual round takes no lock.
    pub(crate) fn reap(&mut self, running: usize) {
        if let Some(tasks) = self.tasks.as_mut().filter(|t| t.len() > running) {
            while tasks.try_join_next().is_some() {}
        }
    }
}

/// A limit that is being hit: logged and counted once per episode, not
/// once per entity or per round.
#[derive(Debug, Default)]
pub(crate) struct Episode(bool);

impl Episode {
    /// The limit is hit now; true if it was not already.
    pub(crate) fn enter(&mut self) -> bool {
        !std::mem::replace(&mut self.0, true)
    }

    /// The limit is no longer hit.
    pub(crate) fn leave(&mut self) {
        self.0 = false;
    }
}

#[cfg(test)]
mod tests {
    use futures::task::noop_waker_ref;

    use super::*;

    fn poll(turn: &mut BudgetTurn) -> Option<CallPermit> {
        let mut cx = Context::from_waker(noop_waker_ref());
        match turn.poll_permit(&mut cx) {
            Poll::Ready(p) => Some(p),
            Poll::Pending => None,
        }
    }

    #[test]
    fn links_take_turns_for_the_shared_budget() {
        let budget = CallBudget::new(1);
        let (mut a, mut b) = (
            BudgetTurn::new(Some(budget.clone())),
            BudgetTurn::new(Some(budget.clone())),
        );
        let first = poll(&mut a).expect("a gets the permit");
        assert!(poll(&mut b).is_none(), "b waits");
        assert!(poll(&mut a).is_none(), "a queues behind b");
        drop(first);
        let second = poll(&mut b).expect("b is served first");
        assert!(poll(&mut a).is_none(), "a still waits");
        drop(second);
        assert!(poll(&mut a).is_some(), "then a");
        assert_eq!(budget.available(), 1, "permits come back");
    }

    #[test]
    fn without_a_budget_calls_need_no_permit() {
        let mut turn = BudgetTurn::new(None);
        assert!(poll(&mut turn).is_some());
    }
}
