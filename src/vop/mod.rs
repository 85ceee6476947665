//! VOP: the transport-negotiation handshake (`docs/protocol/vop-service.md` §2), sans-IO.
//!
//! A VOP connection starts with one ASCII line from the client listing the
//! transports it offers, and one line from the server naming the transport it
//! chose (VTS, TLS or PLAIN). After the server's LF, the chosen transport owns
//! the byte stream.
//!
//! Data flow (both sides own their read buffer; nothing here does I/O):
//!
//! ```text
//! client: client_hello(offered) ──write──▶ server: ServerHandshake::feed(buf)
//!                                                 └─ Ok(Some(t)): write answer_line(t),
//!                                                    hand buf's leftover bytes to t
//! client: ClientHandshake::feed(buf) ◀──read── answer line
//!         └─ Ok(Some(t)): hand buf's leftover bytes to t
//! ```
//!
//! `feed` returns `Ok(None)` while the line is incomplete, consumes exactly
//! the line (LF included) once it is complete, and leaves any following bytes
//! in the buffer: they belong to the transport (§2.9 server rule 4, client
//! rule 4). Every `Err` means "close the connection without sending
//! anything" (§2.6). When the peer closes early, call `feed_eof`.

mod client;
mod error;
mod server;
mod transport;

pub use client::ClientHandshake;
// The line functions are public for tests, benches and fuzz targets; the
// handshakes are the API.
#[doc(hidden)]
pub use client::{client_hello, parse_server_answer};
pub use error::VopError;
#[doc(hidden)]
pub use server::answer_line;
pub use server::ServerHandshake;
pub use transport::{Transport, TransportSet};

use bytes::BytesMut;

/// Maximum length of a handshake line, LF included (`docs/protocol/vop-service.md` §2.4, §2.5).
pub const LINE_CAP: usize = 64;

/// Prefix of the client hello, colon included (`docs/protocol/vop-service.md` §2.1; 25 bytes).
pub(crate) const HELLO_PREFIX: &str = "VOP_DRAFT-0.8 TRANSPORTS:";

/// Prefix of the server answer, colon included (`docs/protocol/vop-service.md` §2.1; 28 bytes).
pub(crate) const ANSWER_PREFIX: &str = "VOP_DRAFT-0.8 USE_TRANSPORT:";

/// Progress of one side's handshake; shared by server and client.
#[derive(Debug, Clone)]
enum State {
    Reading,
    Done(Transport),
    Failed(VopError),
}

impl State {
    /// Replay a finished outcome, or `None` while still reading.
    fn finished(&self) -> Option<Result<Option<Transport>, VopError>> {
        match self {
            State::Reading => None,
            State::Done(t) => Some(Ok(Some(*t))),
            State::Failed(e) => Some(Err(e.clone())),
        }
    }

    /// Record the outcome of one `feed` step and pass it through.
    fn record(
        &mut self,
        result: Result<Option<Transport>, VopError>,
    ) -> Result<Option<Transport>, VopError> {
        match &result {
            Ok(Some(t)) => *self = State::Done(*t),
            Err(e) => *self = State::Failed(e.clone()),
            Ok(None) => {}
        }
        result
    }
}

/// Take one LF-terminated line off the front of `buf`, returning it without
/// the LF; `Ok(None)` if no LF yet. Like Python, only the first [`LINE_CAP`]
/// bytes are looked at: 64 bytes without an LF is an error at once, 63 wait
/// for more (`docs/protocol/vop-service.md` §2.4 "Reading").
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, VopError> {
    let window = &buf[..buf.len().min(LINE_CAP)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let mut line = buf.split_to(lf + 1);
            line.truncate(lf);
            Ok(Some(line))
        }
        None if buf.len() >= LINE_CAP => Err(VopError::LineTooLong { cap: LINE_CAP }),
        None => Ok(None),
    }
}

/// A token as text for error messages (it may hold any bytes).
fn escape_token(token: &[u8]) -> String {
    token.escape_ascii().to_string()
}
