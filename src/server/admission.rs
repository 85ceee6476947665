//! Controlled accepting (`docs/protocol/vop-service.md` §5.7, S35–S38): an [`Admission`]
//! controller hands out accept permits to the servers ("nodes") registered
//! with it, capping the total number of clients and the clients per node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::registry::lock;
use super::serve::StopLinks;

/// A node's id within its [`Admission`] controller.
pub type NodeId = u64;

type Stopper = Arc<dyn Fn(StopLinks) + Send + Sync>;

/// The controller: shared by every node it governs; cheap to clone.
///
/// The intended semantics of Python's `VServiceController`, not its
/// 0.8.5 behaviour (§5.8):
///
/// * a node accepts **one** connection per permit, and its accept loop waits
///   for the permit *before* calling `accept` — a node without a permit
///   leaves connections in the kernel's backlog (Python accepted on a
///   readiness event even without a permit, so caps were not enforced);
/// * at most one permit is outstanding across all nodes; after a node is
///   added and after every accept or close the controller re-evaluates: if
///   the total client count has reached `max_clients`, or no node is below
///   `max_node_clients`, nothing is granted; otherwise the permit goes to
///   the node with the fewest clients (ties: the lowest node id);
/// * a client counts from its accept until its connection task ends
///   ([`Slot`] guard), whatever the reason (also a forced stop);
/// * a node whose server stopped is retired: it gets no more permits (a
///   permit it held is returned), and its remaining clients keep counting
///   towards `max_clients` until they close.
///
/// The design fits Python's deployment recipe: several servers (threads,
/// runtimes) accepting on one shared socket, e.g. `std_listener` with
/// `try_clone`d listeners. With nodes on *different* ports the single
/// permit may wait on a node whose port gets no connection meanwhile.
///
/// Cross-process control over VOL (S37: the published `start_service`,
/// `stop_service`, `can_accept`, `accepted`, `closed` methods) is not
/// implemented: it only matters for mixing with Python controllers/nodes,
/// and Python's own cross-process controller does not enforce its limits.
/// [`Admission::accepted`]/[`Admission::closed`] are public so such a
/// bridge can be built on top.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

struct Inner {
    max_clients: Option<usize>,
    max_node_clients: Option<usize>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<NodeId, NodeState>,
    /// The node holding the one outstanding permit.
    outstanding: Option<NodeId>,
    next_id: NodeId,
}

struct NodeState {
    clients: usize,
    retired: bool,
    /// Wakes the node's accept loop when it is granted the permit.
    notify: Arc<Notify>,
    /// Stops the node's server ([`Admission::stop`]).
    stopper: Option<Stopper>,
}

impl State {
    /// Grant the permit if none is outstanding and the caps allow
    /// (`docs/protocol/vop-service.md` §5.7).
    fn evaluate(&mut self, max_clients: Option<usize>, max_node: Option<usize>) {
        if self.outstanding.is_some() {
            return;
        }
        let total: usize = self.nodes.values().map(|n| n.clients).sum();
        if max_clients.is_some_and(|m| total >= m) {
            return;
        }
        let best = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.retired && !matches!(max_node, Some(m) if n.clients >= m))
            .min_by_key(|(id, n)| (n.clients, **id));
        if let Some((id, node)) = best {
            self.outstanding = Some(*id);
            node.notify.notify_one();
        }
    }

    fn forget_if_done(&mut self, node: NodeId) {
        if self
            .nodes
            .get(&node)
            .is_some_and(|n| n.retired && n.clients == 0)
        {
            self.nodes.remove(&node);
        }
    }
}

impl Admission {
    /// A controller with a cap on all clients together and per node
    /// (`None`: no cap). Python's `VServiceController(max_clients,
    /// max_node_clients)`.
    pub fn new(max_clients: Option<usize>, max_node_clients: Option<usize>) -> Self {
        Admission {
            inner: Arc::new(Inner {
                max_clients,
                max_node_clients,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = lock(&self.inner.state);
        let r = f(&mut st);
        st.evaluate(self.inner.max_clients, self.inner.max_node_clients);
        r
    }

    /// Register a new node (client count 0). Give it to one server with
    /// [`ServerBuilder::admission`](super::ServerBuilder::admission).
    pub fn add_node(&self) -> AdmissionNode {
        let notify = Arc::new(Notify::new());
        let id = self.update(|st| {
            let id = st.next_id;
            st.next_id += 1;
            st.nodes.insert(
                id,
                NodeState {
                    clients: 0,
                    retired: false,
                    notify: notify.clone(),
                    stopper: None,
                },
            );
            id
        });
        AdmissionNode {
            admission: self.clone(),
            id,
            notify,
        }
    }

    /// Report an accepted client of `node`: count +1, permit consumed.
    /// (The in-process accept loop does this itself.)
    pub fn accepted(&self, node: NodeId) {
        self.update(|st| {
            if st.outstanding == Some(node) {
                st.outstanding = None;
            }
            if let Some(n) = st.nodes.get_mut(&node) {
                n.clients += 1;
            }
        });
    }

    /// Report a closed client of `node`: count −1 (floor 0).
    pub fn closed(&self, node: NodeId) {
        self.update(|st| {
            if let Some(n) = st.nodes.get_mut(&node) {
                n.clients = n.clients.saturating_sub(1);
            }
            st.forget_if_done(node);
        });
    }

    /// The node holding the outstanding permit, if any.
    pub fn permit_holder(&self) -> Option<NodeId> {
        lock(&self.inner.state).outstanding
    }

    /// The client count of `node` (`None` if unknown or forgotten).
    pub fn clients(&self, node: NodeId) -> Option<usize> {
        lock(&self.inner.state).nodes.get(&node).map(|n| n.clients)
    }

    /// The total client count over all nodes.
    pub fn total_clients(&self) -> usize {
        lock(&self.inner.state)
            .nodes
            .values()
            .map(|n| n.clients)
            .sum()
    }

    /// Stop every node's server (Python's `controller.stop(stop_links,
    /// force)`, S38) and retire all nodes. Clients of nodes stopped with
    /// [`StopLinks::Keep`] go on counting until they close.
    pub fn stop(&self, links: StopLinks) {
        let stoppers: Vec<Stopper> = self.update(|st| {
            st.outstanding = None;
            let ids: Vec<NodeId> = st.nodes.keys().copied().collect();
            let mut stoppers = Vec::new();
            for id in ids {
                if let Some(n) = st.nodes.get_mut(&id) {
                    n.retired = true;
                    stoppers.extend(n.stopper.clone());
                }
                st.forget_if_done(id);
            }
            stoppers
        });
        // Outside the lock: a stop drops tasks whose guards report back here.
        for stop in stoppers {
            stop(links);
        }
    }

    fn retire(&self, node: NodeId) {
        self.update(|st| {
            if st.outstanding == Some(node) {
                st.outstanding = None;
            }
            if let Some(n) = st.nodes.get_mut(&node) {
                n.retired = true;
                n.stopper = None;
            }
            st.forget_if_done(node);
        });
    }

    fn return_permit(&self, node: NodeId) {
        self.update(|st| {
            if st.outstanding == Some(node) {
                st.outstanding = None;
            }
        });
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("Admission")
            .field("max_clients", &self.inner.max_clients)
            .field("max_node_clients", &self.inner.max_node_clients)
            .field("outstanding", &st.outstanding)
            .field(
                "clients",
                &st.nodes
                    .iter()
                    .map(|(id, n)| (*id, n.clients))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// One node's membership in an [`Admission`] controller; owned by the
/// server it controls, retired when dropped (the server's accept loop
/// ends).
pub struct AdmissionNode {
    admission: Admission,
    id: NodeId,
    notify: Arc<Notify>,
}

impl AdmissionNode {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The controller.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Wait until this node holds the permit. Cancel safe: a permit granted
    /// meanwhile stays with the node.
    pub async fn permit(&self) -> Permit {
        loop {
            let notified = self.notify.notified();
            if self.admission.permit_holder() == Some(self.id) {
                return Permit {
                    admission: Some(self.admission.clone()),
                    node: self.id,
                };
            }
            notified.await;
        }
    }

    pub(crate) fn set_stopper(&self, stop: Stopper) {
        let mut st = lock(&self.admission.inner.state);
        if let Some(n) = st.nodes.get_mut(&self.id) {
            n.stopper = Some(stop);
        }
    }
}

impl Drop for AdmissionNode {
    fn drop(&mut self) {
        self.admission.retire(self.id);
    }
}

impl std::fmt::Debug for AdmissionNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionNode")
            .field("id", &self.id)
            .finish()
    }
}

/// The right to accept one connection. Dropped unused, it goes back to
/// the controller (which may grant it again).
#[must_use]
pub struct Permit {
    admission: Option<Admission>,
    node: NodeId,
}

impl Permit {
    /// A connection was accepted with this permit: the client counts for
    /// the node until the returned [`Slot`] is dropped.
    pub fn accepted(mut self) -> Slot {
        let admission = self.admission.take().expect("permit used once");
        admission.accepted(self.node);
        Slot {
            admission,
            node: self.node,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(a) = self.admission.take() {
            a.return_permit(self.node);
        }
    }
}

/// One admitted client; reports `closed` when dropped.
pub struct Slot {
    admission: Admission,
    node: NodeId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.closed(self.node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewest_clients_and_caps() {
        let adm = Admission::new(Some(3), Some(2));
        assert_eq!(adm.permit_holder(), None, "no node, no permit");
        let a = adm.add_node();
        assert_eq!(adm.permit_holder(), Some(a.id()));
        let b = adm.add_node();
        // At most one permit: A keeps it.
        assert_eq!(adm.permit_holder(), Some(a.id()));
        adm.accepted(a.id());
        assert_eq!(adm.permit_holder(), Some(b.id()), "fewest clients");
        adm.accepted(b.id());
        assert_eq!(adm.permit_holder(), Some(a.id()), "tie: lowest id");
        adm.accepted(a.id());
        assert_eq!(adm.permit_holder(), None, "total cap 3");
        adm.closed(b.id());
        assert_eq!(adm.permit_holder(), Some(b.id()));
        adm.accepted(b.id());
        adm.closed(a.id());
        adm.closed(a.id());
        adm.closed(a.id()); // floor 0
        assert_eq!(adm.clients(a.id()), Some(0));
        assert_eq!(adm.permit_holder(), Some(a.id()));
        assert_eq!(adm.total_clients(), 1);
    }

    #[test]
    fn node_cap_and_retirement() {
        let adm = Admission::new(None, Some(1));
        let a = adm.add_node();
        let b = adm.add_node();
        let (ia, ib) = (a.id(), b.id());
        adm.accepted(ia);
        adm.accepted(ib);
        assert_eq!(adm.permit_holder(), None, "every node at its cap");
        // A retires with a client: it still counts, but gets no permit.
        drop(a);
        adm.closed(ib);
        assert_eq!(adm.permit_holder(), Some(ib));
        assert_eq!(adm.total_clients(), 1);
        adm.closed(ia);
        assert_eq!(adm.clients(ia), None, "forgotten once empty");
        drop(b);
        assert_eq!(adm.permit_holder(), None);
    }

    #[tokio::test]
    async fn unused_permit_goes_back() {
        let adm = Admission::new(None, None);
        let a = adm.add_node();
        let p = a.permit().await;
        drop(p);
        // Returned and re-granted to the only node.
        assert_eq!(adm.permit_holder(), Some(a.id()));
        let slot = a.permit().await.accepted();
        assert_eq!(adm.clients(a.id()), Some(1));
        drop(slot);
        assert_eq!(adm.clients(a.id()), Some(0));
        // Controller stop retires every node.
        adm.stop(StopLinks::Keep);
        assert_eq!(adm.permit_holder(), None);
        assert_eq!(adm.clients(a.id()), None);
    }
}
