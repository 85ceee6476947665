//! Client side of the VOP handshake (`docs/protocol/vop-service.md` §2.2, §2.5, §2.9).

use bytes::BytesMut;

use super::error::VopError;
use super::transport::{Transport, TransportSet};
use super::{escape_token, take_line, State, ANSWER_PREFIX, HELLO_PREFIX};

/// The client hello for `offered`, LF included: tokens in the fixed order
/// VTS, TLS, PLAIN (`docs/protocol/vop-service.md` §2.2, §2.9 client rule 1). An empty set
/// is refused.
pub fn client_hello(offered: TransportSet) -> Result<Vec<u8>, VopError> {
    if offered.is_empty() {
        return Err(VopError::EmptyTransportSet);
    }
    Ok(hello_line(offered))
}

/// The hello line for a (non-empty) set, LF included.
fn hello_line(offered: TransportSet) -> Vec<u8> {
    let mut line = Vec::with_capacity(40);
    line.extend_from_slice(HELLO_PREFIX.as_bytes());
    for (i, t) in offered.iter().enumerate() {
        if i > 0 {
            line.push(b':');
        }
        line.extend_from_slice(t.token().as_bytes());
    }
    line.push(b'\n');
    line
}

/// Validate a complete server answer (LF already stripped) against what the
/// client offered (`docs/protocol/vop-service.md` §2.5): the exact 28-byte prefix, then
/// exactly one token, which must be one the client offered.
pub fn parse_server_answer(line: &[u8], offered: TransportSet) -> Result<Transport, VopError> {
    let token = line
        .strip_prefix(ANSWER_PREFIX.as_bytes())
        .ok_or(VopError::BadPrefix {
            expected: ANSWER_PREFIX,
        })?;
    let answer =
        Transport::from_token(token).ok_or_else(|| VopError::UnknownToken(escape_token(token)))?;
    if !offered.contains(answer) {
        return Err(VopError::AnswerNotOffered { answer, offered });
    }
    Ok(answer)
}

/// The client's half of one VOP handshake.
///
/// Write [`ClientHandshake::hello`], send nothing else (§2.9 client rule 2),
/// and feed the read buffer until `Ok(Some(t))`; the bytes left in the buffer
/// then belong to transport `t` (a Python PLAIN server sends its VEC hello in
/// the same segment, §2.5).
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    offered: TransportSet,
    state: State,
}

impl ClientHandshake {
    /// A handshake offering `offered` (must not be empty).
    pub fn new(offered: TransportSet) -> Result<Self, VopError> {
        if offered.is_empty() {
            return Err(VopError::EmptyTransportSet);
        }
        Ok(ClientHandshake {
            offered,
            state: State::Reading,
        })
    }

    /// The transports this client offers.
    pub fn offered(&self) -> TransportSet {
        self.offered
    }

    /// The hello line to send, LF included.
    pub fn hello(&self) -> Vec<u8> {
        hello_line(self.offered)
    }

    /// Process buffered bytes from the server; same contract as
    /// [`super::ServerHandshake::feed`]: `Ok(None)` until the LF (64-byte
    /// cap), then the answer line is consumed and the transport returned;
    /// `Err` means close.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<Transport>, VopError> {
        if let Some(done) = self.state.finished() {
            return done;
        }
        let result = take_line(buf).and_then(|line| match line {
            None => Ok(None),
            Some(line) => parse_server_answer(&line, self.offered).map(Some),
        });
        self.state.record(result)
    }

    /// The server closed: process what is buffered and fail with
    /// [`VopError::Eof`] if the answer is incomplete (§2.6).
    pub fn feed_eof(&mut self, buf: &mut BytesMut) -> Result<Transport, VopError> {
        match self.feed(buf)? {
            Some(t) => Ok(t),
            None => {
                let err = VopError::Eof {
                    buffered: buf.len(),
                };
                self.state = State::Failed(err.clone());
                Err(err)
            }
        }
    }
}
