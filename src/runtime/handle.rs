//! [`LinkHandle`]: the application's side of a running link.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{oneshot, Notify};

use super::commands::CommandQueue;
use crate::object::{CallContext, CallError, ConnectionInfo, ContextState};
use crate::value::Value;
use crate::vol::{CallId, CallKind};

/// Why a link ended.
#[derive(Debug, Clone)]
pub enum CloseReason {
    /// The peer closed the connection.
    PeerClosed,
    /// Both object tables became empty (`docs/protocol/vol.md` §5.3).
    Idle,
    /// The application (or the server) shut it down.
    /// How: [`LinkShutdown::Forced`] (pending calls dropped) or
    /// [`LinkShutdown::Graceful`].
    Shutdown(LinkShutdown),
    /// A protocol, handshake or I/O failure.
    Error(crate::vol::LinkError),
}

/// Messages from handles and call tasks to the link task, through its
/// [`CommandQueue`] (which keeps at most a few slots while the link
/// waits). A call is inline, one allocation fewer per call; the rarer
/// responses of call tasks are boxed, so that a slot stays 56 bytes.
pub(crate) enum Command {
    Call(OutgoingCall),
    Respond(Box<CallResponse>),
    Release { id: i64, generation: u64 },
    Shutdown(LinkShutdown),
}

/// A call to a peer object, from a [`RemoteObject`](crate::RemoteObject).
pub(crate) struct OutgoingCall {
    pub(crate) target: i64,
    pub(crate) kind: CallKind,
    pub(crate) args: Vec<Value>,
    pub(crate) reply: Option<oneshot::Sender<Result<Value, CallError>>>,
}

/// The outcome of an incoming call, from its task.
pub(crate) struct CallResponse {
    pub(crate) call_id: CallId,
    pub(crate) kind: CallKind,
    pub(crate) outcome: Result<Value, CallError>,
}

pub(crate) struct LinkShared {
    pub(crate) id: u64,
    pub(crate) info: ConnectionInfo,
    /// In the shared state itself, not an `Arc` of its own (0.1 KiB per
    /// link; issue #8).
    pub(crate) state: Mutex<ContextState>,
    pub(crate) closed: ClosedState,
    /// Set by [`LinkHandle::shutdown`] after its command is queued: the
    /// link task checks it before decoding newly read input, so that a
    /// call that arrives after `shutdown` (e.g. after `Server::stop`)
    /// returned is never started, even when the task was mid-poll and
    /// would only see the command in its next wake-up.
    pub(crate) stop_requested: AtomicBool,
    /// Commands for the link task (`LinkHandle::send`).
    pub(crate) commands: CommandQueue,
}

/// Why the link closed, once it has: set once by the link task, awaited by
/// [`LinkHandle::closed`]. (A `watch` channel was 0.4 KiB per link, idle
/// or not; issue #8.)
pub(crate) struct ClosedState {
    reason: OnceLock<CloseReason>,
    set: Notify,
}

impl ClosedState {
    fn new() -> Self {
        ClosedState {
            reason: OnceLock::new(),
            set: Notify::new(),
        }
    }

    /// Record why the link closed, unless a reason is recorded already.
    pub(crate) fn set(&self, reason: CloseReason) {
        if self.reason.set(reason).is_ok() {
            self.set.notify_waiters();
        }
    }

    fn get(&self) -> Option<&CloseReason> {
        self.reason.get()
    }

    async fn wait(&self) -> CloseReason {
        loop {
            // Registered before the check, so a `set` in between wakes it.
            let set = self.set.notified();
            let mut set = std::pin::pin!(set);
            set.as_mut().enable();
            if let Some(reason) = self.get() {
                return reason.clone();
            }
            set.await;
        }
    }
}

/// How [`LinkHandle::shutdown`] closes a link (`docs/protocol/vol.md` §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkShutdown {
    /// Stop reading, fail our pending calls, let running handlers send
    /// their results, then half-close: the link counts as closed from then
    /// on, while its task reads and drops the peer's input until the peer
    /// closes too (within
    /// [`LinkOptions::drain_timeout`](crate::LinkOptions::drain_timeout)),
    /// so the close does not reset answers still on their way.
    Graceful,
    /// Close at once: running handlers' results are not sent.
    Forced,
}

/// A cheap, cloneable handle to one link: shut it down, wait for it to
/// close, read its context. Holding it does not keep the link open.
#[derive(Clone)]
pub struct LinkHandle {
    pub(crate) shared: Arc<LinkShared>,
}

static NEXT_LINK_ID: AtomicU64 = AtomicU64::new(1);

impl LinkHandle {
    /// A new link's handle; its driver takes the commands through the
    /// [`CommandReceiver`], which closes the queue when dropped.
    pub(crate) fn new(info: ConnectionInfo) -> (Self, CommandReceiver) {
        let shared = Arc::new(LinkShared {
            id: NEXT_LINK_ID.fetch_add(1, Ordering::Relaxed),
            info,
            state: Mutex::default(),
            closed: ClosedState::new(),
            stop_requested: AtomicBool::new(false),
            commands: CommandQueue::new(),
        });
        let rx = CommandReceiver(shared.clone());
        (LinkHandle { shared }, rx)
    }

    /// Queue a command for the link task; `Err` gives it back if the link
    /// task has gone.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        self.shared.commands.send(command)
    }

    /// A process-unique number for this link.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    pub(crate) fn same_link(&self, other: &LinkHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The link's call context (peer address, protocol, entries).
    pub fn context(&self) -> CallContext {
        CallContext { link: self.clone() }
    }

    /// Shut the link down (`docs/protocol/vol.md` §7.2), as [`LinkShutdown`] says. A
    /// forced shutdown after a graceful one escalates.
    pub fn shutdown(&self, how: LinkShutdown) {
        let _ = self.send(Command::Shutdown(how));
        // After the send: whoever sees the flag finds the command queued.
        self.shared.stop_requested.store(true, Ordering::Release);
    }

    /// Whether the link has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.get().is_some()
    }

    /// Wait until the link has closed; returns why.
    pub async fn closed(&self) -> CloseReason {
        self.shared.closed.wait().await
    }
}

/// The link task's end of its [`CommandQueue`]: dropping it (with the
/// driver) closes the queue, so later sends fail and queued calls see the
/// link closed.
pub(crate) struct CommandReceiver(Arc<LinkShared>);

impl CommandReceiver {
    /// The next command (see [`CommandQueue::poll_recv`]).
    pub(crate) fn poll_recv(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Command> {
        self.0.commands.poll_recv(cx)
    }

    /// Free the queue's spare slots while the link waits.
    pub(crate) fn trim(&self) {
        self.0.commands.trim();
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        self.0.commands.close();
    }
}

impl std::fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkHandle")
            .field("id", &self.shared.id)
            .field("peer", &self.shared.info.peer_addr)
            .finish()
    }
}
