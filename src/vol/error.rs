//! Why a link failed or closed (`docs/protocol/vol.md` §2.4, §3.9, §7.2).

use std::sync::Arc;

use crate::vec::VecError;

/// A link-level failure. Every variant closes the link; none is sent on the
/// wire (VOL has no error message, `docs/protocol/vol.md` §3.2).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// The entity stream could not be decoded (`docs/protocol/vec.md` §8.4).
    #[error("entity decoding failed: {0}")]
    Vec(#[from] VecError),
    /// The peer's VOL hello was not acceptable (`docs/protocol/vol.md` §2.2).
    #[error("invalid VOL hello: {0}")]
    BadHello(&'static str),
    /// The VOL handshake failed (`docs/protocol/vol.md` §2.4).
    #[error("VOL handshake failed: {0}")]
    Handshake(&'static str),
    /// A structural protocol violation (`docs/protocol/vol.md` §3.9).
    #[error("VOL protocol violation: {0}")]
    Protocol(&'static str),
    /// An `FD` reference to an id this side never exported or already released.
    #[error("reference to unknown local object id {0}")]
    UnknownObject(i64),
    /// The handshake did not complete in time (`docs/protocol/vol.md` §2.4, L08).
    #[error("VOL handshake timed out")]
    HandshakeTimeout,
    /// No traffic from the peer within the keep-alive expiry (`docs/protocol/vol.md` §8).
    #[error("keep-alive expired: no traffic from the peer")]
    KeepAliveExpired,
    /// The link authorizer rejected the peer (`docs/protocol/vol.md` §2.6).
    #[error("peer rejected by the link authorizer")]
    Rejected,
    /// The peer sent references to more distinct objects than the import
    /// table may hold (`TableLimits::max_imports`, `docs/protocol/vol.md` §5.1).
    #[error("the peer exceeded the import table limit of {0} objects")]
    ImportLimit(usize),
    /// The link is closed (or closing) and cannot carry this operation.
    #[error("link closed")]
    Closed,
    /// The peer closed the connection before the link was established.
    #[error("connection closed by peer before the link was established")]
    UnexpectedEof,
    /// The runtime closed the link: it needed memory over a budget and held
    /// nothing that could drain (`docs/design.md`, reliability).
    #[error("{0} memory budget exhausted")]
    MemoryBudget(MemoryBudgetKind),
    /// An I/O error on the underlying stream.
    #[error("I/O error: {0}")]
    Io(Arc<std::io::Error>),
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError::Io(Arc::new(e))
    }
}

/// Which memory budget refused (see `crate::runtime::MemoryLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryBudgetKind {
    /// The link's own budget.
    Link,
    /// The budget shared by all links.
    Process,
}

impl MemoryBudgetKind {
    /// The `limit` label of `versile_limits_exceeded_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            MemoryBudgetKind::Link => "link_memory",
            MemoryBudgetKind::Process => "process_memory",
        }
    }
}

impl std::fmt::Display for MemoryBudgetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryBudgetKind::Link => "link",
            MemoryBudgetKind::Process => "process-wide",
        })
    }
}
