//! A middleware of your own: map each client address to a tenant, refuse
//! unknown clients, and tag the call context so methods see the tenant.
//!
//! ```sh
//! cargo run --example custom_middleware -- 127.0.0.1:4433
//! versile call --insecure vop://127.0.0.1:4433/ tenant    # → "local"
//! ```
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tower::{layer::layer_fn, Service, ServiceBuilder, ServiceExt};
use versile::{Connection, GatewayService, ObjectBuilder, Server, Value, VopLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)] // what the layer leaves in the call context
struct Tenant(String);

#[derive(Clone)]
struct TenantService<S> {
    inner: S,
    tenants: Arc<HashMap<IpAddr, String>>,
}

impl<S> Service<Connection> for TenantService<S>
where
    S: Service<Connection, Error: Into<BoxError>, Future: Send, Response: Send>,
    S: Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(())) // `inner` is made ready in `call` (oneshot)
    }

    fn call(&mut self, mut conn: Connection) -> Self::Future {
        let tenant = conn
            .peer_addr()
            .and_then(|a| self.tenants.get(&a.ip()).cloned());
        let inner = self.inner.clone();
        Box::pin(async move {
            // Unknown client: the connection is dropped (closed) unread.
            conn.extensions_mut()
                .insert(Tenant(tenant.ok_or("unknown client")?));
            inner.oneshot(conn).await.map_err(Into::into)
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:4433".into());
    let tenants = Arc::new(HashMap::from([("127.0.0.1".parse()?, "local".into())]));
    let gateway = || {
        ObjectBuilder::new(())
            .method("tenant", |_, call| async move {
                let tenant = call.ctx.extensions().get::<Tenant>().map(|t| t.0.clone());
                Ok(Value::from(tenant))
            })
            .build()
    };
    let svc = ServiceBuilder::new()
        .layer(layer_fn(|inner| TenantService {
            inner,
            tenants: tenants.clone(),
        }))
        .layer(VopLayer::insecure())
        .service(GatewayService::new(gateway));
    let server = Server::serve(tokio::net::TcpListener::bind(&addr).await?, svc)?;
    println!("listening on vop://{}/", server.local_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown(std::time::Duration::from_secs(10)).await;
    Ok(())
}
