//! A per-thread spare for large read buffers.
//!
//! A link's read buffer grows to the size of a large entity once part of
//! it has arrived (`driver::EXACT_RESERVE_FACTOR`) and is released between
//! entities, so that an idle link holds none. Released, a large allocation
//! went back to the allocator, which handed its pages back to the kernel:
//! the next large entity faulted every page in again (a 1 MiB echo between
//! two processes on two CPUs took ~480 page faults and 1.8 ms of server
//! CPU per call, against 0.2–0.5 ms for the ping-pong baseline; issue #8).
//!
//! Instead the link parks the allocation here, if nothing else still holds
//! it, and the next link on this thread that needs about that much takes
//! it. Each thread keeps at most one buffer of at most [`MAX_SPARE`]
//! bytes: a constant per worker thread, charged to no link (the link that
//! takes it is charged for what it asked for, and a spare is taken only if
//! it is not much larger, [`take`]).

use std::cell::RefCell;

use bytes::BytesMut;

/// Largest buffer a thread keeps.
pub(crate) const MAX_SPARE: usize = 4 * 1024 * 1024;

thread_local! {
    static SPARE: RefCell<Option<BytesMut>> = const { RefCell::new(None) };
}

/// Park `buf`'s allocation (its contents are discarded) if it is at most
/// [`MAX_SPARE`] and the thread's slot is free (otherwise it is dropped).
/// While an entity still holds a slice of it, or it is not larger than
/// `min`, it cannot be reused: `buf` comes back as `Err` (to try again
/// later, or drop).
pub(crate) fn give(mut buf: BytesMut, min: usize) -> Result<(), BytesMut> {
    buf.clear();
    // Back to the start of the allocation (more room than the handle has
    // now): possible only if nothing else holds a part of it.
    if !buf.try_reclaim(min.max(buf.capacity() + 1)) {
        return Err(buf);
    }
    if buf.capacity() > MAX_SPARE {
        return Ok(());
    }
    let _ = SPARE.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            if slot.is_none() {
                *slot = Some(buf);
            }
        }
    });
    Ok(())
}

/// An empty buffer with room for at least `capacity` bytes and at most a
/// quarter more (so that the link's charge for `capacity` stays close to
/// what it holds), if this thread has one.
pub(crate) fn take(capacity: usize) -> Option<BytesMut> {
    SPARE
        .try_with(|slot| {
            let mut slot = slot.try_borrow_mut().ok()?;
            let fits = slot
                .as_ref()
                .is_some_and(|b| (capacity..=capacity + capacity / 4).contains(&b.capacity()));
            if fits {
                slot.take()
            } else {
                None
            }
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_buffer_is_taken_back_only_when_free_and_of_a_close_size() {
        let mut buf = BytesMut::with_capacity(1 << 20);
        buf.resize(1 << 20, 7);
        // Still held by an entity: not parked.
        let entity = buf.split().freeze();
        let held = give(std::mem::take(&mut buf), 1 << 16).expect_err("held by the entity");
        assert!(take(1 << 20).is_none());
        drop(held);
        // Let go of: parked, and taken for a need of about its size only.
        let mut again = BytesMut::with_capacity(1 << 20);
        again.extend_from_slice(&entity[..10]);
        let ptr2 = again.as_ptr();
        let _ = again.split().freeze();
        give(again, 1 << 16).expect("parked");
        assert!(take(1 << 18).is_none(), "4 times the need");
        let back = take(1 << 20).expect("the spare");
        assert_eq!(back.as_ptr(), ptr2);
        assert!(back.is_empty() && back.capacity() >= 1 << 20);
        assert!(take(1 << 20).is_none(), "one spare per thread");
        drop(entity);
    }
}
