//! The accept loop and the [`Server`] handle (`docs/protocol/vop-service.md` §5.5).

use crate::runtime::LinkShutdown;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::error::Elapsed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::{BoxError, Service, ServiceExt};
use tracing::{debug, warn};

use super::admission::{AdmissionNode, NodeId, Permit, Slot};
use super::builder::ServerBuilder;
use super::readiness::{AcceptLoopGuard, Readiness};
use super::registry::LinkRegistry;
use crate::transport::Connection;

/// How to treat open links when stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopLinks {
    /// Leave them running (Python's `stop(stop_links=False)`).
    Keep,
    /// Graceful link shutdown: running calls finish and answer (`docs/protocol/vol.md` §7.2).
    Graceful,
    /// Close them at once.
    Force,
}

/// Where a server is in its life (`docs/protocol/vop-service.md` §5.5, S29).
///
/// The predicates follow Python's flags: [`started`](Self::started) stays
/// true once started, [`active`](Self::active) holds while accepting,
/// [`stopped`](Self::stopped) once the listeners are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerState {
    /// Listening sockets are bound (connects queue in the backlog); the
    /// accept loop has not run yet.
    Started,
    /// The accept loop runs.
    Active,
    /// The listening sockets are closed; links may still be open.
    Stopped,
}

impl ServerState {
    /// Python's `started`: true in every state.
    pub fn started(self) -> bool {
        true
    }

    /// Python's `active`: accepting.
    pub fn active(self) -> bool {
        self == ServerState::Active
    }

    /// Python's `stopped`: started and no longer listening.
    pub fn stopped(self) -> bool {
        self == ServerState::Stopped
    }
}

/// A non-empty set of state flags for [`Server::wait`]: `STARTED`,
/// `ACTIVE`, `STOPPED`, combined with `|`; the wait ends when **any** holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSet {
    started: bool,
    active: bool,
    stopped: bool,
}

impl StateSet {
    /// The server has started (Python's `started`; true in every state).
    pub const STARTED: StateSet = StateSet {
        started: true,
        active: false,
        stopped: false,
    };
    /// The server accepts connections.
    pub const ACTIVE: StateSet = StateSet {
        started: false,
        active: true,
        stopped: false,
    };
    /// The server no longer listens (it may still drain links).
    pub const STOPPED: StateSet = StateSet {
        started: false,
        active: false,
        stopped: true,
    };

    /// Whether `state` satisfies any flag of the set.
    pub fn matches(self, state: ServerState) -> bool {
        (self.started && state.started())
            || (self.active && state.active())
            || (self.stopped && state.stopped())
    }
}

impl std::ops::BitOr for StateSet {
    type Output = StateSet;
    fn bitor(self, o: StateSet) -> StateSet {
        StateSet {
            started: self.started || o.started,
            active: self.active || o.active,
            stopped: self.stopped || o.stopped,
        }
    }
}

/// What the stop controls act on; shared with an admission controller.
struct Shared {
    stop_accepting: CancellationToken,
    force: CancellationToken,
    tracker: TaskTracker,
    links: LinkRegistry,
    state: watch::Sender<ServerState>,
    readiness: Readiness,
}

impl Shared {
    fn stop(&self, links: StopLinks) {
        // First, so a health check sees the drain before any link closes.
        self.readiness.mark_draining();
        self.stop_accepting.cancel();
        self.tracker.close();
        match links {
            StopLinks::Keep => {}
            StopLinks::Graceful => self.links.shutdown_all(LinkShutdown::Graceful),
            StopLinks::Force => {
                self.links.shutdown_all(LinkShutdown::Forced);
                self.force.cancel();
            }
        }
    }
}

/// Per-server settings of the accept loop.
pub(crate) struct AcceptOptions {
    /// `SO_RCVBUF`/`SO_SNDBUF` for accepted sockets.
    pub buffer_size: Option<usize>,
    pub node: Option<AdmissionNode>,
    pub links: LinkRegistry,
    pub readiness: Readiness,
}

/// A running service: its addresses, state, links, and stop controls.
/// Dropping the handle does not stop the service; call [`stop`](Self::stop).
///
/// One task accepts on all of a server's listeners; one task per accepted
/// connection runs the whole tower stack for it. The loop never waits for a
/// handshake, and an error in one connection ends only that connection's
/// task. With an [`AdmissionNode`] the loop waits for a permit before each
/// accept (§5.7).
///
/// The state ([`ServerState`]) moves `Started` → `Active` → `Stopped` and is
/// published on a watch, so it can be read ([`Server::state`]) and awaited
/// ([`Server::wait`], [`Server::wait_for`]) with a timeout, as Python's
/// `wait(timeout, started, active, stopped)`. As in Python, `Stopped` means
/// "no longer listening", not "links drained": for that use
/// [`Server::drained`] or [`Server::wait_drained`].
pub struct Server {
    local_addrs: Vec<SocketAddr>,
    node: Option<NodeId>,
    shared: Arc<Shared>,
}

impl Server {
    /// Configure a server: addresses, socket options, admission, hooks.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// Start accepting on `listener`; each connection goes through `service`.
    /// (Shorthand for `Server::builder().listener(listener).serve(service)`.)
    ///
    /// ```no_run
    /// # async fn f() -> std::io::Result<()> {
    /// use tower::ServiceBuilder;
    /// use versile::{demo::SimpleGateway, GatewayService, Server, VopLayer};
    ///
    /// let svc = ServiceBuilder::new()
    ///     .layer(VopLayer::insecure())
    ///     .service(GatewayService::new(SimpleGateway::new));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let server = Server::serve(listener, svc)?;
    /// println!("listening on vop://{}/", server.local_addr());
    /// # Ok(()) }
    /// ```
    pub fn serve<S>(listener: TcpListener, service: S) -> io::Result<Server>
    where
        S: Service<Connection> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        S::Response: Send + 'static,
    {
        Ok(ServerBuilder::new().listener(listener).serve(service)?)
    }

    /// Spawn the accept loop over bound listeners (called by the builder).
    pub(crate) fn start<S>(
        listeners: Vec<TcpListener>,
        service: S,
        options: AcceptOptions,
    ) -> io::Result<Server>
    where
        S: Service<Connection> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        S::Response: Send + 'static,
    {
        let local_addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            stop_accepting: CancellationToken::new(),
            force: CancellationToken::new(),
            tracker: TaskTracker::new(),
            links: options.links.clone(),
            state: watch::Sender::new(ServerState::Started),
            readiness: options.readiness.clone(),
        });
        let node = options.node.as_ref().map(AdmissionNode::id);
        if let Some(n) = &options.node {
            // Weak: the controller must not keep a dropped server's state alive.
            let weak = Arc::downgrade(&shared);
            n.set_stopper(Arc::new(move |links| {
                if let Some(s) = weak.upgrade() {
                    s.stop(links);
                }
            }));
        }
        shared
            .tracker
            .spawn(accept_loop(listeners, service, shared.clone(), options));
        Ok(Server {
            local_addrs,
            node,
            shared,
        })
    }

    /// The first bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// All bound addresses, in the order they were configured.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// This server's node id in its admission controller, if controlled.
    pub fn admission_node(&self) -> Option<NodeId> {
        self.node
    }

    /// The live links.
    pub fn links(&self) -> &LinkRegistry {
        &self.shared.links
    }

    /// The health handle: live while the accept loop runs or links drain,
    /// ready while accepting (and its [`Gate`](super::Gate) is open); the
    /// stop controls flip it to draining first. Serve it over HTTP with
    /// [`HealthService`](crate::ops::HealthService).
    pub fn readiness(&self) -> &Readiness {
        &self.shared.readiness
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        *self.shared.state.borrow()
    }

    /// The state as a watch.
    pub fn watch_state(&self) -> watch::Receiver<ServerState> {
        self.shared.state.subscribe()
    }

    /// Wait until any state in `states` holds, at most `timeout` (Python's
    /// `wait`, which raises `VNoResult` on timeout).
    pub async fn wait(
        &self,
        states: StateSet,
        timeout: Option<Duration>,
    ) -> Result<ServerState, Elapsed> {
        self.wait_for(|s| states.matches(s), timeout).await
    }

    /// Wait until `pred(state)` holds, at most `timeout`; e.g.
    /// `server.wait_for(|s| s.stopped(), Some(secs(5)))`.
    pub async fn wait_for(
        &self,
        pred: impl Fn(ServerState) -> bool,
        timeout: Option<Duration>,
    ) -> Result<ServerState, Elapsed> {
        let mut rx = self.shared.state.subscribe();
        let wait = async move {
            // The sender lives in `self.shared`, so this cannot fail.
            let r = rx.wait_for(|s| pred(*s)).await.map(|s| *s);
            r.unwrap_or_else(|_| *rx.borrow())
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, wait).await,
            None => Ok(wait.await),
        }
    }

    /// Stop accepting and shut links down as asked. Returns at once; the
    /// accept loop then closes the listeners and moves to `Stopped` (await
    /// it with `wait(StateSet::STOPPED, ..)`; from then on connects fail). May be called again with a
    /// stronger `links` argument; never weakens an earlier call.
    pub fn stop(&self, links: StopLinks) {
        self.shared.stop(links);
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.shared.stop_accepting.is_cancelled()
    }

    /// Wait until every connection task has ended (only completes after
    /// `stop`).
    pub async fn drained(&self) {
        self.shared.tracker.wait().await;
    }

    /// [`drained`](Self::drained) with a deadline; `true` if drained in time.
    pub async fn wait_drained(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.drained()).await.is_ok()
    }

    /// Stop gracefully, wait up to `deadline` for links to drain, then force.
    /// Returns `true` if everything closed within the deadline.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.stop(StopLinks::Graceful);
        if self.wait_drained(deadline).await {
            return true;
        }
        self.stop(StopLinks::Force);
        self.drained().await;
        false
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addrs", &self.local_addrs)
            .field("state", &self.state())
            .field("links", &self.shared.links.len())
            .finish()
    }
}

/// Poll every listener, starting after the one that accepted last, so a
/// busy listener does not starve the others.
fn poll_any(
    listeners: &[TcpListener],
    next: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
    let n = listeners.len();
    for i in 0..n {
        let idx = (*next + i) % n;
        if let Poll::Ready(r) = listeners[idx].poll_accept(cx) {
            *next = (idx + 1) % n;
            return Poll::Ready(r);
        }
    }
    Poll::Pending
}

/// The next connection on any listener, or `None` once `stop` is
/// cancelled. A stop wins over a connection that is ready (`biased`, not
/// `select!`'s random pick): nothing is accepted once a drain began.
async fn accept_next(
    listeners: &[TcpListener],
    next: &mut usize,
    stop: &CancellationToken,
) -> Option<io::Result<(TcpStream, SocketAddr)>> {
    tokio::select! {
        biased;
        _ = stop.cancelled() => None,
        r = std::future::poll_fn(|cx| poll_any(listeners, next, cx)) => Some(r),
    }
}

/// The accept loop's task: announce `Active`, accept until a stop, then
/// close the listeners and announce `Stopped`.
async fn accept_loop<S>(
    listeners: Vec<TcpListener>,
    service: S,
    shared: Arc<Shared>,
    options: AcceptOptions,
) where
    S: Service<Connection> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
{
    let AcceptOptions {
        buffer_size,
        node,
        links,
        readiness,
    } = options;
    let stop = shared.stop_accepting.clone();
    let _guard = AcceptLoopGuard {
        readiness: readiness.clone(),
        stopped: stop.clone(),
    };
    mark_active(&shared, &stop, &readiness);
    let mut accept = AcceptLoop {
        listeners,
        next: 0,
        service,
        shared,
        stop,
        buffer_size,
        node,
        permit: None,
        links,
    };
    while accept.accept_one().await.is_continue() {}
    accept.close();
}

/// `Started` → `Active`, unless a stop came first.
fn mark_active(shared: &Shared, stop: &CancellationToken, readiness: &Readiness) {
    shared.state.send_if_modified(|s| {
        let go = *s == ServerState::Started && !stop.is_cancelled();
        if go {
            *s = ServerState::Active;
            readiness.mark_accepting();
        }
        go
    });
}

/// What the accept loop holds between connections.
struct AcceptLoop<S> {
    listeners: Vec<TcpListener>,
    /// The listener polled first next time ([`poll_any`]).
    next: usize,
    service: S,
    shared: Arc<Shared>,
    stop: CancellationToken,
    /// `SO_RCVBUF`/`SO_SNDBUF` for accepted sockets.
    buffer_size: Option<usize>,
    node: Option<AdmissionNode>,
    /// The admission permit for the next accept (§5.7), once granted.
    permit: Option<Permit>,
    links: LinkRegistry,
}

impl<S> AcceptLoop<S>
where
    S: Service<Connection> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
{
    /// Wait for a permit (controlled node), accept one connection and
    /// spawn its task; `Break` once stopped.
    async fn accept_one(&mut self) -> ControlFlow<()> {
        self.wait_for_permit().await?;
        let Some(accepted) = accept_next(&self.listeners, &mut self.next, &self.stop).await else {
            return ControlFlow::Break(());
        };
        match accepted {
            Ok((stream, peer)) => self.spawn_connection(stream, peer),
            Err(e) => {
                // Out of file descriptors and the like: back off, go on
                // (the permit, if any, is kept for the next try).
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        ControlFlow::Continue(())
    }

    /// §5.7: a controlled node calls accept only while holding a permit,
    /// so without one connections stay in the kernel backlog.
    async fn wait_for_permit(&mut self) -> ControlFlow<()> {
        if let (Some(node), None) = (&self.node, &self.permit) {
            self.permit = tokio::select! {
                // A stop wins over a ready permit or connection: nothing
                // is accepted once draining began (`biased`, not random).
                biased;
                _ = self.stop.cancelled() => return ControlFlow::Break(()),
                p = node.permit() => Some(p),
            };
        }
        ControlFlow::Continue(())
    }

    /// Hand an accepted stream to its own task running the service.
    fn spawn_connection(&mut self, stream: TcpStream, peer: SocketAddr) {
        let slot = self.permit.take().map(Permit::accepted);
        configure_socket(&stream, self.buffer_size);
        let local = stream.local_addr().ok();
        let mut conn = Connection::new(Box::pin(stream), Some(peer), local);
        conn.extensions_mut().insert(self.links.clone());
        let svc = self.service.clone();
        let force = self.shared.force.clone();
        self.shared
            .tracker
            .spawn(serve_connection(svc, conn, peer, slot, force));
    }

    /// Close the sockets (later connects are refused), give back an unused
    /// permit and retire the node, then announce `Stopped`.
    fn close(self) {
        let AcceptLoop {
            listeners,
            permit,
            node,
            shared,
            ..
        } = self;
        drop(listeners);
        drop(permit);
        drop(node);
        shared.state.send_replace(ServerState::Stopped);
    }
}

/// `TCP_NODELAY` (calls are small, latency matters) and the configured
/// buffer sizes; failures leave the socket's defaults.
fn configure_socket(stream: &TcpStream, buffer_size: Option<usize>) {
    let _ = stream.set_nodelay(true);
    if let Some(n) = buffer_size {
        // §5.1 `internal`/`buf_size`; Linux also inherits the
        // listener's sizes, other systems may not.
        let sock = socket2::SockRef::from(stream);
        let _ = sock.set_recv_buffer_size(n);
        let _ = sock.set_send_buffer_size(n);
    }
}

/// One connection's task: the whole service stack, cut short by a forced
/// stop. `slot` counts for the admission controller until the task ends.
async fn serve_connection<S>(
    svc: S,
    conn: Connection,
    peer: SocketAddr,
    slot: Option<Slot>,
    force: CancellationToken,
) where
    S: Service<Connection>,
    S::Error: Into<BoxError>,
{
    let _slot = slot;
    let mut served = std::pin::pin!(svc.oneshot(conn));
    let mut stop = std::pin::pin!(force.cancelled());
    let mut registered: Option<Waker> = None;
    let served = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = served.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        // The token's future takes its lock on every poll, and this task
        // wakes on every message of the link: it is polled again only for
        // a new waker, or once cancelled (a cancellation wakes the waker
        // its last poll registered).
        let known = registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if force.is_cancelled() || !known {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            registered = Some(cx.waker().clone());
        }
        Poll::Pending
    });
    if let Some(Err(e)) = served.await {
        debug!(%peer, error = %e.into(), "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a connection ready (the listener's readiness is cached after
    /// the first accept) and the stop cancelled, the stop wins every time:
    /// from the moment a drain begins no new link reaches this instance.
    /// (With a random pick it would lose half the time.)
    #[tokio::test(flavor = "current_thread")]
    async fn a_stop_wins_over_a_ready_connection() {
        for _ in 0..24 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let _first = std::net::TcpStream::connect(addr).unwrap();
            let _second = std::net::TcpStream::connect(addr).unwrap();
            let listeners = [listener];
            let (mut next, stop) = (0, CancellationToken::new());
            let first = accept_next(&listeners, &mut next, &stop).await;
            assert!(matches!(first, Some(Ok(_))), "{first:?}");
            stop.cancel();
            let second = accept_next(&listeners, &mut next, &stop).await;
            assert!(second.is_none(), "accepted after stop: {second:?}");
        }
    }
}
