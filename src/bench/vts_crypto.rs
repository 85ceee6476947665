//! The floor under a VTS echo: what sealing and opening its bytes costs on
//! this CPU (`docs/protocol/vts.md` §4), measured in the same run as the
//! echo itself, in turns with it (issue #8: a 1 MiB VTS echo within 1.2×
//! of its cipher and MAC).
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

/// The floor of a VTS echo of a `request`-byte call and a `response`-byte
/// result: the median µs of its rounds. Measured in slices between other
/// work: the bench times it in turns with the VTS echo, so that both
/// sample the same states of the machine (as the PLAIN echo and its
/// baseline do).
pub struct EchoCryptoFloor {
    encrypt: Box<dyn BlockTransform>,
    decrypt: Box<dyn BlockTransform>,
    mac_key: Vec<u8>,
    call: Vec<u8>,
    result: Vec<u8>,
    work: Vec<u8>,
    /// µs of each timed round.
    times: Vec<f64>,
}

impl EchoCryptoFloor {
    /// Keyed for a `request`-byte call and a `response`-byte result, and
    /// run once untimed.
    pub fn new(request: usize, response: usize) -> Result<Self, VtsError> {
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
        // The record layer must carry the same bytes (a check that the
        // sizes and suite are real, not part of the timing).
        let opened = pass(&mut client, &mut server, &call)?;
        let answered = pass(&mut server, &mut client, &result)?;
        if (opened, answered) != (call.len(), result.len()) {
            return Err(VtsError::NotReady("record layer lost bytes"));
        }
        // Keyed once, as a connection is; each direction's transforms
        // carry their chaining state from round to round, as a
        // connection's do.
        let transform = |dir| symmetric(CipherAlg::Aes256, Mode::Cbc, dir, &keys.c_key, &keys.c_iv);
        let mut floor = EchoCryptoFloor {
            encrypt: transform(Direction::Encrypt)?,
            decrypt: transform(Direction::Decrypt)?,
            mac_key: keys.c_mac.clone(),
            work: Vec::with_capacity(call.len().max(result.len())),
            call,
            result,
            times: Vec::new(),
        };
        floor.round()?;
        Ok(floor)
    }

    /// Time `rounds` more rounds.
    pub fn measure(&mut self, rounds: usize) -> Result<(), VtsError> {
        self.times.reserve(rounds);
        for _ in 0..rounds {
            let spent = self.round()?;
            self.times.push(spent);
        }
        Ok(())
    }

    /// The median of every round timed so far.
    pub fn median_us(&self) -> Option<f64> {
        let mut times = self.times.clone();
        times.sort_by(f64::total_cmp);
        times.get(times.len() / 2).copied()
    }

    /// µs of one round: the call, then the result.
    fn round(&mut self) -> Result<f64, VtsError> {
        let mut spent = 0.0;
        for data in [&self.call, &self.result] {
            spent += primitives(
                &mut *self.encrypt,
                &mut *self.decrypt,
                &self.mac_key,
                data,
                &mut self.work,
            )?;
        }
        Ok(spent)
    }
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
    fn rounds_measured_in_slices_add_up() {
        let mut floor = super::EchoCryptoFloor::new(70_000, 100).expect("keyed");
        assert_eq!(floor.median_us(), None);
        floor.measure(2).expect("rounds");
        floor.measure(3).expect("rounds");
        assert_eq!(floor.times.len(), 5);
        assert!(floor.median_us().is_some_and(|us| us > 0.0));
    }

    #[test]
    fn a_round_trip_opens_what_was_sealed() {
        // Sizes across record boundaries: one byte, one record, several.
        for (req, resp) in [(1, 1), (16_384, 100), (70_000, 70_001)] {
            let mut floor = super::EchoCryptoFloor::new(req, resp).expect("keyed");
            floor.measure(3).expect("rounds");
            assert!(floor.median_us().is_some_and(|us| us > 0.0));
        }
    }
}
