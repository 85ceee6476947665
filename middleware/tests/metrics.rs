//! MetricsLayer: connections, rejections by reason, handshake histogram,
//! links and the call/byte counters, with metrics-util's debugging
//! recorder. One test (the recorder is process-global).

mod common;

use std::time::Duration;

use common::*;
use ipnet::IpNet;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use versile_middleware::deadline::HandshakeDeadlineLayer;
use versile_middleware::filter::HostFilterLayer;
use versile_middleware::metrics::{names, MetricsLayer};
use versile_middleware::per_ip::PerIpLimitLayer;

fn value(snap: &Snapshotter, name: &str, label: Option<(&str, &str)>) -> Option<DebugValue> {
    snap.snapshot()
        .into_vec()
        .into_iter()
        .find(|(k, _, _, _)| {
            let key = k.key();
            key.name() == name
                && label
                    .is_none_or(|(l, v)| key.labels().any(|lab| lab.key() == l && lab.value() == v))
        })
        .map(|(_, _, _, v)| v)
}

fn counter(snap: &Snapshotter, name: &str, label: Option<(&str, &str)>) -> u64 {
    match value(snap, name, label) {
        Some(DebugValue::Counter(n)) => n,
        None => 0,
        other => panic!("{name}: {other:?}"),
    }
}

fn gauge(snap: &Snapshotter, name: &str) -> f64 {
    match value(snap, name, None) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        None => 0.0,
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn connections_rejections_handshakes_and_traffic_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder.install().expect("first recorder");

    let svc = ServiceBuilder::new()
        .layer(MetricsLayer::new())
        .layer(HostFilterLayer::new().deny("192.0.2.0/24".parse::<IpNet>().unwrap()))
        .layer(PerIpLimitLayer::builder().max_concurrent(1).build())
        .layer(HandshakeDeadlineLayer::new(Duration::from_secs(10)))
        .service(service_fn(|c| toy(c, OnClose::Honour)));

    // Refused by the filter.
    let (c, _k) = conn("192.0.2.1:1");
    assert!(svc.clone().oneshot(c).await.is_err());

    // A link: established after 2 s, two calls, one failed.
    let (c, client) = conn("198.51.100.1:1");
    let mut client = BufReader::new(client);
    let link = tokio::spawn(svc.clone().oneshot(c));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut echo = String::new();
    for line in ["hello\n", "call\n", "fail\n"] {
        client.get_mut().write_all(line.as_bytes()).await.unwrap();
        echo.clear();
        client.read_line(&mut echo).await.unwrap();
    }
    tokio::task::yield_now().await;
    // (A snapshot drains histograms: look at it first.)
    match value(&snap, names::HANDSHAKE_SECONDS, Some(("transport", "toy"))) {
        Some(DebugValue::Histogram(v)) => {
            assert_eq!(v.len(), 1);
            assert!((v[0].into_inner() - 2.0).abs() < 0.01, "{v:?}");
        }
        other => panic!("histogram: {other:?}"),
    }
    assert_eq!(gauge(&snap, names::ACTIVE), 1.0);
    assert_eq!(gauge(&snap, names::LINKS_ACTIVE), 1.0);
    // Counted while the link runs.
    assert_eq!(counter(&snap, names::CALLS_RECEIVED, None), 2);
    assert_eq!(counter(&snap, names::CALL_ERRORS, None), 1);
    assert_eq!(counter(&snap, names::BYTES_RECEIVED, None), 16);
    assert_eq!(counter(&snap, names::BYTES_SENT, None), 16);

    // Refused by the per-IP limit while the link is open.
    let (c, _k) = conn("198.51.100.1:2");
    assert!(svc.clone().oneshot(c).await.is_err());

    // Timed out in the handshake.
    let (c, _k) = conn("203.0.113.1:1");
    assert!(svc.clone().oneshot(c).await.is_err());

    drop(client);
    tokio::time::timeout(BOUND, link)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert_eq!(counter(&snap, names::ACCEPTED, None), 4);
    assert_eq!(
        counter(&snap, names::REJECTED, Some(("reason", "host_filter"))),
        1
    );
    assert_eq!(
        counter(
            &snap,
            names::REJECTED,
            Some(("reason", "per_ip_concurrent"))
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            names::REJECTED,
            Some(("reason", "handshake_timeout"))
        ),
        1
    );
    assert_eq!(counter(&snap, names::FAILED, None), 0);
    assert_eq!(gauge(&snap, names::ACTIVE), 0.0);
    assert_eq!(gauge(&snap, names::LINKS_ACTIVE), 0.0);
}
