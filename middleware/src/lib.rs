//! Connection-level tower layers, independent of the Versile protocol.
//!
//! Each layer lives in its own module (`layer.rs` builds, `service.rs` gates
//! calls, `future.rs` carries per-connection state) and works with any
//! `Service<Conn>` whose future lives as long as the connection.
//!
//! * [`limit`]: a global cap on concurrent connections.
#![forbid(unsafe_code)]

pub mod limit;

pub use limit::{ConnectionLimit, ConnectionLimitLayer};
