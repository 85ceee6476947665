//! PerIpLimitLayer: concurrent and rate limits per address, bounded table.

mod common;

use std::time::Duration;

use common::*;
use futures::FutureExt;
use tokio::io::AsyncWriteExt;
use tower::{service_fn, Layer, Service, ServiceExt};
use versile_middleware::per_ip::{PerIpLimitLayer, PerIpReason, PerIpRejected};
use versile_middleware::SimpleConnection;

fn instant(
    conn: SimpleConnection,
) -> futures::future::Ready<Result<(), versile_middleware::BoxError>> {
    drop(conn);
    futures::future::ready(Ok(()))
}

#[tokio::test]
async fn concurrent_limit_per_address() {
    let layer = PerIpLimitLayer::builder().max_concurrent(2).build();
    let svc = layer.layer(service_fn(hold));

    let (c1, k1) = conn("192.0.2.1:1000");
    let (c2, k2) = conn("192.0.2.1:1001");
    let h1 = tokio::spawn(svc.clone().oneshot(c1));
    let h2 = tokio::spawn(svc.clone().oneshot(c2));
    tokio::task::yield_now().await;
    assert_eq!(layer.active("192.0.2.1".parse().unwrap()), 2);

    // A third from the same address is refused at once ...
    let (c3, _k3) = conn("192.0.2.1:1002");
    let err = svc.clone().oneshot(c3).await.unwrap_err();
    let e = downcast::<PerIpRejected>(&err);
    assert_eq!(e.reason, PerIpReason::TooManyConnections);
    // ... while another address is not affected.
    let (c4, k4) = conn("192.0.2.2:1000");
    let h4 = tokio::spawn(svc.clone().oneshot(c4));

    // Closing one connection frees its slot.
    drop(k1);
    tokio::time::timeout(BOUND, h1)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(layer.active("192.0.2.1".parse().unwrap()), 1);
    let (c5, k5) = conn("192.0.2.1:1003");
    let h5 = tokio::spawn(svc.clone().oneshot(c5));
    tokio::task::yield_now().await;
    assert!(!h5.is_finished());

    drop((k2, k4, k5));
    for h in [h2, h4, h5] {
        tokio::time::timeout(BOUND, h)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    assert_eq!(layer.active("192.0.2.1".parse().unwrap()), 0);
}

#[tokio::test]
async fn a_dropped_connection_future_releases_its_slot() {
    let layer = PerIpLimitLayer::builder().max_concurrent(1).build();
    let mut svc = layer.layer(service_fn(hold));
    let (c1, _k1) = conn("192.0.2.1:1000");
    let fut = svc.ready().await.unwrap().call(c1);
    assert_eq!(layer.active("192.0.2.1".parse().unwrap()), 1);
    drop(fut);
    assert_eq!(layer.active("192.0.2.1".parse().unwrap()), 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_refills() {
    let layer = PerIpLimitLayer::builder().rate(1.0, 2).build();
    let svc = layer.layer(service_fn(instant));
    let try_one = |port: u16| {
        let (c, _k) = conn(&format!("198.51.100.9:{port}"));
        svc.clone().oneshot(c)
    };
    // The burst.
    try_one(1).await.unwrap();
    try_one(2).await.unwrap();
    let err = try_one(3).await.unwrap_err();
    assert_eq!(
        downcast::<PerIpRejected>(&err).reason,
        PerIpReason::RateLimited
    );
    // Half a token is not enough.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert!(try_one(4).await.is_err());
    // One token a second.
    tokio::time::advance(Duration::from_millis(500)).await;
    try_one(5).await.unwrap();
    assert!(try_one(6).await.is_err());
    // Refills stop at the burst size.
    tokio::time::advance(Duration::from_secs(100)).await;
    try_one(7).await.unwrap();
    try_one(8).await.unwrap();
    assert!(try_one(9).await.is_err());
    // Other addresses have their own bucket.
    let (c, _k) = conn("198.51.100.10:1");
    svc.clone().oneshot(c).await.unwrap();
}

#[tokio::test]
async fn tracked_addresses_are_bounded() {
    let layer = PerIpLimitLayer::builder()
        .max_concurrent(5)
        .rate(1.0, 10)
        .max_tracked(3)
        .build();
    let svc = layer.layer(service_fn(instant));
    for i in 0..100u8 {
        let (c, _k) = conn(&format!("10.0.0.{i}:1"));
        svc.clone().oneshot(c).await.unwrap();
        assert!(layer.tracked() <= 3);
    }
    assert_eq!(layer.tracked(), 3);
}

#[tokio::test]
async fn a_full_table_of_live_addresses_refuses_new_ones() {
    let layer = PerIpLimitLayer::builder()
        .max_concurrent(5)
        .max_tracked(2)
        .build();
    let svc = layer.layer(service_fn(hold));
    let (c1, k1) = conn("10.0.0.1:1");
    let (c2, k2) = conn("10.0.0.2:1");
    let h1 = tokio::spawn(svc.clone().oneshot(c1));
    let h2 = tokio::spawn(svc.clone().oneshot(c2));
    tokio::task::yield_now().await;
    let (c3, _k3) = conn("10.0.0.3:1");
    let err = svc.clone().oneshot(c3).await.unwrap_err();
    assert_eq!(
        downcast::<PerIpRejected>(&err).reason,
        PerIpReason::TableFull
    );
    // A live address is still served.
    let (c1b, k1b) = conn("10.0.0.1:2");
    let h1b = tokio::spawn(svc.clone().oneshot(c1b));
    // Once an address has no live connection, its slot can be reused.
    drop(k2);
    tokio::time::timeout(BOUND, h2)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let (c3, k3) = conn("10.0.0.3:1");
    let h3 = tokio::spawn(svc.clone().oneshot(c3));
    tokio::task::yield_now().await;
    assert_eq!(layer.active("10.0.0.3".parse().unwrap()), 1);
    assert_eq!(layer.tracked(), 2);
    drop((k1, k1b, k3));
    for h in [h1, h1b, h3] {
        tokio::time::timeout(BOUND, h)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn ipv6_is_grouped_by_prefix_and_mapped_ipv4_is_ipv4() {
    let layer = PerIpLimitLayer::builder().max_concurrent(1).build();
    let svc = layer.layer(service_fn(hold));
    let (c1, _k1) = conn("[2001:db8:1:2::1]:1");
    let _h1 = tokio::spawn(svc.clone().oneshot(c1));
    let (c4, _k4) = conn("192.0.2.7:1");
    let _h4 = tokio::spawn(svc.clone().oneshot(c4));
    tokio::task::yield_now().await;
    // Same /64.
    let (c2, _k2) = conn("[2001:db8:1:2:ffff::9]:1");
    assert!(svc.clone().oneshot(c2).await.is_err());
    // Another /64.
    let (c3, _k3) = conn("[2001:db8:1:3::1]:1");
    assert!(svc.clone().oneshot(c3).now_or_never().is_none());
    // ::ffff:192.0.2.7 is 192.0.2.7.
    let (c5, _k5) = conn("[::ffff:192.0.2.7]:1");
    assert!(svc.clone().oneshot(c5).await.is_err());

    // With /128, single addresses are separate.
    let exact = PerIpLimitLayer::builder()
        .max_concurrent(1)
        .ipv6_prefix(128)
        .build();
    let svc = exact.layer(service_fn(hold));
    let (c1, _k1) = conn("[2001:db8::1]:1");
    let _h1 = tokio::spawn(svc.clone().oneshot(c1));
    tokio::task::yield_now().await;
    let (c2, _k2) = conn("[2001:db8::2]:1");
    assert!(svc.clone().oneshot(c2).now_or_never().is_none());
}

#[tokio::test]
async fn clones_share_state_and_unknown_peers_pass() {
    let layer = PerIpLimitLayer::builder().max_concurrent(1).build();
    let a = layer.layer(service_fn(hold));
    let b = layer.clone().layer(service_fn(hold));
    let (c1, mut k1) = conn("203.0.113.5:1");
    let h1 = tokio::spawn(a.oneshot(c1));
    tokio::task::yield_now().await;
    let (c2, _k2) = conn("203.0.113.5:2");
    assert!(b.clone().oneshot(c2).await.is_err());

    let (server, _client) = tokio::io::duplex(64);
    let anon = SimpleConnection::new(Box::pin(server), None, None);
    assert!(b.oneshot(anon).now_or_never().is_none());
    k1.shutdown().await.unwrap();
    drop(k1);
    tokio::time::timeout(BOUND, h1)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
