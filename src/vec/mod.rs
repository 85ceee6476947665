//! VEC: the entity encoding and the entity channel (`vec.md`).
//!
//! Data flow: bytes from the transport → [`hello`] (one line per direction,
//! §8.2) → [`Decoder`] (incremental, `Ok(None)` on incomplete input) →
//! [`Entity`] trees. The other way, [`encode`] appends an entity's header
//! section and reversed payload section (§2.1) to a write buffer.
//!
//! No I/O happens here: callers own the buffers.

mod entity;
pub use entity::{Entity, Tagged, VFloat, WireRef};
