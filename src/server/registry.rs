//! The live links of a server (`vop-service.md` §5.5 `links`, S27), so that
//! a stop can shut them down and a drain can wait for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::runtime::LinkHandle;

/// Shared registry of links; cheap to clone.
#[derive(Clone, Default)]
pub struct LinkRegistry {
    inner: Arc<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    links: Mutex<HashMap<u64, LinkHandle>>,
    /// `Some(force)` once the server is stopping links.
    stopping: Mutex<Option<bool>>,
    count: watch::Sender<usize>,
}

impl LinkRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a link; if the server is already stopping links, stop it too.
    pub fn register(&self, link: &LinkHandle) {
        let stopping = *lock(&self.inner.stopping);
        {
            let mut links = lock(&self.inner.links);
            links.insert(link.id(), link.clone());
            self.inner.count.send_replace(links.len());
        }
        if let Some(force) = stopping {
            link.shutdown(force);
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

    /// Remove a closed link.
    pub fn unregister(&self, link: &LinkHandle) {
        let mut links = lock(&self.inner.links);
        links.remove(&link.id());
        self.inner.count.send_replace(links.len());
    }

    /// Number of live links.
    pub fn len(&self) -> usize {
        lock(&self.inner.links).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Snapshot of the live links.
    pub fn links(&self) -> Vec<LinkHandle> {
        lock(&self.inner.links).values().cloned().collect()
    }

    /// Shut every current and future link down (`vop-service.md` §5.5 `stop`).
    /// May be called again with `force = true` to escalate.
    pub fn shutdown_all(&self, force: bool) {
        {
            let mut stopping = lock(&self.inner.stopping);
            *stopping = Some(stopping.unwrap_or(false) || force);
        }
        for link in self.links() {
            link.shutdown(force);
        }
    }

    /// Wait until no link is left.
    pub async fn drained(&self) {
        let mut rx = self.inner.count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
