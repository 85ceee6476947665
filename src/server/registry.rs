//! The live links of a server (`docs/protocol/vop-service.md` §5.5 `links`, S27), so that
//! a stop can shut them down, a drain can wait for them, and middleware and
//! metrics can see them.

use crate::runtime::LinkShutdown;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::runtime::LinkHandle;
use crate::transport::NegotiatedTransport;
use crate::vop::Transport;

/// What the registry knows about one live link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link's process-unique id ([`LinkHandle::id`]).
    pub id: u64,
    /// The client's address.
    pub peer_addr: Option<SocketAddr>,
    /// Our address of the connection (tells which listener took it).
    pub local_addr: Option<SocketAddr>,
    /// The secure protocol, as in the call context: `Some(Vts | Tls)`, `None`
    /// for PLAIN.
    pub protocol: Option<Transport>,
    /// The transport the VOP handshake chose, `Plain` included; `None` when
    /// no negotiation layer ran.
    pub transport: Option<Transport>,
    /// When the link entered the registry (wall clock).
    pub started_at: SystemTime,
    /// The same moment on the monotonic clock (for durations).
    pub started: Instant,
}

impl LinkInfo {
    fn of(link: &LinkHandle) -> Self {
        let ctx = link.context();
        LinkInfo {
            id: link.id(),
            peer_addr: ctx.peer_addr(),
            local_addr: ctx.local_addr(),
            protocol: ctx.protocol(),
            transport: ctx.extensions().get::<NegotiatedTransport>().map(|t| t.0),
            started_at: SystemTime::now(),
            started: Instant::now(),
        }
    }

    /// How long the link has been up.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }
}

type Hook = Arc<dyn Fn(&LinkInfo) + Send + Sync>;

/// Shared registry of links; cheap to clone.
///
/// The accept loop puts the server's [`LinkRegistry`] into every
/// [`Connection`](super::Connection)'s extensions; [`GatewayService`](super::GatewayService)
/// enters the link into it when the link starts (after transport
/// negotiation) and leaves it when the link's task ends, also when a forced
/// stop drops that task. Each entry carries a [`LinkInfo`] (id, addresses,
/// protocol, start time). Hooks ([`on_link_added`](LinkRegistry::on_link_added),
/// [`on_link_closed`](LinkRegistry::on_link_closed)) are Python's
/// `_link_added`/`_link_closed`; unlike Python they run outside the
/// registry's lock, so a hook may read the registry.
#[derive(Clone, Default)]
pub struct LinkRegistry {
    inner: Arc<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    links: Mutex<BTreeMap<u64, (LinkHandle, LinkInfo)>>,
    /// `Some(force)` once the server is stopping links.
    stopping: Mutex<Option<LinkShutdown>>,
    count: watch::Sender<usize>,
    added: Mutex<Vec<Hook>>,
    closed: Mutex<Vec<Hook>>,
}

impl LinkRegistry {
    /// An empty registry with no hooks; a [`Server`](super::Server) makes
    /// its own, this is for running links without one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a link; if the server is already stopping links, stop it too.
    pub fn register(&self, link: &LinkHandle) {
        let info = LinkInfo::of(link);
        let stopping = *lock(&self.inner.stopping);
        {
            let mut links = lock(&self.inner.links);
            links.insert(link.id(), (link.clone(), info.clone()));
            self.inner.count.send_replace(links.len());
        }
        // Cloned first: a `for` would hold the guard through the calls.
        let hooks = lock(&self.inner.added).clone();
        for hook in hooks {
            hook(&info);
        }
        if let Some(how) = stopping {
            link.shutdown(how);
        }
    }

    /// Register `link` until the returned guard is dropped.
    pub fn enter(&self, link: &LinkHandle) -> Registration {
        self.register(link);
        Registration {
            registry: self.clone(),
            link: link.clone(),
        }
    }

    /// Remove a closed link (the closed hooks run if it was registered).
    pub fn unregister(&self, link: &LinkHandle) {
        let removed = {
            let mut links = lock(&self.inner.links);
            let removed = links.remove(&link.id());
            self.inner.count.send_replace(links.len());
            removed
        };
        if let Some((_, info)) = removed {
            let hooks = lock(&self.inner.closed).clone();
            for hook in hooks {
                hook(&info);
            }
        }
    }

    /// Call `hook` whenever a link joins (Python's `_link_added`). Hooks
    /// run on the link's task, outside the registry's lock; they should be
    /// quick and must not panic (the closed hook also runs from a drop).
    pub fn on_link_added(&self, hook: impl Fn(&LinkInfo) + Send + Sync + 'static) {
        lock(&self.inner.added).push(Arc::new(hook));
    }

    /// Call `hook` whenever a link leaves (Python's `_link_closed`).
    pub fn on_link_closed(&self, hook: impl Fn(&LinkInfo) + Send + Sync + 'static) {
        lock(&self.inner.closed).push(Arc::new(hook));
    }

    /// Number of live links.
    pub fn len(&self) -> usize {
        lock(&self.inner.links).len()
    }

    /// Whether no link is live (what a drain waits for).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of live links as a watch (for metrics and middleware).
    pub fn watch_count(&self) -> watch::Receiver<usize> {
        self.inner.count.subscribe()
    }

    /// Handles of the live links, by id.
    pub fn links(&self) -> Vec<LinkHandle> {
        lock(&self.inner.links)
            .values()
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// What is known about the live links, by id.
    pub fn snapshot(&self) -> Vec<LinkInfo> {
        lock(&self.inner.links)
            .values()
            .map(|(_, i)| i.clone())
            .collect()
    }

    /// Shut every current and future link down (`docs/protocol/vop-service.md` §5.5 `stop`).
    /// May be called again with [`LinkShutdown::Forced`] to escalate.
    pub fn shutdown_all(&self, how: LinkShutdown) {
        {
            let mut stopping = lock(&self.inner.stopping);
            // Forced wins: a later graceful call does not undo it.
            if *stopping != Some(LinkShutdown::Forced) {
                *stopping = Some(how);
            }
        }
        for link in self.links() {
            link.shutdown(how);
        }
    }

    /// Wait until no link is left.
    pub async fn drained(&self) {
        let mut rx = self.inner.count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl std::fmt::Debug for LinkRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRegistry")
            .field("links", &self.len())
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps a link in a [`LinkRegistry`] while alive.
pub struct Registration {
    registry: LinkRegistry,
    link: LinkHandle,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.unregister(&self.link);
    }
}
