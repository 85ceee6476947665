//! Health and readiness over HTTP (issue 10.1): `/healthz` and `/readyz`
//! on the metrics listener follow the server: 200/200 while accepting,
//! 200/503 from the moment a stop begins while links still drain; the
//! operator's gate; the `HealthService` in an axum router.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::sync::{mpsc, Notify};
use tower::ServiceBuilder;
use versile::ops::{HealthService, MetricsEndpoint};
use versile::server::{Gate, Phase, Readiness};
use versile::{
    GatewayService, LinkShutdown, LocalObject, ObjectBuilder, Server, StopLinks, Value, VopLayer,
};

mod support;
use support::calls::connect_plain;
use support::http::http_get_async;
use support::servers::serve_plain;

const T: Duration = Duration::from_secs(10);

/// A gateway whose `hold` call reports that it started and answers once
/// `release` is notified.
fn holding_gateway(started: mpsc::UnboundedSender<()>, release: Arc<Notify>) -> LocalObject {
    ObjectBuilder::new(())
        .method("hold", move |_, _call| {
            let started = started.clone();
            let release = release.clone();
            async move {
                let _ = started.send(());
                release.notified().await;
                Ok(Value::from("released"))
            }
        })
        .build()
}

#[tokio::test]
async fn readyz_turns_503_when_a_drain_starts_while_links_still_drain() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let gw = {
        let release = release.clone();
        move || holding_gateway(started_tx.clone(), release.clone())
    };
    let svc = ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(gw));

    // The endpoint exists before the server, as in `versile serve`.
    let readiness = Readiness::new();
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let http = MetricsEndpoint::bind_with_health("127.0.0.1:0", handle, readiness.clone())
        .await
        .unwrap();
    let h = http.local_addr();
    assert_eq!(
        http_get_async(h, "/readyz").await.0,
        503,
        "ready before serving"
    );

    let server = Server::builder()
        .listen("127.0.0.1:0")
        .readiness(readiness)
        .serve(svc)
        .unwrap();
    server
        .wait_for(|s| s.active(), Some(T))
        .await
        .expect("never active");
    assert_eq!(
        http_get_async(h, "/healthz").await,
        (200, "accepting\n".into())
    );
    assert_eq!(
        http_get_async(h, "/readyz").await,
        (200, "accepting\n".into())
    );
    assert_eq!(http_get_async(h, "/metrics").await.0, 200);

    // A call in progress keeps its link open through a graceful stop.
    let (link, gw) = connect_plain(server.local_addr()).await;
    let call = tokio::spawn(async move { gw.call("hold", ()).await });
    tokio::time::timeout(T, started.recv())
        .await
        .expect("call never started");

    server.stop(StopLinks::Graceful);
    assert_eq!(server.readiness().phase(), Phase::Draining);
    assert_eq!(
        http_get_async(h, "/readyz").await,
        (503, "draining\n".into())
    );
    assert_eq!(
        http_get_async(h, "/healthz").await.0,
        200,
        "draining is alive"
    );
    assert_eq!(server.links().len(), 1, "the link still drains");
    assert!(!server.wait_drained(Duration::ZERO).await);

    // The running call finishes and answers; then the link closes.
    release.notify_one();
    let r = tokio::time::timeout(T, call).await.unwrap().unwrap();
    assert_eq!(r.expect("held call"), Value::from("released"));
    assert!(server.wait_drained(T).await, "did not drain");
    tokio::time::timeout(T, link.closed()).await.unwrap();
    assert_eq!(http_get_async(h, "/readyz").await.0, 503);
    http.shutdown().await;
}

#[tokio::test]
async fn closed_gate_takes_an_accepting_server_out_of_rotation() {
    let server = serve_plain(versile::demo::SimpleGateway::new).await;
    server.wait_for(|s| s.active(), Some(T)).await.unwrap();
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let http = MetricsEndpoint::bind_with_health("127.0.0.1:0", handle, server.readiness().clone())
        .await
        .unwrap();
    let h = http.local_addr();
    assert_eq!(http_get_async(h, "/readyz").await.0, 200);
    server.readiness().set_gate(Gate::Closed);
    assert_eq!(
        http_get_async(h, "/readyz").await,
        (503, "accepting, gate closed\n".into())
    );
    assert_eq!(http_get_async(h, "/healthz").await.0, 200);
    // Still accepting: a client that reaches it gets a link.
    let (link, gw) = connect_plain(server.local_addr()).await;
    gw.call("echo", (1,)).await.unwrap();
    link.shutdown(LinkShutdown::Forced);
    server.readiness().set_gate(Gate::Open);
    assert_eq!(http_get_async(h, "/readyz").await.0, 200);
    assert!(server.shutdown(T).await);
    assert_eq!(http_get_async(h, "/readyz").await.0, 503);
    http.shutdown().await;
}

#[tokio::test]
async fn health_service_in_an_axum_router() {
    let server = serve_plain(versile::demo::SimpleGateway::new).await;
    server.wait_for(|s| s.active(), Some(T)).await.unwrap();
    let health = HealthService::new(server.readiness().clone());
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "app\n" }))
        .route_service("/healthz", health.clone())
        .route_service("/readyz", health);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = listener.local_addr().unwrap();
    let http = tokio::spawn(axum::serve(listener, app).into_future());
    assert_eq!(http_get_async(h, "/readyz").await.0, 200);
    assert_eq!(http_get_async(h, "/").await, (200, "app\n".into()));
    server.stop(StopLinks::Graceful);
    assert_eq!(http_get_async(h, "/readyz").await.0, 503);
    assert_eq!(http_get_async(h, "/healthz").await.0, 200);
    http.abort();
}
