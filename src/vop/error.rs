//! Errors of the VOP handshake (`docs/protocol/vop-service.md` §2.4–2.6).
//!
//! Every error maps to the same action on the wire: close the connection
//! without sending anything (§2.6, §2.9 server rule 2). The variants only
//! say *why*, for logs and metrics.

use super::transport::{Transport, TransportSet};

/// Why a VOP handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VopError {
    /// The line cap (64 bytes including the LF) was reached without an LF
    /// (§2.4, §2.5).
    #[error("handshake line too long: {cap} bytes buffered without LF")]
    LineTooLong {
        /// The cap, LF included.
        cap: usize,
    },
    /// The line does not start with the expected fixed prefix (§2.1).
    #[error("handshake line does not start with {expected:?}")]
    BadPrefix {
        /// The prefix that was expected.
        expected: &'static str,
    },
    /// A token is not exactly `VTS`, `TLS` or `PLAIN` (§2.4 step 2, §2.5).
    /// The token is shown escaped (it may hold any bytes).
    #[error("unknown transport token {0:?}")]
    UnknownToken(String),
    /// A token appears twice in the client hello (§2.4 step 2).
    #[error("duplicate transport token {0}")]
    DuplicateToken(Transport),
    /// The client hello has an empty token list (§2.4 step 2).
    #[error("empty transport list")]
    EmptyList,
    /// No offered transport is enabled on the server (§2.4 step 3).
    #[error("no common transport: client offered [{offered}], server enables [{enabled}]")]
    NoCommonTransport {
        /// What the client offered.
        offered: TransportSet,
        /// What the server enables.
        enabled: TransportSet,
    },
    /// The server chose a transport the client did not offer (§2.5).
    #[error("server chose {answer}, which the client did not offer ([{offered}])")]
    AnswerNotOffered {
        /// The server's choice.
        answer: Transport,
        /// What the client offered.
        offered: TransportSet,
    },
    /// EOF (or a socket error) before the handshake line was complete (§2.6).
    #[error(
        "connection closed before the handshake line was complete ({buffered} bytes buffered)"
    )]
    Eof {
        /// Bytes of the incomplete line that were buffered.
        buffered: usize,
    },
    /// A handshake needs at least one transport (§2.9 client rule 1; a
    /// server with none enabled would hang every connection, §5.3).
    #[error("no transport enabled")]
    EmptyTransportSet,
}
