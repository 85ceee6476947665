//! The VOL handshake (`docs/protocol/vol.md` §2): our handshake object, the `finish`
//! exchange in both directions, the optional `keep_alive` request, and the
//! completion check (H1–H10 of §2.1).

use std::time::{Duration, Instant};

use super::{CallId, InternalCall, Link, Phase, Ref};
use crate::vec::{Entity, WireRef};
use crate::vol::message::{CallKind, Outcome};
use crate::vol::tables::ExportKey;
use crate::vol::{Event, LinkError};

impl<L: Clone + ExportKey> Link<L> {
    pub(super) fn send_handshake_object(&mut self) -> Result<(), LinkError> {
        // H4: our handshake object, a bare FC entity (`docs/protocol/vol.md` §2.3).
        let id = self.exports.export_handshake();
        self.write_entity(&Entity::Ref(WireRef::SenderOwned(id)))?;
        self.phase = Phase::ExpectHandshakeObject;
        Ok(())
    }

    pub(super) fn send_finish(&mut self, now: Instant) -> Result<(), LinkError> {
        let peer_hs = self
            .handshake
            .peer_handshake
            .ok_or(LinkError::Handshake("no peer handshake object"))?;
        let args = vec![Entity::String("finish".into())];
        let msg_id = self.send_call_raw(peer_hs, CallKind::Normal, args)?;
        self.handshake.internal.push((msg_id, InternalCall::Finish));
        self.handshake.ready_to_finish = true;
        if let Some(call_id) = self.handshake.peer_finish.clone() {
            self.answer_finish(call_id, now)?;
        }
        Ok(())
    }

    fn answer_finish(&mut self, call_id: CallId, now: Instant) -> Result<(), LinkError> {
        let gateway = self
            .gateway
            .take()
            .ok_or(LinkError::Handshake("finish answered twice"))?;
        let payload = Entity::Ref(Ref::Local(gateway));
        self.send_response(&call_id, CallKind::Normal, Outcome::Result(payload))?;
        self.handshake.finish_answered = true;
        self.check_complete(now)
    }

    fn check_complete(&mut self, now: Instant) -> Result<(), LinkError> {
        let hs = &self.handshake;
        if hs.complete || !hs.finish_answered {
            return Ok(());
        }
        let Some(peer_gateway) = hs.peer_gateway else {
            return Ok(());
        };
        self.handshake.complete = true;
        // The peer is past the handshake: the configured entity limits.
        self.decoder
            .set_limits(self.config.max_entity_size, self.config.max_decoded_bytes);
        self.last_received = now;
        self.last_sent = now;
        // Release the peer's handshake object right away, as Python does
        // (`docs/protocol/vol.md` §2.3).
        if let Some(hs_id) = self.handshake.peer_handshake {
            self.release(hs_id)?;
        }
        self.events.push_back(Event::Established { peer_gateway });
        Ok(())
    }

    /// Calls on our handshake object (`docs/protocol/vol.md` §2.3); misuse closes the link.
    pub(super) fn handshake_call(
        &mut self,
        call_id: CallId,
        kind: CallKind,
        args: Vec<Entity<Ref<L>>>,
        now: Instant,
    ) -> Result<(), LinkError> {
        if kind != CallKind::Normal {
            return Err(LinkError::Handshake(
                "handshake object called without result",
            ));
        }
        match args.first().and_then(|a| a.as_str()) {
            Some("finish") if args.len() == 1 => {
                if self.handshake.peer_finish.is_some() {
                    return Err(LinkError::Handshake("finish called twice"));
                }
                self.handshake.peer_finish = Some(call_id.clone());
                if self.handshake.ready_to_finish {
                    self.answer_finish(call_id, now)?;
                }
                Ok(())
            }
            Some("keep_alive") if args.len() == 2 => {
                let requested = match args[1] {
                    Entity::Int(t) if t > 0 => t as u64,
                    _ => return Err(LinkError::Handshake("invalid keep_alive interval")),
                };
                if self.handshake.keep_alive_granted {
                    return Err(LinkError::Handshake("keep_alive called twice"));
                }
                self.handshake.keep_alive_granted = true;
                let min = self.config.keep_alive_min_send.as_millis() as u64;
                let granted = requested.max(min);
                self.send_interval = Some(Duration::from_millis(granted));
                self.send_response(
                    &call_id,
                    CallKind::Normal,
                    Outcome::Result(Entity::int(granted)),
                )
            }
            _ => Err(LinkError::Handshake("unknown call on the handshake object")),
        }
    }

    pub(super) fn internal_response(
        &mut self,
        which: InternalCall,
        outcome: Outcome<Ref<L>>,
        now: Instant,
    ) -> Result<(), LinkError> {
        match which {
            InternalCall::KeepAlive(requested) => match outcome {
                Outcome::Result(Entity::Int(g)) if g >= 0 && g as u64 >= requested => {
                    // A huge grant would mean "never expire" (`docs/protocol/vol.md` §8 step 3).
                    let cap = self.config.keep_alive_max_grant.as_millis();
                    let cap = u64::try_from(cap).unwrap_or(u64::MAX).max(requested);
                    let granted = Duration::from_millis((g as u64).min(cap));
                    let factor = self.config.keep_alive_expire_factor;
                    self.expiry = Duration::try_from_secs_f64(granted.as_secs_f64() * factor).ok();
                    self.send_finish(now)
                }
                // Python stalls here (§2.4); failing is more useful.
                _ => Err(LinkError::Handshake("keep_alive request refused")),
            },
            InternalCall::Finish => match outcome {
                Outcome::Result(Entity::Ref(Ref::Remote(id))) => {
                    self.handshake.peer_gateway = Some(id);
                    self.check_complete(now)
                }
                _ => Err(LinkError::Handshake(
                    "finish did not return a gateway reference",
                )),
            },
        }
    }
}
