//! Fault injection while the clients run: misbehaving links of our own
//! client stack over a [`FaultIo`] (reset, half-close and stop reading in
//! the middle of calls, a slow writer, garbage after the handshake), raw
//! TCP peers that never finish a handshake (reset, half-close, a byte at a
//! time, garbage after the VOP or VEC hello), and server-side forced stops
//! of random links through the links registry.
//!
//! Every fault is bounded in time; what the server did about it (closed
//! the connection, answered, or left it open until we gave up) is counted
//! as `fault.<kind>.<outcome>`. A connection the server must close but
//! keeps open past its handshake deadline is a failure.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};
use versile::object::ConnectionInfo;
use versile::runtime::{connect_link, Rewind};
use versile::server::LinkRegistry;
use versile::vop::{ClientHandshake, Transport, TransportSet};
use versile::{CallError, LinkHandle, LinkShutdown, RemoteObject, Value};

use crate::clients::{run_op, OpError, Shared};
use crate::fault_io::{Fault, FaultCtl, FaultIo};
use crate::gateway::{callback_object, Rng};
use crate::raw_peers;

/// Fault kinds and their weights.
const KINDS: &[(&str, u64)] = &[
    ("client_reset_mid_call", 3),
    ("client_half_close", 2),
    ("client_stop_reading", 2),
    ("client_slow_writer", 2),
    ("client_garbage", 3),
    ("raw_reset", 2),
    ("raw_half_close", 2),
    ("raw_slow_writer", 1),
    ("raw_garbage_after_vop", 2),
    ("raw_garbage_after_vec", 2),
    ("server_stop_link", 3),
];

/// How long the server may take to close a peer it must close: its
/// handshake deadline (10 s by default) plus slack for a loaded machine.
pub const MUST_CLOSE_WITHIN: Duration = Duration::from_secs(20);

/// Start faults every `interval` (jittered), at most `max_active` at once,
/// until `stop`; then wait for them (bounded) and report stragglers.
pub async fn inject(
    shared: Arc<Shared>,
    registry: LinkRegistry,
    interval: Duration,
    max_active: usize,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut tasks = JoinSet::new();
    let total: u64 = KINDS.iter().map(|(_, w)| w).sum();
    loop {
        let pause = Duration::from_millis(rng.below(2 * interval.as_millis() as u64 + 1));
        tokio::select! {
            _ = shared.stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
        while tasks.try_join_next().is_some() {}
        if tasks.len() >= max_active {
            shared.stats.add("fault.skipped_busy");
            continue;
        }
        let mut r = rng.below(total);
        let kind = KINDS
            .iter()
            .find(|(_, w)| {
                let hit = r < *w;
                r = r.saturating_sub(*w);
                hit
            })
            .map_or(KINDS[0].0, |(k, _)| k);
        shared.stats.add(format!("fault.{kind}"));
        let (shared, registry, seed) = (shared.clone(), registry.clone(), rng.next_u64());
        tasks.spawn(async move {
            let outcome = run_fault(kind, &shared, &registry, Rng::new(seed)).await;
            shared.stats.add(format!("fault.{kind}.{outcome}"));
        });
    }
    // Every fault is bounded; give them their bound once more, then call
    // the rest hung.
    let deadline = Instant::now() + MUST_CLOSE_WITHIN + Duration::from_secs(10);
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(_) => {}
            Err(_) => {
                shared
                    .stats
                    .fail("fault_task_hung", format!("{} fault tasks", tasks.len()));
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
            }
        }
    }
}

async fn run_fault(
    kind: &str,
    shared: &Shared,
    registry: &LinkRegistry,
    mut rng: Rng,
) -> &'static str {
    match kind {
        "server_stop_link" => server_stop_link(shared, registry, &mut rng),
        "client_reset_mid_call" => client_fault(shared, &mut rng, FaultPlan::Reset).await,
        "client_half_close" => client_fault(shared, &mut rng, FaultPlan::HalfClose).await,
        "client_stop_reading" => client_fault(shared, &mut rng, FaultPlan::StopReading).await,
        "client_slow_writer" => client_fault(shared, &mut rng, FaultPlan::Slow).await,
        "client_garbage" => client_fault(shared, &mut rng, FaultPlan::Garbage).await,
        raw => raw_peers::raw_peer(raw, shared, &mut rng).await,
    }
}

/// Stop a random live link on the server (forced, sometimes graceful),
/// recording the client's port so that client knows why it lost it. Only
/// links older than [`STOP_MIN_AGE`]: a younger one may still be in its
/// handshake, and a client whose connect fails cannot tell why.
fn server_stop_link(shared: &Shared, registry: &LinkRegistry, rng: &mut Rng) -> &'static str {
    let old: Vec<u64> = registry
        .snapshot()
        .into_iter()
        .filter(|info| info.age() >= STOP_MIN_AGE)
        .map(|info| info.id)
        .collect();
    if old.is_empty() {
        return "no_link";
    }
    let id = old[rng.below(old.len() as u64) as usize];
    let Some(link) = registry.links().into_iter().find(|l| l.id() == id) else {
        return "no_link";
    };
    if let Some(peer) = link.context().peer_addr() {
        shared
            .kills
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer.port(), Instant::now());
    }
    let forced = rng.chance(0.8);
    link.shutdown(if forced {
        LinkShutdown::Forced
    } else {
        LinkShutdown::Graceful
    });
    if forced {
        "forced"
    } else {
        "graceful"
    }
}

/// See [`server_stop_link`].
const STOP_MIN_AGE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
enum FaultPlan {
    Reset,
    HalfClose,
    StopReading,
    Slow,
    Garbage,
}

/// Our link over a [`FaultIo`]: VOP PLAIN by hand (slowly for a slow
/// writer), then the ordinary VEC/VOL handshake through `connect_link`.
async fn faulty_connect(
    addr: &str,
    ctl: Arc<FaultCtl>,
    slow: Option<Duration>,
) -> Result<(LinkHandle, RemoteObject), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let offered = TransportSet::empty().with(Transport::Plain);
    let mut hs = ClientHandshake::new(offered).map_err(|e| e.to_string())?;
    let hello = hs.hello();
    match slow {
        Some(gap) => {
            for b in hello {
                stream.write_all(&[b]).await.map_err(|e| e.to_string())?;
                tokio::time::sleep(gap).await;
            }
        }
        None => stream.write_all(&hello).await.map_err(|e| e.to_string())?,
    }
    let mut buf = BytesMut::with_capacity(128);
    loop {
        if hs.feed(&mut buf).map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            hs.feed_eof(&mut buf).map_err(|e| e.to_string())?;
            break;
        }
    }
    let info = ConnectionInfo {
        peer_addr: stream.peer_addr().ok(),
        local_addr: stream.local_addr().ok(),
        ..ConnectionInfo::default()
    };
    let io = Rewind::new(buf.freeze(), FaultIo::new(stream, ctl));
    connect_link(io, callback_object(), info, Default::default())
        .await
        .map_err(|e| e.to_string())
}

/// One misbehaving client link; returns what happened.
async fn client_fault(shared: &Shared, rng: &mut Rng, plan: FaultPlan) -> &'static str {
    let gap = Duration::from_millis(rng.range(1, 3));
    let start = if plan == FaultPlan::Slow {
        Fault::Slow(gap)
    } else {
        Fault::None
    };
    let ctl = FaultCtl::new(start);
    let slow = (plan == FaultPlan::Slow).then_some(gap);
    let started = Instant::now();
    let connected = timeout(
        Duration::from_secs(30),
        faulty_connect(&shared.addr, ctl.clone(), slow),
    )
    .await;
    let (link, gw) = match connected {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            shared.connect_failed("fault_client", started, format!("{plan:?}: {e}"));
            return "connect_failed";
        }
        Err(_) => {
            shared.connect_failed("fault_client", started, format!("{plan:?}: timed out"));
            return "connect_failed";
        }
    };
    let port = link.context().local_addr().map_or(0, |a| a.port());
    let outcome = match plan {
        FaultPlan::Slow => slow_calls(shared, rng, &gw, &ctl, port, started).await,
        FaultPlan::Reset | FaultPlan::HalfClose => mid_call(shared, rng, &gw, &ctl, plan).await,
        FaultPlan::StopReading => stop_reading(shared, rng, &gw, &link, &ctl).await,
        FaultPlan::Garbage => garbage(shared, rng, &gw, &ctl).await,
    };
    drop(gw);
    link.shutdown(LinkShutdown::Forced);
    if timeout(Duration::from_secs(10), link.closed())
        .await
        .is_err()
    {
        shared
            .stats
            .fail("fault_client_close", format!("{plan:?}: forced close hung"));
    }
    outcome
}

/// Byte-at-a-time writer: its calls must still complete correctly.
async fn slow_calls(
    shared: &Shared,
    rng: &mut Rng,
    gw: &RemoteObject,
    ctl: &FaultCtl,
    port: u16,
    started: Instant,
) -> &'static str {
    let cb = callback_object();
    for _ in 0..rng.range(1, 3) {
        let op = if rng.chance(0.5) {
            "echo_small"
        } else {
            "call_back"
        };
        shared.stats.add("calls.started");
        match run_op(op, rng, gw, &cb, shared).await {
            Ok(()) => shared.stats.add(format!("calls.ok.slow_{op}")),
            Err(OpError::Link(_)) if shared.stopped_by_server(port, started) => {
                shared.stats.add("calls.failed.link_stopped_by_server");
                return "stopped_by_server";
            }
            Err(OpError::Link(e)) => {
                let server_closed = timeout(Duration::from_millis(100), ctl.peer_closed())
                    .await
                    .is_ok();
                // Our side of the handshake can finish before the server's
                // (it still waits for our last bytes, trickling in): on a
                // starved machine its handshake deadline may then close
                // the link under our first calls.
                if server_closed && started.elapsed() >= shared.handshake_deadline {
                    shared
                        .stats
                        .add("calls.failed.slow_writer_cut_by_handshake_deadline");
                    return "cut_by_handshake_deadline";
                }
                shared.stats.fail(
                    "slow_writer_lost",
                    format!(
                        "port {port}, {:.1?} after connecting, server closed: {server_closed}: {e}",
                        started.elapsed()
                    ),
                );
                return "lost";
            }
            Err(e) => {
                e.count(shared, &format!("slow {op}"), port, started);
                return "not_completed";
            }
        }
    }
    "completed"
}

/// Calls in flight, then a reset or half-close. Completed calls must be
/// right; the others fail with a link error; a half-closed link must then
/// be closed by the server.
async fn mid_call(
    shared: &Shared,
    rng: &mut Rng,
    gw: &RemoteObject,
    ctl: &FaultCtl,
    plan: FaultPlan,
) -> &'static str {
    let n = rng.range(1, 8);
    let mut calls = Vec::new();
    for _ in 0..n {
        let (method, arg) = if rng.chance(0.3) {
            let len = rng.range(1, shared.payloads.large as u64) as usize;
            ("echo", Value::Bytes(shared.payloads.pool.slice(rng, len)))
        } else if rng.chance(0.5) {
            ("sleep", Value::from(rng.below(300)))
        } else {
            ("echo", rng.value(2))
        };
        calls.push(checked_call(shared, gw, method, arg));
    }
    let when = Duration::from_millis(rng.below(30));
    let fault = if plan == FaultPlan::Reset {
        Fault::Reset
    } else {
        Fault::HalfClose
    };
    let inject = async {
        tokio::time::sleep(when).await;
        ctl.set(fault);
    };
    let (results, ()) = tokio::join!(join_all(calls), inject);
    count_results(
        shared,
        &results,
        if plan == FaultPlan::Reset {
            "reset"
        } else {
            "half_close"
        },
    );
    if plan == FaultPlan::HalfClose {
        // The server saw EOF: it finishes what it runs, then must close.
        // (Our own link may wait longer: it cannot flush what it holds.)
        if timeout(MUST_CLOSE_WITHIN, ctl.peer_closed()).await.is_err() {
            shared.stats.fail(
                "half_close_not_closed",
                "server kept a half-closed link open",
            );
            return "left_open";
        }
        return "closed_by_server";
    }
    "reset"
}

/// A call whose result, if any, is checked; `Ok(true)` completed,
/// `Ok(false)` failed with a link error.
async fn checked_call(
    shared: &Shared,
    gw: &RemoteObject,
    method: &str,
    arg: Value,
) -> Result<bool, String> {
    let want = arg.clone();
    shared.stats.add("calls.started");
    match timeout(Duration::from_secs(30), gw.call(method, (arg,))).await {
        Err(_) => Err(format!("{method}: no outcome within 30 s")),
        Ok(Err(CallError::Link(_))) => Ok(false),
        Ok(Err(e)) => Err(format!("{method}: unexpected error {e}")),
        Ok(Ok(v)) if v == want => Ok(true),
        Ok(Ok(_)) => Err(format!("{method}: wrong result")),
    }
}

fn count_results(shared: &Shared, results: &[Result<bool, String>], fault: &str) {
    for r in results {
        match r {
            Ok(true) => shared.stats.add(format!("calls.ok.during_{fault}")),
            Ok(false) => shared.stats.add(format!("calls.failed.{fault}")),
            Err(d) => shared
                .stats
                .fail("wrong_result", format!("during {fault}: {d}")),
        }
    }
}

/// Stop reading, keep calling for results that pile up on the server,
/// hold a while, then reset.
async fn stop_reading(
    shared: &Shared,
    rng: &mut Rng,
    gw: &RemoteObject,
    link: &LinkHandle,
    ctl: &FaultCtl,
) -> &'static str {
    ctl.set(Fault::StopReading);
    let n = rng.range(8, 48);
    let size = (shared.payloads.large / 4).max(1);
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let arg = Value::Bytes(shared.payloads.pool.slice(rng, size));
            checked_call(shared, gw, "echo", arg)
        })
        .collect();
    let hold = Duration::from_millis(rng.range(2000, 8000));
    let inject = async {
        let closed = timeout(hold, link.closed()).await.is_ok();
        ctl.set(Fault::Reset);
        closed
    };
    let (results, closed) = tokio::join!(join_all(calls), inject);
    count_results(shared, &results, "stop_reading");
    if closed {
        "closed_by_server"
    } else {
        "held_then_reset"
    }
}

/// One good call, then garbage in the byte stream and one more call.
async fn garbage(
    shared: &Shared,
    rng: &mut Rng,
    gw: &RemoteObject,
    ctl: &FaultCtl,
) -> &'static str {
    let first = checked_call(shared, gw, "echo", rng.value(2)).await;
    count_results(shared, &[first], "garbage_before");
    ctl.set(Fault::Garbage(garbage_bytes(rng)));
    // After garbage anything but a wrong value may happen: the server
    // closes (invalid input), or the garbage is the valid start of a
    // large entity and the server waits for the rest (incomplete input is
    // not an error), so our call is never answered.
    let want = rng.value(2);
    shared.stats.add("calls.started");
    let after = timeout(Duration::from_secs(10), gw.call("echo", (want.clone(),))).await;
    match after {
        Ok(Ok(v)) if v == want => shared.stats.add("calls.ok.after_garbage"),
        Ok(Ok(v)) => shared.stats.fail(
            "wrong_result",
            format!("after garbage: echo returned {v:?}"),
        ),
        Ok(Err(CallError::Link(_))) => shared.stats.add("calls.failed.garbage"),
        Ok(Err(_)) => shared.stats.add("calls.failed.garbage_call_error"),
        Err(_) => shared.stats.add("calls.failed.garbage_unanswered"),
    }
    let closed = timeout(Duration::from_secs(10), ctl.peer_closed())
        .await
        .is_ok();
    if closed {
        "closed_by_server"
    } else {
        "still_open"
    }
}

/// Random bytes; half the time led by `FF`, a type code VEC never uses
/// (`docs/protocol/vec.md` §4).
pub fn garbage_bytes(rng: &mut Rng) -> Bytes {
    let mut b = vec![0; rng.range(1, 512) as usize];
    rng.fill(&mut b);
    if rng.chance(0.5) {
        b[0] = 0xFF;
    }
    Bytes::from(b)
}
