//! The VTS record layer (`docs/protocol/vts.md` §4, §2.5) opening arbitrary records.
//!
//! Direct mode (first byte < 0x80, see `versile_fuzz::RecordInput`): a
//! [`RecordLayer`](versile::vts::record::RecordLayer) keyed with fixed
//! session keys for any of the 50 suites, fed in chunks; every record
//! opened is answered with a sealed one. Connection mode (first byte ≥
//! 0x80): a [`VtsConnection`](versile::vts::VtsConnection) brought to the
//! open state by a replayed valid handshake, then fed the input's records.
//! Must never panic; an opened record is never larger than the limit; an
//! error is final.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use versile_fuzz::{established, RecordInput};

fuzz_target!(|data: &[u8]| {
    if data.first().is_some_and(|b| b & 0x80 != 0) {
        connection_mode(data);
        return;
    }
    let Some(input) = RecordInput::parse(data) else {
        return;
    };
    let (mut me, _) = input.layers().expect("keys fit the suite");
    let chunk = if input.chunk == 0 {
        input.data.len().max(1)
    } else {
        input.chunk
    };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match me.open(&mut buf) {
                Ok(Some(p)) => {
                    assert!(!p.is_empty() && p.len() <= input.max_recv, "{}", p.len());
                    if me.seal(&p, &mut out).is_err() {
                        assert!(input.limit_64bit.is_some());
                        return;
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = me.has_partial();
});

fn connection_mode(data: &[u8]) {
    let [sel, chunk, ref rest @ ..] = *data else {
        return;
    };
    let (mut conn, _) = established(usize::from(sel & 7), sel & 8 != 0);
    let chunk = if chunk == 0 {
        rest.len().max(1)
    } else {
        usize::from(chunk)
    };
    let mut buf = BytesMut::new();
    let mut plain = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        if conn.receive(&mut buf).is_err() {
            assert!(conn.is_failed());
            return;
        }
        conn.read_plaintext(&mut plain);
        conn.write_plaintext(b"answer")
            .expect("open connection writes");
        let n = conn.pending_output().len();
        conn.consume_output(n);
    }
}
