//! ConnectionLimitLayer: the permit is taken in poll_ready and held for the
//! whole life of the inner future.

use std::convert::Infallible;

use futures::FutureExt;
use tokio::sync::oneshot;
use tower::{service_fn, Layer, Service, ServiceExt};
use versile_middleware::ConnectionLimitLayer;

/// A "connection" service whose future runs until its receiver fires.
fn conn_service() -> impl Service<
    oneshot::Receiver<()>,
    Response = (),
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<(), Infallible>> + Send,
> + Clone {
    service_fn(|done: oneshot::Receiver<()>| async move {
        let _ = done.await;
        Ok::<_, Infallible>(())
    })
}

#[tokio::test]
async fn permit_is_held_until_the_future_completes() {
    let layer = ConnectionLimitLayer::new(2);
    let svc = layer.layer(conn_service());

    let (tx1, rx1) = oneshot::channel();
    let (tx2, rx2) = oneshot::channel();
    let c1 = tokio::spawn(svc.clone().oneshot(rx1));
    let c2 = tokio::spawn(svc.clone().oneshot(rx2));
    tokio::task::yield_now().await;
    assert_eq!(layer.in_use(), 2);

    // A third connection cannot get ready.
    let mut third = svc.clone();
    assert!(third.ready().now_or_never().is_none());

    // Finishing one connection frees its permit, which goes straight to the
    // queued waiter (the semaphore is fair).
    tx1.send(()).expect("c1 alive");
    c1.await.expect("join").expect("infallible");
    assert_eq!(layer.in_use(), 2);
    let ready = third.ready().await.expect("infallible");
    let (tx3, rx3) = oneshot::channel();
    let c3 = tokio::spawn(ready.call(rx3));
    assert_eq!(layer.in_use(), 2);

    tx2.send(()).expect("c2 alive");
    tx3.send(()).expect("c3 alive");
    c2.await.expect("join").expect("infallible");
    c3.await.expect("join").expect("infallible");
    assert_eq!(layer.available(), 2);
}

#[tokio::test]
async fn dropping_the_future_releases_the_permit() {
    let layer = ConnectionLimitLayer::new(1);
    let mut svc = layer.layer(conn_service());
    let (_tx, rx) = oneshot::channel();
    let fut = svc.ready().await.expect("infallible").call(rx);
    assert_eq!(layer.available(), 0);
    drop(fut);
    assert_eq!(layer.available(), 1);
}

#[tokio::test]
async fn a_ready_service_holds_a_permit_until_called_or_dropped() {
    let layer = ConnectionLimitLayer::new(1);
    let mut a = layer.layer(conn_service());
    a.ready().await.expect("infallible");
    assert_eq!(layer.available(), 0);
    // Polling ready again does not take a second permit.
    a.ready().await.expect("infallible");
    assert_eq!(layer.available(), 0);
    // A clone does not inherit the permit.
    let mut b = a.clone();
    assert!(b.ready().now_or_never().is_none());
    // Dropping the ready service hands its permit to the queued clone.
    drop(a);
    b.ready().await.expect("infallible");
    assert_eq!(layer.available(), 0);
    drop(b);
    assert_eq!(layer.available(), 1);
}

#[tokio::test]
async fn the_limit_is_global_across_wrapped_services() {
    let layer = ConnectionLimitLayer::new(1);
    let mut first = layer.layer(conn_service());
    let mut second = layer.layer(conn_service());
    let (tx, rx) = oneshot::channel();
    let running = tokio::spawn(first.ready().await.expect("infallible").call(rx));
    tokio::task::yield_now().await;
    assert!(second.ready().now_or_never().is_none());
    tx.send(()).expect("alive");
    running.await.expect("join").expect("infallible");
    second.ready().await.expect("infallible");
}

#[tokio::test]
async fn a_waiting_caller_is_woken_when_a_permit_frees() {
    let layer = ConnectionLimitLayer::new(1);
    let svc = layer.layer(conn_service());
    let (tx1, rx1) = oneshot::channel();
    let c1 = tokio::spawn(svc.clone().oneshot(rx1));
    tokio::task::yield_now().await;
    let (tx2, rx2) = oneshot::channel();
    let c2 = tokio::spawn(svc.clone().oneshot(rx2));
    tokio::task::yield_now().await;
    assert!(!c2.is_finished());
    tx1.send(()).expect("alive");
    c1.await.expect("join").expect("infallible");
    tx2.send(()).expect("alive");
    tokio::time::timeout(std::time::Duration::from_secs(5), c2)
        .await
        .expect("woken")
        .expect("join")
        .expect("infallible");
    assert_eq!(layer.available(), 1);
}

#[tokio::test]
async fn a_dropped_waiter_gives_up_its_place() {
    let layer = ConnectionLimitLayer::new(1);
    let mut a = layer.layer(conn_service());
    a.ready().await.expect("infallible");
    let mut waiter = a.clone();
    assert!(waiter.ready().now_or_never().is_none());
    drop(waiter);
    drop(a);
    assert_eq!(layer.available(), 1);
}

#[tokio::test]
async fn zero_admits_nothing() {
    let layer = ConnectionLimitLayer::new(0);
    let mut svc = layer.layer(conn_service());
    assert!(svc.ready().now_or_never().is_none());
    assert_eq!(layer.max(), 0);
}
