//! The record layer (`docs/protocol/vts.md` §4): sealed messages per direction with the
//! session keys, ≤ `max_send_record` plaintext bytes per record sent, up to
//! 65536 accepted.

use bytes::BytesMut;

use super::cipher::{symmetric, Direction};
use super::config::Suite;
use super::error::VtsError;
use super::handshake::SessionKeys;
use super::message::{Opener, Sealer};

/// Most bytes a record adds to its plaintext: `LEN2`, `PAD` (< 16) and a
/// MAC of up to 64 bytes (§2.5).
const RECORD_OVERHEAD: usize = 2 + 15 + 64;

/// Which side we are, for picking the direction keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connected: send with the `c_*` keys, receive with `s_*`.
    Client,
    /// We accepted: send with the `s_*` keys, receive with `c_*`.
    Server,
}

/// Both directions of an established connection.
pub struct RecordLayer {
    sealer: Sealer,
    opener: Opener,
    max_send: usize,
    /// Per-direction byte limit when the cipher has 64-bit blocks (§10 #9).
    limit: Option<u64>,
    sent: u64,
    received: u64,
}

impl RecordLayer {
    /// Key the layer: the client sends with `c_*` and receives with `s_*`,
    /// the server the other way round (§3.6).
    pub fn new(
        role: Role,
        suite: &Suite,
        keys: &SessionKeys,
        max_send: usize,
        max_recv: usize,
        max_bytes_64bit_cipher: Option<u64>,
    ) -> Result<Self, VtsError> {
        let (tx, rx) = match role {
            Role::Client => (
                (&keys.c_key, &keys.c_iv, &keys.c_mac),
                (&keys.s_key, &keys.s_iv, &keys.s_mac),
            ),
            Role::Server => (
                (&keys.s_key, &keys.s_iv, &keys.s_mac),
                (&keys.c_key, &keys.c_iv, &keys.c_mac),
            ),
        };
        let sealer = Sealer::new(
            symmetric(suite.cipher, suite.mode, Direction::Encrypt, tx.0, tx.1)?,
            suite.mac_hash,
            tx.2.clone(),
        );
        let opener = Opener::new(
            symmetric(suite.cipher, suite.mode, Direction::Decrypt, rx.0, rx.1)?,
            suite.mac_hash,
            rx.2.clone(),
            max_recv,
        );
        Ok(RecordLayer {
            sealer,
            opener,
            max_send: max_send.clamp(1, super::message::MAX_MESSAGE),
            limit: max_bytes_64bit_cipher.filter(|_| suite.cipher.block_len() == 8),
            sent: 0,
            received: 0,
        })
    }

    /// Seal `data` as records of at most `max_send` bytes each (never an
    /// empty record, §4).
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), VtsError> {
        self.sent = count(self.sent, data.len(), self.limit)?;
        // Room for every record at once: growing by doubling copied what
        // was sealed so far (`docs/performance.md`, "Eighth round").
        let records = data.len().div_ceil(self.max_send);
        out.reserve(data.len() + records * RECORD_OVERHEAD);
        for chunk in data.chunks(self.max_send) {
            self.sealer.seal(chunk, out)?;
        }
        Ok(())
    }

    /// Open the next record from `buf`; `Ok(None)` if incomplete.
    pub fn open(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<u8>>, VtsError> {
        Ok(self.open_record(buf)?.map(|p| p.to_vec()))
    }

    /// [`open`](Self::open) without a copy: the record's plaintext is a
    /// part of `buf`'s allocation ([`Opener::open_record`]).
    pub fn open_record(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, VtsError> {
        let opened = self.opener.open_record(buf)?;
        if let Some(p) = &opened {
            self.received = count(self.received, p.len(), self.limit)?;
        }
        Ok(opened)
    }

    /// Whether a record has been partly received (for EOF handling).
    pub fn has_partial(&self) -> bool {
        self.opener.has_partial()
    }
}

/// Add `n` bytes to a direction's total, failing past `limit`.
fn count(total: u64, n: usize, limit: Option<u64>) -> Result<u64, VtsError> {
    let total = total.saturating_add(n as u64);
    match limit {
        Some(max) if total > max => Err(VtsError::DataLimit(total)),
        _ => Ok(total),
    }
}
