//! HostFilterLayer: CIDR allow/deny lists, before anything is read.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use ipnet::IpNet;
use tokio::io::AsyncReadExt;
use tower::{service_fn, Layer, ServiceExt};
use versile_middleware::filter::{HostFilterLayer, HostRejected, RejectReason};
use versile_middleware::{BoxError, SimpleConnection};

fn net(s: &str) -> IpNet {
    s.parse().expect("test network")
}

fn counting() -> (
    Arc<AtomicUsize>,
    impl tower::Service<
            SimpleConnection,
            Response = (),
            Error = BoxError,
            Future = impl std::future::Future<Output = Result<(), BoxError>> + Send,
        > + Clone,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = service_fn(move |_conn: SimpleConnection| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(()) }
    });
    (calls, svc)
}

async fn decide(layer: &HostFilterLayer, peer: &str) -> Result<(), RejectReason> {
    let (_calls, svc) = counting();
    let (c, _k) = conn(peer);
    match layer.layer(svc).oneshot(c).await {
        Ok(()) => Ok(()),
        Err(e) => Err(downcast::<HostRejected>(&e).reason),
    }
}

#[tokio::test]
async fn allow_and_deny_lists_v4_and_v6() {
    let layer = HostFilterLayer::new()
        .allow(net("10.0.0.0/8"))
        .allow(net("2001:db8::/32"))
        .deny(net("10.6.0.0/16"))
        .deny(net("2001:db8:bad::/48"));
    assert_eq!(decide(&layer, "10.1.2.3:1").await, Ok(()));
    assert_eq!(
        decide(&layer, "10.6.1.1:1").await,
        Err(RejectReason::Denied)
    );
    assert_eq!(
        decide(&layer, "192.0.2.1:1").await,
        Err(RejectReason::NotAllowed)
    );
    assert_eq!(decide(&layer, "[2001:db8:1::1]:1").await, Ok(()));
    assert_eq!(
        decide(&layer, "[2001:db8:bad::1]:1").await,
        Err(RejectReason::Denied)
    );
    assert_eq!(
        decide(&layer, "[2001:db9::1]:1").await,
        Err(RejectReason::NotAllowed)
    );
    // Dual-stack sockets report IPv4 clients as mapped IPv6.
    assert_eq!(decide(&layer, "[::ffff:10.1.2.3]:1").await, Ok(()));
    assert_eq!(
        decide(&layer, "[::ffff:10.6.1.1]:1").await,
        Err(RejectReason::Denied)
    );
}

#[tokio::test]
async fn deny_only_and_single_addresses() {
    let ip: std::net::IpAddr = "192.0.2.66".parse().unwrap();
    let layer = HostFilterLayer::new().deny(ip);
    assert_eq!(decide(&layer, "192.0.2.65:1").await, Ok(()));
    assert_eq!(
        decide(&layer, "192.0.2.66:1").await,
        Err(RejectReason::Denied)
    );
    assert_eq!(decide(&HostFilterLayer::new(), "[::1]:1").await, Ok(()));
}

#[tokio::test]
async fn unknown_peers() {
    let open = HostFilterLayer::new();
    assert!(open.check(None).is_ok());
    let allow_list = HostFilterLayer::new().allow(net("10.0.0.0/8"));
    assert_eq!(
        allow_list.check(None).unwrap_err().reason,
        RejectReason::UnknownPeer
    );
    assert!(allow_list
        .clone()
        .allow_unknown_peer(true)
        .check(None)
        .is_ok());
    assert!(open.allow_unknown_peer(false).check(None).is_err());
}

#[tokio::test]
async fn a_refused_connection_is_closed_unread_and_never_reaches_the_service() {
    let layer = HostFilterLayer::new().deny(net("192.0.2.0/24"));
    let (calls, svc) = counting();
    let svc = layer.layer(svc);
    let (c, mut client) = conn("192.0.2.1:1");
    // The client has sent something: it is never read.
    tokio::io::AsyncWriteExt::write_all(&mut client, b"vop_call_vec\n")
        .await
        .unwrap();
    let err = svc.clone().oneshot(c).await.unwrap_err();
    assert!(err.to_string().contains("192.0.2.1"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let mut buf = Vec::new();
    let n = tokio::time::timeout(BOUND, client.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "closed without a word");

    let (c, _k) = conn("198.51.100.1:1");
    svc.oneshot(c).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
