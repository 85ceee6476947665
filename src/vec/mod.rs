//! VEC: the entity encoding and the entity channel (`docs/protocol/vec.md`).
//!
//! Data flow: bytes from the transport → `hello` (one line per direction,
//! §8.2) → [`Decoder`] (incremental, `Ok(None)` on incomplete input) →
//! [`Entity`] trees. The other way, [`encode`] appends an entity's header
//! section and reversed payload section (§2.1) to a write buffer.
//! `netbytes` holds the integer primitives (§1) shared with other layers;
//! [`vse`] maps VSE standard types (§6, §7) to and from tagged entities.
//!
//! No I/O happens here: callers own the buffers.

mod decode;
mod encode;
mod entity;
mod error;
mod fmt;
mod hello;
// Public only for tests, benches and fuzz targets that build hostile
// encodings by hand; not part of the API.
#[doc(hidden)]
pub mod netbytes;
pub mod vse;

pub(crate) use decode::Spread;
pub use decode::{
    Decoder, DecoderConfig, DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTITY_SIZE,
};
pub(crate) use encode::encode_int;
pub use encode::{
    encode, encode_sharing, encode_tuple_header, float_parts, EncodeConfig, ShareBytes, StrCodec,
};
pub use entity::{Entity, Tagged, VFloat, WireRef};
pub use error::VecError;
pub use fmt::{BoundedInt, PeerInt};
// The link sends and parses the VEC hello itself; these are public for the
// tests and the `vol_link` fuzz target only.
#[doc(hidden)]
pub use hello::{hello_line, parse_hello};
pub use vse::{VerLabel, VseValue};
