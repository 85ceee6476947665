//! MaxConnectionsLayer: over the cap a connection is refused at once (not
//! queued), with an error the metrics layer labels `max_connections`; the
//! slot frees when a connection's future ends or is dropped.

use std::convert::Infallible;

use futures::FutureExt;
use tokio::sync::oneshot;
use tower::{service_fn, Layer, ServiceExt};
use versile_middleware::limit::{ConnectionLimitReached, MaxConnectionsLayer};
use versile_middleware::metrics::rejection_reason;

#[tokio::test]
async fn the_excess_is_refused_and_slots_free_on_close() {
    let layer = MaxConnectionsLayer::new(2);
    let svc = layer.layer(service_fn(|done: oneshot::Receiver<()>| async move {
        let _ = done.await;
        Ok::<_, Infallible>(())
    }));
    let (tx1, rx1) = oneshot::channel();
    let (_tx2, rx2) = oneshot::channel();
    let c1 = tokio::spawn(svc.clone().oneshot(rx1));
    let c2 = tokio::spawn(svc.clone().oneshot(rx2));
    tokio::task::yield_now().await;
    assert_eq!(layer.in_use(), 2);

    // The third is ready at once (nothing queues) and fails at once.
    let (_tx3, rx3) = oneshot::channel();
    let err = svc
        .clone()
        .oneshot(rx3)
        .now_or_never()
        .expect("refused without waiting")
        .unwrap_err();
    assert!(err.is::<ConnectionLimitReached>(), "{err}");
    assert_eq!(rejection_reason(err.as_ref()), Some("max_connections"));
    assert_eq!(layer.in_use(), 2);

    // A connection that ends frees its slot; so does one that is dropped.
    tx1.send(()).unwrap();
    c1.await.unwrap().unwrap();
    assert_eq!(layer.in_use(), 1);
    c2.abort();
    let _ = c2.await;
    assert_eq!(layer.in_use(), 0);
    let (tx4, rx4) = oneshot::channel();
    let c4 = tokio::spawn(svc.clone().oneshot(rx4));
    tokio::task::yield_now().await;
    assert_eq!(layer.in_use(), 1);
    tx4.send(()).unwrap();
    c4.await.unwrap().unwrap();
}
