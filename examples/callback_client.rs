//! A client that resolves a VRI, calls it, and passes one of its own objects
//! to the server.
//!
//! ```sh
//! cargo run --example callback_client -- vop://127.0.0.1:4433/
//! ```

use versile::{Client, ClientConfig, LinkShutdown, ObjectBuilder, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let vri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "vop://127.0.0.1:4433/".into());
    let client = Client::new(ClientConfig::insecure());
    let resolved = client.resolve(&vri.parse()?).await?;
    let gateway = resolved.value.as_remote().ok_or("not an object")?;

    println!("methods: {:?}", gateway.meta("methods", ()).await?);
    println!("echo: {:?}", gateway.call("echo", ("hello",)).await);

    // A local object travels as a reference; echoing it back returns it to us.
    let greeter = ObjectBuilder::new(())
        .method("greet", |_, call| async move {
            let (name,): (String,) = call.into_args()?;
            Ok(Value::from(format!("hello, {name}")))
        })
        .build();
    let back = gateway.call("echo", (greeter.clone(),)).await?;
    println!(
        "our object came back as ours: {}",
        back.as_remote().is_none()
    );

    resolved.link.shutdown(LinkShutdown::Graceful);
    resolved.link.closed().await;
    Ok(())
}
