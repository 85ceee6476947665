//! [`TlsLayer`]: the VOP negotiation layer preset to TLS only
//! (`docs/protocol/vop-service.md` §3.7: a modern transport for our own peers; Versile
//! Python 0.8.5 cannot speak it).
//!
//! ```
//! use tower::ServiceBuilder;
//! use versile::demo::SimpleGateway;
//! use versile::tls::{TlsLayer, TlsServerConfig};
//! use versile::GatewayService;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = TlsServerConfig::self_signed(vec!["localhost".to_owned()])?;
//! let svc = ServiceBuilder::new()
//!     .layer(TlsLayer::new(config)?)
//!     .service(GatewayService::new(SimpleGateway::new));
//! # let _ = svc; Ok(()) }
//! ```
//!
//! For a mixture (VTS and TLS, or PLAIN besides), build a
//! [`VopLayer`](crate::VopLayer) with
//! [`VopLayer::builder`](crate::VopLayer::builder).

use super::{TlsError, TlsServerConfig, TlsServerTransport};
use crate::server::SingleTransportLayer;

/// A [`VopLayer`](crate::VopLayer) that accepts TLS only (see the module
/// docs): [`TlsLayer::new`] with a configuration, or
/// [`TlsLayer::with_transport`](SingleTransportLayer::with_transport) with a
/// built [`TlsServerTransport`].
pub type TlsLayer = SingleTransportLayer<TlsServerTransport>;

impl SingleTransportLayer<TlsServerTransport> {
    /// TLS with `config`.
    pub fn new(config: TlsServerConfig) -> Result<Self, TlsError> {
        Ok(Self::with_transport(TlsServerTransport::new(config)?))
    }
}
