//! A per-thread spare for small output buffers.
//!
//! The runtime releases a link's output buffer once everything in it is
//! written, so that an idle link holds none (`Link::release_output_buffer`).
//! Dropped, that cost an allocation and a free for every message sent: two
//! per sequential call, about 350 instructions (issue #8). Instead an
//! emptied buffer of at most [`MAX_POOLED`] bytes is kept here, one per
//! thread, and the next link on this thread that starts a message takes it.
//!
//! Bounded: one buffer of at most 4 KiB per thread, charged to no link
//! while it waits here (a link that takes it is charged for its unsent
//! bytes, as for any output buffer). Larger buffers (large messages, long batches) are
//! dropped as before.

use std::cell::RefCell;

use bytes::BytesMut;

/// Largest buffer a thread keeps.
pub(super) const MAX_POOLED: usize = 4096;

thread_local! {
    static SPARE: RefCell<Option<BytesMut>> = const { RefCell::new(None) };
}

/// Keep `buf`'s allocation (its contents are discarded) if it holds at
/// least `min` and at most [`MAX_POOLED`] bytes and the slot is free;
/// otherwise it is dropped.
pub(super) fn give(mut buf: BytesMut, min: usize) {
    buf.clear();
    // Back to the start of the allocation, if written output moved the
    // handle's start: then `capacity` is the whole allocation's size.
    // (It fails, harmlessly, when the start never moved.)
    let _ = buf.try_reclaim(buf.capacity() + 1);
    if !(min..=MAX_POOLED).contains(&buf.capacity()) {
        return;
    }
    let _ = SPARE.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            if slot.is_none() {
                *slot = Some(buf);
            }
        }
    });
}

/// The thread's spare buffer (empty, at most [`MAX_POOLED`] bytes), if any.
pub(super) fn take() -> Option<BytesMut> {
    SPARE
        .try_with(|slot| slot.try_borrow_mut().ok()?.take())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use bytes::Buf;

    use super::*;

    #[test]
    fn an_emptied_small_buffer_is_reused_from_its_start() {
        while take().is_some() {}
        let mut buf = BytesMut::with_capacity(512);
        buf.extend_from_slice(&[7; 300]);
        let start = buf.as_ptr();
        buf.advance(300);
        give(buf, 512);
        let again = take().expect("kept");
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), start, "from the allocation's start");
        assert!(again.capacity() >= 512);
        assert!(take().is_none(), "one buffer per thread");
    }

    #[test]
    fn large_or_tiny_buffers_are_not_kept() {
        while take().is_some() {}
        give(BytesMut::with_capacity(MAX_POOLED * 4), 512);
        assert!(take().is_none());
        give(BytesMut::with_capacity(64), 512);
        assert!(take().is_none());
        // A large allocation seen through a small window is not kept.
        let mut big = BytesMut::with_capacity(1 << 20);
        big.extend_from_slice(&vec![0; (1 << 20) - 100]);
        big.advance((1 << 20) - 100);
        give(big, 64);
        assert!(take().is_none());
    }
}
