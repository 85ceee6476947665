//! Errors of the VEC layer (`docs/protocol/vec.md` §8.4).
//!
//! Every variant is fatal for the channel: Python closes the connection
//! without sending anything, and so should the runtime.

use thiserror::Error;

use super::fmt::PeerInt;

/// A VEC encoding, decoding or hello-line failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VecError {
    /// `docs/protocol/vec.md` §3: type code `0xFF` (the only unused code).
    #[error("could not parse object type: bad type code 0x{0:02X}")]
    BadTypeCode(u8),

    /// `docs/protocol/vec.md` §5.6: string bytes not valid for their codec.
    #[error("invalid encoding name or encoding: {0}")]
    InvalidString(&'static str),

    /// `docs/protocol/vec.md` §5.6: an `F5` codec name this implementation does not decode.
    #[error("invalid encoding name or encoding: unknown string codec {0:?}")]
    UnknownCodec(String),

    /// `docs/protocol/vec.md` §4, §5.6: `F4` string but the peer announced no codec.
    #[error("cannot decode F4 string, no codec defined")]
    NoStringCodec,

    /// `docs/protocol/vec.md` §5.10: `FC`/`FD` outside an object context.
    #[error("object references (FC/FD) not allowed in this context")]
    RefsNotAllowed,

    /// `docs/protocol/vec.md` §5.3: VFloat base below 2 (peer-sized: formats bounded).
    #[error("invalid VFloat base {0}")]
    InvalidFloatBase(PeerInt),

    /// `docs/protocol/vec.md` §5.3: infinity and NaN have no wire form.
    #[error("cannot encode non-finite float")]
    NonFiniteFloat,

    /// `docs/protocol/vec.md` §5.9: `FE 00`, a tagged value without a value.
    #[error("malformed tagged value (FE 00): no value")]
    MalformedTagged,

    /// `docs/protocol/vec.md` §8.4: the entity is larger than the configured limit.
    #[error("entity too large: at least {size} bytes, limit {max}")]
    EntityTooLarge {
        /// The size the header announced so far (a lower bound).
        size: u128,
        /// The configured limit.
        max: usize,
    },

    /// The entity would cost more memory than the configured limit
    /// ([`DecoderConfig::max_decoded_bytes`](super::DecoderConfig::max_decoded_bytes)),
    /// counted as the decoder builds it (`docs/design.md`, reliability).
    #[error("decoded entity too large: at least {size} bytes of memory, limit {max}")]
    DecodedTooLarge {
        /// The memory the entity would need so far (a lower bound).
        size: u128,
        /// The configured limit.
        max: usize,
    },

    /// `docs/protocol/vec.md` §1.1: more nested `0xFF` length prefixes than the decoder
    /// follows (8, far beyond any length that fits in memory).
    #[error("netbytes length prefix nested too deep")]
    NetbytesTooDeep,

    /// Nesting of tuples/exceptions/tagged values beyond the configured limit.
    #[error("entity nesting too deep (limit {max})")]
    NestingTooDeep {
        /// The configured limit
        /// ([`DecoderConfig::max_depth`](super::DecoderConfig::max_depth)).
        max: usize,
    },

    /// `docs/protocol/vec.md` §5.10: object ids are kept as `i64`.
    #[error("integer out of range for object id")]
    ObjectIdOutOfRange,

    /// `docs/protocol/vec.md` §7: a VSE label with a value layout that does not fit.
    #[error("invalid VSE value: {0}")]
    InvalidVse(&'static str),

    /// `docs/protocol/vec.md` §8.2: the peer's hello line was rejected (Python's wording).
    #[error("bad VEC hello line: {0}")]
    BadHello(&'static str),
}
