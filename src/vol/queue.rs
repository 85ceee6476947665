//! [`InlineFirstQueue`]: a FIFO queue that holds its oldest element inline
//! and allocates only for a second one.
//!
//! Link events and queued incoming calls usually come one at a time and
//! are taken at once: with this queue the usual message allocates no queue
//! and an idle link holds no queue memory (issue #8), where a `VecDeque`
//! either kept its first block of four for the link's life or allocated it
//! again for every message.

use std::collections::VecDeque;

/// A FIFO queue; the oldest element is inline, the others in a `VecDeque`
/// that is allocated only when two or more are held.
#[derive(Debug)]
pub(crate) struct InlineFirstQueue<T> {
    /// The oldest element; `None` only when `rest` is empty too.
    first: Option<T>,
    /// The elements after `first`, oldest first.
    rest: VecDeque<T>,
}

impl<T> Default for InlineFirstQueue<T> {
    fn default() -> Self {
        InlineFirstQueue {
            first: None,
            rest: VecDeque::new(),
        }
    }
}

impl<T> InlineFirstQueue<T> {
    /// Append `item` at the back.
    pub(crate) fn push_back(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    /// Take the oldest element.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.first.take()?;
        if !self.rest.is_empty() {
            self.first = self.rest.pop_front();
        }
        Some(item)
    }

    /// How many elements are held.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Whether no element is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Free the overflow block if it is empty (it is allocated again by
    /// the next burst).
    pub(crate) fn release_memory(&mut self) {
        if self.rest.is_empty() && self.rest.capacity() > 0 {
            self.rest = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::InlineFirstQueue;

    #[test]
    fn first_in_first_out_across_the_inline_slot() {
        let mut q = InlineFirstQueue::default();
        assert!(q.is_empty());
        q.push_back(1);
        q.push_back(2);
        q.push_back(3);
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop_front(), Some(1));
        q.push_back(4);
        assert_eq!(q.pop_front(), Some(2));
        assert_eq!(q.pop_front(), Some(3));
        q.release_memory();
        assert_eq!(q.len(), 1);
        q.push_back(5);
        assert_eq!(q.pop_front(), Some(4));
        assert_eq!(q.pop_front(), Some(5));
        assert_eq!(q.pop_front(), None);
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
    }
}
