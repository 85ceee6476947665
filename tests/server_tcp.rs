//! The server over real loopback TCP: resolution, lifecycle, shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tower::ServiceBuilder;
use versile::client::{ClientError, Resolved};
use versile::demo::SimpleGateway;
use versile::runtime::CloseReason;
use versile::{
    CallError, Client, ClientConfig, GatewayService, Server, StopLinks, Value, VopLayer,
};

mod support;
use support::servers::{echo_and_slow_gateway, serve_plain};

const T: Duration = Duration::from_secs(10);

async fn resolve(server: &Server, path: &str) -> Result<Resolved, ClientError> {
    let vri = format!("vop://{}/{path}", server.local_addr())
        .parse()
        .unwrap();
    tokio::time::timeout(T, Client::new(ClientConfig::insecure()).resolve(&vri))
        .await
        .expect("resolve timed out")
}

#[tokio::test]
async fn resolve_paths_and_queries() {
    let server = serve_plain(SimpleGateway::new).await;
    let r = resolve(&server, "math/adder/").await.unwrap();
    let adder = r.value.as_remote().unwrap().clone();
    assert_eq!(adder.call("add", (5,)).await.unwrap(), Value::from(5));
    // A second resolution gets a fresh Adder.
    let r2 = resolve(&server, "math/adder/add?int:7").await.unwrap();
    assert_eq!(r2.value, Value::from(7));
    assert_eq!(adder.call("result", ()).await.unwrap(), Value::from(5));
    // Bad path.
    let err = resolve(&server, "no/such/").await.unwrap_err();
    assert!(matches!(err, ClientError::PathNotResolved(_)), "{err}");
    // A method on the gateway itself.
    let r3 = resolve(&server, "echo?hello").await.unwrap();
    assert_eq!(r3.value, Value::from("hello"));
}

#[tokio::test]
async fn releasing_everything_closes_the_link() {
    let server = serve_plain(SimpleGateway::new).await;
    let r = resolve(&server, "text/echo/").await.unwrap();
    let echo = r.value.as_remote().unwrap().clone();
    assert_eq!(echo.call("echo", ("x",)).await.unwrap(), Value::from("x"));
    drop(echo);
    drop(r.value);
    // docs/protocol/vol.md §5.3: both tables empty → both sides close.
    let reason = tokio::time::timeout(T, r.link.closed()).await.unwrap();
    assert!(
        matches!(reason, CloseReason::Idle | CloseReason::PeerClosed),
        "{reason:?}"
    );
    tokio::time::timeout(T, async {
        while !server.links().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("server link registry drains");
}

#[tokio::test]
async fn graceful_stop_lets_running_calls_finish() {
    let server = serve_plain(echo_and_slow_gateway).await;
    let r = resolve(&server, "").await.unwrap();
    let gw = r.value.as_remote().unwrap().clone();
    assert_eq!(server.links().len(), 1);
    let call = tokio::spawn({
        let gw = gw.clone();
        async move { gw.call("slow", (300u64, "done")).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop(StopLinks::Graceful);
    // The in-flight call completes (docs/protocol/vol.md §7.2 step 4).
    let v = tokio::time::timeout(T, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(v, Value::from("done"));
    tokio::time::timeout(T, server.drained()).await.unwrap();
    assert_eq!(server.links().len(), 0);
    // No new connections.
    assert!(resolve(&server, "").await.is_err());
}

#[tokio::test]
async fn forced_stop_fails_pending_calls() {
    let server = serve_plain(echo_and_slow_gateway).await;
    let r = resolve(&server, "").await.unwrap();
    let gw = r.value.as_remote().unwrap().clone();
    let call = tokio::spawn({
        let gw = gw.clone();
        async move { gw.call("slow", (5000u64, "never")).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop(StopLinks::Force);
    let err = tokio::time::timeout(T, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, CallError::Link(_)), "{err:?}");
    tokio::time::timeout(T, server.drained()).await.unwrap();
    assert_eq!(server.links().len(), 0);
}

#[tokio::test]
async fn many_calls_in_flight_on_one_link() {
    let server = serve_plain(echo_and_slow_gateway).await;
    let r = resolve(&server, "").await.unwrap();
    let gw = r.value.as_remote().unwrap().clone();
    // A slow call does not hold up fast ones (each call is its own task).
    let slow = tokio::spawn({
        let gw = gw.clone();
        async move { gw.call("slow", (500u64, "slow")).await }
    });
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        let gw = gw.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let v = gw.call("echo", (i,)).await.unwrap();
            assert_eq!(v, Value::from(i));
            done.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        tokio::time::timeout(T, t).await.unwrap().unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 200);
    assert!(
        !slow.is_finished(),
        "fast calls finished before the slow one"
    );
    assert_eq!(
        tokio::time::timeout(T, slow)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        Value::from("slow")
    );
}

#[tokio::test]
async fn no_transport_is_a_build_error() {
    assert!(VopLayer::builder().build().is_err());
    // The default offers VTS; with nothing offered, connecting fails early.
    let client = Client::new(ClientConfig::default().without_transports());
    let err = client.connect("127.0.0.1:1").await.unwrap_err();
    assert!(matches!(err, ClientError::NoTransport), "{err}");
}

#[tokio::test]
async fn silent_client_is_dropped_after_the_line_timeout() {
    use tokio::io::AsyncReadExt;
    let layer = VopLayer::builder()
        .allow_insecure()
        .line_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(GatewayService::new(SimpleGateway::new));
    let server = Server::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), svc).unwrap();
    let mut silent = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    // Closed without a byte sent (docs/protocol/vop-service.md §2.6), well within a second.
    let n = tokio::time::timeout(Duration::from_secs(2), silent.read(&mut buf))
        .await
        .expect("closed at the line timeout")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // Others are served meanwhile.
    let r = resolve(&server, "text/echo/").await.unwrap();
    assert!(r.value.as_remote().is_some());
}

#[tokio::test]
async fn init_callbacks_report_success_and_failure() {
    use std::sync::atomic::AtomicUsize;
    use tokio::io::AsyncWriteExt;
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let svc = ServiceBuilder::new().layer(VopLayer::insecure()).service(
        GatewayService::new(SimpleGateway::new)
            .on_established({
                let ok = ok.clone();
                move |_, _| {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            })
            .on_handshake_failed({
                let failed = failed.clone();
                move |_, _| {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            }),
    );
    let server = Server::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), svc).unwrap();
    // A client that gives up after the VOP handshake (docs/protocol/vop-service.md §5.3 step 7).
    let mut raw = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    raw.write_all(b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(raw);
    let r = resolve(&server, "text/echo/").await.unwrap();
    tokio::time::timeout(T, async {
        while failed.load(Ordering::SeqCst) == 0 || ok.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both callbacks fire");
    assert_eq!(ok.load(Ordering::SeqCst), 1);
    assert_eq!(failed.load(Ordering::SeqCst), 1);
    drop(r);
}
