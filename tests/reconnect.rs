//! `ReconnectingClient` against an in-process server that is stopped and
//! started again on the same port: calls in flight when the link dies fail
//! with `LinkLost` (never retried), later calls go on a new link, a
//! reconnection gives up after its attempts, and an answer from the server
//! ("no such path") is not retried. The backoff schedule itself is tested
//! in `src/reconnect.rs` (no clocks here either: every wait is bounded by a
//! timeout, nothing asserts on elapsed time).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use versile::client::ClientError;
use versile::demo::SimpleGateway;
use versile::reconnect::{Attempts, Backoff, ReconnectError, ReconnectingClient};
use versile::vol::LinkError;
use versile::{Client, ClientConfig, LinkOptions, Server, StopLinks, Value};

mod support;
use support::servers::serve_plain_on;

const T: Duration = Duration::from_secs(20);

/// The PLAIN stack serving the demo gateway on `port` (0: any).
async fn serve_on(port: u16) -> Server {
    let addr = format!("127.0.0.1:{port}");
    serve_plain_on(&addr, SimpleGateway::new, LinkOptions::default()).await
}

/// Short delays: the tests count attempts, they do not wait for real.
fn quick(attempts: Attempts) -> Backoff {
    Backoff::default()
        .initial_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(50))
        .max_attempts(attempts)
}

fn client(addr: SocketAddr, path: &str, backoff: Backoff) -> ReconnectingClient {
    let vri = format!("vop://{addr}/{path}").parse().expect("vri");
    ReconnectingClient::with_backoff(Client::new(ClientConfig::insecure()), vri, backoff)
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(T, f).await.expect("timed out")
}

async fn stop(server: Server, links: StopLinks) -> u16 {
    let port = server.local_addr().port();
    server.stop(links);
    assert!(server.wait_drained(T).await, "server did not drain");
    port
}

#[tokio::test]
async fn forced_stop_fails_calls_in_flight_and_the_restarted_server_gets_new_calls() {
    let server = serve_on(0).await;
    let addr = server.local_addr();
    let rc = client(addr, "", quick(Attempts::AtMost(20)));
    assert_eq!(
        bounded(rc.call("echo", (1,))).await.unwrap(),
        Value::from(1)
    );
    let session = bounded(rc.session()).await.unwrap();
    let old = session.link().id();

    // Two calls in flight: a long one, and one queued behind it.
    let mut slow = Box::pin(session.call("sleep", (30_000,)));
    assert!((&mut slow).now_or_never().is_none(), "sent, not answered");
    let mut echo = Box::pin(session.call("echo", ("in flight",)));
    assert!((&mut echo).now_or_never().is_none());

    let port = stop(server, StopLinks::Force).await;
    for (name, outcome) in [
        ("sleep", bounded(slow).await),
        ("echo", bounded(echo).await),
    ] {
        match outcome {
            Err(ReconnectError::LinkLost { link, .. }) => assert_eq!(link, old, "{name}"),
            other => panic!("{name}: expected LinkLost, got {other:?}"),
        }
    }
    assert!(rc.current_link().is_none(), "the lost link is retired");

    let _server = serve_on(port).await;
    assert_eq!(
        bounded(rc.call("echo", ("after",))).await.unwrap(),
        Value::from("after")
    );
    let new = rc.current_link().expect("connected").id();
    assert_ne!(new, old, "later calls go on a new link");
}

#[tokio::test]
async fn graceful_stop_answers_running_calls_then_fails_later_ones_cleanly() {
    let server = serve_on(0).await;
    let rc = client(server.local_addr(), "", quick(Attempts::AtMost(20)));
    let session = bounded(rc.session()).await.unwrap();
    let old = session.link().id();

    // `sleep` is running on the server once `echo`, sent after it on the
    // same link, has been answered (the server reads a link in order).
    let mut slow = Box::pin(session.call("sleep", (1_000,)));
    assert!((&mut slow).now_or_never().is_none());
    assert_eq!(
        bounded(session.call("echo", (2,))).await.unwrap(),
        Value::from(2)
    );
    server.stop(StopLinks::Graceful);
    assert_eq!(bounded(slow).await.unwrap(), Value::from(1_000u64));

    // The server stopped reading when the drain began and half-closed after
    // its last answer: a call now is lost with an orderly close, not run.
    match bounded(session.call("echo", (3,))).await {
        Err(ReconnectError::LinkLost {
            link,
            source: LinkError::Closed,
        }) => assert_eq!(link, old),
        other => panic!("expected LinkLost(Closed), got {other:?}"),
    }
    assert!(server.wait_drained(T).await);
    let port = server.local_addr().port();
    drop(server);

    let _server = serve_on(port).await;
    assert_eq!(
        bounded(rc.call("echo", (4,))).await.unwrap(),
        Value::from(4)
    );
    assert_ne!(rc.current_link().unwrap().id(), old);
}

#[tokio::test]
async fn reconnection_gives_up_after_its_attempts_and_waiting_callers_share_it() {
    // A listener that hangs up on every connection: each attempt is one
    // accept, and fails in the VOP handshake (retryable).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let hang_up = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    let rc = client(addr, "", quick(Attempts::AtMost(3)));
    let calls: Vec<_> = (0..4)
        .map(|i| {
            let rc = rc.clone();
            tokio::spawn(async move { rc.call("echo", (i,)).await })
        })
        .collect();
    for call in calls {
        match bounded(call).await.unwrap() {
            Err(ReconnectError::Connect { attempts, source }) => {
                assert_eq!(attempts, 3, "{source}");
            }
            other => panic!("expected Connect, got {other:?}"),
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "four callers, one reconnection of three attempts"
    );
    hang_up.abort();
    let _ = hang_up.await;

    // Giving up is not for good: the next call tries again, and succeeds
    // once a server is back on the port.
    let _server = serve_on(addr.port()).await;
    assert_eq!(
        bounded(rc.call("echo", (5,))).await.unwrap(),
        Value::from(5)
    );
}

#[tokio::test]
async fn attempts_on_a_closed_port_end_in_a_connect_error() {
    let port = stop(serve_on(0).await, StopLinks::Force).await;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let rc = client(addr, "", quick(Attempts::AtMost(2)));
    match bounded(rc.call("echo", (1,))).await {
        Err(ReconnectError::Connect { attempts, source }) => {
            assert_eq!(attempts, 2);
            assert!(matches!(*source, ClientError::Connect { .. }), "{source}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn a_path_the_server_does_not_resolve_is_not_retried() {
    let server = serve_on(0).await;
    let rc = client(server.local_addr(), "no/such/", quick(Attempts::Unlimited));
    match bounded(rc.call("echo", (1,))).await {
        Err(ReconnectError::Connect { attempts, source }) => {
            assert_eq!(attempts, 1);
            assert!(
                matches!(*source, ClientError::PathNotResolved(_)),
                "{source}"
            );
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    // A method error on a live link is the peer's answer, not a lost link.
    let adder = client(
        server.local_addr(),
        "math/adder/",
        quick(Attempts::AtMost(1)),
    );
    assert_eq!(
        bounded(adder.call("add", (2,))).await.unwrap(),
        Value::from(2)
    );
    match bounded(adder.call("add", ("x",))).await {
        Err(ReconnectError::Call(_)) => {}
        other => panic!("expected Call, got {other:?}"),
    }
    assert!(adder.current_link().is_some(), "the link stays");
    stop(server, StopLinks::Force).await;
}
