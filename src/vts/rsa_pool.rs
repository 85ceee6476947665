//! [`RsaPool`]: a bounded pool for RSA private-key work (`vts.md` §5.4,
//! §10 #15: one private operation per unauthenticated M5).
//!
//! A private operation costs a peer nothing and us milliseconds, so a
//! flood of bogus key exchanges must neither take all CPUs nor queue
//! without end. The pool has `workers` threads (default: the CPU count)
//! and room for `queue` waiting jobs; beyond that a handshake is refused
//! ([`VtsError::RsaBusy`], counted as `limit = "rsa_queue"`).
//!
//! ```text
//! submit(peer, job) ─► per-peer FIFO ─► round robin over peers ─► worker threads
//!        │ queue full: drop the newest job of the peer with most queued
//!        │ (if that is not us), else refuse us
//!        ▼
//!   oneshot ◄────────────────────────────── job.run() ◄────────────┘
//! ```
//!
//! Jobs are queued per peer address (an IPv6 address by its /64) and served
//! round robin, so one address flooding the queue delays another address's
//! handshake by about one job, and when the queue is full the flooder's
//! jobs are the ones dropped. A job whose handshake was abandoned is
//! skipped without running.
//!
//! One pool serves all connections of one transport
//! ([`VtsServerTransport`](super::VtsServerTransport) or
//! [`VtsClientTransport`](super::VtsClientTransport)), built from the
//! [`VtsConfig`](super::VtsConfig) knobs. Per transport rather than per
//! process: a server's limits are configured where the server is, one
//! listener's flood does not refuse another's clients, and tests in one
//! process do not share a queue. A process normally has one VTS server.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

use super::error::VtsError;
use super::private_op::{PrivateOp, PrivateOpResult};

/// Default [`VtsConfig::rsa_queue`](super::VtsConfig::rsa_queue).
pub const DEFAULT_RSA_QUEUE: usize = 64;

/// Default [`VtsConfig::rsa_workers`](super::VtsConfig::rsa_workers): the
/// number of CPUs (at least 1).
pub fn default_rsa_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Which queue a job goes to: the peer's address, IPv6 by /64 (one host
/// usually holds a whole /64).
type Flow = Option<IpAddr>;

fn flow_of(peer: Option<IpAddr>) -> Flow {
    peer.map(|ip| match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

struct Queued {
    job: PrivateOp,
    reply: oneshot::Sender<PrivateOpResult>,
}

#[derive(Default)]
struct Sched {
    flows: HashMap<Flow, VecDeque<Queued>>,
    /// Flows with queued jobs, in serving order.
    order: VecDeque<Flow>,
    queued: usize,
    /// Jobs being run by workers.
    running: usize,
    started: bool,
    shutdown: bool,
}

impl Sched {
    fn pop(&mut self) -> Option<Queued> {
        let flow = self.order.pop_front()?;
        let q = self.flows.get_mut(&flow)?;
        let item = q.pop_front();
        if q.is_empty() {
            self.flows.remove(&flow);
        } else {
            self.order.push_back(flow);
        }
        self.queued -= usize::from(item.is_some());
        item
    }

    /// Forget jobs whose handshake was abandoned: they need no room.
    fn sweep_abandoned(&mut self) {
        for q in self.flows.values_mut() {
            q.retain(|item| !item.reply.is_closed());
        }
        self.flows.retain(|_, q| !q.is_empty());
        self.queued = self.flows.values().map(VecDeque::len).sum();
        let flows = &self.flows;
        self.order.retain(|f| flows.contains_key(f));
    }

    /// Make room by dropping the newest job of the flow with the most
    /// queued jobs, if it holds more than `flow` would after admission.
    fn evict_for(&mut self, flow: Flow) -> bool {
        let own = self.flows.get(&flow).map_or(0, VecDeque::len);
        let Some((fattest, len)) = self
            .flows
            .iter()
            .map(|(f, q)| (*f, q.len()))
            .max_by_key(|(_, len)| *len)
        else {
            return false;
        };
        if fattest == flow || len <= own + 1 {
            return false;
        }
        if let Some(q) = self.flows.get_mut(&fattest) {
            // Dropping the reply sender refuses that handshake.
            q.pop_back();
            self.queued -= 1;
        }
        true
    }
}

struct Shared {
    sched: Mutex<Sched>,
    work: Condvar,
    workers: usize,
    queue: usize,
    refused: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        // A worker never panics while holding the lock; recover anyway.
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn worker(self: Arc<Self>) {
        loop {
            let item = {
                let mut sched = self.lock();
                loop {
                    if sched.shutdown {
                        return;
                    }
                    if let Some(item) = sched.pop() {
                        sched.running += 1;
                        break item;
                    }
                    sched = self.work.wait(sched).unwrap_or_else(|e| e.into_inner());
                }
            };
            // The handshake gave up (timeout, peer gone): skip the work.
            if !item.reply.is_closed() {
                let _ = item.reply.send(item.job.run());
            }
            self.lock().running -= 1;
        }
    }
}

/// Stops the worker threads when the last pool handle is dropped.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.lock().shutdown = true;
        self.0.work.notify_all();
    }
}

/// A bounded pool for RSA private-key jobs; see the module docs. Cheap to
/// clone (clones share the pool). Threads start with the first job.
#[derive(Clone)]
pub struct RsaPool {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for RsaPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPool")
            .field("workers", &self.workers())
            .field("queue", &self.handle.0.queue)
            .finish()
    }
}

impl RsaPool {
    /// A pool of `workers` threads (at least 1) with room for `queue`
    /// jobs waiting for a worker (0: refuse whenever all are busy).
    pub fn new(workers: usize, queue: usize) -> Self {
        RsaPool {
            handle: Arc::new(Handle(Arc::new(Shared {
                sched: Mutex::new(Sched::default()),
                work: Condvar::new(),
                workers: workers.max(1),
                queue,
                refused: AtomicU64::new(0),
            }))),
        }
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.handle.0.workers
    }

    /// Handshakes refused so far because the queue was full (including
    /// jobs dropped to make room for another peer's).
    pub fn refused(&self) -> u64 {
        self.handle.0.refused.load(Ordering::Relaxed)
    }

    /// Run `job` for a connection from `peer`; `Err(RsaBusy)` if the queue
    /// is full (counted and logged by the caller's failure path).
    pub async fn run(
        &self,
        peer: Option<IpAddr>,
        job: PrivateOp,
    ) -> Result<PrivateOpResult, VtsError> {
        let reply = self.submit(peer, job)?;
        // A dropped sender: the job was evicted for another peer's.
        reply.await.map_err(|_| self.busy(peer))
    }

    fn submit(
        &self,
        peer: Option<IpAddr>,
        job: PrivateOp,
    ) -> Result<oneshot::Receiver<PrivateOpResult>, VtsError> {
        let shared = &self.handle.0;
        let flow = flow_of(peer);
        let (tx, rx) = oneshot::channel();
        {
            let mut sched = shared.lock();
            sched.sweep_abandoned();
            // A job goes straight to an idle worker, else needs room.
            let idle = shared.workers.saturating_sub(sched.running);
            if sched.queued >= shared.queue + idle && !sched.evict_for(flow) {
                drop(sched);
                return Err(self.busy(peer));
            }
            let q = sched.flows.entry(flow).or_default();
            if q.is_empty() {
                sched.order.push_back(flow);
            }
            if let Some(q) = sched.flows.get_mut(&flow) {
                q.push_back(Queued { job, reply: tx });
            }
            sched.queued += 1;
            if !sched.started {
                sched.started = true;
                self.start_workers();
            }
        }
        shared.work.notify_one();
        Ok(rx)
    }

    fn start_workers(&self) {
        for i in 0..self.handle.0.workers {
            let shared = self.handle.0.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("versile-rsa-{i}"))
                .spawn(move || shared.worker());
            if let Err(e) = spawned {
                tracing::error!(error = %e, "VTS: cannot start an RSA worker thread");
            }
        }
    }

    fn busy(&self, peer: Option<IpAddr>) -> VtsError {
        let shared = &self.handle.0;
        shared.refused.fetch_add(1, Ordering::Relaxed);
        crate::limits::limit_exceeded("rsa_queue");
        tracing::debug!(peer = ?peer, "VTS: RSA work queue full");
        VtsError::RsaBusy {
            queued: shared.queue,
            workers: shared.workers,
        }
    }
}
