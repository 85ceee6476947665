//! Timers of a link (`docs/protocol/vol.md` §2.4 handshake timeout, §8 keep-alive): when
//! to wake up and what to do then. Time is passed in by the runtime.

use std::time::{Duration, Instant};

use super::{Link, Phase};
use crate::vec::Entity;
use crate::vol::message::code;
use crate::vol::tables::ExportKey;
use crate::vol::LinkError;

impl<L: Clone + ExportKey> Link<L> {
    /// When [`handle_timeout`](Self::handle_timeout) should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closing {
            return None;
        }
        if !self.handshake.complete {
            return self
                .config
                .handshake_timeout
                .and_then(|t| self.started.checked_add(t));
        }
        // Intervals come from the peer: an absurd one means "never", not a panic.
        let send = self
            .send_interval
            .and_then(|i| self.last_sent.checked_add(i));
        let expire = self.expiry.and_then(|e| self.last_received.checked_add(e));
        match (send, expire) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run timers: handshake deadline, keep-alive sending and expiry.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), LinkError> {
        if self.phase == Phase::Closing {
            return Ok(());
        }
        let due = |since: Instant, d: Option<Duration>| {
            d.and_then(|d| since.checked_add(d))
                .is_some_and(|deadline| now >= deadline)
        };
        if !self.handshake.complete {
            if due(self.started, self.config.handshake_timeout) {
                return Err(LinkError::HandshakeTimeout);
            }
            return Ok(());
        }
        if due(self.last_received, self.expiry) {
            return Err(LinkError::KeepAliveExpired);
        }
        {
            if due(self.last_sent, self.send_interval) {
                // Python 3 peers die on their 6th KEEP_ALIVE (`docs/protocol/vol.md` §8), so
                // keep them alive with an ignored NOTIFY_DEREF (0, 0) instead.
                let payload = Entity::Tuple(vec![Entity::Int(0), Entity::Int(0)]);
                self.send_message(code::NOTIFY_DEREF, payload)?;
            }
        }
        Ok(())
    }

    /// Note that output was written at `now` (keep-alive bookkeeping).
    pub fn on_output_written(&mut self, now: Instant) {
        self.last_sent = now;
    }
}
