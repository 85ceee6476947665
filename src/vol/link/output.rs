//! A link's output: the encoded messages the runtime has not written yet
//! ([`Link::pending_output`](super::Link::pending_output)).
//!
//! Messages are encoded into one buffer, except that a link whose runtime
//! asked for it ([`Link::share_large_bytes`](super::Link::share_large_bytes))
//! keeps large byte strings as they are: at each one, the buffer so far
//! and the byte string itself are queued as pieces (`vec::encode_sharing`),
//! and the buffer goes on after them. The runtime writes the pieces in
//! order, the front one first. Nothing on the wire changes; a stream that
//! transforms every byte anyway (VTS and TLS encrypt them) reads the
//! payload where it lies instead of from a copy (`docs/performance.md`,
//! "Ninth round").

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::output_pool;
use crate::vec::{self, EncodeConfig, Entity, ShareBytes, VecError};

/// A link's unwritten output: `pieces`, then `buf`.
#[derive(Default)]
pub(super) struct LinkOutput {
    /// Written before `buf`, front first; never an empty one.
    pieces: VecDeque<Bytes>,
    pieces_len: usize,
    /// Where messages are encoded.
    pub(super) buf: BytesMut,
    /// Byte strings of at least this many bytes are queued as pieces.
    share_from: Option<usize>,
}

impl LinkOutput {
    /// The next bytes to write: the front piece, or the buffer.
    pub(super) fn front(&self) -> &[u8] {
        self.pieces.front().map_or(&self.buf[..], |p| &p[..])
    }

    /// Every unwritten byte.
    pub(super) fn len(&self) -> usize {
        self.pieces_len + self.buf.len()
    }

    /// `n` bytes written, from the front.
    pub(super) fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.pieces.front_mut() else {
                self.buf.advance(n.min(self.buf.len()));
                return;
            };
            let step = n.min(front.len());
            front.advance(step);
            self.pieces_len -= step;
            n -= step;
            if front.is_empty() {
                self.pieces.pop_front();
            }
        }
    }

    /// Queue byte strings of at least `min` bytes by reference (`None`:
    /// copy every one).
    pub(super) fn share_from(&mut self, min: Option<usize>) {
        self.share_from = min;
    }

    /// Append `entity`'s encoding (`vec::encode`, or `vec::encode_sharing`
    /// when large byte strings are shared). On error nothing is appended.
    pub(super) fn encode(&mut self, entity: &Entity, cfg: &EncodeConfig) -> Result<(), VecError> {
        match self.share_from {
            None => vec::encode(entity, cfg, &mut self.buf),
            Some(min_len) => {
                let mut queue = PieceQueue {
                    pieces: &mut self.pieces,
                    len: &mut self.pieces_len,
                    min_len,
                };
                vec::encode_sharing(entity, cfg, &mut self.buf, &mut queue)
            }
        }
    }

    /// Give up everything unwritten.
    pub(super) fn clear(&mut self) {
        self.pieces.clear();
        self.pieces_len = 0;
        self.buf.clear();
    }

    /// Everything unwritten, as one buffer (tests and fuzzing read output
    /// this way; the runtime writes piece by piece).
    pub(super) fn take_all(&mut self) -> BytesMut {
        if self.pieces.is_empty() {
            return self.buf.split();
        }
        let mut all = BytesMut::with_capacity(self.len());
        for piece in self.pieces.drain(..) {
            all.extend_from_slice(&piece);
        }
        all.extend_from_slice(&self.buf.split());
        self.pieces_len = 0;
        all
    }

    /// Let the buffer go if everything was written (see
    /// [`Link::release_output_buffer`](super::Link::release_output_buffer)).
    pub(super) fn release_buffer(&mut self, keep_min: usize) {
        if self.len() == 0 {
            if self.buf.capacity() > 0 {
                output_pool::give(std::mem::take(&mut self.buf), keep_min);
            }
            if self.pieces.capacity() > 0 {
                self.pieces = VecDeque::new();
            }
        }
    }
}

/// The pieces, as `vec::encode_sharing` hands them over.
struct PieceQueue<'a> {
    pieces: &'a mut VecDeque<Bytes>,
    len: &'a mut usize,
    min_len: usize,
}

impl ShareBytes for PieceQueue<'_> {
    fn min_len(&self) -> usize {
        self.min_len
    }

    fn share(&mut self, before: Bytes, shared: Bytes) {
        for piece in [before, shared] {
            if !piece.is_empty() {
                *self.len += piece.len();
                self.pieces.push_back(piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(payload: &Bytes) -> Entity {
        Entity::Tuple(vec![
            Entity::Int(7),
            Entity::String("echo".into()),
            Entity::Bytes(payload.clone()),
        ])
    }

    #[test]
    fn shared_pieces_concatenate_to_the_copied_encoding() {
        let large = Bytes::from(vec![5u8; 70_000]);
        let small = Bytes::from_static(b"tiny");
        let two = Entity::Tuple(vec![
            Entity::Bytes(large.clone()),
            Entity::Bytes(large.slice(1..)),
            Entity::Bytes(small.clone()),
        ]);
        for entity in [call(&large), call(&small), two] {
            let mut copied = BytesMut::new();
            vec::encode(&entity, &EncodeConfig::LINK, &mut copied).unwrap();
            let mut out = LinkOutput::default();
            out.share_from(Some(65_536));
            out.buf.extend_from_slice(b"earlier");
            out.encode(&entity, &EncodeConfig::LINK).unwrap();
            assert_eq!(out.len(), copied.len() + 7);
            // Written front first, in odd amounts, as a stream takes them.
            let mut written = Vec::new();
            while out.len() > 0 {
                let n = out.front().len().min(30_001);
                written.extend_from_slice(&out.front()[..n]);
                out.consume(n);
            }
            assert_eq!(&written[..7], b"earlier");
            assert!(written[7..] == copied[..]);
        }
    }

    #[test]
    fn a_large_byte_string_is_queued_not_copied() {
        let large = Bytes::from(vec![5u8; 70_000]);
        let mut out = LinkOutput::default();
        out.share_from(Some(65_536));
        out.encode(&call(&large), &EncodeConfig::LINK).unwrap();
        // The headers, then the payload itself, then the method's name.
        assert_eq!(out.pieces.len(), 2);
        assert_eq!(out.pieces[1].as_ptr(), large.as_ptr());
        assert!(out.buf.len() < 16, "only the short string is copied");
        let mut copied = BytesMut::new();
        vec::encode(&call(&large), &EncodeConfig::LINK, &mut copied).unwrap();
        assert!(out.take_all() == copied);
        assert_eq!(out.len(), 0);
        out.release_buffer(0);
        assert_eq!(out.pieces.capacity(), 0);
    }

    #[test]
    fn without_sharing_everything_is_copied() {
        let large = Bytes::from(vec![5u8; 70_000]);
        let mut out = LinkOutput::default();
        out.encode(&call(&large), &EncodeConfig::LINK).unwrap();
        assert!(out.pieces.is_empty());
        assert!(out.buf.len() > 70_000);
    }
}
