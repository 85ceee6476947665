//! The link's command queue: [`LinkHandle`](super::LinkHandle)s, remote
//! objects and call tasks push [`Command`]s, the link's driver takes them.
//!
//! It lives inside the link's shared state (no `Arc` of its own) and is a
//! `VecDeque` under a mutex plus the driver's waker: a command costs no
//! allocation while the deque has room, where `futures`' unbounded channel
//! allocated a queue node per command, and `tokio`'s kept a block of 32
//! slots for the link's lifetime (issue #8: an idle link must stay small).
//! The deque keeps at most [`KEPT_SLOTS`] slots once the driver has
//! emptied it, so an idle link holds at most that much, and one that never
//! received a command nothing.
//!
//! Commands are only ever dropped outside the lock: dropping one may drop
//! a remote object, whose release is itself a command.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use super::handle::Command;

/// Slots the deque keeps when it is emptied (more are freed): enough for a
/// caller's call and a release in flight without a reallocation each time.
pub(crate) const KEPT_SLOTS: usize = 4;

/// Commands for one link's driver (see the module docs).
pub(crate) struct CommandQueue {
    queue: Mutex<Queue>,
    driver: AtomicWaker,
    /// The deque's length, written under the lock: the driver's polls of
    /// an empty queue (most of them) read it instead of locking.
    queued: AtomicUsize,
    /// The deque has more than [`KEPT_SLOTS`] slots (written under the
    /// lock), so that `trim` locks only when it has something to free.
    spilled: AtomicBool,
}

#[derive(Default)]
struct Queue {
    commands: VecDeque<Command>,
    /// The driver has gone: nothing is taken any more.
    closed: bool,
}

impl CommandQueue {
    pub(crate) fn new() -> Self {
        CommandQueue {
            queue: Mutex::default(),
            driver: AtomicWaker::new(),
            queued: AtomicUsize::new(0),
            spilled: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves the queue consistent (a
        // push or a pop either happened or did not).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `command` and wake the driver; `Err` gives it back if the
    /// driver has gone.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        {
            let mut q = self.lock();
            if q.closed {
                return Err(command);
            }
            q.commands.push_back(command);
            self.queued.store(q.commands.len(), Ordering::Release);
            if q.commands.capacity() > KEPT_SLOTS {
                self.spilled.store(true, Ordering::Relaxed);
            }
        }
        // After the length is stored: a driver that registered and then
        // found the queue empty is woken here.
        self.driver.wake();
        Ok(())
    }

    fn pop(&self) -> Option<Command> {
        let mut q = self.lock();
        let c = q.commands.pop_front();
        self.queued.store(q.commands.len(), Ordering::Release);
        c
    }

    /// The next command; `Pending` registers the driver's waker, so a
    /// command sent after it wakes the driver.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Command> {
        if self.queued.load(Ordering::Acquire) > 0 {
            if let Some(c) = self.pop() {
                return Poll::Ready(c);
            }
        }
        // Registered before the second look: a `send` in between finds
        // the new waker, or its command is found here.
        self.driver.register(cx.waker());
        if self.queued.load(Ordering::Acquire) == 0 {
            return Poll::Pending;
        }
        match self.pop() {
            Some(c) => Poll::Ready(c),
            None => Poll::Pending,
        }
    }

    /// Free the deque's slots beyond [`KEPT_SLOTS`] if it is empty (the
    /// driver calls this when it goes back to waiting).
    pub(crate) fn trim(&self) {
        if !self.spilled.load(Ordering::Relaxed) {
            return;
        }
        let spare = {
            let mut q = self.lock();
            if !q.commands.is_empty() || q.commands.capacity() <= KEPT_SLOTS {
                return;
            }
            self.spilled.store(false, Ordering::Relaxed);
            std::mem::take(&mut q.commands)
        };
        drop(spare);
    }

    /// The driver has gone: later sends fail, and the commands still
    /// queued are dropped (their callers see the link closed).
    pub(crate) fn close(&self) {
        let queued = {
            let mut q = self.lock();
            q.closed = true;
            self.queued.store(0, Ordering::Release);
            self.spilled.store(false, Ordering::Relaxed);
            std::mem::take(&mut q.commands)
        };
        drop(queued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::counting_waker::counting_waker;
    use crate::runtime::handle::OutgoingCall;
    use crate::runtime::LinkShutdown;
    use crate::vol::CallKind;
    use std::sync::Arc;
    use std::task::Waker;
    use tokio::sync::oneshot::error::TryRecvError;

    /// Queue `c`, which must be taken (`Command` is not `Debug`).
    fn push(q: &CommandQueue, c: Command) {
        assert!(q.send(c).is_ok(), "the queue is open");
    }

    fn release(id: i64) -> Command {
        Command::Release { id, generation: 0 }
    }

    fn id_of(c: Command) -> i64 {
        match c {
            Command::Release { id, .. } => id,
            _ => -1,
        }
    }

    #[test]
    fn commands_come_out_in_order_and_a_send_wakes_the_waiting_driver() {
        let q = CommandQueue::new();
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(q.poll_recv(&mut cx).is_pending());
        push(&q, release(1));
        push(&q, release(2));
        assert_eq!(count.get(), 1, "woken once: registered once");
        let Poll::Ready(a) = q.poll_recv(&mut cx) else {
            panic!("queued")
        };
        let Poll::Ready(b) = q.poll_recv(&mut cx) else {
            panic!("queued")
        };
        assert_eq!((id_of(a), id_of(b)), (1, 2));
        assert!(q.poll_recv(&mut cx).is_pending());
        push(&q, Command::Shutdown(LinkShutdown::Graceful));
        assert_eq!(count.get(), 2);
    }

    #[test]
    fn after_close_sends_fail_and_queued_commands_are_dropped() {
        let q = CommandQueue::new();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let call = Command::Call(OutgoingCall {
            target: 1,
            kind: CallKind::Normal,
            args: Vec::new(),
            reply: Some(tx),
        });
        push(&q, call);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)), "queued");
        q.close();
        // The queued call was dropped: its caller sees the link closed.
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Closed)));
        assert!(q.send(release(3)).is_err(), "the driver has gone");
    }

    #[test]
    fn trim_keeps_a_few_slots_and_frees_the_rest() {
        let q = CommandQueue::new();
        for i in 0..64 {
            push(&q, release(i));
        }
        q.trim();
        assert!(
            q.lock().commands.capacity() >= 64,
            "not while it holds commands"
        );
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        while q.poll_recv(&mut cx).is_ready() {}
        q.trim();
        assert_eq!(q.lock().commands.capacity(), 0);
        push(&q, release(1));
        let _ = q.poll_recv(&mut cx);
        q.trim();
        assert!(q.lock().commands.capacity() <= KEPT_SLOTS);
        assert!(q.lock().commands.capacity() > 0, "a small deque is kept");
    }

    #[test]
    fn no_command_and_no_wake_up_is_lost_between_threads() {
        const SENDERS: i64 = 4;
        const EACH: i64 = 10_000;
        let q = Arc::new(CommandQueue::new());
        let senders: Vec<_> = (0..SENDERS)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        push(&q, release(t * EACH + i));
                    }
                })
            })
            .collect();
        // The driver's side: blocks on each command with a real waker, so
        // a lost wake-up hangs it (bounded below).
        let receiver = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut sum = 0i64;
                for _ in 0..SENDERS * EACH {
                    let c = futures::executor::block_on(std::future::poll_fn(|cx| q.poll_recv(cx)));
                    sum += id_of(c);
                }
                sum
            })
        };
        for s in senders {
            s.join().unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !receiver.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the receiver hangs: a lost wake-up"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let n = SENDERS * EACH;
        assert_eq!(
            receiver.join().unwrap(),
            n * (n - 1) / 2,
            "every command, once"
        );
        q.trim();
        assert!(q.lock().commands.capacity() <= KEPT_SLOTS);
    }
}
