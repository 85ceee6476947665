//! [`VtsError`]: every way a VTS connection can fail.
//!
//! The protocol has no error messages (`docs/protocol/vts.md` §7): any error closes the
//! connection silently. The variants exist for logs and tests only; the
//! peer never learns which check failed.

use crate::vec::VecError;

/// A VTS failure. Every variant is fatal for the connection.
#[derive(Debug, thiserror::Error)]
pub enum VtsError {
    /// Too many bytes under one 64-bit-block key (`docs/protocol/vts.md` §10 #9).
    #[error("{0} bytes under one 64-bit-block cipher key (Sweet32 limit, VtsConfig::max_bytes_64bit_cipher); reconnect")]
    DataLimit(u64),
    /// The peer's protocol line is not `VTS_DRAFT-0.8` (`docs/protocol/vts.md` §3.1).
    #[error("bad VTS protocol line")]
    BadProtocolLine,
    /// A handshake entity is malformed or violates `docs/protocol/vts.md` §3.2–§3.5.
    #[error("bad handshake message: {0}")]
    BadHandshake(&'static str),
    /// A handshake entity could not be decoded (`docs/protocol/vec.md`).
    #[error("handshake entity: {0}")]
    Entity(#[from] VecError),
    /// No common PRF hash, cipher/mode or MAC hash (`docs/protocol/vts.md` §3.2).
    #[error("no common algorithm: {0}")]
    NoCommonAlgorithm(&'static str),
    /// The peer's public key is unusable or refused by policy (§3.3, §10 #5).
    #[error("peer key refused: {0}")]
    KeyRefused(String),
    /// The peer (or its credentials) was refused by the authorizer (§3.8).
    #[error("peer not authorized")]
    Unauthorized,
    /// An RSA-encrypted handshake part (M5 header, M6) is longer than any
    /// real peer sends to a key of our size: refused before any private-key
    /// operation (`docs/protocol/vts.md` §2.6, §3.4, §3.5).
    #[error("RSA-encrypted handshake part of {len} bytes, at most {max} expected; refused before decryption")]
    CiphertextTooLarge {
        /// Bytes the peer sent for the part.
        len: usize,
        /// The most a real peer sends for it: the RSA-block size of the
        /// longest legitimate content for our key.
        max: usize,
    },
    /// The pool of RSA private-key work is full: the handshake is refused
    /// (`VtsConfig::rsa_queue`).
    #[error("RSA work queue full ({queued} queued, {workers} workers); handshake refused")]
    RsaBusy {
        /// Operations waiting when this one was refused.
        queued: usize,
        /// Threads running operations (`VtsConfig::rsa_workers`).
        workers: usize,
    },
    /// An RSA block failed to decrypt (§2.6). Deliberately not more specific.
    #[error("RSA block decryption failed")]
    RsaDecrypt,
    /// A record or handshake message failed its MAC (§2.5, §4).
    #[error("message authentication failed")]
    BadMac,
    /// A declared length is outside the accepted range.
    #[error("message length out of range")]
    BadLength,
    /// Writing plaintext before the handshake has finished, or after a failure.
    #[error("connection not ready: {0}")]
    NotReady(&'static str),
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
    /// A key could not be loaded, generated or used.
    #[error("key error: {0}")]
    Key(String),
    /// The connection already failed; it must be closed.
    #[error("connection failed earlier")]
    Failed,
}
