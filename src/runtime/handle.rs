//! [`LinkHandle`]: the application's side of a running link.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use crate::object::{CallContext, CallError, ConnectionInfo, ContextState};
use crate::value::Value;
use crate::vol::{CallId, CallKind};

/// Why a link ended.
#[derive(Debug, Clone)]
pub enum CloseReason {
    /// The peer closed the connection.
    PeerClosed,
    /// Both object tables became empty (`vol.md` §5.3).
    Idle,
    /// The application (or the server) shut it down.
    Shutdown { forced: bool },
    /// A protocol, handshake or I/O failure.
    Error(crate::vol::LinkError),
}

/// Messages from handles and call tasks to the link task.
pub(crate) enum Command {
    Call {
        target: i64,
        kind: CallKind,
        args: Vec<Value>,
        reply: Option<oneshot::Sender<Result<Value, CallError>>>,
    },
    Respond {
        call_id: CallId,
        kind: CallKind,
        outcome: Result<Value, CallError>,
    },
    Release {
        id: i64,
        generation: u64,
    },
    Shutdown {
        force: bool,
    },
}

pub(crate) struct LinkShared {
    pub(crate) id: u64,
    pub(crate) info: ConnectionInfo,
    pub(crate) state: Arc<Mutex<ContextState>>,
    pub(crate) closed: watch::Sender<Option<CloseReason>>,
}

/// How [`LinkHandle::shutdown`] closes a link (`vol.md` §7.2).
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
    pub(crate) tx: mpsc::UnboundedSender<Command>,
    pub(crate) shared: Arc<LinkShared>,
}

static NEXT_LINK_ID: AtomicU64 = AtomicU64::new(1);

impl LinkHandle {
    pub(crate) fn new(info: ConnectionInfo) -> (Self, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed, _) = watch::channel(None);
        let shared = Arc::new(LinkShared {
            id: NEXT_LINK_ID.fetch_add(1, Ordering::Relaxed),
            info,
            state: Arc::default(),
            closed,
        });
        (LinkHandle { tx, shared }, rx)
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

    /// Shut the link down (`vol.md` §7.2), as [`LinkShutdown`] says. A
    /// forced shutdown after a graceful one escalates.
    pub fn shutdown(&self, how: LinkShutdown) {
        let force = how == LinkShutdown::Forced;
        let _ = self.tx.send(Command::Shutdown { force });
    }

    /// Whether the link has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.borrow().is_some()
    }

    /// Wait until the link has closed; returns why.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.shared.closed.subscribe();
        let reason = match rx.wait_for(|r| r.is_some()).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        reason.unwrap_or(CloseReason::Shutdown { forced: true })
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
