//! A VTS server with the demo gateway: `cargo run --example vts_server [KEY.pem]`.
//!
//! Without a key file it generates a 2048-bit key. It prints the address
//! and the key's fingerprint; connect with
//! `versile call --pin SHA256:... vop://ADDR/math/adder/ add 5`.

use tower::ServiceBuilder;
use versile::demo::SimpleGateway;
use versile::{GatewayService, RsaKeyPair, Server, VtsLayer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = match std::env::args().nth(1) {
        Some(path) => RsaKeyPair::from_file(path)?,
        None => tokio::task::spawn_blocking(RsaKeyPair::generate_default).await??,
    };
    let gateway_factory = GatewayService::new(SimpleGateway::new);
    let svc = ServiceBuilder::new()
        .layer(VtsLayer::new(key.clone()))
        .service(gateway_factory);
    let server = Server::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?, svc)?;
    println!("listening on vop://{}/", server.local_addr());
    println!("key fingerprint {}", key.fingerprint());
    tokio::signal::ctrl_c().await?;
    server.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(())
}
