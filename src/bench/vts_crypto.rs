//! The floor under a VTS echo: what sealing and opening its bytes costs on
//! this CPU (`docs/protocol/vts.md` §4), measured in the same run as the
//! echo itself (issue #8: a 1 MiB VTS echo within 1.2× of its cipher and
//! MAC).
//!
//! One round is the work a VTS echo cannot avoid, done with the raw
//! primitives on one thread, without I/O, framing, allocation or copies:
//! for the call and then the result, encrypt it in place (AES-256-CBC,
//! the bench's suite), decrypt it in place, and compute its SHA-1 VHMAC
//! twice (sender and receiver), with transforms keyed once. What our
//! record layer adds on top (framing per record, copies) is part of what
//! the ratio of a real echo to this floor shows.

use std::time::Instant;

use bytes::BytesMut;

use crate::vts::cipher::{symmetric, BlockTransform, CipherAlg, Direction, Mode};
use crate::vts::handshake::SessionKeys;
use crate::vts::hash::HashAlg;
use crate::vts::record::{RecordLayer, Role};
use crate::vts::vhmac::vhmac;
use crate::vts::{Suite, VtsConfig, VtsError};

/// Median µs of `rounds` rounds of the raw cipher and MAC work for a
/// `request`-byte call and a
/// `response`-byte result (after one untimed round).
pub fn echo_crypto_floor_us(
    request: usize,
    response: usize,
    rounds: usize,
) -> Result<f64, VtsError> {
    let config = VtsConfig::default();
    let suite = Suite {
        prf_hash: HashAlg::Sha256,
        cipher: CipherAlg::Aes256,
        mode: Mode::Cbc,
        mac_hash: HashAlg::Sha1,
    };
    // Fixed keys: their values do not change the work.
    let keys = SessionKeys {
        c_key: vec![1; 32],
        s_key: vec![2; 32],
        c_iv: vec![3; 16],
        s_iv: vec![4; 16],
        c_mac: vec![5; 20],
        s_mac: vec![6; 20],
    };
    let layer = |role| {
        RecordLayer::new(
            role,
            &suite,
            &keys,
            config.max_send_record,
            config.max_recv_record,
            None,
        )
    };
    let (mut client, mut server) = (layer(Role::Client)?, layer(Role::Server)?);
    let (call, result) = (padded(request), padded(response));
    // The record layer must carry the same bytes (a check that the sizes
    // and suite are real, not part of the timing).
    let opened = pass(&mut client, &mut server, &call)?;
    let answered = pass(&mut server, &mut client, &result)?;
    if (opened, answered) != (call.len(), result.len()) {
        return Err(VtsError::NotReady("record layer lost bytes"));
    }
    // Keyed once, as a connection is; each direction's transforms carry
    // their chaining state from round to round, as a connection's do.
    let transform = |dir| symmetric(CipherAlg::Aes256, Mode::Cbc, dir, &keys.c_key, &keys.c_iv);
    let (mut encrypt, mut decrypt) = (
        transform(Direction::Encrypt)?,
        transform(Direction::Decrypt)?,
    );
    let mut work = Vec::with_capacity(call.len().max(result.len()));
    let mut times = Vec::with_capacity(rounds);
    for round in 0..=rounds.max(1) {
        let mut spent = 0.0;
        for data in [&call, &result] {
            spent += primitives(&mut *encrypt, &mut *decrypt, &keys.c_mac, data, &mut work)?;
        }
        if round > 0 {
            times.push(spent);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// `n` bytes rounded up to whole AES blocks.
fn padded(n: usize) -> Vec<u8> {
    vec![7u8; n.div_ceil(16).max(1) * 16]
}

/// µs to encrypt, decrypt and MAC (twice) `data` with the raw primitives,
/// in place in `work`: only the primitives are timed, not putting the
/// bytes there (an allocation and a copy would count against the floor's
/// honesty: they are not what the cipher and MAC cost).
fn primitives(
    encrypt: &mut dyn BlockTransform,
    decrypt: &mut dyn BlockTransform,
    mac_key: &[u8],
    data: &[u8],
    work: &mut Vec<u8>,
) -> Result<f64, VtsError> {
    work.clear();
    work.extend_from_slice(data);
    let start = Instant::now();
    encrypt.transform_in_place(work)?;
    decrypt.transform_in_place(work)?;
    let sent = vhmac(HashAlg::Sha1, mac_key, &[data]);
    let checked = vhmac(HashAlg::Sha1, mac_key, &[work]);
    let spent = start.elapsed().as_secs_f64() * 1e6;
    if sent != checked {
        return Err(VtsError::NotReady("cipher round trip changed the bytes"));
    }
    Ok(spent)
}

/// Seal `data` on `from`, open every record on `to`; the bytes opened.
fn pass(from: &mut RecordLayer, to: &mut RecordLayer, data: &[u8]) -> Result<usize, VtsError> {
    let mut wire = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    from.seal(data, &mut wire)?;
    let mut buf = BytesMut::from(&wire[..]);
    let mut opened = 0;
    while let Some(plain) = to.open(&mut buf)? {
        opened += plain.len();
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_round_trip_opens_what_was_sealed() {
        // Sizes across record boundaries: one byte, one record, several.
        for (req, resp) in [(1, 1), (16_384, 100), (70_000, 70_001)] {
            let us = super::echo_crypto_floor_us(req, resp, 3).expect("rounds");
            assert!(us > 0.0);
        }
    }
}
