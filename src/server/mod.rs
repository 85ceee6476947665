//! The server: [`Connection`]s flow from the accept loop ([`Server`])
//! through tower layers — [`VopLayer`] negotiates the transport — to
//! [`GatewayService`], which runs the link.
//!
//! Lifecycle (`docs/protocol/vop-service.md` §5.5): [`Server::builder`] binds one or more
//! addresses or takes pre-bound listeners ([`ServerBuilder`]); the
//! [`Server`] handle reports its [`ServerState`], stops accepting and shuts
//! links down ([`StopLinks`]), and waits for drain. Its [`LinkRegistry`]
//! lists the live links ([`LinkInfo`]) with added/closed hooks; its
//! [`Readiness`] tells health checks whether it accepts or drains. Controlled
//! accepting (§5.7) is the [`Admission`] controller. [`StackConfig`]
//! composes the production stack of middleware layers around it.

mod admission;
mod builder;
mod credential_check;
mod gateway;
mod link_limits;
mod readiness;
mod registry;
mod serve;
mod stack;
mod vop_layer;

pub use admission::{Admission, AdmissionNode, NodeId, Permit, Slot};
pub use builder::{ServerBuilder, ServerError, DEFAULT_BACKLOG, INTERNAL_BUFFER_SIZE};
pub use credential_check::{
    CredentialCheck, CredentialCheckLayer, CredentialCheckService, CredentialsRefused, PeerInfo,
};
pub use gateway::GatewayService;
pub use link_limits::LinkLimits;
pub use readiness::{Gate, Phase, Readiness};
pub use registry::{LinkInfo, LinkRegistry, Registration};
pub use serve::{Server, ServerState, StateSet, StopLinks};
pub use stack::{StackConfig, StackConfigError, StackService};
pub use vop_layer::{
    ConfigError, NegotiationError, SingleTransportLayer, VopLayer, VopLayerBuilder, VopService,
};
// The transport seam's types, where they were before `transport` existed.
pub use crate::transport::{Connection, NegotiatedTransport, ServerTransport};

/// The grammar of the TOML fields of [`StackConfig`], for the `versile`
/// binary's flags (`src/cli/config.rs`), so that a flag and its TOML key
/// accept the same text. Public only because the binary is another crate.
#[doc(hidden)]
pub mod flag_syntax {
    pub use super::link_limits::parse_size;
    pub use super::stack::{parse_net, parse_secs_opt};
}
