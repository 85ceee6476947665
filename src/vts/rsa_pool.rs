//! [`RsaPool`]: a bounded pool for RSA private-key work (`docs/protocol/vts.md` §5.4,
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
//! round robin; one address never runs on more than `workers − reserved`
//! workers at once (default: all but one), so a flooding address leaves a
//! worker free for the others' handshakes, and when the queue is full the
//! flooder's jobs are the ones dropped. A job whose handshake was abandoned
//! (peer gone, timeout) is skipped without running.
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

/// Default [`VtsConfig::rsa_reserved_workers`](super::VtsConfig::rsa_reserved_workers).
pub const DEFAULT_RSA_RESERVED_WORKERS: usize = 1;

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
    /// Jobs being run by workers, in all and per flow.
    running: usize,
    running_per_flow: HashMap<Flow, usize>,
    started: bool,
    shutdown: bool,
}

impl Sched {
    fn push(&mut self, flow: Flow, item: Queued) {
        let q = self.flows.entry(flow).or_default();
        let first = q.is_empty();
        q.push_back(item);
        if first {
            self.order.push_back(flow);
        }
        self.queued += 1;
    }

    /// The next job in round-robin order from a flow running fewer than
    /// `per_flow` jobs; it counts as running.
    fn pop(&mut self, per_flow: usize) -> Option<(Flow, Queued)> {
        for _ in 0..self.order.len() {
            let flow = self.order.pop_front()?;
            if self.running_per_flow.get(&flow).copied().unwrap_or(0) >= per_flow {
                self.order.push_back(flow);
                continue;
            }
            let q = self.flows.get_mut(&flow)?;
            let item = q.pop_front();
            if q.is_empty() {
                self.flows.remove(&flow);
            } else {
                self.order.push_back(flow);
            }
            let item = item?;
            self.queued -= 1;
            self.running += 1;
            *self.running_per_flow.entry(flow).or_default() += 1;
            return Some((flow, item));
        }
        None
    }

    fn finished(&mut self, flow: Flow) {
        self.running -= 1;
        if let Some(n) = self.running_per_flow.get_mut(&flow) {
            *n -= 1;
            if *n == 0 {
                self.running_per_flow.remove(&flow);
            }
        }
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
    /// Most jobs of one flow running at once.
    per_flow: usize,
    refused: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        // A worker never panics while holding the lock; recover anyway.
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn worker(self: Arc<Self>) {
        loop {
            let (flow, item) = {
                let mut sched = self.lock();
                loop {
                    if sched.shutdown {
                        return;
                    }
                    if let Some(item) = sched.pop(self.per_flow) {
                        break item;
                    }
                    sched = self.work.wait(sched).unwrap_or_else(|e| e.into_inner());
                }
            };
            // The handshake gave up (timeout, peer gone): skip the work.
            if !item.reply.is_closed() {
                let _ = item.reply.send(item.job.run());
            }
            self.lock().finished(flow);
            // A job held back by its flow's limit may be eligible now.
            self.work.notify_all();
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
    /// jobs waiting for a worker (0: refuse whenever all are busy), of
    /// which `reserved` are never all taken by one peer address (at least
    /// one worker per address remains).
    pub fn new(workers: usize, queue: usize, reserved: usize) -> Self {
        let workers = workers.max(1);
        RsaPool {
            handle: Arc::new(Handle(Arc::new(Shared {
                sched: Mutex::new(Sched::default()),
                work: Condvar::new(),
                workers,
                queue,
                per_flow: workers.saturating_sub(reserved).max(1),
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
            sched.push(flow, Queued { job, reply: tx });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vts::hash::HashAlg;
    use crate::vts::RsaKeyPair;

    fn item(key: &RsaKeyPair) -> (Queued, oneshot::Receiver<PrivateOpResult>) {
        let (reply, rx) = oneshot::channel();
        let job = PrivateOp::new(key.clone(), HashAlg::Sha1, bytes::Bytes::new());
        (Queued { job, reply }, rx)
    }

    #[test]
    fn round_robin_with_a_per_address_limit_and_eviction_of_the_flooder() {
        let key = RsaKeyPair::from_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/spec/vts-vector-server-key.pem"
        ))
        .unwrap();
        let flooder = flow_of(Some([10, 0, 0, 1].into()));
        let other = flow_of(Some("2001:db8::1".parse().unwrap()));
        assert_eq!(other, flow_of(Some("2001:db8::2".parse().unwrap())), "/64");
        let mut sched = Sched::default();
        let mut keep = Vec::new();
        for flow in [flooder, flooder, flooder, other] {
            let (q, rx) = item(&key);
            keep.push(rx);
            sched.push(flow, q);
        }
        // One job per address at a time (2 workers, 1 reserved).
        assert_eq!(sched.pop(1).map(|(f, _)| f), Some(flooder));
        assert_eq!(sched.pop(1).map(|(f, _)| f), Some(other));
        assert!(sched.pop(1).is_none(), "the flooder is at its limit");
        sched.finished(flooder);
        assert_eq!(sched.pop(1).map(|(f, _)| f), Some(flooder));
        // Room for a newcomer comes from the address with most queued.
        let (q, _rx) = item(&key);
        sched.push(flooder, q);
        assert_eq!(sched.queued, 2);
        assert!(sched.evict_for(other));
        assert_eq!(sched.queued, 1);
        assert!(!sched.evict_for(flooder), "never evict for oneself");
    }
}
