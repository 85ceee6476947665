//! VOL: the link protocol carried over a VEC channel (`docs/protocol/vol.md`).
//!
//! * `hello` — the VOL hello and its checks (§2.2), with [`Licence`];
//! * `message` — the `(msg_id, code, payload)` envelope (§3), with
//!   [`CallKind`] and [`Outcome`];
//! * `tables` — export/import tables and reference counts (§5);
//! * [`Link`] — the sans-IO state machine tying them together: handshake
//!   (§2), dispatch of messages into [`Event`]s, releases, keep-alive (§8).
//!
//! The runtime (`crate::runtime`) owns a [`Link`] per connection and moves
//! bytes between it and the socket.

mod error;
// Public only for the `vol_link` fuzz target (`hello_entity`); `Licence`
// is the API.
#[doc(hidden)]
pub mod hello;
mod link;
pub(crate) mod message;
pub(crate) mod queue;
pub(crate) mod tables;

pub use error::{LinkError, MemoryBudgetKind};
pub use hello::Licence;
pub use link::{
    CallId, CallSendError, Event, Link, LinkConfig, Received, Ref,
    DEFAULT_HANDSHAKE_MAX_DECODED_BYTES, DEFAULT_HANDSHAKE_MAX_ENTITY_SIZE,
    DEFAULT_LINK_MAX_DECODED_BYTES,
};
pub use message::{CallKind, Outcome};
pub use tables::{ExportKey, TableLimits};
