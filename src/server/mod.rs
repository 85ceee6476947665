//! The server: [`Connection`]s flow from the accept loop ([`Server`])
//! through tower layers — [`VopLayer`] negotiates the transport — to
//! [`GatewayService`], which runs the link.

mod connection;
mod credential_check;
mod gateway;
mod registry;
mod serve;
mod vop_layer;

pub use connection::{Connection, NegotiatedTransport};
pub use credential_check::{
    CredentialCheck, CredentialCheckLayer, CredentialCheckService, CredentialsRefused, PeerInfo,
};
pub use gateway::GatewayService;
pub use registry::{LinkRegistry, Registration};
pub use serve::{Server, StopLinks};
pub use vop_layer::{ConfigError, ServerTransport, VopLayer, VopLayerBuilder, VopService};
