//! A Versile service beside an axum HTTP server in one tokio runtime; one
//! shutdown signal (Ctrl-C / SIGINT, or SIGTERM) stops both: HTTP stops
//! accepting and finishes its requests, Versile links are shut down
//! gracefully within a drain deadline.
//!
//! ```sh
//! cargo run --example axum_embed -- 127.0.0.1:4433 127.0.0.1:8080
//! curl http://127.0.0.1:8080/links                 # live Versile links
//! curl -i http://127.0.0.1:8080/readyz              # 200; 503 once draining
//! versile call --insecure vop://127.0.0.1:4433/ echo hello
//! ```

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use axum::{extract::State, routing::get, Router};
use tokio_util::sync::CancellationToken;
use versile::demo::SimpleGateway;
use versile::ops::HealthService;
use versile::{GatewayService, Server, VopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let vop_addr = args.next().unwrap_or("127.0.0.1:4433".into());
    let http_addr = args.next().unwrap_or("127.0.0.1:8080".into());

    let svc = tower::ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(SimpleGateway::new));
    let server = Arc::new(Server::builder().listen(vop_addr.as_str()).serve(svc)?);

    // The HTTP side reads the Versile server's state; health checks
    // follow it (readyz 503 from the moment the shutdown starts).
    let health = HealthService::new(server.readiness().clone());
    let app = Router::new()
        .route_service("/healthz", health.clone())
        .route_service("/readyz", health)
        .route("/", get(|| async { "versile beside axum\n" }))
        .route(
            "/links",
            get(|State(s): State<Arc<Server>>| async move { format!("{}\n", s.links().len()) }),
        )
        .with_state(server.clone());
    let http = tokio::net::TcpListener::bind(&http_addr).await?;
    println!("listening on vop://{}/", server.local_addr());
    println!("http on http://{}/", http.local_addr()?);

    // One signal, one token: everything that must stop watches it.
    let stop = CancellationToken::new();
    tokio::spawn(shutdown_signal(stop.clone()));
    let http_task = tokio::spawn(
        axum::serve(http, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
    );

    stop.cancelled().await;
    let drained = server.shutdown(Duration::from_secs(10)).await;
    http_task.await??;
    println!("stopped (links drained: {drained})");
    Ok(())
}

/// Cancel `stop` on SIGINT or SIGTERM.
async fn shutdown_signal(stop: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    stop.cancel();
}
