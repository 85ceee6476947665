//! Per-link and process-wide bounds against a real server on 127.0.0.1:0,
//! driven by a raw peer (`support/raw_peer.rs`): the export table limit
//! (`docs/protocol/vol.md` §5.1), the call queue checked per entity, call tasks ending
//! with their link, and the call budget shared by the links of a service
//! (`docs/protocol/vol.md` §6.3).
//!
//! Calls that must stay running block on a gate that the test opens; every
//! wait is bounded by a deadline that fails the test, none measures speed.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use support::raw_peer::{encode, s, tuple, RawPeer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use versile::object::{ConnectionInfo, ObjectBuilder};
use versile::runtime::{spawn_link, CallBudget, CallLimits, LinkOptions};
use versile::server::{Connection, GatewayService, Server, VopLayer};
use versile::vec::{Decoder, DecoderConfig, Entity, StrCodec, WireRef};
use versile::vol::TableLimits;
use versile::{LocalObject, Value};
use versile_middleware::ConnectionSignals;

const DEADLINE: Duration = Duration::from_secs(20);

/// Calls block on this until the test opens it.
#[derive(Clone)]
struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    fn new() -> Self {
        Gate(Arc::new(watch::channel(false).0))
    }

    fn open(&self) {
        self.0.send_replace(true);
    }

    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// What the test gateway's `wait` calls did.
#[derive(Default)]
struct Running {
    now: AtomicUsize,
    most: AtomicUsize,
    /// Calls whose task was dropped (finished or aborted).
    dropped: AtomicUsize,
}

/// Counts a running call; its drop is the end of the call's task.
struct RunGuard(Arc<Running>);

impl RunGuard {
    fn new(running: &Arc<Running>) -> Self {
        let now = running.now.fetch_add(1, Ordering::SeqCst) + 1;
        running.most.fetch_max(now, Ordering::SeqCst);
        RunGuard(running.clone())
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// A gateway with `echo(x)` and `wait()`: blocks on `gate`, then returns 0.
fn gated_gateway(gate: Gate, running: Arc<Running>) -> LocalObject {
    ObjectBuilder::new((gate, running))
        .method("echo", |_, call| async move {
            let (arg,): (Value,) = call.into_args()?;
            Ok(arg)
        })
        .method("wait", |state, call| async move {
            let () = call.into_args()?;
            let _running = RunGuard::new(&state.1);
            state.0.wait().await;
            Ok(Value::Int(0))
        })
        .build()
}

/// Serve `factory` with `options` over PLAIN; each connection's
/// [`ConnectionSignals`] (the link's counters) are sent to the receiver.
/// A factory of [`gated_gateway`]s sharing `gate` and `running`.
fn gated_gateways(
    gate: &Gate,
    running: &Arc<Running>,
) -> impl Fn() -> LocalObject + Send + Sync + 'static {
    let (gate, running) = (gate.clone(), running.clone());
    move || gated_gateway(gate.clone(), running.clone())
}

async fn serve(
    factory: impl Fn() -> LocalObject + Send + Sync + 'static,
    options: LinkOptions,
) -> (Server, mpsc::UnboundedReceiver<ConnectionSignals>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let svc = tower::ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .map_request(move |mut conn: Connection| {
            let _ = tx.send(ConnectionSignals::get_or_insert(&mut conn));
            conn
        })
        .service(GatewayService::new(factory).with_options(options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (Server::serve(listener, svc).unwrap(), rx)
}

/// Wait (bounded) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `count` METHOD_CALL `wait()` messages on the server gateway, encoded
/// back to back for one write; returns the bytes and the call ids.
fn wait_calls(p: &mut RawPeer, count: usize) -> (Vec<u8>, Vec<i64>) {
    let mut bytes = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(p.peek_id());
        let target = Entity::Ref(WireRef::ReceiverOwned(p.server_gw));
        let m = p.next_msg(1, tuple(vec![target, tuple(vec![s("wait")])]));
        bytes.extend_from_slice(&encode(&m));
    }
    (bytes, ids)
}

/// Read from `r` (after what `buf` holds, starting at an entity boundary)
/// until CALL_RESULT has arrived for every id in `ids`.
async fn read_results(r: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut, ids: &[i64]) {
    let mut dec = Decoder::new(DecoderConfig {
        str_decoding: Some(StrCodec::Utf8),
        allow_refs: true,
        ..DecoderConfig::default()
    });
    let mut missing: HashSet<i64> = ids.iter().copied().collect();
    while !missing.is_empty() {
        let Some(e) = dec.decode(buf).expect("server entity decodes") else {
            let n = tokio::time::timeout(DEADLINE, r.read_buf(buf))
                .await
                .expect("read timeout")
                .expect("read");
            assert!(n > 0, "EOF with {} results missing", missing.len());
            continue;
        };
        let t = e.as_tuple().expect("message").to_vec();
        if t[1] == Entity::Int(4) {
            let id = t[2].as_tuple().unwrap()[0].as_i64().unwrap();
            missing.remove(&id);
        }
    }
}

async fn expect_results(p: &mut RawPeer, ids: &[i64]) {
    read_results(&mut p.stream, &mut p.buf, ids).await;
}

#[tokio::test]
async fn urlget_flood_hits_the_export_limit_and_the_link_goes_on() {
    let mut options = LinkOptions::default();
    options.protocol.tables = TableLimits {
        max_exports: 8,
        ..TableLimits::default()
    };
    let (server, _) = serve(versile::demo::SimpleGateway::new, options).await;
    let run = async {
        let mut p = RawPeer::handshake(server.local_addrs()[0]).await;
        let path = tuple(vec![s("text"), s("echo")]);
        let mut exported = Vec::new();
        let mut refused = 0;
        for _ in 0..50 {
            let id = p.call(p.server_gw, vec![s("urlget"), path.clone()]).await;
            match p.reply(id).await {
                (4, payload) => match payload.as_tuple().unwrap()[1] {
                    Entity::Ref(WireRef::SenderOwned(obj)) => exported.push(obj),
                    ref other => panic!("urlget returned {other:?}"),
                },
                (6, _) => refused += 1,
                other => panic!("unexpected reply {other:?}"),
            }
        }
        // Besides the gateway the server still exports its handshake object
        // (this raw peer never releases it): 6 echoers fit under 8.
        assert_eq!(exported.len(), 6, "echoers exported");
        assert_eq!(refused, 44, "urlget answered CALL_ERROR when full");
        p.assert_echo("export table full").await;
        // A release (docs/protocol/vol.md §5.2) makes room for one more.
        let m = p.next_msg(7, tuple(vec![Entity::Int(exported[0]), Entity::Int(1)]));
        p.send(&m).await;
        let id = p.call(p.server_gw, vec![s("urlget"), path]).await;
        assert_eq!(p.reply(id).await.0, 4, "urlget after a release");
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("case timed out");
}

#[tokio::test]
async fn a_burst_of_tiny_calls_never_queues_more_than_max_queued() {
    let (gate, running) = (Gate::new(), Arc::new(Running::default()));
    let options = LinkOptions {
        calls: CallLimits {
            max_in_flight: 4,
            max_queued: 16,
            ..CallLimits::default()
        },
        ..LinkOptions::default()
    };
    let factory = gated_gateways(&gate, &running);
    let (server, mut signals) = serve(factory, options).await;
    let run = async {
        let mut p = RawPeer::handshake(server.local_addrs()[0]).await;
        let link = signals.recv().await.expect("signals");
        let received_before = link.counters().calls_received;
        let (burst, ids) = wait_calls(&mut p, 10_000);
        // One write (the server reads it in 64 KiB chunks of thousands of
        // calls), while the test watches the link and then reads results.
        let (mut r, mut w) = p.stream.split();
        let write = async { w.write_all(&burst).await.expect("burst written") };
        let check = async {
            until("the link fills up", || {
                link.counters().calls_in_flight >= 20
            })
            .await;
            until("4 calls running", || {
                running.now.load(Ordering::SeqCst) == 4
            })
            .await;
            let c = link.counters();
            assert_eq!(c.calls_in_flight, 4 + 16, "running + queued");
            assert_eq!(c.calls_received - received_before, 20, "decoding paused");
            assert_eq!(running.most.load(Ordering::SeqCst), 4);
            // Open the gate: the paused input is decoded, every call answered.
            gate.open();
            read_results(&mut r, &mut p.buf, &ids).await;
        };
        tokio::join!(write, check);
        assert_eq!(running.most.load(Ordering::SeqCst), 4);
    };
    tokio::time::timeout(DEADLINE * 3, run)
        .await
        .expect("case timed out");
}

#[tokio::test]
async fn a_closed_link_aborts_its_running_calls() {
    let (gate, running) = (Gate::new(), Arc::new(Running::default()));
    let options = LinkOptions {
        // The peer goes away: a graceful drain waits this long for the
        // calls, then the link closes and must take them with it.
        drain_timeout: Duration::from_millis(100),
        ..LinkOptions::default()
    };
    let factory = gated_gateways(&gate, &running);
    let (server, _) = serve(factory, options).await;
    let run = async {
        let mut p = RawPeer::handshake(server.local_addrs()[0]).await;
        let (calls, _) = wait_calls(&mut p, 3);
        p.send_raw(&calls).await.unwrap();
        until("3 calls running", || {
            running.now.load(Ordering::SeqCst) == 3
        })
        .await;
        drop(p);
        until("the calls are aborted", || {
            running.dropped.load(Ordering::SeqCst) == 3
        })
        .await;
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("case timed out");
    gate.open();
}

#[tokio::test]
async fn dropping_the_link_future_aborts_its_running_calls() {
    let (gate, running) = (Gate::new(), Arc::new(Running::default()));
    let run = async {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let server = spawn_link(
            ours,
            gated_gateway(gate.clone(), running.clone()),
            ConnectionInfo::default(),
            LinkOptions::default(),
        );
        let client = spawn_link(
            theirs,
            gated_gateway(gate.clone(), running.clone()),
            ConnectionInfo::default(),
            LinkOptions::default(),
        );
        let (_link, gw) = client.established.await.unwrap().unwrap();
        let calls: Vec<_> = (0..3)
            .map(|_| {
                let gw = gw.clone();
                tokio::spawn(async move { gw.call("wait", ()).await })
            })
            .collect();
        until("3 calls running", || {
            running.now.load(Ordering::SeqCst) == 3
        })
        .await;
        server.task.abort();
        until("the calls are aborted", || {
            running.dropped.load(Ordering::SeqCst) == 3
        })
        .await;
        for call in calls {
            assert!(
                call.await.unwrap().is_err(),
                "the caller sees the link fail"
            );
        }
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("case timed out");
    gate.open();
}

#[tokio::test]
async fn the_call_budget_bounds_calls_across_links() {
    let (gate, running) = (Gate::new(), Arc::new(Running::default()));
    let budget = CallBudget::new(3);
    let options = LinkOptions {
        calls: CallLimits {
            budget: Some(budget.clone()),
            ..CallLimits::default()
        },
        ..LinkOptions::default()
    };
    let factory = gated_gateways(&gate, &running);
    let (server, mut signals) = serve(factory, options).await;
    let run = async {
        let addr = server.local_addrs()[0];
        // Both handshakes first: their echo calls need permits too.
        let mut peers = Vec::new();
        let mut links = Vec::new();
        for _ in 0..2 {
            peers.push(RawPeer::handshake(addr).await);
            links.push(signals.recv().await.expect("signals"));
        }
        let mut waits = Vec::new();
        for p in &mut peers {
            let (calls, ids) = wait_calls(p, 5);
            p.send_raw(&calls).await.unwrap();
            waits.push(ids);
        }
        // Every call has arrived (queued or running) on both links.
        until("10 calls on 2 links", || {
            links
                .iter()
                .map(|l| l.counters().calls_in_flight)
                .sum::<u64>()
                == 10
        })
        .await;
        until("3 calls running", || {
            running.now.load(Ordering::SeqCst) >= 3
        })
        .await;
        // Time for any call wrongly started to show up in `most` (the
        // assertion cannot fail by slowness, only by a missing bound).
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(running.most.load(Ordering::SeqCst), 3, "budget of 3");
        assert_eq!(budget.available(), 0);
        // Open the gate: permits pass from link to link until all are done.
        gate.open();
        for (p, ids) in peers.iter_mut().zip(&waits) {
            expect_results(p, ids).await;
        }
        assert_eq!(running.most.load(Ordering::SeqCst), 3);
        until("permits returned", || budget.available() == 3).await;
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("case timed out");
}

#[tokio::test]
async fn zero_limits_still_let_a_link_work() {
    let (gate, running) = (Gate::new(), Arc::new(Running::default()));
    gate.open();
    let options = LinkOptions {
        calls: CallLimits {
            max_in_flight: 0,
            max_queued: 0,
            budget: Some(CallBudget::new(0)),
            ..CallLimits::default()
        },
        protocol: versile::vol::LinkConfig {
            tables: TableLimits {
                max_exports: 0,
                max_imports: 0,
            },
            ..Default::default()
        },
        ..LinkOptions::default()
    };
    let run = async {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let gateway = || gated_gateway(gate.clone(), running.clone());
        let _server = spawn_link(ours, gateway(), ConnectionInfo::default(), options.clone());
        let client = spawn_link(theirs, gateway(), ConnectionInfo::default(), options);
        let (_link, gw) = client.established.await.unwrap().unwrap();
        for _ in 0..3 {
            assert_eq!(gw.call("echo", ("x",)).await.unwrap(), Value::from("x"));
            assert_eq!(gw.call("wait", ()).await.unwrap(), Value::Int(0));
        }
    };
    tokio::time::timeout(DEADLINE, run)
        .await
        .expect("case timed out");
}
