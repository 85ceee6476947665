//! Memory budgets: what a peer makes a link hold, charged before it is held
//! (`docs/design.md`, reliability).
//!
//! Two levels. Every link has its own budget ([`MemoryLimits::link_budget`])
//! covering the read buffer, the entity being decoded, decoded calls that
//! are queued or running, and unsent output. All links made from one
//! [`LinkOptions`](super::LinkOptions) value (every link of a
//! `GatewayService`, every connection of a `Client`) share one
//! [`MemoryBudget`] ([`MemoryLimits::process`]), so that N connections × the
//! per-link budget cannot exhaust the process. The first
//! [`MemoryLimits::link_reserve`] bytes of each link are not charged to the
//! shared budget: a small, well-behaved link (a client making ordinary
//! calls) keeps working while hostile links hold the shared budget; the
//! connection limit bounds the reserves.
//!
//! Data flow: the link task holds `Charge`s on its `LinkMemory` — one
//! for its buffers (resized every round), one per decoded call (moved into
//! the call's task, released when the task ends, however it ends). Before
//! it reads or decodes, the task asks for room; when the budget refuses,
//! the driver pauses reading if something it holds will drain (output, calls),
//! and closes the link otherwise (`docs/protocol/vol.md` §7.2: a forced close).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::vec::{Entity, VecError};
use crate::vol::{LinkError, MemoryBudgetKind};

/// Default [`MemoryLimits::link_budget`], 192 MiB: a Python-size entity
/// (101 MiB on the wire, `docs/protocol/vec.md` §8.4) in a read buffer that grew by
/// doubling (128 MiB), its decoded form (up to
/// [`DEFAULT_LINK_MAX_DECODED_BYTES`](crate::vol::DEFAULT_LINK_MAX_DECODED_BYTES))
/// and some unsent output.
pub const DEFAULT_LINK_BUDGET: usize = 192 * 1024 * 1024;
/// Default [`MemoryLimits::link_reserve`], 256 KiB: a link's 64 KiB read
/// buffer plus ordinary calls and results, so a normal client is served
/// while the shared budget is exhausted; 10,000 connections (the default
/// connection limit) hold at most 2.5 GiB of reserves, and idle links far
/// less (their buffers are small).
pub const DEFAULT_LINK_RESERVE: usize = 256 * 1024;
/// Default [`MemoryLimits::max_unsent_output`], 8 MiB: twice the output at
/// which a link already stops starting calls (4 MiB), so a peer that reads
/// slowly is not paused by its own results; a peer that never reads stops
/// being read once this much waits for it.
pub const DEFAULT_MAX_UNSENT_OUTPUT: usize = 8 * 1024 * 1024;
/// Default limit of the process-wide [`MemoryBudget`] that
/// [`MemoryLimits::default`] creates, 512 MiB: room for two links at their
/// full budget, or for many ordinary ones, on a small server; raise it with
/// the memory the machine can give `versile serve`.
pub const DEFAULT_PROCESS_BUDGET: usize = 512 * 1024 * 1024;

/// Memory knobs of a link (a field of [`LinkOptions`](super::LinkOptions)).
///
/// The per-entity limits live in the protocol settings
/// ([`LinkConfig::max_decoded_bytes`](crate::vol::LinkConfig::max_decoded_bytes)
/// and the `handshake_*` limits), since the sans-IO link enforces them.
#[derive(Debug, Clone)]
pub struct MemoryLimits {
    /// Most memory one link may hold (read buffer, entity being decoded,
    /// queued and running calls' arguments, unsent output). Over it: the
    /// link stops reading until output drains and calls finish, or is
    /// closed if nothing it holds can drain. Default [`DEFAULT_LINK_BUDGET`].
    pub link_budget: usize,
    /// What each link may hold without charging [`process`](Self::process).
    /// Default [`DEFAULT_LINK_RESERVE`].
    pub link_reserve: usize,
    /// Unsent output beyond which the link stops reading input and
    /// starting calls, until the peer reads. Default
    /// [`DEFAULT_MAX_UNSENT_OUTPUT`].
    pub max_unsent_output: usize,
    /// Budget shared by every link whose options were cloned from this
    /// value. Over it, as over the link budget. Default: a new budget of
    /// [`DEFAULT_PROCESS_BUDGET`]; share one [`Arc`] between services and
    /// clients to bound them together.
    pub process: Arc<MemoryBudget>,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            link_budget: DEFAULT_LINK_BUDGET,
            link_reserve: DEFAULT_LINK_RESERVE,
            max_unsent_output: DEFAULT_MAX_UNSENT_OUTPUT,
            process: MemoryBudget::new(DEFAULT_PROCESS_BUDGET),
        }
    }
}

/// A memory budget shared by many links (thread-safe; clone the [`Arc`]).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes that can still be charged.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    fn try_add(&self, n: usize) -> bool {
        n == 0
            || self
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                    u.checked_add(n).filter(|v| *v <= self.limit)
                })
                .is_ok()
    }

    fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }

    fn sub(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// One link's budget, charged through to the shared one beyond the reserve.
#[derive(Debug)]
pub(crate) struct LinkMemory {
    limit: usize,
    reserve: usize,
    used: AtomicUsize,
    process: Arc<MemoryBudget>,
}

impl LinkMemory {
    pub(crate) fn new(limits: &MemoryLimits) -> Arc<Self> {
        Arc::new(LinkMemory {
            limit: limits.link_budget,
            reserve: limits.link_reserve,
            used: AtomicUsize::new(0),
            process: limits.process.clone(),
        })
    }

    /// The part of `used` that the shared budget carries.
    fn over(&self, used: usize) -> usize {
        used.saturating_sub(self.reserve)
    }

    /// Bytes this link may still charge (its own limit and the shared one).
    pub(crate) fn headroom(&self) -> usize {
        let used = self.used.load(Ordering::Relaxed);
        let own = self.limit.saturating_sub(used);
        let free_reserve = self.reserve.saturating_sub(used);
        own.min(free_reserve.saturating_add(self.process.available()))
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// What is left of the reserve (charged to this link only).
    fn free_reserve(&self) -> usize {
        self.reserve.saturating_sub(self.used())
    }

    /// Move this link's usage from `from` to `to` bytes; `force` for memory
    /// that is already spent. Each successful step moves the shared budget
    /// by exactly the change of [`over`](Self::over), so the shared total is
    /// the sum of the links' excess over their reserves.
    fn change(&self, grow: usize, shrink: usize, force: bool) -> Result<(), MemoryBudgetKind> {
        let mut old = self.used.load(Ordering::Acquire);
        loop {
            let new = old.saturating_add(grow).saturating_sub(shrink);
            if !force && new > old && new > self.limit {
                return Err(MemoryBudgetKind::Link);
            }
            let (before, after) = (self.over(old), self.over(new));
            if after > before {
                let extra = after - before;
                if force {
                    self.process.add(extra);
                } else if !self.process.try_add(extra) {
                    return Err(MemoryBudgetKind::Process);
                }
            }
            match self
                .used
                .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if before > after {
                        self.process.sub(before - after);
                    }
                    return Ok(());
                }
                Err(now) => {
                    if after > before {
                        self.process.sub(after - before);
                    }
                    old = now;
                }
            }
        }
    }

    /// A charge of `n` bytes for memory already spent (never refused).
    pub(crate) fn charge_spent(self: &Arc<Self>, n: usize) -> Charge {
        let _ = self.change(n, 0, true);
        Charge {
            memory: self.clone(),
            amount: n,
        }
    }
}

/// Bytes charged to a [`LinkMemory`]; released when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    memory: Arc<LinkMemory>,
    amount: usize,
}

impl Charge {
    pub(crate) fn empty(memory: &Arc<LinkMemory>) -> Charge {
        memory.charge_spent(0)
    }

    pub(crate) fn amount(&self) -> usize {
        self.amount
    }

    /// Resize to `n` bytes, unless growing is refused by a budget.
    pub(crate) fn try_resize(&mut self, n: usize) -> Result<(), MemoryBudgetKind> {
        self.resize(n, false)
    }

    /// Resize to `n` bytes of memory already spent (never refused).
    pub(crate) fn set_spent(&mut self, n: usize) {
        let _ = self.resize(n, true);
    }

    fn resize(&mut self, n: usize, force: bool) -> Result<(), MemoryBudgetKind> {
        if n == self.amount {
            // The usual case once per wake-up of a busy link: no atomics.
            return Ok(());
        }
        if n >= self.amount {
            self.memory.change(n - self.amount, 0, force)?;
        } else {
            self.memory.change(0, self.amount - n, true)?;
        }
        self.amount = n;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let _ = self.memory.change(0, self.amount, true);
    }
}

/// Smallest room worth reading for: below it the link counts as out of
/// memory (a node of a small entity fits; 4 KiB is a small read).
const MIN_ROOM: usize = 4 * 1024;
/// Most room granted to the decoder per step, so one link does not take
/// the whole shared budget for a read that may need little of it.
const ROOM_STEP: usize = 1024 * 1024;

/// What the link task holds in its own buffers, as it will be after the
/// next step (the read buffer after growing).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Buffers {
    pub(crate) read_buffer: usize,
    pub(crate) unsent: usize,
    /// The decoder's charge for the entity in progress.
    pub(crate) decoding: usize,
    /// The charge the decoder needs to go on, if it waits for room.
    pub(crate) wanted: Option<usize>,
}

impl Buffers {
    fn total(&self) -> usize {
        self.read_buffer + self.unsent + self.decoding
    }
}

/// The driver's verdict before reading or decoding more input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Go on; the entity being decoded may cost this many bytes in all.
    Read { decoder_room: usize },
    /// Stop reading until output drains or calls finish.
    Pause,
    /// Nothing held can drain: close the link.
    Close(MemoryBudgetKind),
}

/// A link task's account: its buffers' charge and its pause state (logged
/// and counted once per pause).
#[derive(Debug)]
pub(crate) struct LinkAccount {
    memory: Arc<LinkMemory>,
    buffers: Charge,
    max_unsent: usize,
    paused: Option<&'static str>,
    link_id: u64,
}

impl LinkAccount {
    pub(crate) fn new(limits: &MemoryLimits, link_id: u64) -> Self {
        let memory = LinkMemory::new(limits);
        LinkAccount {
            buffers: Charge::empty(&memory),
            memory,
            max_unsent: limits.max_unsent_output,
            paused: None,
            link_id,
        }
    }

    /// May the link read and decode more? Charges `next` plus the room it
    /// grants the decoder *before* the read buffer grows or the decoder
    /// builds anything. `drainable`: the link holds output or calls that
    /// will shrink without reading.
    pub(crate) fn admit(&mut self, next: Buffers, drainable: bool) -> Admit {
        if next.unsent >= self.max_unsent {
            self.pause("unsent_output");
            return Admit::Pause;
        }
        let base = next.total();
        let reachable = self.buffers.amount() + self.memory.headroom();
        // At least what the next node needs (one node may be a big integer
        // or the node list doubling), so that a waiting decoder progresses.
        let need = next.wanted.map_or(0, |w| w.saturating_sub(next.decoding));
        let room = reachable
            .saturating_sub(base)
            .clamp(MIN_ROOM.max(need), ROOM_STEP.max(need));
        // Room taken from the shared budget when the link's reserve has
        // enough was charged to it and given back on every wake-up of
        // every link: two updates of the one counter all links share
        // (`docs/performance.md`, "Sixth round"). Within the reserve while
        // what the decoder needs fits there; beyond it (a large entity)
        // as before.
        let in_reserve = (self.memory.free_reserve() + self.buffers.amount()).saturating_sub(base);
        let room = if in_reserve >= MIN_ROOM.max(need) {
            room.min(in_reserve)
        } else {
            room
        };
        match self.buffers.try_resize(base + room) {
            Ok(()) => {
                self.resume();
                Admit::Read {
                    decoder_room: next.decoding + room,
                }
            }
            Err(kind) if drainable => {
                self.pause(kind.metric_label());
                Admit::Pause
            }
            Err(kind) => {
                tracing::warn!(
                    link = self.link_id,
                    budget = %kind,
                    used = self.memory.used(),
                    "closing link: memory budget exhausted and nothing to drain"
                );
                crate::limits::limit_exceeded(kind.metric_label());
                Admit::Close(kind)
            }
        }
    }

    /// Charge what the buffers hold now (after the step; never refused).
    pub(crate) fn settle(&mut self, now: Buffers) {
        self.buffers.set_spent(now.total());
    }

    /// A charge for a decoded call's arguments, to travel with the call.
    pub(crate) fn charge_call<R>(&self, args: &[Entity<R>]) -> Charge {
        let slots = std::mem::size_of_val(args);
        self.memory
            .charge_spent(slots + args.iter().map(value_cost).sum::<usize>())
    }

    fn pause(&mut self, why: &'static str) {
        if self.paused != Some(why) {
            tracing::debug!(link = self.link_id, reason = why, "link stops reading");
            crate::limits::limit_exceeded(why);
            self.paused = Some(why);
        }
    }

    fn resume(&mut self) {
        if let Some(why) = self.paused.take() {
            tracing::debug!(link = self.link_id, reason = why, "link reads again");
        }
    }
}

/// Log and count an entity limit that closed the link (the decoder's
/// memory and wire limits, smaller before the handshake completes).
pub(crate) fn note_input_limit(e: &LinkError, link_id: u64, established: bool) {
    let limit = match e {
        LinkError::Vec(VecError::DecodedTooLarge { .. }) => "decoded_memory",
        LinkError::Vec(VecError::EntityTooLarge { .. }) => "entity_size",
        _ => return,
    };
    tracing::warn!(
        link = link_id,
        limit,
        handshake = !established,
        error = %e,
        "closing link: entity over its limit"
    );
    crate::limits::limit_exceeded(limit);
}

/// Estimated memory held by a decoded value: the entity slots of its
/// containers and the heap of its leaves (byte strings counted in full,
/// since a zero-copy slice keeps its whole buffer alive).
pub(crate) fn value_cost<R>(e: &Entity<R>) -> usize {
    let slot = std::mem::size_of::<Entity<R>>();
    match e {
        Entity::BigInt(v) => v.bits().div_ceil(8) as usize,
        // Boxed (so that every other entity is 40 bytes, not 104).
        Entity::VFloat(v) => {
            std::mem::size_of::<crate::vec::VFloat>()
                + (v.digits.bits() + v.base.bits() + v.exp.bits()).div_ceil(8) as usize
        }
        Entity::Bytes(b) => b.len(),
        Entity::String(s) => s.capacity(),
        Entity::Tuple(items) | Entity::Exception(items) => {
            slot * items.capacity() + items.iter().map(value_cost).sum::<usize>()
        }
        Entity::Tagged(t) => {
            std::mem::size_of::<crate::vec::Tagged<R>>()
                + value_cost(&t.value)
                + slot * t.tags.capacity()
                + t.tags.iter().map(value_cost).sum::<usize>()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(link: usize, reserve: usize, process: usize) -> MemoryLimits {
        MemoryLimits {
            link_budget: link,
            link_reserve: reserve,
            max_unsent_output: DEFAULT_MAX_UNSENT_OUTPUT,
            process: MemoryBudget::new(process),
        }
    }

    #[test]
    fn link_and_process_levels() {
        let l = limits(1000, 100, 1500);
        let a = LinkMemory::new(&l);
        let b = LinkMemory::new(&l);
        let mut ca = Charge::empty(&a);
        // Within the reserve: the shared budget is untouched.
        ca.try_resize(100).unwrap();
        assert_eq!(l.process.used(), 0);
        ca.try_resize(1000).unwrap();
        assert_eq!(l.process.used(), 900);
        assert_eq!(ca.try_resize(1001), Err(MemoryBudgetKind::Link));
        let mut cb = Charge::empty(&b);
        cb.try_resize(700).unwrap();
        assert_eq!(l.process.used(), 1500);
        assert_eq!(cb.try_resize(701), Err(MemoryBudgetKind::Process));
        assert_eq!(b.headroom(), 0);
        drop(ca);
        assert_eq!(l.process.used(), 600);
        assert_eq!(a.used(), 0);
        // Spent memory is charged even over the limits.
        let spent = b.charge_spent(2000);
        assert_eq!(b.used(), 2700);
        drop(spent);
        drop(cb);
        assert_eq!((b.used(), l.process.used()), (0, 0));
    }

    fn small_read(decoding: usize, wanted: Option<usize>) -> Buffers {
        Buffers {
            read_buffer: 4096,
            unsent: 0,
            decoding,
            wanted,
        }
    }

    #[test]
    fn room_comes_from_the_reserve_while_it_fits() {
        let l = limits(4 << 20, 256 << 10, 64 << 20);
        let mut account = LinkAccount::new(&l, 1);
        // An ordinary read: room within the reserve, the shared budget
        // untouched, and nothing left charged once settled.
        let Admit::Read { decoder_room } = account.admit(small_read(0, None), false) else {
            panic!("refused");
        };
        assert_eq!(decoder_room, (256 << 10) - 4096);
        assert_eq!(l.process.used(), 0);
        account.settle(small_read(0, None));
        assert_eq!(account.memory.used(), 4096);
        // Other charges of the link (a running call's arguments) leave
        // less of the reserve.
        let call = account.memory.charge_spent(100 << 10);
        let Admit::Read { decoder_room } = account.admit(small_read(0, None), false) else {
            panic!("refused");
        };
        assert_eq!(decoder_room, (156 << 10) - 4096);
        assert_eq!(l.process.used(), 0);
        drop(call);
        // A decoder that needs more than the reserve holds gets it, and
        // up to a room step, from the shared budget.
        let wanted = 600 << 10;
        let Admit::Read { decoder_room } = account.admit(small_read(0, Some(wanted)), false) else {
            panic!("refused");
        };
        assert_eq!(decoder_room, ROOM_STEP);
        assert!(l.process.used() > 0);
        account.settle(small_read(0, None));
        assert_eq!(l.process.used(), 0);
    }
}
