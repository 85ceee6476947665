//! In-process servers on loopback for the tests: the PLAIN stack (VOP
//! without a secure transport), VTS with the spec's server key, the
//! production stack of a [`StackConfig`], and small test gateways. The client side is in
//! [`super::calls`].

use std::time::Duration;

use tower::ServiceBuilder;
use versile::runtime::LinkOptions;
use versile::server::StackConfig;
use versile::{
    GatewayService, LocalObject, ObjectBuilder, RsaKeyPair, Server, Value, VopLayer,
    VtsServerTransport,
};

use super::keys::{legacy_vts_config, spec_key};

/// `VopLayer::insecure()` over a gateway made by `factory` per link, on
/// `addr` (e.g. `127.0.0.1:0`).
pub async fn serve_plain_on<F, G>(addr: &str, factory: F, options: LinkOptions) -> Server
where
    F: Fn() -> G + Send + Sync + 'static,
    G: Into<LocalObject>,
{
    let svc = ServiceBuilder::new()
        .layer(VopLayer::insecure())
        .service(GatewayService::new(factory).with_options(options));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    Server::serve(listener, svc).expect("serve")
}

/// The PLAIN stack on an ephemeral loopback port, default link options.
pub async fn serve_plain<F, G>(factory: F) -> Server
where
    F: Fn() -> G + Send + Sync + 'static,
    G: Into<LocalObject>,
{
    serve_plain_on("127.0.0.1:0", factory, LinkOptions::default()).await
}

/// The production stack `stack` builds over PLAIN VOP (its limits,
/// metrics and trace layers), serving `factory`'s gateway on an ephemeral
/// loopback port.
pub fn serve_stack<F, G>(stack: &StackConfig, factory: F) -> Server
where
    F: Fn() -> G + Send + Sync + 'static,
    G: Into<LocalObject>,
{
    let svc = stack
        .build(VopLayer::insecure(), GatewayService::new(factory))
        .expect("valid stack");
    Server::builder()
        .listen("127.0.0.1:0")
        .serve(svc)
        .expect("serve")
}

/// A gateway with `echo(v)` → v and `slow(ms, tag)` → tag after `ms`
/// milliseconds.
pub fn echo_and_slow_gateway() -> LocalObject {
    ObjectBuilder::new(())
        .method("slow", |_, call| async move {
            let (ms, tag): (u64, String) = call.into_args()?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Value::from(tag))
        })
        .method("echo", |_, call| async move {
            let (v,): (Value,) = call.into_args()?;
            Ok(v)
        })
        .build()
}

/// VOP with VTS only, keyed with the spec's `server` key (legacy key
/// policy, see [`super::keys`]), over `factory`'s gateway on an ephemeral
/// loopback port.
pub async fn serve_vts_with_spec_key<F, G>(factory: F) -> Server
where
    F: Fn() -> G + Send + Sync + 'static,
    G: Into<LocalObject>,
{
    serve_vts_with_key(spec_key("server"), factory).await
}

/// A VTS server on `127.0.0.1:0` with `key` and the legacy key policy
/// (so 1024-bit client keys are accepted too).
pub async fn serve_vts_with_key<F, G>(key: RsaKeyPair, factory: F) -> Server
where
    F: Fn() -> G + Send + Sync + 'static,
    G: Into<LocalObject>,
{
    let layer = VopLayer::builder()
        .transport(VtsServerTransport::with_config(
            key,
            (*legacy_vts_config()).clone(),
        ))
        .build()
        .expect("VTS layer");
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service(GatewayService::new(factory));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    Server::serve(listener, svc).expect("serve")
}

/// A PLAIN server on a private two-thread runtime, for tests whose own
/// thread blocks (waiting on a Python child). Dropping it force-stops the
/// server and waits (at most 5 s) for its links to end.
pub struct ServerOnOwnRuntime {
    pub rt: tokio::runtime::Runtime,
    pub server: Server,
}

impl ServerOnOwnRuntime {
    /// The PLAIN stack over `factory`'s gateway on an ephemeral loopback
    /// port.
    pub fn start<F, G>(factory: F) -> ServerOnOwnRuntime
    where
        F: Fn() -> G + Send + Sync + 'static,
        G: Into<LocalObject>,
    {
        Self::start_service(GatewayService::new(factory))
    }

    /// The PLAIN stack over `service` on an ephemeral loopback port.
    pub fn start_service<F, G>(service: GatewayService<F>) -> ServerOnOwnRuntime
    where
        F: Fn() -> G + Send + Sync + 'static,
        G: Into<LocalObject>,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let server = rt.block_on(async {
            let listener = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::TcpListener::bind("127.0.0.1:0"),
            )
            .await
            .expect("bind timed out")
            .expect("bind 127.0.0.1:0");
            let svc = ServiceBuilder::new()
                .layer(VopLayer::insecure())
                .service(service);
            Server::serve(listener, svc).expect("serve")
        });
        ServerOnOwnRuntime { rt, server }
    }

    /// `vop://ADDR/`.
    pub fn vri(&self) -> String {
        format!("vop://{}/", self.server.local_addr())
    }
}

impl Drop for ServerOnOwnRuntime {
    fn drop(&mut self) {
        self.server.stop(versile::StopLinks::Force);
        let _ = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), self.server.drained()).await
        });
    }
}
