//! The VOP hello read loop, written once for both roles: feed what was
//! read to the sans-IO handshake until it names the transport, then put
//! the bytes read past the line back in front of the stream
//! (`docs/protocol/vop-service.md` §2.9 server rule 4, client rule 4).

use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use super::{BoxedIo, Rewind};
use crate::vop::{ClientHandshake, ServerHandshake, Transport, VopError};

/// One side's sans-IO VOP handshake, as the read loop drives it.
pub(crate) trait HelloHandshake {
    /// Process buffered bytes: `Ok(None)` until the line is complete.
    fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<Transport>, VopError>;
    /// The peer closed: the line is complete now or never.
    fn feed_eof(&mut self, buf: &mut BytesMut) -> Result<Transport, VopError>;
}

impl HelloHandshake for ServerHandshake {
    fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<Transport>, VopError> {
        ServerHandshake::feed(self, buf)
    }
    fn feed_eof(&mut self, buf: &mut BytesMut) -> Result<Transport, VopError> {
        ServerHandshake::feed_eof(self, buf)
    }
}

impl HelloHandshake for ClientHandshake {
    fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<Transport>, VopError> {
        ClientHandshake::feed(self, buf)
    }
    fn feed_eof(&mut self, buf: &mut BytesMut) -> Result<Transport, VopError> {
        ClientHandshake::feed_eof(self, buf)
    }
}

/// Read the peer's VOP line from `io` into `hs`; return the chosen
/// transport and the stream, with any bytes read past the line in front
/// (they belong to the transport). The buffer never grows past the line
/// cap: `feed` fails on a line longer than
/// [`LINE_CAP`](crate::vop::LINE_CAP) before the next read.
pub(crate) async fn read_hello<E>(
    hs: &mut impl HelloHandshake,
    mut io: BoxedIo,
) -> Result<(Transport, BoxedIo), E>
where
    E: From<VopError> + From<std::io::Error>,
{
    let mut buf = BytesMut::with_capacity(128);
    let chosen = loop {
        if let Some(t) = hs.feed(&mut buf)? {
            break t;
        }
        if io.read_buf(&mut buf).await? == 0 {
            break hs.feed_eof(&mut buf)?;
        }
    };
    if !buf.is_empty() {
        io = Box::pin(Rewind::new(buf.freeze(), io));
    }
    Ok((chosen, io))
}
