//! Server lifecycle over loopback TCP (`docs/protocol/vop-service.md` §5.5, §5.7;
//! S01–S03, S26–S31, S34–S36, S38): builder, states and waits, stop
//! escalation, several addresses, IPv6, pre-bound listeners, buffer sizes,
//! link registry and hooks, admission control.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower::ServiceBuilder;
use versile::runtime::CloseReason;
use versile::server::{Admission, AdmissionNode, LinkInfo, ServerError, INTERNAL_BUFFER_SIZE};
use versile::vop::Transport;
use versile::{
    CallError, Client, ClientConfig, GatewayService, LinkHandle, LinkShutdown, LocalObject,
    RemoteObject, Server, ServerState, StateSet, StopLinks, VopLayer,
};

mod support;
use support::calls::{assert_echoes, connect_plain, wait_until};
use support::servers::echo_and_slow_gateway;

const T: Duration = Duration::from_secs(10);
/// How long "does not happen" is watched for.
const QUIET: Duration = Duration::from_millis(400);

type Svc = versile::server::VopService<GatewayService<fn() -> LocalObject>>;

fn svc() -> Svc {
    ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(
            echo_and_slow_gateway as fn() -> LocalObject,
        ))
}

fn ipv6_loopback() -> bool {
    match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("no IPv6 loopback on this machine ({e}); IPv6 parts skipped");
            false
        }
    }
}

#[tokio::test]
async fn states_and_wait_with_timeout() {
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .serve(svc())
        .unwrap();
    assert!(server.state().started());
    let s = server.wait(StateSet::ACTIVE, Some(T)).await.unwrap();
    assert_eq!(s, ServerState::Active);
    assert!(s.started() && s.active() && !s.stopped());
    // Nothing stops it: the wait times out.
    assert!(server
        .wait(StateSet::STOPPED, Some(Duration::from_millis(100)))
        .await
        .is_err());
    // Any of several flags.
    let s = server
        .wait(StateSet::STOPPED | StateSet::ACTIVE, Some(T))
        .await
        .unwrap();
    assert_eq!(s, ServerState::Active);

    let waiter = {
        let mut rx = server.watch_state();
        tokio::spawn(async move { *rx.wait_for(|s| s.stopped()).await.unwrap() })
    };
    server.stop(StopLinks::Keep);
    assert!(server.is_stopped());
    let s = server.wait_for(|s| s.stopped(), Some(T)).await.unwrap();
    assert_eq!(s, ServerState::Stopped);
    assert!(s.started() && !s.active());
    assert_eq!(
        tokio::time::timeout(T, waiter).await.unwrap().unwrap(),
        ServerState::Stopped
    );
    // `started` stays true, as in Python.
    assert_eq!(
        server.wait(StateSet::STARTED, None).await.unwrap(),
        ServerState::Stopped
    );
    assert!(server.wait_drained(T).await);
}

#[tokio::test]
async fn stop_keep_then_graceful_then_force() {
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .serve(svc())
        .unwrap();
    let addr = server.local_addr();
    let (link_a, gw_a) = connect_plain(addr).await;
    let (link_b, gw_b) = connect_plain(addr).await;
    wait_until("two links registered", || server.links().len() == 2).await;

    // Keep: no new connections, existing links go on answering (§5.5).
    server.stop(StopLinks::Keep);
    server
        .wait(StateSet::STOPPED, Some(T))
        .await
        .expect("stopped");
    let refused = tokio::time::timeout(
        T,
        Client::new(ClientConfig::insecure()).connect(&addr.to_string()),
    )
    .await
    .expect("connect attempt timed out");
    assert!(refused.is_err(), "connect after stop succeeded");
    assert_echoes(&gw_a, 1).await;
    assert_echoes(&gw_b, 2).await;
    assert_eq!(server.links().len(), 2);
    assert!(!server.wait_drained(Duration::from_millis(100)).await);

    // Graceful: the idle link closes, the busy one waits for its call.
    let long_call = tokio::spawn({
        let gw = gw_a.clone();
        async move { gw.call("slow", (20_000u64, "never")).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop(StopLinks::Graceful);
    tokio::time::timeout(T, link_b.closed())
        .await
        .expect("idle link closes on graceful stop");
    wait_until("idle link unregistered", || server.links().len() == 1).await;
    tokio::time::sleep(QUIET).await;
    assert!(!link_a.is_closed(), "graceful stop cut a running call");

    // Force escalates: the running call fails at once.
    server.stop(StopLinks::Force);
    let err = tokio::time::timeout(Duration::from_secs(5), long_call)
        .await
        .expect("forced stop did not end the call")
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, CallError::Link(_)), "{err:?}");
    let reason = tokio::time::timeout(T, link_a.closed()).await.unwrap();
    assert!(
        !matches!(reason, CloseReason::Idle),
        "unexpected close reason {reason:?}"
    );
    assert!(server.wait_drained(T).await);
    assert!(server.links().is_empty());
    assert_eq!(*server.links().watch_count().borrow(), 0);
}

#[tokio::test]
async fn several_addresses_ipv6_and_prebound() {
    let v6 = ipv6_loopback();
    let pre = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let pre_addr = pre.local_addr().unwrap();
    let tokio_pre = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tokio_pre_addr = tokio_pre.local_addr().unwrap();
    let mut b = Server::builder()
        .listen("127.0.0.1:0")
        .std_listener(pre)
        .listener(tokio_pre);
    if v6 {
        b = b.listen("[::1]:0");
    }
    let server = b.serve(svc()).unwrap();
    let addrs = server.local_addrs().to_vec();
    assert_eq!(addrs.len(), if v6 { 4 } else { 3 });
    assert!(addrs[0].ip().is_loopback() && addrs[0].is_ipv4());
    assert_eq!(addrs[1], pre_addr);
    assert_eq!(addrs[2], tokio_pre_addr);
    if v6 {
        assert!(addrs[3].is_ipv6() && addrs[3].ip().is_loopback());
    }
    assert_eq!(server.local_addr(), addrs[0]);
    for (i, addr) in addrs.iter().enumerate() {
        let (link, gw) = connect_plain(*addr).await;
        assert_echoes(&gw, i as i64).await;
        assert_eq!(link.context().peer_addr(), Some(*addr));
        let mine = link.context().local_addr();
        wait_until("server sees the link", || {
            server
                .links()
                .snapshot()
                .iter()
                .any(|l| l.peer_addr == mine)
        })
        .await;
        let info = server
            .links()
            .snapshot()
            .into_iter()
            .find(|l| l.peer_addr == mine)
            .unwrap();
        assert_eq!(info.local_addr, Some(*addr));
    }
    server.stop(StopLinks::Force);
    assert!(server.wait_drained(T).await);
    server.wait(StateSet::STOPPED, Some(T)).await.unwrap();
    for addr in &addrs {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still listening"
        );
    }
}

#[tokio::test]
async fn dual_stack_any_address() {
    if !ipv6_loopback() {
        return;
    }
    let server = Server::builder().listen("[::]:0").serve(svc()).unwrap();
    let port = server.local_addr().port();
    assert!(server.local_addr().is_ipv6());
    // IPV6_V6ONLY is off: IPv4 clients reach the IPv6 socket.
    let (_l4, gw4) = connect_plain(SocketAddr::from(([127, 0, 0, 1], port))).await;
    assert_echoes(&gw4, 4).await;
    let (_l6, gw6) = connect_plain(format!("[::1]:{port}")).await;
    assert_echoes(&gw6, 6).await;
    server.stop(StopLinks::Force);
    assert!(server.wait_drained(T).await);
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = Server::builder()
        .listen("127.0.0.1:0")
        .listen(addr)
        .serve(svc())
        .unwrap_err();
    assert!(matches!(err, ServerError::Bind { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let err = Server::builder().serve(svc()).unwrap_err();
    assert!(matches!(err, ServerError::NoListener), "{err:?}");
    let err = Server::builder()
        .listen("no-such-host.invalid:1")
        .serve(svc())
        .unwrap_err();
    assert!(err.to_string().contains("no-such-host.invalid:1"), "{err}");
}

#[tokio::test]
async fn buffer_size_is_applied() {
    use socket2::SockRef;
    // Below Linux's default rmem_max/wmem_max, so the kernel keeps it
    // (and reports it doubled).
    const N: usize = 100_000;
    let pre = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let probe = pre.try_clone().unwrap();
    let default = SockRef::from(&probe).recv_buffer_size().unwrap();
    let server = Server::builder()
        .std_listener(pre)
        .buffer_size(N)
        .serve(svc())
        .unwrap();
    let rcv = SockRef::from(&probe).recv_buffer_size().unwrap();
    let snd = SockRef::from(&probe).send_buffer_size().unwrap();
    assert!(rcv >= N && snd >= N, "rcv {rcv} snd {snd}");
    assert_ne!(rcv, default);
    if cfg!(target_os = "linux") {
        assert_eq!((rcv, snd), (2 * N, 2 * N));
    }
    let (_link, gw) = connect_plain(server.local_addr()).await;
    assert_echoes(&gw, 1).await;
    server.stop(StopLinks::Force);

    // The `internal` preset on a socket the builder makes.
    assert_eq!(INTERNAL_BUFFER_SIZE, 512 * 1024);
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .internal()
        .backlog(16)
        .serve(svc())
        .unwrap();
    let (_link, gw) = connect_plain(server.local_addr()).await;
    assert_echoes(&gw, 2).await;
    server.stop(StopLinks::Force);
    assert!(server.wait_drained(T).await);
}

#[tokio::test]
async fn link_hooks_and_registry() {
    let added: Arc<Mutex<Vec<LinkInfo>>> = Arc::default();
    let closed: Arc<Mutex<Vec<LinkInfo>>> = Arc::default();
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .on_link_added({
            let added = added.clone();
            move |l| added.lock().unwrap().push(l.clone())
        })
        .on_link_closed({
            let closed = closed.clone();
            move |l| closed.lock().unwrap().push(l.clone())
        })
        .serve(svc())
        .unwrap();
    let count = server.links().watch_count();
    let (la, gwa) = connect_plain(server.local_addr()).await;
    let (lb, _gwb) = connect_plain(server.local_addr()).await;
    assert_echoes(&gwa, 1).await;
    wait_until("two added", || added.lock().unwrap().len() == 2).await;
    assert_eq!(*count.borrow(), 2);
    let client_addrs = [la.context().local_addr(), lb.context().local_addr()];
    {
        let added = added.lock().unwrap();
        for info in added.iter() {
            assert!(client_addrs.contains(&info.peer_addr), "{info:?}");
            assert_eq!(info.local_addr, Some(server.local_addr()));
            assert_eq!(info.transport, Some(Transport::Plain));
            assert_eq!(info.protocol, None);
            assert!(info.age() < T);
        }
        assert_ne!(added[0].peer_addr, added[1].peer_addr);
        let mut ids: Vec<u64> = added.iter().map(|l| l.id).collect();
        ids.sort();
        let snap: Vec<u64> = server.links().snapshot().iter().map(|l| l.id).collect();
        assert_eq!(snap, ids);
    }
    assert!(closed.lock().unwrap().is_empty());

    la.shutdown(LinkShutdown::Graceful);
    wait_until("one closed", || closed.lock().unwrap().len() == 1).await;
    assert_eq!(
        closed.lock().unwrap()[0].peer_addr,
        la.context().local_addr()
    );
    assert_eq!(server.links().len(), 1);
    lb.shutdown(LinkShutdown::Forced);
    tokio::time::timeout(T, server.links().drained())
        .await
        .expect("registry back to zero");
    wait_until("both closed", || closed.lock().unwrap().len() == 2).await;
    assert_eq!(*count.borrow(), 0);
    server.stop(StopLinks::Keep);
    assert!(server.wait_drained(T).await);
}

/// Start connecting in the background (the connect may wait on admission).
fn connect_later(addr: SocketAddr) -> tokio::task::JoinHandle<(LinkHandle, RemoteObject)> {
    tokio::spawn(connect_plain(addr))
}

/// [`svc`] on an ephemeral loopback port, admitted as `node`.
fn serve_on_node(node: AdmissionNode) -> versile::Server {
    Server::builder()
        .listen("127.0.0.1:0")
        .admission(node)
        .serve(svc())
        .unwrap()
}

#[tokio::test]
async fn admission_node_caps_on_two_ports() {
    // max_node_clients = 1: each node takes one client, then neither accepts.
    let admission = Admission::new(None, Some(1));
    let node_a = admission.add_node();
    let node_b = admission.add_node();
    let (a, b) = (node_a.id(), node_b.id());
    let sa = serve_on_node(node_a);
    let sb = serve_on_node(node_b);
    assert_eq!(sa.admission_node(), Some(a));
    assert_eq!(admission.permit_holder(), Some(a), "first node first");

    let (la1, _g) = connect_plain(sa.local_addr()).await;
    wait_until("A counts 1", || admission.clients(a) == Some(1)).await;
    assert_eq!(admission.permit_holder(), Some(b), "fewest clients: B");
    let (_lb1, gb1) = connect_plain(sb.local_addr()).await;
    wait_until("B counts 1", || admission.clients(b) == Some(1)).await;
    assert_eq!(admission.permit_holder(), None, "both nodes at their cap");

    // A capped node does not accept: the client waits in the backlog.
    let pending_a = connect_later(sa.local_addr());
    let pending_b = connect_later(sb.local_addr());
    tokio::time::sleep(QUIET).await;
    assert!(!pending_a.is_finished() && !pending_b.is_finished());
    assert_eq!(admission.total_clients(), 2);
    assert_echoes(&gb1, 7).await;

    // A's client closes → A gets the permit → the waiting client gets in.
    la1.shutdown(LinkShutdown::Forced);
    let (_la2, ga2) = tokio::time::timeout(T, pending_a)
        .await
        .expect("waiting client admitted after a close")
        .unwrap();
    assert_echoes(&ga2, 8).await;
    assert_eq!(admission.clients(a), Some(1));
    tokio::time::sleep(QUIET).await;
    assert!(!pending_b.is_finished(), "B is still at its cap");
    pending_b.abort();

    sa.stop(StopLinks::Force);
    sb.stop(StopLinks::Force);
    assert!(sa.wait_drained(T).await && sb.wait_drained(T).await);
    wait_until("counts back to zero", || admission.total_clients() == 0).await;
}

#[tokio::test]
async fn admission_total_cap_fewest_clients_shared_socket() {
    // Two nodes accept on one shared socket (Python's process recipe).
    let admission = Admission::new(Some(3), None);
    let shared = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = shared.local_addr().unwrap();
    let node_a = admission.add_node();
    let node_b = admission.add_node();
    let (a, b) = (node_a.id(), node_b.id());
    let sa = Server::builder()
        .std_listener(shared.try_clone().unwrap())
        .admission(node_a)
        .serve(svc())
        .unwrap();
    let sb = Server::builder()
        .std_listener(shared)
        .admission(node_b)
        .serve(svc())
        .unwrap();
    let counts = || (admission.clients(a), admission.clients(b));

    let (_c1, g1) = connect_plain(addr).await;
    wait_until("c1 on A", || counts() == (Some(1), Some(0))).await;
    let (c2, _g2) = connect_plain(addr).await;
    wait_until("c2 on B (fewest)", || counts() == (Some(1), Some(1))).await;
    let (_c3, _g3) = connect_plain(addr).await;
    wait_until("c3 on A (tie: lowest id)", || {
        counts() == (Some(2), Some(1))
    })
    .await;
    assert_eq!(sa.links().len() + sb.links().len(), 3);
    assert_eq!(admission.permit_holder(), None, "total cap reached");

    let pending = connect_later(addr);
    tokio::time::sleep(QUIET).await;
    assert!(!pending.is_finished(), "a fourth client got past the cap");
    assert_echoes(&g1, 1).await;

    // B's client leaves: B has the fewest and takes the waiting client.
    c2.shutdown(LinkShutdown::Forced);
    let (c4, g4) = tokio::time::timeout(T, pending)
        .await
        .expect("waiting client admitted")
        .unwrap();
    assert_echoes(&g4, 4).await;
    assert_eq!(counts(), (Some(2), Some(1)));
    let c4_addr = c4.context().local_addr();
    wait_until("c4 registered on B", || {
        let on_b = sb.links().snapshot();
        on_b.len() == 1 && on_b[0].peer_addr == c4_addr
    })
    .await;

    // Controller stop (S38) stops both servers.
    admission.stop(StopLinks::Force);
    sa.wait(StateSet::STOPPED, Some(T)).await.unwrap();
    sb.wait(StateSet::STOPPED, Some(T)).await.unwrap();
    assert!(sa.wait_drained(T).await && sb.wait_drained(T).await);
    wait_until("counts forgotten", || admission.total_clients() == 0).await;
    assert_eq!(admission.permit_holder(), None);
}

#[tokio::test]
async fn stopped_node_hands_the_permit_on() {
    let admission = Admission::new(None, None);
    let node_a = admission.add_node();
    let node_b = admission.add_node();
    let b = node_b.id();
    let sa = serve_on_node(node_a);
    let sb = serve_on_node(node_b);
    // A holds the permit; stopping A must not strand it.
    sa.stop(StopLinks::Keep);
    sa.wait(StateSet::STOPPED, Some(T)).await.unwrap();
    assert_eq!(admission.permit_holder(), Some(b));
    let (_l, g) = connect_plain(sb.local_addr()).await;
    assert_echoes(&g, 1).await;
    assert_eq!(admission.clients(b), Some(1));
    sb.stop(StopLinks::Force);
    assert!(sb.wait_drained(T).await);
}
