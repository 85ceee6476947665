//! Handshake deadline: a connection must be *established* within a fixed
//! time from accept, or it is dropped.
//!
//! "Established" is whatever the terminal service says it is through
//! [`ConnectionSignals::mark_established`](crate::ConnectionSignals::mark_established)
//! — for a Versile link, the VOP, transport and VOL handshakes all done. The
//! deadline is absolute: a client that sends nothing, or trickles a byte
//! at a time (slowloris), is dropped at the same moment as one that sends
//! garbage slowly. Once established, the deadline is off and the
//! connection lives as long as the inner service wants.
//!
//! ```text
//! call(conn) ── insert (or reuse) ConnectionSignals in the request
//! ResponseFuture ── polls the inner future
//!     ├─ established before the deadline → just the inner future from then on
//!     └─ deadline first → drop the inner future (closing the stream),
//!                          Err(HandshakeTimeout)
//! ```
//!
//! Place it outside every layer that reads from the client (PROXY
//! protocol, transport negotiation) so they are all covered.
//!
//! ```
//! use std::time::Duration;
//! use versile_middleware::deadline::HandshakeDeadlineLayer;
//!
//! let layer = HandshakeDeadlineLayer::new(Duration::from_secs(5));
//! assert_eq!(layer.timeout(), Duration::from_secs(5));
//! assert_eq!(HandshakeDeadlineLayer::default().timeout(), Duration::from_secs(10));
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{HandshakeDeadlineLayer, HandshakeTimeout};
pub use service::HandshakeDeadline;
