//! The cost of one served call, for instruction counting: N sequential
//! `echo` calls from a client to a server in this process over PLAIN on
//! loopback, on one current-thread runtime (deterministic under
//! callgrind). Optionally with the Prometheus recorder installed, as
//! `versile serve --metrics` runs.
//!
//! Instructions per call = the difference of two runs' totals divided by
//! the difference of their N (setup cancels out):
//!
//! ```sh
//! cargo build --release --example call_cost
//! for n in 2000 12000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!     target/release/examples/call_cost $n [--prometheus] 2>&1 | grep refs
//! done
//! ```

use tower::ServiceBuilder;
use versile::ops::install_prometheus;
use versile::{
    Client, ClientConfig, GatewayService, LinkShutdown, ObjectBuilder, Server, Value, VopLayer,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    if args.next().as_deref() == Some("--prometheus") {
        install_prometheus()?;
    }
    let gateway = || {
        ObjectBuilder::new(())
            .method("echo", |_, call| async move {
                let (v,): (Value,) = call.into_args()?;
                Ok(v)
            })
            .build()
    };
    let svc = ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(gateway));
    let server = Server::builder().listen("127.0.0.1:0").serve(svc)?;
    let (link, gw) = Client::new(ClientConfig::insecure())
        .connect(&server.local_addr().to_string())
        .await?;
    for i in 0..n {
        let r = gw.call("echo", (i as i64,)).await?;
        assert_eq!(r, Value::from(i as i64));
    }
    link.shutdown(LinkShutdown::Forced);
    server.shutdown(std::time::Duration::from_secs(5)).await;
    println!("{n} calls");
    Ok(())
}
