//! The smallest service: an Echoer gateway on every connection, PLAIN.
//!
//! ```sh
//! cargo run --example echo_server            # listens on 127.0.0.1:4433
//! versile call --insecure vop://127.0.0.1:4433/ echo hello
//! ```

use tower::ServiceBuilder;
use versile::demo::Echoer;
use versile::{GatewayService, Server, VopLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4433".into());
    let svc = ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(|| Echoer));
    let server = Server::serve(tokio::net::TcpListener::bind(&addr).await?, svc)?;
    println!("listening on vop://{}/", server.local_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown(std::time::Duration::from_secs(10)).await;
    Ok(())
}
