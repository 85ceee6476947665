//! A graceful drain must not destroy answers it has already sent.
//!
//! The server stops reading when a drain begins (`docs/protocol/vol.md` §7.2), so
//! calls the client sends after that stay unread in the server's socket.
//! Closing a socket with unread input makes the kernel reset the
//! connection and throw away output that has not reached the peer yet:
//! the answer to a call that did run would be lost, and the client would
//! see a reset instead of an orderly close. On loopback everything sent is
//! delivered at once, so a relay that holds back the server's output
//! stands in for a slow network: the answer is still on its way when the
//! server finishes the drain.
//!
//! ```text
//! client ──▶ relay (server→client paused) ──▶ server: blob(1 MiB) running
//!                                              stop(Graceful)
//! client ── echo("late") ──▶ unread by the server
//!                                              blob answers, server FIN
//! relay released ──▶ the client must get the whole blob, then an orderly close
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use versile::vol::LinkError;
use versile::{
    CallError, GatewayService, LocalObject, ObjectBuilder, Server, StopLinks, Value, VopLayer,
};

mod support;
use support::calls::connect_plain;

const T: Duration = Duration::from_secs(20);
const BLOB: usize = 1 << 20;

/// Forward one connection to `upstream`; the server→client direction
/// moves only while `open` is true. Its socket towards the server has a
/// small receive buffer, so held-back output stays in the server's kernel.
async fn relay(listener: TcpListener, upstream: SocketAddr, mut open: watch::Receiver<bool>) {
    let Ok((client, _)) = listener.accept().await else {
        return;
    };
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    let Ok(server) = sock.connect(upstream).await else {
        return;
    };
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
        let _ = server_wr.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if open.wait_for(|o| *o).await.is_err() {
            break;
        }
        // A pause also cancels the read in progress (cancel-safe).
        let read = tokio::select! {
            biased;
            _ = open.wait_for(|o| !*o) => continue,
            r = server_rd.read(&mut buf) => r,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client_wr.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = client_wr.shutdown().await;
    let _ = tokio::time::timeout(T, up).await;
}

/// A [`relay`] to `upstream` on an ephemeral loopback port: its address,
/// the switch of its server→client direction (open at first) and its task.
async fn start_relay(upstream: SocketAddr) -> (SocketAddr, watch::Sender<bool>, JoinHandle<()>) {
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let (open, gate) = watch::channel(true);
    (front_addr, open, tokio::spawn(relay(front, upstream, gate)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_delivers_answers_still_in_flight_and_closes_in_order() {
    let running = Arc::new(Notify::new());
    let answered = Arc::new(Notify::new());
    let (r, a) = (running.clone(), answered.clone());
    let gateway = move || -> LocalObject {
        let (r, a) = (r.clone(), a.clone());
        ObjectBuilder::new(())
            .method("blob", move |_, call| {
                let (r, a) = (r.clone(), a.clone());
                async move {
                    let (n, ms): (u64, u64) = call.into_args()?;
                    r.notify_one();
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    a.notify_one();
                    Ok(Value::from("x".repeat(n as usize)))
                }
            })
            .method("echo", |_, call| async move {
                let (v,): (Value,) = call.into_args()?;
                Ok(v)
            })
            .build()
    };
    let svc = tower::ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(gateway));
    // Send buffers large enough that the whole answer is handed to the
    // kernel: the drain then completes while it is still undelivered.
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .buffer_size(4 * BLOB)
        .serve(svc)
        .expect("serve");

    let (front_addr, open, relay) = start_relay(server.local_addr()).await;

    let (link, gw) = connect_plain(front_addr).await;
    open.send_replace(false);

    let blob = tokio::spawn({
        let gw = gw.clone();
        async move { gw.call("blob", (BLOB as u64, 300u64)).await }
    });
    tokio::time::timeout(T, running.notified())
        .await
        .expect("blob runs");
    server.stop(StopLinks::Graceful);
    let late = tokio::spawn({
        let gw = gw.clone();
        async move { gw.call("echo", ("late",)).await }
    });
    tokio::time::timeout(T, answered.notified())
        .await
        .expect("blob answered");
    // Give the server time to write the answer, half-close and end the
    // link (not an assertion: on a slow machine the test only gets weaker).
    tokio::time::sleep(Duration::from_millis(500)).await;
    open.send_replace(true);

    let blob = tokio::time::timeout(T, blob).await.expect("blob").unwrap();
    match blob {
        Ok(v) => assert_eq!(v, Value::from("x".repeat(BLOB)), "the whole answer"),
        Err(e) => panic!("the answer sent before the close was lost: {e}"),
    }
    match tokio::time::timeout(T, late).await.expect("late").unwrap() {
        Err(CallError::Link(LinkError::Closed)) => {}
        other => panic!("the late call must end with an orderly close: {other:?}"),
    }
    tokio::time::timeout(T, link.closed())
        .await
        .expect("link closes");
    assert!(server.wait_drained(T).await, "server drained");
    let _ = tokio::time::timeout(T, relay).await;
}

/// The wait for the peer's close is bounded by the drain deadline: a peer
/// that never closes (here it never even sees our FIN, held back by the
/// relay) is let go, and the server drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_closes_is_let_go_at_the_drain_deadline() {
    let options = versile::LinkOptions {
        drain_timeout: Duration::from_millis(300),
        ..versile::LinkOptions::default()
    };
    let svc = tower::ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(|| ObjectBuilder::new(()).build()).with_options(options));
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .serve(svc)
        .expect("serve");
    let (front_addr, open, relay) = start_relay(server.local_addr()).await;
    let (link, _gw) = connect_plain(front_addr).await;
    open.send_replace(false);

    server.stop(StopLinks::Graceful);
    assert!(
        server.wait_drained(T).await,
        "the server's link waited for a close that never came"
    );
    assert!(!link.is_closed(), "the client never saw the FIN");
    open.send_replace(true);
    tokio::time::timeout(T, link.closed())
        .await
        .expect("the client sees the close once released");
    let _ = tokio::time::timeout(T, relay).await;
}
