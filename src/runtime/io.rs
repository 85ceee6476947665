//! Stream types the runtime passes between layers.
//!
//! They come from the middleware crate, so that its layers and
//! [`Connection`](crate::transport::Connection) share one [`BoxedIo`] type
//! (no re-boxing when a layer takes the stream out) and one [`Rewind`]
//! (the stream that first yields bytes a handshake read past its line,
//! `docs/protocol/vop-service.md` §2.9 rule 4).

pub use crate::transport::{AsyncStream, BoxedIo, Rewind};
