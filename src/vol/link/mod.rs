//! The sans-IO VOL link state machine (`docs/protocol/vol.md` §2–§8).
//!
//! Bytes in: [`Link::receive`] takes what the transport delivered, runs the
//! VEC hello and the entity decoder, and turns entities into [`Event`]s
//! (calls to run, responses to deliver, handshake progress). Bytes out: every
//! operation appends encoded entities to the link's output (one buffer, or
//! pieces when large byte strings are shared: `output`) that the runtime
//! drains with [`Link::pending_output`] / [`Link::consume_output`]. Time is
//! passed in (`now`), never read, so tests drive the link deterministically.
//!
//! References: incoming `FC` ids are counted in the import table and handed
//! out as [`Ref::Remote`]; incoming `FD` ids are resolved to the local object
//! ([`Ref::Local`]). Outgoing [`Ref::Local`] objects are exported (`FC`),
//! [`Ref::Remote`] ids are written back as `FD` (`docs/protocol/vol.md` §4.6, §5).
//!
//! Bounds: both tables are limited by [`TableLimits`]; input is processed
//! one entity at a time with [`Link::receive_next`], so a runtime whose
//! call queue is full stops decoding and leaves the rest in its buffer.

use crate::vol::queue::InlineFirstQueue;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use num_bigint::BigInt;

use crate::vec::{self, Decoder, DecoderConfig, EncodeConfig, Entity, StrCodec, WireRef};
use crate::vol::hello::{check_hello, hello_entity, Licence};
use crate::vol::message::{self, code, CallKind, Message, Outcome};
use crate::vol::tables::{ExportKey, ExportTable, Exported, ImportTable, TableLimits};
use crate::vol::LinkError;
use output::LinkOutput;

mod handshake;
mod output;
mod output_pool;
mod timers;

/// A reference as the application side of the link sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ref<L> {
    /// One of our own objects.
    Local(L),
    /// A peer object, by its id in the peer's id space (an import).
    Remote(i64),
}

/// The msg_id of an incoming call, quoted back in its response (`docs/protocol/vol.md` §3.1).
#[derive(Clone, PartialEq, Eq)]
pub enum CallId {
    /// An id that fits in `i64` (all ids Python sends in practice).
    Small(i64),
    /// A larger id: the peer may use any integer (§3.1), and the response
    /// must quote it back unchanged.
    Big(BigInt),
}

/// As derived, but a peer's huge id is summarised (`src/vec/fmt.rs`).
impl std::fmt::Debug for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallId::Small(v) => f.debug_tuple("Small").field(v).finish(),
            CallId::Big(v) => f.debug_tuple("Big").field(&vec::BoundedInt(v)).finish(),
        }
    }
}

impl CallId {
    fn to_entity<R>(&self) -> Entity<R> {
        match self {
            CallId::Small(v) => Entity::Int(*v),
            CallId::Big(v) => Entity::BigInt(v.clone()),
        }
    }
}

/// Link settings that affect the protocol (`docs/protocol/vol.md` §7.3, §8).
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The licence tuple announced in our VOL hello.
    pub licence: Licence,
    /// Stop after the peer's hello until [`Link::authorize`] is called
    /// (`docs/protocol/vol.md` §2.6). Set by the runtime when an authorizer is installed.
    pub authorize: bool,
    /// Ask the peer to send keep-alive traffic at this interval (`docs/protocol/vol.md` §8).
    /// Off here; the server stack sets it (`StackConfig::keep_alive`,
    /// 60 s by default) so that dead peers are detected.
    pub keep_alive_request: Option<Duration>,
    /// Lowest interval we grant to a peer that asks for keep-alive
    /// (Python's `min_send`, default 300 s).
    pub keep_alive_min_send: Duration,
    /// Expire the link after `granted × factor` without traffic (1.5).
    pub keep_alive_expire_factor: f64,
    /// Largest grant we wait on (default 600 s, twice Python's `min_send`):
    /// a longer grant expires as if it were this (or our own request, if
    /// larger), so a peer cannot turn dead-peer detection off by granting
    /// an absurd interval. A live peer with other traffic is unaffected.
    pub keep_alive_max_grant: Duration,
    /// Force-close if the handshake is not complete within this time (L08).
    pub handshake_timeout: Option<Duration>,
    /// Entity size limit (`docs/protocol/vec.md` §8.4), once the handshake is complete.
    pub max_entity_size: usize,
    /// Entity nesting limit.
    pub max_depth: usize,
    /// Sizes of the object tables (`docs/protocol/vol.md` §5.1); see [`TableLimits`].
    pub tables: TableLimits,
    /// In-memory cost limit of one entity, once the handshake is complete
    /// (see [`crate::vec::Decoder`]; over it the link fails with
    /// [`VecError::DecodedTooLarge`](crate::vec::VecError::DecodedTooLarge)).
    /// Default [`DEFAULT_LINK_MAX_DECODED_BYTES`].
    pub max_decoded_bytes: usize,
    /// Entity size limit until the handshake is complete. Default
    /// [`DEFAULT_HANDSHAKE_MAX_ENTITY_SIZE`].
    pub handshake_max_entity_size: usize,
    /// In-memory cost limit of one entity until the handshake is complete.
    /// Default [`DEFAULT_HANDSHAKE_MAX_DECODED_BYTES`].
    pub handshake_max_decoded_bytes: usize,
}

/// Default [`LinkConfig::max_decoded_bytes`], 64 MiB: a call argument of
/// about 280,000 small integers, or big strings and integers up to about
/// that size (byte strings cost nothing here, they stay in the read
/// buffer). A tuple of one-byte integers costs ~230 bytes per wire byte, so
/// this refuses such an entity after about 280 KiB of it.
pub const DEFAULT_LINK_MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// Default [`LinkConfig::handshake_max_entity_size`], 4 KiB: the handshake
/// entities are small (Python's VOL hello is 67 bytes, `docs/protocol/vol.md` §2.2; the
/// handshake object, `finish` and `keep_alive` calls and their answers are
/// a few dozen), so an unauthenticated peer gets no more than this.
pub const DEFAULT_HANDSHAKE_MAX_ENTITY_SIZE: usize = 4 * 1024;
/// Default [`LinkConfig::handshake_max_decoded_bytes`], 64 KiB: what the
/// worst 4 KiB entity may cost while it is refused (a tuple of 4,096 tiny
/// integers costs ~1 MiB and is refused after ~280 of them).
pub const DEFAULT_HANDSHAKE_MAX_DECODED_BYTES: usize = 64 * 1024;

impl Default for LinkConfig {
    fn default() -> Self {
        let dec = DecoderConfig::default();
        LinkConfig {
            licence: Licence::NotCopyleft,
            authorize: false,
            keep_alive_request: None,
            keep_alive_min_send: Duration::from_secs(300),
            keep_alive_expire_factor: 1.5,
            keep_alive_max_grant: Duration::from_secs(600),
            handshake_timeout: Some(Duration::from_secs(30)),
            max_entity_size: dec.max_entity_size,
            max_depth: dec.max_depth,
            tables: TableLimits::default(),
            max_decoded_bytes: DEFAULT_LINK_MAX_DECODED_BYTES,
            handshake_max_entity_size: DEFAULT_HANDSHAKE_MAX_ENTITY_SIZE,
            handshake_max_decoded_bytes: DEFAULT_HANDSHAKE_MAX_DECODED_BYTES,
        }
    }
}

/// Something the runtime must act on.
#[derive(Debug)]
pub enum Event<L> {
    /// The peer's hello was valid; call [`Link::authorize`] to go on
    /// (only with [`LinkConfig::authorize`]).
    Authorize {
        /// The licence tuple from the peer's hello (`docs/protocol/vol.md` §2.2).
        peer_licence: Licence,
    },
    /// Both sides finished the handshake (`docs/protocol/vol.md` §2.1 H10). The peer's
    /// gateway is an import; the runtime owns the handle from now on.
    Established {
        /// The import id of the peer's gateway object (`docs/protocol/vol.md` §2.3).
        peer_gateway: i64,
    },
    /// A call on one of our objects. Answer with [`Link::respond`] unless
    /// `kind` is [`CallKind::NoReturn`].
    Call {
        /// The call's msg_id, to pass to [`Link::respond`].
        call_id: CallId,
        /// Which answer the caller wants (`docs/protocol/vol.md` §3.2, codes 1–3).
        kind: CallKind,
        /// The called object, resolved from the `FD` id we exported.
        target: L,
        /// The argument tuple; for VOB objects the method name comes first
        /// (`docs/protocol/vol.md` §4.1).
        args: Vec<Entity<Ref<L>>>,
    },
    /// The outcome of one of our calls (ids we did not issue are still
    /// reported; the runtime ignores them after releasing their references).
    Response {
        /// The msg_id of our call, as returned by [`Link::call`].
        call_id: i64,
        /// Result, exception or error (`docs/protocol/vol.md` §3.4–3.6).
        outcome: Outcome<Ref<L>>,
    },
    /// Both object tables are empty: start a graceful shutdown (`docs/protocol/vol.md` §5.3).
    Idle,
}

/// Where the link is in its life (`docs/protocol/vol.md` §2.1, §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the peer's VEC hello line.
    ExpectVecHello,
    /// Waiting for the peer's VOL hello entity.
    ExpectVolHello,
    /// Hello accepted; waiting for the application's authorization.
    ExpectAuthorization,
    /// Our handshake object is sent; waiting for the peer's.
    ExpectHandshakeObject,
    /// Message triples flow (the handshake may still be finishing).
    Messages,
    /// Shut down: nothing more is read; responses may still be written.
    Closing,
}

/// Our outgoing calls that the link makes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InternalCall {
    KeepAlive(u64),
    Finish,
}

#[derive(Debug, Default)]
struct HandshakeState {
    peer_handshake: Option<i64>,
    /// Our `finish` call is sent (H7).
    ready_to_finish: bool,
    /// The peer's gateway arrived (H8).
    peer_gateway: Option<i64>,
    /// The peer called `finish` (msg id); answered once we are ready (H9).
    peer_finish: Option<CallId>,
    finish_answered: bool,
    keep_alive_granted: bool,
    complete: bool,
    internal: Vec<(i64, InternalCall)>,
}

/// First capacity of an empty output buffer (see `write_entity`).
const FIRST_OUTPUT_CAPACITY: usize = 512;

/// One VOL link, both roles (the protocol is symmetric, `docs/protocol/vol.md` §1.2).
pub struct Link<L> {
    config: LinkConfig,
    phase: Phase,
    /// Our gateway until it is handed to the peer in the answer to its
    /// `finish`; from then on only the export table holds it, so that it is
    /// freed once the peer releases it (`docs/protocol/vol.md` §5.2; Python keeps only a
    /// weak reference after `local_gw()`, §9.2 step 2).
    gateway: Option<L>,
    decoder: Decoder,
    encode: EncodeConfig,
    out: LinkOutput,
    next_msg_id: i64,
    exports: ExportTable<L>,
    imports: ImportTable,
    handshake: HandshakeState,
    events: InlineFirstQueue<Event<L>>,
    peer_licence: Option<Licence>,
    started: Instant,
    last_received: Instant,
    last_sent: Instant,
    /// Interval at which we must show activity (granted to the peer).
    send_interval: Option<Duration>,
    /// Silence after which we give up on the peer (we requested keep-alive).
    expiry: Option<Duration>,
    /// The export limit was hit and logged as a warning once.
    export_limit_reported: bool,
}

impl<L: Clone + ExportKey> Link<L> {
    /// A new link serving `gateway`; our VEC hello is queued at once
    /// (`docs/protocol/vec.md` §8.2: each side sends its hello without waiting).
    pub fn new(config: LinkConfig, gateway: L, now: Instant) -> Self {
        // Until the handshake is complete the peer is unauthenticated: small
        // limits (`handshake_max_*`), raised in `check_complete`.
        let decoder = Decoder::new(DecoderConfig {
            max_entity_size: config.handshake_max_entity_size,
            max_depth: config.max_depth,
            str_decoding: None,
            allow_refs: true,
            max_decoded_bytes: config.handshake_max_decoded_bytes,
        });
        let mut out = LinkOutput::default();
        out.buf.reserve(FIRST_OUTPUT_CAPACITY);
        out.buf
            .extend_from_slice(vec::hello_line(Some(StrCodec::Utf8)));
        Link {
            config,
            phase: Phase::ExpectVecHello,
            gateway: Some(gateway),
            decoder,
            encode: EncodeConfig::link(),
            out,
            next_msg_id: 1,
            exports: ExportTable::new(),
            imports: ImportTable::default(),
            handshake: HandshakeState::default(),
            events: InlineFirstQueue::default(),
            peer_licence: None,
            started: now,
            last_received: now,
            last_sent: now,
            send_interval: None,
            expiry: None,
            export_limit_reported: false,
        }
    }

    /// The next bytes to write to the transport: all of them, or the first
    /// of the pieces shared byte strings cut them into
    /// ([`share_large_bytes`](Self::share_large_bytes)). Empty when
    /// everything was written.
    pub fn pending_output(&self) -> &[u8] {
        self.out.front()
    }

    /// How many bytes wait to be written, in all pieces.
    pub fn pending_output_len(&self) -> usize {
        self.out.len()
    }

    /// Mark `n` bytes of [`pending_output`](Self::pending_output) as written.
    pub fn consume_output(&mut self, n: usize) {
        // `advance`, not `split_to`: splitting would turn the buffer into a
        // shared one, an allocation per message (issue #8).
        self.out.consume(n);
    }

    /// Write byte strings of at least `min` bytes from where they lie
    /// instead of copying them into the output buffer (`None`, the
    /// default: copy them). For streams that read every byte to transform
    /// it (VTS, TLS); the output then comes in pieces, see
    /// [`pending_output`](Self::pending_output).
    pub fn share_large_bytes(&mut self, min: Option<usize>) {
        self.out.share_from(min);
    }

    /// Let the output buffer go if everything in it was written, so that
    /// its allocation (as large as the largest batch) is not kept by the
    /// link; a small one goes to this thread's spare for the next message
    /// (`output_pool`).
    pub fn release_output_buffer(&mut self) {
        self.out.release_buffer(FIRST_OUTPUT_CAPACITY);
    }

    /// Free what is only needed while input is processed (the decoder's
    /// scratch, the event queue), if no entity is in progress: called by the
    /// runtime when its input buffer is empty, so an idle link keeps none.
    pub fn release_input_memory(&mut self) {
        self.decoder.release_scratch();
        self.events.release_memory();
    }

    /// Take all pending output at once.
    pub fn take_output(&mut self) -> BytesMut {
        self.out.take_all()
    }

    /// The next event for the runtime, if any.
    pub fn poll_event(&mut self) -> Option<Event<L>> {
        self.events.pop_front()
    }

    /// Whether the VOL handshake is complete (`docs/protocol/vol.md` §2.1 H10).
    pub fn is_established(&self) -> bool {
        self.handshake.complete
    }

    /// Whether the link is shutting down (no more input is processed).
    pub fn is_closing(&self) -> bool {
        self.phase == Phase::Closing
    }

    /// The licence tuple from the peer's hello, once received.
    pub fn peer_licence(&self) -> Option<&Licence> {
        self.peer_licence.as_ref()
    }

    /// Bytes the input buffer must hold before the entity in progress can
    /// be decoded: exact once its header is parsed, a lower bound before
    /// (see [`Decoder::min_bytes_needed`]). Lets a runtime size its read
    /// buffer once instead of doubling it as a large entity arrives.
    pub fn input_needed(&self) -> usize {
        self.decoder.min_bytes_needed()
    }

    /// Memory charged for the entity being decoded (see
    /// [`Decoder::charge`]); the runtime adds it to the link's budget.
    pub fn decoder_charge(&self) -> usize {
        self.decoder.charge()
    }

    /// Let the entity being decoded cost at most `room` bytes in memory
    /// (see [`Decoder::set_memory_room`]). The runtime sets it from its
    /// memory budget before each [`receive`](Self::receive).
    pub fn set_memory_room(&mut self, room: usize) {
        self.decoder.set_memory_room(room);
    }

    /// Whether the last [`receive`](Self::receive) stopped because the next
    /// node of an entity did not fit in the room (more bytes will not help;
    /// more room will).
    pub fn is_waiting_for_memory(&self) -> bool {
        self.memory_wanted().is_some()
    }

    /// When waiting for memory: the charge the entity needs to go on (see
    /// [`Decoder::memory_wanted`]).
    pub fn memory_wanted(&self) -> Option<usize> {
        match self.phase {
            Phase::Closing => None,
            _ => self.decoder.memory_wanted(),
        }
    }

    /// Sizes of the export and import tables (for tests and metrics).
    pub fn table_sizes(&self) -> (usize, usize) {
        (self.exports.len(), self.imports.len())
    }

    /// Stop processing input: the start of a graceful or forced shutdown
    /// (`docs/protocol/vol.md` §7.2). Responses to running calls may still be written.
    pub fn close(&mut self) {
        self.phase = Phase::Closing;
    }

    /// Feed bytes from the transport; consumes all it can process.
    pub fn receive(&mut self, buf: &mut BytesMut, now: Instant) -> Result<(), LinkError> {
        while self.receive_next(buf, now)? == Received::Processed {}
        Ok(())
    }

    /// Process at most one unit of input (the VEC hello line or one
    /// entity), so that a runtime can check its call queue between entities
    /// and leave the rest of `buf` unread while the queue is full. An
    /// entity yields at most one [`Event::Call`].
    pub fn receive_next(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<Received, LinkError> {
        match self.phase {
            Phase::Closing | Phase::ExpectAuthorization => Ok(Received::NeedMore),
            Phase::ExpectVecHello => match vec::parse_hello(buf)? {
                None => Ok(Received::NeedMore),
                Some(codec) => {
                    self.decoder.set_str_decoding(codec);
                    self.phase = Phase::ExpectVolHello;
                    // Entities only after the peer's hello (`docs/protocol/vec.md` §8.2).
                    let hello = hello_entity(&self.config.licence);
                    self.write_entity(&hello)?;
                    Ok(Received::Processed)
                }
            },
            // Messages: the envelope comes back taken apart, unallocated.
            Phase::Messages => match self.decoder.decode_spread(buf)? {
                None => Ok(Received::NeedMore),
                Some(spread) => {
                    self.last_received = now;
                    let (msg_id, msg) = message::parse_spread(spread)?;
                    self.handle_message(msg_id, msg, now)?;
                    Ok(Received::Processed)
                }
            },
            _ => match self.decoder.decode(buf)? {
                None => Ok(Received::NeedMore),
                Some(entity) => {
                    self.last_received = now;
                    self.handle_entity(entity, now)?;
                    Ok(Received::Processed)
                }
            },
        }
    }

    /// The application's verdict on the peer (`docs/protocol/vol.md` §2.6). Rejection is
    /// an error: the runtime closes without sending anything further.
    pub fn authorize(&mut self, accept: bool) -> Result<(), LinkError> {
        if self.phase != Phase::ExpectAuthorization {
            return Ok(());
        }
        if !accept {
            self.phase = Phase::Closing;
            self.out.clear();
            return Err(LinkError::Rejected);
        }
        self.send_handshake_object()
    }

    fn handle_entity(&mut self, entity: Entity, now: Instant) -> Result<(), LinkError> {
        match self.phase {
            Phase::ExpectVolHello => self.on_peer_hello(&entity),
            Phase::ExpectHandshakeObject => self.on_peer_handshake_object(entity, now),
            Phase::Messages => {
                let (msg_id, msg) = message::parse(entity)?;
                self.handle_message(msg_id, msg, now)
            }
            Phase::ExpectVecHello | Phase::ExpectAuthorization | Phase::Closing => Ok(()),
        }
    }

    /// The peer's VOL hello (`docs/protocol/vol.md` §2.2): check it, then either ask the
    /// application to authorize the peer (§2.6) or go on at once.
    fn on_peer_hello(&mut self, entity: &Entity) -> Result<(), LinkError> {
        let licence = check_hello(entity)?;
        self.peer_licence = Some(licence.clone());
        if self.config.authorize {
            self.phase = Phase::ExpectAuthorization;
            self.events.push_back(Event::Authorize {
                peer_licence: licence,
            });
            Ok(())
        } else {
            self.send_handshake_object()
        }
    }

    /// The peer's handshake object (`docs/protocol/vol.md` §2.1 H5, §2.3): import it, then
    /// request keep-alive first if configured (§8), else call `finish`.
    fn on_peer_handshake_object(&mut self, entity: Entity, now: Instant) -> Result<(), LinkError> {
        // H5: the second entity must be a bare FC reference.
        let Entity::Ref(WireRef::SenderOwned(id)) = entity else {
            return Err(LinkError::Handshake("expected the peer's handshake object"));
        };
        self.import(id)?;
        self.handshake.peer_handshake = Some(id);
        self.phase = Phase::Messages;
        match self.config.keep_alive_request {
            Some(t) => {
                let t = t.as_millis().max(1) as u64;
                let args = vec![Entity::String("keep_alive".into()), Entity::int(t)];
                let msg_id = self.send_call_raw(id, CallKind::Normal, args)?;
                self.handshake
                    .internal
                    .push((msg_id, InternalCall::KeepAlive(t)));
                Ok(())
            }
            None => self.send_finish(now),
        }
    }

    /// One message after the handshake entities (`docs/protocol/vol.md` §3.2), by code.
    fn handle_message(
        &mut self,
        msg_id: Entity,
        msg: Message<WireRef>,
        now: Instant,
    ) -> Result<(), LinkError> {
        match msg {
            Message::Call { kind, target, args } => self.on_call(msg_id, kind, target, args, now),
            Message::Response { call_id, outcome } => self.on_response(call_id, outcome, now),
            Message::NotifyDeref { object_id, count } => {
                if let (Some(id), Some(count)) = (object_id, count) {
                    self.on_notify_deref(id, count)?;
                }
                Ok(())
            }
            Message::ConfirmDeref { object_id } => {
                if let Some(id) = object_id {
                    self.on_confirm_deref(id);
                }
                Ok(())
            }
            Message::KeepAlive => Ok(()),
        }
    }

    /// METHOD_CALL* (`docs/protocol/vol.md` §3.3): resolve the target and arguments, then
    /// hand the call to the handshake object or to the application.
    fn on_call(
        &mut self,
        msg_id: Entity,
        kind: CallKind,
        target: WireRef,
        args: Vec<Entity>,
        now: Instant,
    ) -> Result<(), LinkError> {
        // Resolve every reference first: an unknown FD anywhere is
        // fatal, as in Python's decoder (`docs/protocol/vol.md` §3.3).
        let target = match target {
            WireRef::ReceiverOwned(id) => id,
            WireRef::SenderOwned(_) => {
                return Err(LinkError::Protocol("call target is not an FD reference"))
            }
        };
        let target_obj = self
            .exports
            .get(target)
            .cloned()
            .ok_or(LinkError::UnknownObject(target))?;
        let args = args
            .into_iter()
            .map(|a| self.resolve_incoming(a))
            .collect::<Result<Vec<_>, _>>()?;
        let call_id = match msg_id {
            Entity::Int(v) => CallId::Small(v),
            Entity::BigInt(v) => CallId::Big(v),
            _ => return Err(LinkError::Protocol("msg_id is not an integer")),
        };
        match target_obj {
            Exported::Handshake => self.handshake_call(call_id, kind, args, now),
            Exported::Object(target) => {
                self.events.push_back(Event::Call {
                    call_id,
                    kind,
                    target,
                    args,
                });
                Ok(())
            }
        }
    }

    /// CALL_RESULT, CALL_EXCEPTION, CALL_ERROR (`docs/protocol/vol.md` §3.4–3.6): to the
    /// handshake's own calls or, as an event, to the application.
    fn on_response(
        &mut self,
        call_id: Option<i64>,
        outcome: Outcome<WireRef>,
        now: Instant,
    ) -> Result<(), LinkError> {
        let outcome = match outcome {
            Outcome::Result(v) => Outcome::Result(self.resolve_incoming(v)?),
            Outcome::Exception(v) => Outcome::Exception(self.resolve_incoming(v)?),
            Outcome::Error => Outcome::Error,
        };
        let Some(call_id) = call_id else {
            return Ok(()); // not one of ours (§3.4); nothing to release
        };
        let internal = self
            .handshake
            .internal
            .iter()
            .position(|(id, _)| *id == call_id);
        match internal {
            Some(pos) => {
                let (_, which) = self.handshake.internal.swap_remove(pos);
                self.internal_response(which, outcome, now)
            }
            None => {
                self.events.push_back(Event::Response { call_id, outcome });
                Ok(())
            }
        }
    }

    /// NOTIFY_DEREF (`docs/protocol/vol.md` §5.2): confirm when the count matches what we
    /// sent, which drops the export.
    fn on_notify_deref(&mut self, id: i64, count: u64) -> Result<(), LinkError> {
        if self.exports.release(id, count) {
            self.send_message(code::CONFIRM_DEREF, Entity::Int(id))?;
            self.check_idle();
        }
        Ok(())
    }

    /// CONFIRM_DEREF (`docs/protocol/vol.md` §5.2): the peer dropped our import.
    fn on_confirm_deref(&mut self, id: i64) {
        if self.imports.confirm(id) {
            self.check_idle();
        }
    }

    /// Count one received `FC id`, closing the link when a new id would
    /// exceed the import limit ([`TableLimits::max_imports`]).
    fn import(&mut self, id: i64) -> Result<(), LinkError> {
        import_into(&mut self.imports, &self.config.tables, id)
    }

    /// Map wire references to application references, counting `FC`s.
    fn resolve_incoming(&mut self, entity: Entity) -> Result<Entity<Ref<L>>, LinkError> {
        let exports = &self.exports;
        let imports = &mut self.imports;
        let limits = &self.config.tables;
        entity.try_map_refs(&mut |r| match r {
            WireRef::SenderOwned(id) => {
                import_into(imports, limits, id)?;
                Ok(Ref::Remote(id))
            }
            WireRef::ReceiverOwned(id) => match exports.get(id) {
                Some(Exported::Object(obj)) => Ok(Ref::Local(obj.clone())),
                // Our handshake object passed back as a value: not callable
                // by the application; treat as a protocol violation.
                Some(Exported::Handshake) => {
                    Err(LinkError::Protocol("handshake object passed as a value"))
                }
                None => Err(LinkError::UnknownObject(id)),
            },
        })
    }

    /// Whether sending `value` keeps the export table within
    /// [`TableLimits::max_exports`]; checked before anything is exported, so
    /// a refused value leaves the table unchanged.
    fn exports_fit(&mut self, value: &Entity<Ref<L>>) -> bool {
        let mut keys = Vec::new();
        value.for_each_ref(&mut |r| {
            if let Ref::Local(obj) = r {
                keys.push(obj.export_key());
            }
        });
        if keys.is_empty() {
            return true;
        }
        let limit = self.config.tables.export_limit();
        let fits = self.exports.len() + self.exports.new_entries(keys) <= limit;
        if !fits {
            // A peer can trip this once per call: warn once per link.
            if !std::mem::replace(&mut self.export_limit_reported, true) {
                tracing::warn!(
                    limit,
                    "export table full: values not sent (docs/protocol/vol.md §5.1)"
                );
            } else {
                tracing::debug!(limit, "export table full: value not sent");
            }
            crate::limits::limit_exceeded("exported_objects");
        }
        fits
    }

    /// Map application references to wire references, exporting our objects.
    fn resolve_outgoing(&mut self, entity: Entity<Ref<L>>) -> Result<Entity, LinkError> {
        let exports = &mut self.exports;
        let imports = &self.imports;
        entity.try_map_refs(&mut |r| match r {
            Ref::Local(obj) => Ok(WireRef::SenderOwned(exports.send(&obj))),
            Ref::Remote(id) if imports.contains(id) => Ok(WireRef::ReceiverOwned(id)),
            Ref::Remote(_) => Err(LinkError::Closed),
        })
    }

    /// Send a call to the peer object `target` (an import id). Returns the
    /// call id the response will quote.
    pub fn call(
        &mut self,
        target: i64,
        kind: CallKind,
        args: Vec<Entity<Ref<L>>>,
    ) -> Result<i64, CallSendError> {
        if self.phase != Phase::Messages {
            return Err(CallSendError::Closed);
        }
        if !self.imports.contains(target) {
            return Err(CallSendError::Closed);
        }
        let args = Entity::Tuple(args);
        check_encodable(&args)?;
        if !self.exports_fit(&args) {
            return Err(CallSendError::ExportLimit);
        }
        let args = self
            .resolve_outgoing(args)
            .map_err(|_| CallSendError::Closed)?;
        let Entity::Tuple(args) = args else {
            unreachable!("a tuple maps to a tuple")
        };
        self.send_call_raw(target, kind, args)
            .map_err(CallSendError::Link)
    }

    fn send_call_raw(
        &mut self,
        target: i64,
        kind: CallKind,
        args: Vec<Entity>,
    ) -> Result<i64, LinkError> {
        // Payload `(FD target, args)` (`docs/protocol/vol.md` §3.3).
        let target = Entity::Ref(WireRef::ReceiverOwned(target));
        self.send_message_parts(kind.code(), &[target], &Entity::Tuple(args))
    }

    /// Answer an incoming call (`docs/protocol/vol.md` §4.5). A result that cannot be
    /// encoded becomes CALL_ERROR.
    pub fn respond(
        &mut self,
        call_id: &CallId,
        kind: CallKind,
        outcome: Outcome<Ref<L>>,
    ) -> Result<(), LinkError> {
        self.send_response(call_id, kind, outcome)
    }

    fn send_response(
        &mut self,
        call_id: &CallId,
        kind: CallKind,
        outcome: Outcome<Ref<L>>,
    ) -> Result<(), LinkError> {
        let outcome = match (kind, outcome) {
            (CallKind::NoReturn, _) => return Ok(()),
            (CallKind::VoidResult, Outcome::Result(_)) => Outcome::Result(Entity::None),
            (_, o) => o,
        };
        // A value that cannot be sent, also for want of export table room,
        // becomes CALL_ERROR (`docs/protocol/vol.md` §4.5); the link goes on.
        let outcome = match outcome {
            Outcome::Result(v) if self.sendable(&v) => Outcome::Result(self.resolve_outgoing(v)?),
            Outcome::Exception(v) if self.sendable(&v) => {
                Outcome::Exception(self.resolve_outgoing(v)?)
            }
            _ => Outcome::Error,
        };
        // Payload `(call_id, value)`, or `call_id` alone (§3.4–3.6).
        let call_id = call_id.to_entity();
        match outcome {
            Outcome::Result(v) => self.send_message_parts(code::CALL_RESULT, &[call_id], &v),
            Outcome::Exception(v) => self.send_message_parts(code::CALL_EXCEPTION, &[call_id], &v),
            Outcome::Error => self.send_message_parts(code::CALL_ERROR, &[], &call_id),
        }
        .map(|_| ())
    }

    fn sendable(&mut self, value: &Entity<Ref<L>>) -> bool {
        check_encodable(value).is_ok() && self.exports_fit(value)
    }

    /// The application dropped its last handle to the peer object `id`:
    /// send NOTIFY_DEREF with the total receive count (`docs/protocol/vol.md` §5.2).
    pub fn release(&mut self, id: i64) -> Result<(), LinkError> {
        if self.phase == Phase::Closing {
            return Ok(());
        }
        if let Some(count) = self.imports.release(id) {
            let payload = Entity::Tuple(vec![Entity::Int(id), Entity::int(count)]);
            self.send_message(code::NOTIFY_DEREF, payload)?;
        }
        Ok(())
    }

    fn check_idle(&mut self) {
        if self.handshake.complete && self.exports.is_empty() && self.imports.is_empty() {
            self.events.push_back(Event::Idle);
        }
    }

    fn send_message(&mut self, code: i64, payload: Entity) -> Result<i64, LinkError> {
        self.send_message_parts(code, &[], &payload)
    }

    /// Send `(msg_id, code, payload)` (`docs/protocol/vol.md` §3.1) where the payload is
    /// `tail`, or the tuple `(head..., tail)` if `head` is not empty,
    /// encoded without building the envelope: `head` holds integers and
    /// references only (no byte payloads), so the bytes are the same.
    fn send_message_parts(
        &mut self,
        code: i64,
        head: &[Entity],
        tail: &Entity,
    ) -> Result<i64, LinkError> {
        let msg_id = self.next_msg_id;
        self.next_msg_id += 1;
        self.reserve_first_output();
        let start = self.out.buf.len();
        let written = (|| {
            let (cfg, output) = (&self.encode, &mut self.out);
            let out = &mut output.buf;
            vec::encode_tuple_header(3, out);
            vec::encode_int(msg_id, out);
            vec::encode_int(code, out);
            if !head.is_empty() {
                vec::encode_tuple_header(head.len() + 1, out);
                for item in head {
                    debug_assert!(matches!(
                        item,
                        Entity::Int(_) | Entity::BigInt(_) | Entity::Ref(_)
                    ));
                    vec::encode(item, cfg, out)?;
                }
            }
            // The only part that can hold large byte strings.
            output.encode(tail, cfg)
        })();
        if let Err(e) = written {
            // Nothing was shared: that happens only once all headers are
            // written, and nothing fails after it.
            self.out.buf.truncate(start);
            return Err(e.into());
        }
        Ok(msg_id)
    }

    fn write_entity(&mut self, entity: &Entity) -> Result<(), LinkError> {
        self.reserve_first_output();
        self.out.encode(entity, &self.encode)?;
        Ok(())
    }

    /// The runtime releases the output buffer once written: one allocation
    /// fits a typical message, rather than growing from 8 bytes by doubling
    /// (three or four reallocations per small message).
    fn reserve_first_output(&mut self) {
        if self.out.buf.capacity() == 0 {
            match output_pool::take() {
                Some(spare) => self.out.buf = spare,
                None => self.out.buf.reserve(FIRST_OUTPUT_CAPACITY),
            }
        }
    }
}

/// What [`Link::receive_next`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// One unit of input was processed; there may be more in the buffer.
    Processed,
    /// Nothing to do until more bytes arrive (or, while closing or waiting
    /// for authorization, nothing is read at all).
    NeedMore,
}

/// Count `FC id` in `imports`; over the limit the link closes (`docs/protocol/vol.md`
/// §3.9: a peer sending what the receiver cannot hold loses the link).
fn import_into(imports: &mut ImportTable, limits: &TableLimits, id: i64) -> Result<(), LinkError> {
    let limit = limits.import_limit();
    imports.receive(id, limit).map_err(|_| {
        tracing::warn!(
            limit,
            "import table full: closing the link (docs/protocol/vol.md §5.1)"
        );
        crate::limits::limit_exceeded("imported_objects");
        LinkError::ImportLimit(limit)
    })
}

/// Why an outgoing call could not be sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallSendError {
    /// The link is not (or no longer) able to carry calls.
    #[error("link closed")]
    Closed,
    /// The arguments cannot be represented on the wire.
    #[error("arguments cannot be encoded: {0}")]
    Unencodable(&'static str),
    /// The arguments would export more objects than the link's export table
    /// may hold ([`TableLimits::max_exports`]); nothing was sent.
    #[error("export table full: arguments not sent")]
    ExportLimit,
    /// The link failed while writing.
    #[error(transparent)]
    Link(LinkError),
}

/// Reject values that have no wire form before any object gets exported for
/// them (`docs/protocol/vec.md` §5.3: no infinities or NaN; float base ≥ 2).
fn check_encodable<R>(entity: &Entity<R>) -> Result<(), CallSendError> {
    match entity {
        Entity::Float(f) if !f.is_finite() => Err(CallSendError::Unencodable("non-finite float")),
        Entity::VFloat(v) if v.base < BigInt::from(2) => {
            Err(CallSendError::Unencodable("float base below 2"))
        }
        Entity::Tuple(items) | Entity::Exception(items) => {
            items.iter().try_for_each(check_encodable)
        }
        Entity::Tagged(t) => {
            check_encodable(&t.value)?;
            t.tags.iter().try_for_each(check_encodable)
        }
        _ => Ok(()),
    }
}
