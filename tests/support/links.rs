//! Two sans-IO VOL links wired together in memory ([`LinkPair`]): bytes
//! are moved both ways by [`LinkPair::pump`], time is passed in. Their
//! objects are [`NumberedObj`]s, which export under their number.

use std::time::Instant;

use bytes::BytesMut;
use versile::vol::{Event, ExportKey, Link, LinkConfig, LinkError};

/// A stand-in for a local object: exported under its number.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberedObj(pub usize);
impl ExportKey for NumberedObj {
    fn export_key(&self) -> usize {
        self.0
    }
}

/// Link `a` and link `b`, each with the bytes it has received but not yet
/// consumed.
pub struct LinkPair {
    pub a: Link<NumberedObj>,
    pub b: Link<NumberedObj>,
    pub a_in: BytesMut,
    pub b_in: BytesMut,
}

impl LinkPair {
    pub fn new(ca: LinkConfig, cb: LinkConfig, now: Instant) -> Self {
        LinkPair {
            a: Link::new(ca, NumberedObj(1), now),
            b: Link::new(cb, NumberedObj(2), now),
            a_in: BytesMut::new(),
            b_in: BytesMut::new(),
        }
    }

    /// Two links, handshake done; returns the pair and each side's view
    /// of the other's gateway (a's import of b's gateway first).
    pub fn connected(ca: LinkConfig, cb: LinkConfig, now: Instant) -> (Self, i64, i64) {
        let mut p = LinkPair::new(ca, cb, now);
        p.pump_ok(now);
        let gw_b = take_established_gateway(&mut p.a).expect("a established");
        let gw_a = take_established_gateway(&mut p.b).expect("b established");
        assert!(p.a.is_established() && p.b.is_established());
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

    /// [`LinkPair::pump`]; panics if either link fails.
    pub fn pump_ok(&mut self, now: Instant) {
        let (ra, rb) = self.pump(now);
        ra.expect("link a");
        rb.expect("link b");
    }
}

/// Drain `link`'s events; the peer gateway if the handshake completed.
pub fn take_established_gateway(link: &mut Link<NumberedObj>) -> Option<i64> {
    let mut gw = None;
    while let Some(e) = link.poll_event() {
        if let Event::Established { peer_gateway } = e {
            gw = Some(peer_gateway);
        }
    }
    gw
}
