//! A typed object and its typed client in one program: `#[versile::object]`
//! serves an `Adder` on every connection (PLAIN), `#[versile::client]`
//! calls it over loopback, then the server keeps serving until Ctrl-C.
//!
//! ```sh
//! cargo run --example typed_adder            # listens on 127.0.0.1:4433
//! versile call --insecure vop://127.0.0.1:4433/ add 5
//! ```

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tower::ServiceBuilder;
use versile::{CallError, Client, ClientConfig, GatewayService, Server, VopLayer};

/// The served state: a running total per connection.
#[derive(Default)]
struct Adder {
    total: AtomicI64,
}

/// Adds integers (a running total per connection).
#[versile::object]
impl Adder {
    /// Adds `n` and returns the new total; raises on overflow.
    async fn add(&self, n: i64) -> Result<i64, CallError> {
        let mut sum = 0;
        self.total
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                sum = t.checked_add(n)?;
                Some(sum)
            })
            .map_err(|t| CallError::exception(("overflow", t, n)))?;
        Ok(sum)
    }

    /// The total so far.
    async fn total(&self) -> i64 {
        self.total.load(Ordering::SeqCst)
    }

    /// Starts again from zero.
    async fn reset(&self) {
        self.total.store(0, Ordering::SeqCst);
    }
}

/// What a client of `Adder` calls (the trait is not emitted, so it may
/// share the struct's name; the client is `AdderClient`).
#[versile::client]
trait Adder {
    async fn add(&self, n: i64) -> i64;
    async fn total(&self) -> i64;
    async fn reset(&self);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4433".into());
    let svc = ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(Adder::default));
    let server = Server::serve(tokio::net::TcpListener::bind(&addr).await?, svc)?;
    println!("listening on vop://{}/", server.local_addr());

    // The client: connect, wrap the gateway in the typed proxy, call.
    let client = Client::new(ClientConfig::insecure());
    let (_link, gateway) = client.connect(&server.local_addr().to_string()).await?;
    let adder = AdderClient::new(gateway);
    println!("client: add(2) = {}", adder.add(2).await?);
    println!("client: add(3) = {}", adder.add(3).await?);
    match adder.add(i64::MAX).await {
        Ok(sum) => println!("client: add(i64::MAX) = {sum}"),
        Err(e) => println!("client: add(i64::MAX) failed: {e}"),
    }
    println!("client: total() = {}", adder.total().await?);
    adder.reset().await?;
    // Dropping the last reference releases the gateway; the link closes.
    drop(adder);

    tokio::signal::ctrl_c().await?;
    server.shutdown(Duration::from_secs(10)).await;
    Ok(())
}
