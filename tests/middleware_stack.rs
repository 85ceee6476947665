//! The middleware layers composed in front of a real server over loopback:
//! a silent or trickling connection is dropped at the handshake deadline
//! while normal clients keep working; a client over the per-IP limit is
//! refused while existing links keep working; an idle link is closed
//! gracefully.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use versile::demo::SimpleGateway;
use versile::runtime::CloseReason;
use versile::{GatewayService, LinkShutdown, Server, Value, VopLayer};
use versile_middleware::deadline::HandshakeDeadlineLayer;
use versile_middleware::filter::HostFilterLayer;
use versile_middleware::idle::IdleTimeoutLayer;
use versile_middleware::ipnet::IpNet;
use versile_middleware::per_ip::PerIpLimitLayer;

mod support;
use support::calls::{echo, try_connect_plain};
use support::raw_peer::time_until_closed;

const T: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_millis(600);

async fn start(max_per_ip: u32) -> Server {
    let svc = ServiceBuilder::new()
        .layer(HostFilterLayer::new().allow("127.0.0.0/8".parse::<IpNet>().unwrap()))
        .layer(
            PerIpLimitLayer::builder()
                .max_concurrent(max_per_ip)
                .build(),
        )
        .layer(HandshakeDeadlineLayer::new(DEADLINE))
        .layer(VopLayer::insecure())
        .service(GatewayService::new(SimpleGateway::new));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::serve(listener, svc).unwrap()
}

#[tokio::test]
async fn silent_and_trickling_connections_are_dropped_at_the_deadline() {
    let server = start(16).await;

    let (_link, gw) = try_connect_plain(server.local_addr())
        .await
        .expect("client");
    assert_eq!(echo(&gw, "before").await, Value::from("before"));

    let silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let silent = tokio::spawn(time_until_closed(silent));

    let mut trickle = TcpStream::connect(server.local_addr()).await.unwrap();
    let trickler = tokio::spawn(async move {
        let start = Instant::now();
        // A valid VOP hello, one byte every 50 ms: never finishes in time.
        for b in b"vop_call_vec_plain\n".iter().cycle() {
            if trickle.write_all(&[*b]).await.is_err() || start.elapsed() > T {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        start.elapsed()
    });

    let silent_after = silent.await.unwrap();
    assert!(
        silent_after >= DEADLINE - Duration::from_millis(100),
        "{silent_after:?}"
    );
    assert!(silent_after < Duration::from_secs(5), "{silent_after:?}");
    let trickle_after = tokio::time::timeout(T, trickler).await.unwrap().unwrap();
    assert!(trickle_after < Duration::from_secs(5), "{trickle_after:?}");

    // Dropped connections leave nothing in the server's link registry.
    assert_eq!(server.links().len(), 1);
    // The established link outlived the deadline several times over.
    assert_eq!(echo(&gw, "after").await, Value::from("after"));
    let (_link2, gw2) = try_connect_plain(server.local_addr())
        .await
        .expect("a new client");
    assert_eq!(echo(&gw2, "new").await, Value::from("new"));
    assert!(server.shutdown(T).await);
}

#[tokio::test]
async fn a_client_over_the_per_ip_limit_is_refused() {
    let server = start(2).await;
    let (l1, gw1) = try_connect_plain(server.local_addr()).await.expect("first");
    let (_l2, gw2) = try_connect_plain(server.local_addr())
        .await
        .expect("second");

    let refused = try_connect_plain(server.local_addr()).await;
    assert!(refused.is_err(), "third link admitted");

    // Existing links are unaffected.
    assert_eq!(echo(&gw1, "one").await, Value::from("one"));
    assert_eq!(echo(&gw2, "two").await, Value::from("two"));

    // Closing one frees a slot.
    l1.shutdown(LinkShutdown::Forced);
    tokio::time::timeout(T, l1.closed()).await.unwrap();
    let deadline = Instant::now() + T;
    let (_l3, gw3) = loop {
        // The server notices the close a moment after the client does.
        match try_connect_plain(server.local_addr()).await {
            Ok(x) => break x,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("slot never freed: {e}"),
        }
    };
    assert_eq!(echo(&gw3, "three").await, Value::from("three"));
    assert!(server.shutdown(T).await);
}

#[tokio::test]
async fn an_idle_link_is_closed_gracefully() {
    let svc = ServiceBuilder::new()
        .layer(IdleTimeoutLayer::new(Duration::from_millis(500)))
        .layer(VopLayer::insecure())
        .service(GatewayService::new(SimpleGateway::new));
    let server = Server::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), svc).unwrap();
    let (link, gw) = try_connect_plain(server.local_addr())
        .await
        .expect("client");
    // Calls keep it open past the timeout.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(echo(&gw, "x").await, Value::from("x"));
    }
    let reason = tokio::time::timeout(T, link.closed())
        .await
        .expect("closed");
    assert!(
        !matches!(reason, CloseReason::Error(_)),
        "graceful close expected, got {reason:?}"
    );
    assert!(server.shutdown(T).await);
}
