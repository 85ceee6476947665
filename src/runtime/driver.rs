//! The link task: moves bytes between a stream and a sans-IO [`Link`], runs
//! incoming calls as tasks, and serves [`LinkHandle`]s and
//! [`RemoteObject`]s through its command queue (`commands.rs`).
//!
//! One future polls everything in turn — commands, the socket's read and
//! write sides, the timers — so the link state needs no lock and every
//! message that is ready goes out in one write (`docs/design.md`, performance).
//!
//! Incoming calls are bounded as `calls.rs` describes: input is decoded one
//! entity at a time while the call queue has room, calls start within the
//! per-link and shared limits, and their tasks end with the link.

use std::convert::Infallible;
use std::future::Future;
use std::mem::MaybeUninit;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::future::Either;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::io::poll_read_buf;
use tracing::Instrument;
use versile_middleware::{ConnectionSignals, LinkCounters};

use super::call_span::CallSpan;
use super::calls::{BudgetTurn, CallExecution, CallLimits, CallPermit, CallTasks, Episode};
use super::handle::{
    CallResponse, CloseReason, Command, CommandReceiver, LinkHandle, LinkShutdown, OutgoingCall,
};
use super::link_timer::LinkTimer;
use super::memory::{Admit, Buffers, Charge, LinkAccount, MemoryLimits};
use super::spare_read_buffer;
use crate::object::call_metrics::CallOutcome;
use crate::object::remote::RemoteInner;
use crate::object::{Call, CallContext, CallError, LocalObject, Object, RemoteObject, VObject};
use crate::value::Value;
use crate::vec::Entity;
use crate::vol::queue::InlineFirstQueue;
use crate::vol::tables::{table_map, TableMap};
use crate::vol::{
    CallId, CallKind, CallSendError, Event, Link, LinkConfig, LinkError, Outcome, Received, Ref,
};
use crate::vop::Transport;

/// Decides whether a peer may use the link (`docs/protocol/vol.md` §2.6); runs after the
/// peer's hello and before our handshake object is sent.
pub type Authorizer = Arc<dyn Fn(CallContext) -> BoxFuture<'static, bool> + Send + Sync>;

/// Called once: with the link and the peer's gateway when the handshake
/// completes, or with the error if it never does (`docs/protocol/vop-service.md` §5.3 step 7).
pub type OnEstablished =
    Box<dyn FnOnce(Result<(LinkHandle, RemoteObject), LinkError>) + Send + 'static>;

/// Runtime settings of one link.
#[derive(Clone)]
pub struct LinkOptions {
    /// Protocol settings (licence, keep-alive, handshake timeout, limits).
    pub protocol: LinkConfig,
    /// Bounds on incoming calls: running and queued per link, and an
    /// optional budget shared across links (`docs/protocol/vol.md` §6.3).
    pub calls: CallLimits,
    /// How long a graceful shutdown may wait for running calls before the
    /// link is closed anyway; after our FIN, also how long we wait for the
    /// peer's (reading and dropping its input, so the close does not reset
    /// answers still on their way).
    pub drain_timeout: Duration,
    /// Optional authorizer.
    pub authorizer: Option<Authorizer>,
    /// Memory budgets of the link and of all links sharing these options.
    pub memory: MemoryLimits,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            protocol: LinkConfig::default(),
            calls: CallLimits::default(),
            drain_timeout: Duration::from_secs(30),
            authorizer: None,
            memory: MemoryLimits::default(),
        }
    }
}

impl std::fmt::Debug for LinkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkOptions")
            .field("protocol", &self.protocol)
            .field("calls", &self.calls)
            .field("drain_timeout", &self.drain_timeout)
            .field("authorizer", &self.authorizer.is_some())
            .field("memory", &self.memory)
            .finish()
    }
}

/// How a link ended, with counters.
#[derive(Debug, Clone)]
pub struct LinkOutcome {
    /// Why the link closed.
    pub reason: CloseReason,
    /// Whether the VOL handshake had completed.
    pub established: bool,
    /// Calls the peer made on our objects.
    pub calls_received: u64,
    /// Calls we made on the peer's objects.
    pub calls_sent: u64,
    /// Bytes read from the stream (after the transport, e.g. decrypted).
    pub bytes_received: u64,
    /// Bytes written to the stream (before the transport).
    pub bytes_sent: u64,
}

struct QueuedCall {
    call_id: CallId,
    kind: CallKind,
    target: LocalObject,
    args: Vec<Value>,
    /// The arguments' memory, released when the call's task ends.
    charge: Charge,
}

struct ImportSlot {
    handle: Weak<RemoteInner>,
    generation: u64,
}

/// Runs one link over `io` until it closes.
pub(crate) struct LinkDriver<IO> {
    io: IO,
    link: Link<LocalObject>,
    handle: LinkHandle,
    rx: CommandReceiver,
    /// Per-link call limits (`LinkOptions::calls`; its shared budget
    /// moved into `budget`).
    calls: CallLimits,
    /// `LinkOptions::drain_timeout`.
    drain_timeout: Duration,
    /// `LinkOptions::authorizer`.
    authorizer: Option<Authorizer>,
    /// `MemoryLimits::max_unsent_output`. (The driver keeps only these
    /// parts of its `LinkOptions`: the protocol settings live in `link`,
    /// the memory budgets in `account`. A whole copy was 0.3 KiB per
    /// link; issue #8.)
    max_unsent_output: usize,
    rbuf: BytesMut,
    /// Keyed by peer-chosen ids, bounded by `max_imports`; seeded foldhash
    /// as the VOL tables (see `vol::tables::TableMap` on HashDoS).
    imports: TableMap<i64, ImportSlot>,
    next_generation: u64,
    /// Keyed by the call ids we allocate.
    pending: TableMap<i64, oneshot::Sender<Result<Value, CallError>>>,
    queued: InlineFirstQueue<QueuedCall>,
    in_flight: usize,
    /// Tasks of running incoming calls, aborted when the driver goes.
    tasks: CallTasks,
    /// This link's turn for the shared call budget.
    budget: BudgetTurn,
    /// The call queue is full and decoding has paused.
    queue_full: Episode,
    /// Calls wait because this link's in-flight limit is reached.
    link_busy: Episode,
    auth: Option<BoxFuture<'static, bool>>,
    on_established: Option<OnEstablished>,
    /// A graceful close under way: why, and its drain deadline. Boxed:
    /// idle links never hold one.
    closing: Option<Box<(CloseReason, Instant)>>,
    /// Our FIN is sent; the peer's input is read and dropped until its
    /// own (see [`Linger`]).
    half_closed: bool,
    /// Armed only while there is a deadline (the VOL handshake, keep-alive,
    /// a drain): a registered timer costs every park of the runtime a
    /// look at the timer wheel, and its allocation stays with the link.
    timer: Option<LinkTimer>,
    /// What the link did, for its [`LinkOutcome`] and the middleware.
    counters: LinkCounters,
    /// Middleware signals to fire (established, activity), with the
    /// transport name to report.
    signals: Option<(ConnectionSignals, Option<&'static str>)>,
    /// Memory held for this link (`memory` module).
    account: LinkAccount,
    /// The last read step paused for memory or unsent output: writing may
    /// let it go on.
    read_paused: bool,
    /// Input was read since the read buffer, decoder scratch and queues
    /// were last released (`read_step`).
    input_held: bool,
    /// The read buffer grew past [`READ_CHUNK`] since it was last
    /// released: its allocation is not kept for the next read.
    rbuf_large: bool,
    /// A released large read buffer that an entity still held a part of:
    /// parked in the thread's spare once they let go, within this wake-up.
    released_rbuf: Option<BytesMut>,
}

const READ_CHUNK: usize = 64 * 1024;
/// Largest read while the link holds no read buffer (between entities):
/// the bytes land in a stack buffer and are copied into a read buffer of
/// their size, so an idle link holds no read buffer at all (a
/// `READ_CHUNK` per link was most of an idle link's memory; issue #8).
/// Input that fills it is read on into a `READ_CHUNK` buffer.
const IDLE_READ: usize = 4096;
/// The read buffer grows to the size of the entity in progress at once
/// when at least 1/this of it has arrived (else it doubles): a 1 MiB call
/// is read into one buffer without the five copies of doubling from 64 KiB,
/// and a peer makes us reserve at most 16 times what it sent (charged to
/// the memory budgets before, like any growth).
const EXACT_RESERVE_FACTOR: usize = 16;
/// Unwritten output beyond which no further incoming call is started.
const OUTPUT_HIGH_WATER: usize = 4 * 1024 * 1024;
/// On a VTS or TLS link, byte strings of at least this many bytes are
/// encrypted from where they lie instead of being copied into the output
/// buffer first (`Link::share_large_bytes`; `docs/performance.md`, "Ninth
/// round"). PLAIN links copy them: the kernel's copy from the caller's
/// buffer measured slower than from ours ("Vectored writes, measured and
/// not kept").
const SHARED_BYTES_FROM: usize = 64 * 1024;
/// Rounds of work before yielding to other tasks.
const POLL_BUDGET: usize = 64;

impl<IO: AsyncRead + AsyncWrite + Unpin> LinkDriver<IO> {
    /// A driver for the link over `io`, offering `gateway` to the peer;
    /// `handle` is the link's handle and `rx` the receiving end of its
    /// command queue. `on_established` is called once, when the VOL
    /// handshake completes or fails. Nothing happens until [`run`](Self::run).
    pub(crate) fn new(
        io: IO,
        gateway: LocalObject,
        handle: LinkHandle,
        rx: CommandReceiver,
        options: LinkOptions,
        on_established: Option<OnEstablished>,
    ) -> Self {
        let LinkOptions {
            mut protocol,
            mut calls,
            drain_timeout,
            authorizer,
            memory,
        } = options;
        protocol.authorize = authorizer.is_some();
        let budget = BudgetTurn::new(calls.budget.take());
        let now = Instant::now();
        let account = LinkAccount::new(&memory, handle.id());
        let mut link = Link::new(protocol, gateway, now.into_std());
        if matches!(
            handle.context().protocol(),
            Some(Transport::Vts | Transport::Tls)
        ) {
            link.share_large_bytes(Some(SHARED_BYTES_FROM));
        }
        LinkDriver {
            io,
            link,
            handle,
            rx,
            calls,
            drain_timeout,
            authorizer,
            max_unsent_output: memory.max_unsent_output,
            rbuf: BytesMut::new(),
            imports: table_map(),
            next_generation: 0,
            pending: table_map(),
            queued: InlineFirstQueue::default(),
            in_flight: 0,
            tasks: CallTasks::default(),
            budget,
            queue_full: Episode::default(),
            link_busy: Episode::default(),
            auth: None,
            on_established,
            closing: None,
            half_closed: false,
            timer: None,
            counters: LinkCounters::default(),
            signals: None,
            account,
            read_paused: false,
            input_held: false,
            rbuf_large: false,
            released_rbuf: None,
        }
    }

    /// Report to middleware `signals` (see `versile_middleware::signals`).
    pub(crate) fn with_signals(
        mut self,
        signals: Option<ConnectionSignals>,
        transport: Option<&'static str>,
    ) -> Self {
        self.signals = signals.map(|s| (s, transport));
        self
    }

    fn report(&self, now: Instant) {
        if let Some((s, _)) = &self.signals {
            let counters = LinkCounters {
                calls_in_flight: (self.in_flight + self.queued.len() + self.pending.len()) as u64,
                ..self.counters
            };
            s.report_at(counters, now);
        }
    }

    /// Drive the link to its end; a middleware layer's close request (see
    /// [`with_signals`](Self::with_signals)) becomes a graceful shutdown.
    /// If the future is dropped instead (a forced server stop aborts
    /// connection tasks), `Drop` still fails the pending calls and marks the
    /// link closed.
    ///
    /// Not an `async fn`: its state machine would hold the driver twice
    /// (the argument and the moved local); the closure owns the one driver,
    /// which is most of an idle link's memory (issue #8).
    pub(crate) fn run(mut self) -> impl Future<Output = LinkOutcome> + Send
    where
        IO: Send,
    {
        let mut watch_close = self.signals.is_some();
        std::future::poll_fn(move |cx| {
            let requested = watch_close
                && self
                    .signals
                    .as_ref()
                    .is_some_and(|(s, _)| s.poll_close_requested(cx).is_ready());
            if requested {
                watch_close = false;
                self.handle.shutdown(LinkShutdown::Graceful);
            }
            self.poll_drive(cx).map(|reason| self.finish(reason))
        })
    }

    fn finish(&mut self, reason: CloseReason) -> LinkOutcome {
        let err = match &reason {
            CloseReason::Error(e) => e.clone(),
            _ => LinkError::Closed,
        };
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(CallError::Link(err.clone())));
        }
        if let Some(cb) = self.on_established.take() {
            cb(Err(err));
        }
        self.handle.shared.closed.set(reason.clone());
        LinkOutcome {
            reason,
            established: self.link.is_established(),
            calls_received: self.counters.calls_received,
            calls_sent: self.counters.calls_sent,
            bytes_received: self.counters.bytes_in,
            bytes_sent: self.counters.bytes_out,
        }
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        // One clock reading per wake-up, not per round: a round trip takes
        // several rounds, and the timestamps only feed keep-alive, drain
        // deadlines and activity stamps (seconds), where a few µs of
        // staleness do not matter.
        let now = Instant::now();
        let r = self.poll_rounds(cx, now);
        // Not kept while the link waits: parked if the entities let go of
        // it, else dropped (they free it).
        self.park_released_read_buffer();
        self.released_rbuf = None;
        self.rx.trim();
        self.account.settle(self.buffers(self.rbuf.capacity()));
        self.report(now);
        r
    }

    fn poll_rounds(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<CloseReason> {
        for round in 0..POLL_BUDGET {
            let commands = if round == 0 {
                Commands::Receive
            } else {
                Commands::Wait
            };
            match self.poll_once(cx, now, commands) {
                Ok(()) => return Poll::Pending,
                Err(Step::Progress) => continue,
                Err(Step::Closed(reason)) => return Poll::Ready(reason),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One round over every source of work, in this order: commands,
    /// the authorizer, reading and decoding, starting queued calls,
    /// writing, the graceful close and the timers. `Err(Step::Progress)`
    /// asks for another round, `Err(Step::Closed)` ends the link; `Ok`
    /// means everything is waiting (each source registered the waker).
    fn poll_once(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        commands: Commands,
    ) -> Result<(), Step> {
        let mut progress = false;
        if commands == Commands::Receive {
            // Commands come first in the round, so every later step
            // already sees what they did: they ask for no round of their
            // own. (One did: on every call and every answer it cost a
            // round that found nothing, `docs/performance.md`, "Sixth
            // round".)
            self.command_step(cx, now)?;
        }
        progress |= self.authorizer_step(cx, now)?;
        if self.closing.is_none() {
            progress |= self.read_step(cx, now)?;
        }
        self.tasks.reap(self.in_flight);
        progress |= self.start_queued(cx)?;
        progress |= self.write_step(cx, now)?;
        if self.closing.is_some() && self.close_step(cx, now)? == Closing::Waiting {
            return Ok(());
        }
        progress |= self.timer_step(cx, now)?;
        if progress {
            Err(Step::Progress)
        } else {
            Ok(())
        }
    }

    /// Handle every command waiting in the queue (from handles, remote
    /// objects and call tasks); its `Pending` registers the waker.
    fn command_step(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), Step> {
        while let Poll::Ready(cmd) = self.rx.poll_recv(cx) {
            self.on_command(cmd, now)?;
        }
        Ok(())
    }

    /// Apply the authorizer's verdict once it has one
    /// (`docs/protocol/vol.md` §2.6). Returns whether it did.
    fn authorizer_step(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<bool, Step> {
        let Some(auth) = self.auth.as_mut() else {
            return Ok(false);
        };
        let Poll::Ready(accept) = auth.poll_unpin(cx) else {
            return Ok(false);
        };
        self.auth = None;
        self.link.authorize(accept).map_err(fail)?;
        // Input that arrived while the authorizer ran is still buffered:
        // `read_step` decodes it next.
        self.process_events(now)?;
        Ok(true)
    }

    /// Write pending output until the socket would block. Returns whether
    /// the written output unblocks other work: written output only frees
    /// what waited for it, queued calls (held back at `OUTPUT_HIGH_WATER`)
    /// and a paused read; anything else gets no new work from it, so no
    /// other round.
    fn write_step(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<bool, Step> {
        let mut wrote = false;
        while !self.link.pending_output().is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, self.link.pending_output()) {
                Poll::Ready(Ok(0)) => {
                    return Err(fail(
                        std::io::Error::from(std::io::ErrorKind::WriteZero).into(),
                    ))
                }
                Poll::Ready(Ok(n)) => {
                    self.counters.bytes_out += n as u64;
                    self.link.consume_output(n);
                    // Everything written: no output buffer is kept while
                    // the link waits (idle links, and the largest batch a
                    // link ever sent, `examples/soak`).
                    self.link.release_output_buffer();
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Err(fail(e.into())),
                Poll::Pending => break,
            }
        }
        if !wrote {
            return Ok(false);
        }
        self.link.on_output_written(now.into_std());
        // Streams with their own buffering (TLS, VTS) need a flush.
        if let Poll::Ready(Err(e)) = Pin::new(&mut self.io).poll_flush(cx) {
            return Err(fail(e.into()));
        }
        Ok(!self.queued.is_empty() || self.read_paused)
    }

    /// A graceful close in progress (`docs/protocol/vol.md` §7.2): once
    /// every call is answered and written, half-close and linger until the
    /// peer closes too; force the close at the drain deadline. The link's
    /// end comes back as `Err(Step::Closed)`.
    fn close_step(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<Closing, Step> {
        let Some(closing) = &self.closing else {
            return Ok(Closing::Draining);
        };
        let (reason, deadline) = (closing.0.clone(), closing.1);
        let drained = self.in_flight == 0 && self.queued.is_empty();
        if drained && self.link.pending_output().is_empty() {
            if !self.half_closed {
                match Pin::new(&mut self.io).poll_shutdown(cx) {
                    Poll::Ready(_) => self.half_closed = true,
                    Poll::Pending => return Ok(Closing::Waiting),
                }
                // Closed for the application from here (nothing more
                // is sent or received); only the socket lingers.
                // The first reason recorded stays.
                self.handle.shared.closed.set(reason.clone());
            }
            match self.linger(cx) {
                Linger::PeerClosed => return Err(Step::Closed(reason)),
                Linger::Discarded(n) => {
                    self.counters.bytes_in += n as u64;
                    return Err(Step::Progress);
                }
                Linger::Waiting => {}
            }
        }
        if now >= deadline {
            // Everything was answered and our FIN sent: the peer only
            // did not close in time. Otherwise the drain deadline
            // passed: force (`docs/protocol/vol.md` §7.2 step 6).
            return Err(Step::Closed(if self.half_closed {
                reason
            } else {
                CloseReason::Shutdown(LinkShutdown::Forced)
            }));
        }
        Ok(Closing::Draining)
    }

    /// Keep-alive, handshake and drain deadlines: arm the timer for the
    /// next one and handle it when it fires. Returns whether it fired.
    ///
    /// A later deadline than the armed one (keep-alive moves with every
    /// message) does not move the timer: it fires early, finds nothing
    /// due, and is re-armed; moving it costs a timer-wheel update per
    /// message instead.
    fn timer_step(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<bool, Step> {
        let Some(deadline) = self.next_deadline() else {
            self.timer = None;
            return Ok(false);
        };
        let timer = self.timer.get_or_insert_with(|| LinkTimer::new(deadline));
        if deadline < timer.deadline() {
            timer.reset(deadline);
        }
        if timer.poll(cx, now).is_pending() {
            return Ok(false);
        }
        self.link.handle_timeout(now.into_std()).map_err(fail)?;
        if let Some(closing) = &self.closing {
            if now >= closing.1 {
                return Err(Step::Closed(CloseReason::Shutdown(LinkShutdown::Forced)));
            }
        }
        // Re-arm (or sleep far) so a stale deadline does not spin; no
        // deadline at all releases the timer.
        match self.next_deadline() {
            None => self.timer = None,
            Some(next) => {
                let at = if next > now {
                    next
                } else {
                    now + Duration::from_secs(3600)
                };
                if let Some(timer) = self.timer.as_mut() {
                    timer.reset(at);
                }
            }
        }
        Ok(true)
    }

    /// After our FIN, read and drop the peer's input until it closes too.
    /// Closing a socket with unread input (calls the peer sent after we
    /// stopped reading, `docs/protocol/vol.md` §7.2 step 1) makes the kernel reset the
    /// connection and discard our output still on its way: the answers
    /// the drain waited for would be lost. Bounded by the drain deadline;
    /// a fixed scratch buffer, nothing is kept.
    fn linger(&mut self, cx: &mut Context<'_>) -> Linger {
        let mut scratch = [0u8; 8192];
        let mut buf = tokio::io::ReadBuf::new(&mut scratch);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Linger::PeerClosed,
            Poll::Ready(Ok(())) => Linger::Discarded(buf.filled().len()),
            Poll::Ready(Err(_)) => Linger::PeerClosed,
            Poll::Pending => Linger::Waiting,
        }
    }

    /// Whether another entity may be decoded: it could be a call, and the
    /// queue must stay within `max_queued` (checked per entity, so one read
    /// full of tiny calls cannot queue more).
    fn has_queue_room(&mut self) -> bool {
        let room = self.queued.len() < self.calls.queue_limit();
        if room {
            self.queue_full.leave();
        } else if self.queue_full.enter() {
            tracing::debug!(
                link = self.handle.id(),
                queued = self.queued.len(),
                "call queue full: reading paused"
            );
            crate::limits::limit_exceeded("queued_calls");
        }
        room
    }

    /// Read and decode input within the memory budgets and the call queue:
    /// the read buffer's growth and room for the decoder are charged first
    /// (`memory` module), input already buffered (left there while the queue
    /// was full, the authorizer ran or the decoder waited for memory) is
    /// decoded before the socket is read.
    fn read_step(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<bool, Step> {
        self.park_released_read_buffer();
        if self.input_held && self.rbuf.is_empty() {
            // Between entities no read buffer is held (see `IDLE_READ`);
            // entities keep slices of it, not this handle. Nor decoder
            // scratch, nor queue space: once per batch of input, so an
            // idle link holds none of them (issue #8). A batch decoded to
            // its last byte leaves a handle of no capacity on the batch's
            // allocation (the size of what arrived): kept, as the next
            // read takes that allocation back instead of a new one once
            // the entities let go of it. (The release used to be keyed on
            // the capacity, and then the scratch stayed too.)
            // A large batch's allocation is not kept: the handle would
            // hold it uncharged while the link idles (an empty buffer is
            // charged as `IDLE_READ`). It goes to the thread's spare
            // (`spare_read_buffer`) for the next large entity.
            self.input_held = false;
            if self.rbuf_large {
                self.rbuf_large = false;
                self.released_rbuf = Some(std::mem::take(&mut self.rbuf));
                self.park_released_read_buffer();
            } else if self.rbuf.capacity() > 0 {
                self.rbuf = BytesMut::new();
            }
            self.link.release_input_memory();
            self.queued.release_memory();
        }
        let (len, cap) = (self.rbuf.len(), self.rbuf.capacity());
        let unbuffered = cap == 0;
        // Little room left: grow, unless the rest of the entity in progress
        // fits in it (a 1 MiB entity read into its exact buffer used to
        // double it for its last few bytes: a 2 MiB allocation and a 1 MiB
        // copy per call, and the buffer could not be reused).
        let grow = !unbuffered && cap - len < 4096 && {
            let needed = self.link.input_needed();
            needed <= len || needed > cap
        };
        // `BytesMut::reserve` at most doubles (or fits the request).
        // Growth from an idle read's small buffer: to `READ_CHUNK`, so that
        // large input sees the same buffer sizes (and charges) as before.
        let first_chunk = READ_CHUNK.saturating_sub(len).max(IDLE_READ);
        let next_cap = if unbuffered {
            IDLE_READ
        } else if grow && cap < READ_CHUNK {
            len + first_chunk
        } else if grow {
            let doubled = (2 * cap).max(len + READ_CHUNK);
            // Room for the whole entity at once (one allocation, no copy
            // per doubling), once a part of it is here, so that a peer
            // cannot make us reserve much more than it sent.
            let needed = self.link.input_needed();
            if needed > doubled && needed / EXACT_RESERVE_FACTOR <= len {
                needed
            } else {
                doubled
            }
        } else {
            cap
        };
        let drainable =
            !self.queued.is_empty() || self.in_flight > 0 || !self.link.pending_output().is_empty();
        match self.account.admit(self.buffers(next_cap), drainable) {
            Admit::Read { decoder_room } => {
                self.read_paused = false;
                self.link.set_memory_room(decoder_room);
            }
            Admit::Pause => {
                self.read_paused = true;
                return Ok(false);
            }
            Admit::Close(kind) => return Err(fail(LinkError::MemoryBudget(kind))),
        }
        let decoded = self.decode_buffered(now)?;
        if self.link.is_waiting_for_memory() {
            // The next node is buffered and wants more room than this
            // round's: another round admits it (or pauses, or closes).
            return Ok(true);
        }
        if !self.has_queue_room() {
            // More bytes would not help until a queued call starts.
            return Ok(decoded);
        }
        let read = if unbuffered {
            poll_read_small(Pin::new(&mut self.io), cx, &mut self.rbuf)
        } else {
            if grow {
                // Exactly what was charged above (a spare of about that
                // size, for a large entity, saves faulting in new pages).
                match (next_cap > READ_CHUNK)
                    .then(|| spare_read_buffer::take(next_cap))
                    .flatten()
                {
                    Some(mut spare) => {
                        spare.extend_from_slice(&self.rbuf);
                        self.rbuf = spare;
                    }
                    None => self.rbuf.reserve(next_cap - len),
                }
                self.rbuf_large |= next_cap > READ_CHUNK;
            }
            poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf)
        };
        match read {
            Poll::Ready(Ok(0)) => {
                if !self.link.is_established() {
                    return Err(fail(LinkError::UnexpectedEof));
                }
                self.begin_shutdown(CloseReason::PeerClosed, now);
                Ok(true)
            }
            Poll::Ready(Ok(n)) => {
                self.counters.bytes_in += n as u64;
                self.input_held = true;
                // Input read after a shutdown was requested may hold calls
                // sent after it: take the command first (it is queued), so
                // that they are not started (`docs/protocol/vol.md` §7.2).
                if self.handle.shared.stop_requested.load(Ordering::Acquire) {
                    self.command_step(cx, now)?;
                    if self.closing.is_some() {
                        return Ok(true);
                    }
                }
                self.decode_buffered(now)?;
                Ok(true)
            }
            Poll::Ready(Err(e)) => Err(fail(e.into())),
            Poll::Pending => Ok(decoded),
        }
    }

    /// Hand a released large read buffer to the thread's spare once no
    /// entity holds a part of it (`spare_read_buffer`).
    fn park_released_read_buffer(&mut self) {
        if let Some(buf) = self.released_rbuf.take() {
            self.released_rbuf = spare_read_buffer::give(buf, READ_CHUNK + 1).err();
        }
    }

    /// Decode buffered input one entity at a time while the call queue has
    /// room; the rest stays in `rbuf`. Entity limits that trip are logged
    /// and counted here. Returns whether anything was decoded.
    fn decode_buffered(&mut self, now: Instant) -> Result<bool, Step> {
        let mut decoded = false;
        while !self.rbuf.is_empty() && self.has_queue_room() {
            let step = match self.link.receive_next(&mut self.rbuf, now.into_std()) {
                Ok(step) => step,
                Err(e) => {
                    super::memory::note_input_limit(
                        &e,
                        self.handle.id(),
                        self.link.is_established(),
                    );
                    return Err(fail(e));
                }
            };
            self.process_events(now)?;
            if step == Received::NeedMore {
                break;
            }
            decoded = true;
        }
        Ok(decoded)
    }

    /// What the link's buffers hold, with the read buffer at `read_buffer`.
    fn buffers(&self, read_buffer: usize) -> Buffers {
        Buffers {
            read_buffer,
            unsent: self.link.pending_output_len(),
            decoding: self.link.decoder_charge(),
            wanted: self.link.memory_wanted(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let link = self.link.poll_timeout().map(Instant::from_std);
        let drain = self.closing.as_ref().map(|c| c.1);
        match (link, drain) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn begin_shutdown(&mut self, reason: CloseReason, now: Instant) {
        if self.closing.is_some() {
            return;
        }
        self.link.close();
        // Our pending calls fail at once (`docs/protocol/vol.md` §7.2 step 2).
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(CallError::Link(LinkError::Closed)));
        }
        self.closing = Some(Box::new((reason, now + self.drain_timeout)));
    }

    fn on_command(&mut self, cmd: Command, now: Instant) -> Result<(), Step> {
        match cmd {
            Command::Call(call) => {
                let OutgoingCall {
                    target,
                    kind,
                    args,
                    reply,
                } = call;
                let args = args.into_iter().map(|a| self.export_value(a)).collect();
                match self.link.call(target, kind, args) {
                    Ok(msg_id) => {
                        self.counters.calls_sent += 1;
                        match (kind, reply) {
                            (CallKind::NoReturn, Some(reply)) => {
                                let _ = reply.send(Ok(Entity::None));
                            }
                            (_, Some(reply)) => {
                                self.pending.insert(msg_id, reply);
                            }
                            (_, None) => {}
                        }
                    }
                    Err(e) => {
                        let err = match e {
                            CallSendError::Closed => CallError::Link(LinkError::Closed),
                            CallSendError::Unencodable(what) => CallError::Unencodable(what),
                            e @ CallSendError::ExportLimit => CallError::failed(e.to_string()),
                            CallSendError::Link(e) => return Err(fail(e)),
                        };
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(err));
                        }
                    }
                }
            }
            Command::Respond(response) => {
                let CallResponse {
                    call_id,
                    kind,
                    outcome,
                } = *response;
                self.finish_call(call_id, kind, outcome)?
            }
            Command::Release { id, generation } => {
                if self
                    .imports
                    .get(&id)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.imports.remove(&id);
                    self.link.release(id).map_err(fail)?;
                    self.process_events(now)?;
                }
            }
            Command::Shutdown(how) => {
                if how == LinkShutdown::Forced || !self.link.is_established() {
                    return Err(Step::Closed(CloseReason::Shutdown(LinkShutdown::Forced)));
                }
                self.begin_shutdown(CloseReason::Shutdown(LinkShutdown::Graceful), now);
            }
        }
        Ok(())
    }

    fn process_events(&mut self, now: Instant) -> Result<(), Step> {
        while let Some(event) = self.link.poll_event() {
            match event {
                Event::Authorize { .. } => match &self.authorizer {
                    Some(auth) => self.auth = Some(auth(self.handle.context())),
                    None => self.link.authorize(true).map_err(fail)?,
                },
                Event::Established { peer_gateway } => {
                    if let Some((s, transport)) = &self.signals {
                        s.mark_established(*transport);
                    }
                    match self.on_established.take() {
                        Some(cb) => {
                            let gateway = self.import_handle(peer_gateway);
                            cb(Ok((self.handle.clone(), gateway)));
                        }
                        // Nobody wants the peer's gateway: release it now
                        // (`docs/protocol/vol.md` §5.2), in order with what follows, not
                        // through our own command queue.
                        None => self.link.release(peer_gateway).map_err(fail)?,
                    }
                }
                Event::Call {
                    call_id,
                    kind,
                    target,
                    args,
                } => {
                    self.counters.calls_received += 1;
                    let args: Vec<Value> = args.into_iter().map(|a| self.import_value(a)).collect();
                    let charge = self.account.charge_call(&args);
                    self.queued.push_back(QueuedCall {
                        call_id,
                        kind,
                        target,
                        args,
                        charge,
                    });
                }
                Event::Response { call_id, outcome } => {
                    self.counters.call_errors += u64::from(!matches!(outcome, Outcome::Result(_)));
                    let result = match outcome {
                        Outcome::Result(v) => Ok(self.import_value(v)),
                        Outcome::Exception(v) => Err(CallError::Exception(self.import_value(v))),
                        Outcome::Error => Err(CallError::Failed(None)),
                    };
                    // Responses to calls nobody waits for are dropped; any
                    // objects in them are released by the drop.
                    if let Some(reply) = self.pending.remove(&call_id) {
                        let _ = reply.send(result);
                    }
                }
                Event::Idle => self.begin_shutdown(CloseReason::Idle, now),
            }
        }
        Ok(())
    }

    /// Start queued calls within the per-link and shared limits.
    fn start_queued(&mut self, cx: &mut Context<'_>) -> Result<bool, Step> {
        let mut started = false;
        // While the peer is not reading our output, start no more calls:
        // their results would pile up in memory. Queued calls stay bounded
        // because decoding pauses at `max_queued`; responses to our own
        // calls keep being read until `max_unsent_output` (higher by
        // default), where reading stops too (`memory` module).
        while !self.queued.is_empty()
            && self.link.pending_output_len() < OUTPUT_HIGH_WATER.min(self.max_unsent_output)
            && self.has_call_slot()
        {
            let Poll::Ready(permit) = self.budget.poll_permit(cx) else {
                break;
            };
            let Some(call) = self.queued.pop_front() else {
                break;
            };
            self.in_flight += 1;
            started = true;
            self.start_call(call, permit, cx)?;
        }
        Ok(started)
    }

    /// Whether this link may start another call (`max_in_flight`).
    fn has_call_slot(&mut self) -> bool {
        let free = self.in_flight < self.calls.in_flight_limit();
        if free {
            self.link_busy.leave();
        } else if self.link_busy.enter() {
            tracing::debug!(
                link = self.handle.id(),
                in_flight = self.in_flight,
                "per-link call limit reached: calls stay queued"
            );
            crate::limits::limit_exceeded("link_calls_in_flight");
        }
        free
    }

    /// Start one call (`calls.rs`): with [`CallExecution::InlineFirstPoll`]
    /// its first poll runs here and a call that is done is answered at
    /// once; one that is still pending (or every call, with
    /// [`CallExecution::Task`]) goes on in its own task.
    fn start_call(
        &mut self,
        call: QueuedCall,
        permit: CallPermit,
        cx: &mut Context<'_>,
    ) -> Result<(), Step> {
        let QueuedCall {
            call_id,
            kind,
            target,
            args,
            charge,
        } = call;
        let ctx = self.handle.context();
        let mut call_span = CallSpan::start(self.handle.id(), &ctx);
        let method: BoxFuture<'static, Result<Value, CallError>> = match self.calls.execution {
            CallExecution::InlineFirstPoll => {
                let span = call_span.span();
                // A panic, also while the method builds its future,
                // fails the call, not the link.
                let first = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let _in_span = span.as_ref().map(|s| s.enter());
                    let mut method = target.call(Call { ctx, args });
                    match method.poll_unpin(cx) {
                        Poll::Ready(outcome) => Ok(outcome),
                        Poll::Pending => Err(method),
                    }
                }));
                match first {
                    Ok(Err(pending)) => pending,
                    Ok(Ok(outcome)) => {
                        drop((charge, permit));
                        call_span.finish(CallOutcome::of(&outcome));
                        return self.finish_call(call_id, kind, outcome);
                    }
                    Err(_) => {
                        drop((charge, permit));
                        let outcome = Err(CallError::failed("method panicked"));
                        call_span.finish(CallOutcome::of(&outcome));
                        return self.finish_call(call_id, kind, outcome);
                    }
                }
            }
            CallExecution::Task => Box::pin(async move { target.call(Call { ctx, args }).await }),
        };
        let link = self.handle.clone();
        self.tasks.spawn(permit, async move {
            // Held until the call's task ends, however it ends (an abort
            // drops it too).
            let _charge = charge;
            let run = AssertUnwindSafe(method).catch_unwind();
            // One await point either way: the task's future stays small.
            let run = match call_span.span() {
                Some(span) => Either::Left(run.instrument(span)),
                None => Either::Right(run),
            };
            let outcome = run
                .await
                .unwrap_or_else(|_| Err(CallError::failed("method panicked")));
            call_span.finish(CallOutcome::of(&outcome));
            let _ = link.send(Command::Respond(Box::new(CallResponse {
                call_id,
                kind,
                outcome,
            })));
        });
        Ok(())
    }

    /// A call of ours ended with `outcome`: answer it (`docs/protocol/vol.md` §4.5).
    fn finish_call(
        &mut self,
        call_id: CallId,
        kind: CallKind,
        outcome: Result<Value, CallError>,
    ) -> Result<(), Step> {
        self.in_flight -= 1;
        self.counters.call_errors += u64::from(outcome.is_err());
        let outcome = match outcome {
            Ok(v) => Outcome::Result(self.export_value(v)),
            Err(CallError::Exception(v)) => Outcome::Exception(self.export_value(v)),
            Err(_) => Outcome::Error,
        };
        self.link.respond(&call_id, kind, outcome).map_err(fail)
    }

    /// The handle for peer object `id`: the live one, or a new generation.
    fn import_handle(&mut self, id: i64) -> RemoteObject {
        if let Some(slot) = self.imports.get(&id) {
            if let Some(inner) = slot.handle.upgrade() {
                return RemoteObject(inner);
            }
        }
        self.next_generation += 1;
        let inner = Arc::new(RemoteInner {
            id,
            generation: self.next_generation,
            link: self.handle.clone(),
        });
        self.imports.insert(
            id,
            ImportSlot {
                handle: Arc::downgrade(&inner),
                generation: self.next_generation,
            },
        );
        RemoteObject(inner)
    }

    fn import_value(&mut self, e: Entity<Ref<LocalObject>>) -> Value {
        let mapped = e.try_map_refs(&mut |r| {
            Ok::<_, Infallible>(match r {
                Ref::Local(l) => Object::Local(l),
                Ref::Remote(id) => Object::Remote(self.import_handle(id)),
            })
        });
        match mapped {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    fn export_value(&self, v: Value) -> Entity<Ref<LocalObject>> {
        let mapped = v.try_map_refs(&mut |o| {
            Ok::<_, Infallible>(match o {
                Object::Local(l) => Ref::Local(l),
                Object::Remote(r) if r.link().same_link(&self.handle) => Ref::Remote(r.id()),
                // A reference from another link is re-exported as our own
                // object that forwards calls (`docs/protocol/vol.md` §4.6).
                Object::Remote(r) => Ref::Local(LocalObject::new(Forwarder(r))),
            })
        });
        match mapped {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}

impl<IO> Drop for LinkDriver<IO> {
    fn drop(&mut self) {
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(CallError::Link(LinkError::Closed)));
        }
        if let Some(cb) = self.on_established.take() {
            cb(Err(LinkError::Closed));
        }
        self.handle
            .shared
            .closed
            .set(CloseReason::Shutdown(LinkShutdown::Forced));
    }
}

/// Whether a round receives commands. Only the first round of a wake-up
/// does: its `poll_recv` that ends `Pending` registers the waker, so a
/// command sent later (by a handle, a call task, or this task dropping a
/// proxy) wakes the link again; polling the queue in every round would
/// only re-register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commands {
    Receive,
    Wait,
}

/// Read at most [`IDLE_READ`] bytes through a stack buffer and append
/// them to `buf`, which grows only by what arrived.
fn poll_read_small<R: AsyncRead + ?Sized>(
    io: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<std::io::Result<usize>> {
    let mut chunk = [MaybeUninit::<u8>::uninit(); IDLE_READ];
    let mut read = ReadBuf::uninit(&mut chunk);
    ready!(io.poll_read(cx, &mut read))?;
    buf.extend_from_slice(read.filled());
    Poll::Ready(Ok(read.filled().len()))
}

/// Why a step stopped the round early (the `Err` side of a step).
enum Step {
    /// Something moved: run another round.
    Progress,
    /// The link has ended.
    Closed(CloseReason),
}

/// Where a graceful close stands after [`LinkDriver::close_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Still draining (or lingering): the round goes on to the timers.
    Draining,
    /// Our half-close waits for the stream: the round ends, whatever
    /// moved in it.
    Waiting,
}

/// One read after our FIN ([`LinkDriver::linger`]).
enum Linger {
    /// End of stream or an error: nothing more can come.
    PeerClosed,
    /// This many bytes were read and dropped.
    Discarded(usize),
    Waiting,
}

fn fail(e: LinkError) -> Step {
    Step::Closed(CloseReason::Error(e))
}

/// Forwards calls to an object on another link.
struct Forwarder(RemoteObject);

impl VObject for Forwarder {
    fn call(&self, call: Call) -> BoxFuture<'static, Result<Value, CallError>> {
        let target = self.0.clone();
        async move { target.call_raw(CallKind::Normal, call.args).await }.boxed()
    }
}
