//! Two sans-IO links wired together in memory (`mod link_pair;`): bytes
//! are moved both ways by [`Pair::pump`], time is passed in.

#![allow(dead_code)]

use std::time::Instant;

use bytes::BytesMut;
use versile::vol::{Event, ExportKey, Link, LinkConfig, LinkError};

#[derive(Clone, Debug, PartialEq)]
pub struct Obj(pub usize);
impl ExportKey for Obj {
    fn export_key(&self) -> usize {
        self.0
    }
}

pub struct Pair {
    pub a: Link<Obj>,
    pub b: Link<Obj>,
    pub a_in: BytesMut,
    pub b_in: BytesMut,
}

impl Pair {
    pub fn new(ca: LinkConfig, cb: LinkConfig, now: Instant) -> Self {
        Pair {
            a: Link::new(ca, Obj(1), now),
            b: Link::new(cb, Obj(2), now),
            a_in: BytesMut::new(),
            b_in: BytesMut::new(),
        }
    }

    /// Two links, handshake done; returns the pair and each side's view
    /// of the other's gateway (a's import of b's gateway first).
    pub fn connected(ca: LinkConfig, cb: LinkConfig, now: Instant) -> (Self, i64, i64) {
        let mut p = Pair::new(ca, cb, now);
        p.pump_ok(now);
        let gw_b = established(&mut p.a).expect("a established");
        let gw_a = established(&mut p.b).expect("b established");
        // The handshake objects' release traffic.
        p.pump_ok(now);
        (p, gw_b, gw_a)
    }

    /// Move bytes both ways until nothing moves.
    pub fn pump(&mut self, now: Instant) -> (Result<(), LinkError>, Result<(), LinkError>) {
        let (mut ra, mut rb) = (Ok(()), Ok(()));
        for _ in 0..100 {
            let ab = self.a.take_output();
            let ba = self.b.take_output();
            if ab.is_empty() && ba.is_empty() {
                break;
            }
            self.b_in.extend_from_slice(&ab);
            self.a_in.extend_from_slice(&ba);
            if ra.is_ok() {
                ra = self.a.receive(&mut self.a_in, now);
            }
            if rb.is_ok() {
                rb = self.b.receive(&mut self.b_in, now);
            }
        }
        (ra, rb)
    }

    pub fn pump_ok(&mut self, now: Instant) {
        let (ra, rb) = self.pump(now);
        ra.expect("link a");
        rb.expect("link b");
    }
}

/// Drain `link`'s events; the peer gateway if the handshake completed.
pub fn established(link: &mut Link<Obj>) -> Option<i64> {
    let mut gw = None;
    while let Some(e) = link.poll_event() {
        if let Event::Established { peer_gateway } = e {
            gw = Some(peer_gateway);
        }
    }
    gw
}
