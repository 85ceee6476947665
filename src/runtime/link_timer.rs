//! The link driver's one timer (keep-alive, handshake and drain
//! deadlines, `driver.rs`), which remembers the waker it registered: a busy
//! link polls its timer in every round, and re-polling a `Sleep` with the
//! same waker before its deadline only repeats the registration.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::time::{Instant, Sleep};

/// The link's one timer, with the waker its last pending poll registered.
pub(crate) struct LinkTimer {
    sleep: Pin<Box<Sleep>>,
    /// Set while that registration stands (until the deadline moves or the
    /// timer fires): polling again with the same waker before the deadline
    /// only repeats it, a few hundred instructions per round of a busy link.
    registered: Option<Waker>,
}

impl LinkTimer {
    /// A timer for `deadline`, not registered yet.
    pub(crate) fn new(deadline: Instant) -> Self {
        LinkTimer {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            registered: None,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    pub(crate) fn reset(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
        self.registered = None;
    }

    /// `Ready` once the deadline has passed; `Pending` has the waker
    /// registered (now, or by an earlier poll with the same waker).
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let waiting = now < self.sleep.deadline();
        if waiting
            && self
                .registered
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Pending => {
                self.registered = Some(cx.waker().clone());
                Poll::Pending
            }
            Poll::Ready(()) => {
                self.registered = None;
                Poll::Ready(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::counting_waker::counting_waker;
    use std::time::Duration;

    #[tokio::test]
    async fn a_new_waker_or_deadline_registers_again_and_the_deadline_fires() {
        let start = Instant::now();
        let mut timer = LinkTimer::new(start + Duration::from_millis(20));
        let (a, wa) = counting_waker();
        let (b, wb) = counting_waker();
        assert!(timer
            .poll(&mut Context::from_waker(&wa), start)
            .is_pending());
        assert!(timer.registered.as_ref().is_some_and(|w| w.will_wake(&wa)));
        // The same waker again: nothing to do.
        assert!(timer
            .poll(&mut Context::from_waker(&wa), start)
            .is_pending());
        // Another waker takes over the registration.
        assert!(timer
            .poll(&mut Context::from_waker(&wb), start)
            .is_pending());
        assert!(timer.registered.as_ref().is_some_and(|w| w.will_wake(&wb)));
        // A moved deadline forgets it, so the next poll registers anew.
        timer.reset(start + Duration::from_millis(10));
        assert!(timer.registered.is_none());
        assert!(timer
            .poll(&mut Context::from_waker(&wb), start)
            .is_pending());

        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(b.get(), 1, "the registered waker fired");
        assert_eq!(a.get(), 0);
        let now = Instant::now();
        assert!(timer.poll(&mut Context::from_waker(&wb), now).is_ready());
        assert!(timer.registered.is_none());
        // Polled directly too: the sleep itself has completed.
        assert!(timer
            .sleep
            .as_mut()
            .poll(&mut Context::from_waker(&wb))
            .is_ready());
    }
}
