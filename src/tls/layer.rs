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
//! For a mixture (VTS and TLS, or PLAIN besides), build a [`VopLayer`] with
//! [`VopLayer::builder`].

use tower::Layer;

use super::{TlsError, TlsServerConfig, TlsServerTransport};
use crate::server::{VopLayer, VopService};

/// A [`VopLayer`] that accepts TLS only (see the module docs).
#[derive(Clone)]
pub struct TlsLayer {
    inner: VopLayer,
}

impl TlsLayer {
    /// TLS with `config`.
    pub fn new(config: TlsServerConfig) -> Result<Self, TlsError> {
        Ok(Self::with_transport(TlsServerTransport::new(config)?))
    }

    /// TLS as configured in `transport`.
    pub fn with_transport(transport: TlsServerTransport) -> Self {
        let inner = VopLayer::builder()
            .transport(transport)
            .build()
            // One transport is enabled, so building cannot fail.
            .unwrap_or_else(|_| unreachable!("TLS is enabled"));
        TlsLayer { inner }
    }

    /// The underlying negotiation layer.
    pub fn vop_layer(&self) -> &VopLayer {
        &self.inner
    }
}

impl From<TlsLayer> for VopLayer {
    fn from(l: TlsLayer) -> VopLayer {
        l.inner
    }
}

impl<S> Layer<S> for TlsLayer {
    type Service = VopService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
