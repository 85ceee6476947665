//! [`VtsLayer`]: the VOP negotiation layer preset to VTS only — the
//! default secure service of Versile (Python's `VOPService` with a key,
//! `docs/protocol/vop-service.md` §5.3).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tower::ServiceBuilder;
//! use versile::demo::SimpleGateway;
//! use versile::{GatewayService, RsaKeyPair, Server, VtsLayer};
//!
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/spec/vts-vector-server-key.pem");
//! let key = RsaKeyPair::from_file(path)?; // or RsaKeyPair::generate_default()?
//! let gateway_factory = GatewayService::new(SimpleGateway::new);
//! let svc = ServiceBuilder::new()
//!     .layer(VtsLayer::new(key.clone()))
//!     .service(gateway_factory);
//! let server = Server::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?, svc)?;
//!
//! // A client that pins the server's key.
//! use versile::{Client, ClientConfig, VtsClientTransport};
//! let vts = VtsClientTransport::new(None).pin_server_key(key.fingerprint());
//! let client = Client::new(ClientConfig::default().transport(vts));
//! let vri = format!("vop://{}/math/adder/", server.local_addr()).parse()?;
//! let adder = client.resolve(&vri).await?;
//! let sum = adder.value.as_remote().expect("an object").call("add", (5,)).await?;
//! assert_eq!(i64::try_from(sum)?, 5);
//! adder.link.shutdown(versile::LinkShutdown::Graceful);
//! server.shutdown(std::time::Duration::from_secs(2)).await;
//! # Ok(()) }
//! ```
//!
//! For a mixture (VTS and TLS, or PLAIN besides), build a
//! [`VopLayer`](crate::VopLayer) with
//! [`VopLayer::builder`](crate::VopLayer::builder).

use super::keys::RsaKeyPair;
use super::transport::VtsServerTransport;
use crate::server::SingleTransportLayer;

/// A [`VopLayer`](crate::VopLayer) that accepts VTS only (see the module
/// docs): [`VtsLayer::new`] with a key, or
/// [`VtsLayer::with_transport`](SingleTransportLayer::with_transport) with a
/// configured [`VtsServerTransport`].
pub type VtsLayer = SingleTransportLayer<VtsServerTransport>;

impl SingleTransportLayer<VtsServerTransport> {
    /// VTS with `key` and the default configuration.
    pub fn new(key: RsaKeyPair) -> Self {
        Self::with_transport(VtsServerTransport::new(key))
    }
}
