//! The defaults of [`StackConfig`] that let `versile serve` face the
//! internet (issue #7), against an in-process server on 127.0.0.1:
//!
//! * one address gets at most `DEFAULT_MAX_CONNECTIONS_PER_IP` links at
//!   once; the next is refused, a freed slot is reusable;
//! * every link asks its peer for VOL keep-alive (`docs/protocol/vol.md` §8): a peer that
//!   completes the handshake and then goes silent is closed, while an idle
//!   client that keeps its grant stays;
//! * PROXY protocol without trusted balancers does not build (the CLI side
//!   is in `tests/serve_ops.rs`);
//! * `versile serve` counts a keep-alive expiry in its metrics.

mod support;

use std::time::Duration;

use support::calls::plain_client;
use support::http::{http_get, metric};
use support::procs::VersileServe;
use support::raw_peer::{Closed, RawPeer};
use support::servers::serve_stack;
use versile::demo::SimpleGateway;
use versile::server::{StackConfig, StackConfigError};
use versile::{Client, ClientConfig, GatewayService, LinkShutdown, Value, VopLayer};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_stack_refuses_the_next_connection_from_a_full_address() {
    let cap = StackConfig::DEFAULT_MAX_CONNECTIONS_PER_IP as usize;
    let server = serve_stack(&StackConfig::default(), SimpleGateway::new);
    let addr = server.local_addr().to_string();
    let mut links = Vec::new();
    for i in 0..cap {
        let (link, gw) = tokio::time::timeout(T, plain_client().connect(&addr))
            .await
            .expect("connect timed out")
            .unwrap_or_else(|e| panic!("link {i} of {cap}: {e}"));
        links.push((link, gw));
    }
    let over = tokio::time::timeout(T, plain_client().connect(&addr))
        .await
        .expect("refusal timed out");
    assert!(over.is_err(), "link {} from one address admitted", cap + 1);
    // The links inside the cap still work.
    let v = links[0].1.call("echo", (1,)).await.expect("echo");
    assert_eq!(v, Value::from(1));

    // A closed link frees its slot (the server sees the close a moment
    // after the client does: retry briefly).
    let (link, _) = links.pop().unwrap();
    link.shutdown(LinkShutdown::Graceful);
    tokio::time::timeout(T, link.closed()).await.unwrap();
    let mut again = None;
    for _ in 0..100 {
        if let Ok(Ok(l)) = tokio::time::timeout(T, plain_client().connect(&addr)).await {
            again = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "a freed slot was not reusable");
    server.stop(versile::StopLinks::Force);
    let _ = tokio::time::timeout(T, server.drained()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_stack_requests_keep_alive() {
    let server = serve_stack(&StackConfig::default(), SimpleGateway::new);
    let peer = tokio::time::timeout(T, RawPeer::handshake(server.local_addr()))
        .await
        .expect("handshake");
    assert_eq!(
        peer.keep_alive_requested,
        Some(StackConfig::DEFAULT_KEEP_ALIVE.as_millis() as i64)
    );
    server.stop(versile::StopLinks::Force);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_closed_and_an_idle_live_client_is_not() {
    // Short values so the test is quick: request 200 ms, expire after
    // 1.5 × 200 ms of silence.
    let stack = StackConfig {
        keep_alive: Some(Duration::from_millis(200)),
        ..StackConfig::default()
    };
    let server = serve_stack(&stack, SimpleGateway::new);

    // A live client that grants what is asked keeps the link alive with
    // its own traffic while idle (`docs/protocol/vol.md` §8: NOTIFY_DEREF (0, 0)).
    let mut config = ClientConfig::insecure();
    config.link.protocol.keep_alive_min_send = Duration::from_millis(100);
    let (live, gw) = tokio::time::timeout(
        T,
        Client::new(config).connect(&server.local_addr().to_string()),
    )
    .await
    .expect("connect timed out")
    .expect("live client");

    // The dead peer: completes the handshake (granting 200 ms), answers
    // one call, then never sends another byte.
    let mut dead = tokio::time::timeout(T, RawPeer::handshake(server.local_addr()))
        .await
        .expect("handshake");
    assert_eq!(dead.keep_alive_requested, Some(200));
    match dead.wait_closed(T).await {
        Closed::Yes(_) => {}
        Closed::StillOpen(b) => panic!("silent peer still open after {T:?} (got {b:02X?})"),
    }

    // The idle live client outlived many expiry periods of the dead one.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(!live.is_closed(), "idle live client closed");
    let v = gw.call("echo", ("alive",)).await.expect("echo");
    assert_eq!(v, Value::from("alive"));
    server.stop(versile::StopLinks::Force);
}

#[test]
fn proxy_protocol_without_trusted_balancers_does_not_build() {
    let stack = StackConfig {
        proxy_protocol: true,
        ..StackConfig::default()
    };
    let r = stack.build(
        VopLayer::insecure(),
        GatewayService::new(SimpleGateway::new),
    );
    assert_eq!(r.err(), Some(StackConfigError::UntrustedProxy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versile_serve_closes_and_counts_a_silent_peer() {
    let mut server = VersileServe::start_insecure_with_metrics(&["--keep-alive", "0.2"]);
    let addr: std::net::SocketAddr = server.vop_addr.clone().parse().expect("address");
    let metrics = server.metrics().to_owned();
    let mut dead = tokio::time::timeout(T, RawPeer::handshake(addr))
        .await
        .expect("handshake");
    assert_eq!(dead.keep_alive_requested, Some(200));
    assert!(matches!(dead.wait_closed(T).await, Closed::Yes(_)));
    let series = "versile_limits_exceeded_total{limit=\"keep_alive_expired\"}";
    let mut seen = 0.0;
    for _ in 0..100 {
        let m = metrics.clone();
        let (_, page) = tokio::task::spawn_blocking(move || http_get(&m, "/metrics"))
            .await
            .unwrap();
        seen = metric(&page, series);
        if seen >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, 1.0, "{series}");
    server.signal("-TERM");
    let (status, stderr) = server.wait_exit(T);
    assert!(status.success(), "{status}: {stderr}");
}
