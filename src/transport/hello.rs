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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::vop::{answer_line, client_hello, TransportSet};

    /// The stream the loop reads from, holding `input` then EOF.
    async fn stream_with(input: &[u8]) -> BoxedIo {
        let (mut peer, ours) = tokio::io::duplex(8192);
        peer.write_all(input).await.expect("write");
        drop(peer);
        Box::pin(ours)
    }

    async fn rest(mut io: BoxedIo) -> Vec<u8> {
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn both_roles_keep_the_bytes_past_the_line() {
        let mut input = client_hello(TransportSet::all()).expect("hello");
        input.extend_from_slice(b"transport bytes");
        let mut hs =
            ServerHandshake::new(TransportSet::empty().with(Transport::Plain)).expect("server");
        let (t, io) = read_hello::<HelloFailed>(&mut hs, stream_with(&input).await)
            .await
            .expect("hello");
        assert_eq!(t, Transport::Plain);
        assert_eq!(rest(io).await, b"transport bytes");

        let mut input = answer_line(Transport::Vts).to_vec();
        input.extend_from_slice(b"M1");
        let mut hs = ClientHandshake::new(TransportSet::all()).expect("client");
        let (t, io) = read_hello::<HelloFailed>(&mut hs, stream_with(&input).await)
            .await
            .expect("answer");
        assert_eq!(t, Transport::Vts);
        assert_eq!(rest(io).await, b"M1");
    }

    #[tokio::test]
    async fn a_line_without_end_fails_instead_of_growing() {
        let mut hs = ServerHandshake::new(TransportSet::all()).expect("server");
        let long = vec![b'V'; 4096];
        let r = read_hello::<HelloFailed>(&mut hs, stream_with(&long).await).await;
        assert!(
            matches!(r, Err(HelloFailed::Vop(VopError::LineTooLong { .. }))),
            "{:?}",
            r.err()
        );
        // EOF in the middle of the line is an error too, not a hang.
        let mut hs = ClientHandshake::new(TransportSet::all()).expect("client");
        let r = read_hello::<HelloFailed>(&mut hs, stream_with(b"VOP_DRAFT").await).await;
        assert!(matches!(r, Err(HelloFailed::Vop(VopError::Eof { .. }))));
    }

    #[derive(Debug)]
    enum HelloFailed {
        Vop(VopError),
        Io,
    }
    impl From<VopError> for HelloFailed {
        fn from(e: VopError) -> Self {
            HelloFailed::Vop(e)
        }
    }
    impl From<std::io::Error> for HelloFailed {
        fn from(_: std::io::Error) -> Self {
            HelloFailed::Io
        }
    }
}
