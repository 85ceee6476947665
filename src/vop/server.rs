//! Server side of the VOP handshake (`docs/protocol/vop-service.md` §2.3, §2.4, §2.9).

use bytes::BytesMut;

use super::error::VopError;
use super::transport::{Transport, TransportSet};
use super::{escape_token, take_line, State, HELLO_PREFIX};

/// The server's answer line for `t`, LF included (`docs/protocol/vop-service.md` §2.1).
/// It must be written before any transport byte (§2.9 server rule 3).
pub fn answer_line(t: Transport) -> &'static [u8] {
    match t {
        Transport::Vts => b"VOP_DRAFT-0.8 USE_TRANSPORT:VTS\n",
        Transport::Tls => b"VOP_DRAFT-0.8 USE_TRANSPORT:TLS\n",
        Transport::Plain => b"VOP_DRAFT-0.8 USE_TRANSPORT:PLAIN\n",
    }
}

/// Validate a complete client hello (LF already stripped) and return the
/// offered set (`docs/protocol/vop-service.md` §2.4 "Validation", steps 1–2):
/// the exact 25-byte prefix, then `:`-separated tokens that are exactly
/// `VTS`, `TLS` or `PLAIN`, none repeated, at least one.
pub(crate) fn parse_client_hello(line: &[u8]) -> Result<TransportSet, VopError> {
    let rest = line
        .strip_prefix(HELLO_PREFIX.as_bytes())
        .ok_or(VopError::BadPrefix {
            expected: HELLO_PREFIX,
        })?;
    if rest.is_empty() {
        return Err(VopError::EmptyList);
    }
    let mut offered = TransportSet::empty();
    for token in rest.split(|&b| b == b':') {
        let t = Transport::from_token(token)
            .ok_or_else(|| VopError::UnknownToken(escape_token(token)))?;
        if !offered.insert(t) {
            return Err(VopError::DuplicateToken(t));
        }
    }
    Ok(offered)
}

/// The server's half of one VOP handshake.
///
/// Feed it the connection's read buffer until it returns `Ok(Some(t))`, then
/// write `answer_line(t)` and hand the rest of the buffer to transport `t`.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    enabled: TransportSet,
    state: State,
}

impl ServerHandshake {
    /// A handshake for a server that enables `enabled`. An empty set is an
    /// error: such a server could never answer (`docs/protocol/vop-service.md` §5.3, S16).
    pub fn new(enabled: TransportSet) -> Result<Self, VopError> {
        if enabled.is_empty() {
            return Err(VopError::EmptyTransportSet);
        }
        Ok(ServerHandshake {
            enabled,
            state: State::Reading,
        })
    }

    /// The transports this server enables.
    pub fn enabled(&self) -> TransportSet {
        self.enabled
    }

    /// Process buffered bytes from the client.
    ///
    /// * `Ok(None)`: no LF yet (and fewer than 64 bytes); read more.
    /// * `Ok(Some(t))`: the hello line was consumed from `buf` (bytes after
    ///   its LF stay there) and `t` is the chosen transport (§2.3).
    /// * `Err(_)`: close without answering (§2.6); a rejected complete line
    ///   has been consumed, the buffer is of no further use.
    ///
    /// After a result, further calls repeat it without touching `buf`.
    pub fn feed(&mut self, buf: &mut BytesMut) -> Result<Option<Transport>, VopError> {
        if let Some(done) = self.state.finished() {
            return done;
        }
        let result = take_line(buf).and_then(|line| match line {
            None => Ok(None),
            Some(line) => {
                let offered = parse_client_hello(&line)?;
                self.enabled
                    .preferred(offered)
                    .map(Some)
                    .ok_or(VopError::NoCommonTransport {
                        offered,
                        enabled: self.enabled,
                    })
            }
        });
        self.state.record(result)
    }

    /// The peer closed (or the socket failed): process what is buffered and
    /// fail with [`VopError::Eof`] if that does not complete the line (§2.6).
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
