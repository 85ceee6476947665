//! The VTS PRF: a `P_hash`-like byte stream over VHMAC where each `A(i)`
//! also includes the seed (`docs/protocol/vts.md` §2.3). VTS always uses an empty secret.

use super::hash::HashAlg;
use super::vhmac::vhmac;

/// A PRF output stream; consumers take consecutive slices (`docs/protocol/vts.md` §3.6).
pub struct Prf {
    hash: HashAlg,
    secret: Vec<u8>,
    seed: Vec<u8>,
    /// `A(i)` of the last produced block.
    a: Vec<u8>,
    /// Produced but not yet consumed output.
    buf: Vec<u8>,
}

impl Prf {
    /// A stream for `secret` and `seed`.
    pub fn new(hash: HashAlg, secret: &[u8], seed: &[u8]) -> Self {
        Prf {
            hash,
            secret: secret.to_vec(),
            seed: seed.to_vec(),
            a: seed.to_vec(), // A(0) = seed
            buf: Vec::new(),
        }
    }

    /// The next `n` output bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            // A(i) = VHMAC(S, A(i-1) || seed); output block = VHMAC(S, A(i) || seed).
            self.a = vhmac(self.hash, &self.secret, &[&self.a, &self.seed]);
            let block = vhmac(self.hash, &self.secret, &[&self.a, &self.seed]);
            self.buf.extend_from_slice(&block);
        }
        self.buf.drain(..n).collect()
    }
}
