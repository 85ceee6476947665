//! Where the handshake gets its random values.
//!
//! Production uses the operating system's CSPRNG ([`OsRandom`]; §10 #11:
//! security rests entirely on these values). Tests inject a
//! [`ScriptedRandom`] to replay the randoms fixed by `vts-vectors.json`.
//!
//! Order of requests (this is the contract for scripted sources):
//! * client: `rand_c` (32), `srand_c` (32), `block_rand` (32), then one
//!   8-byte RSA tail per RSA block of the M5 header;
//! * server: `rand_s` (32), then in client-key mode `srand_s` (32) and one
//!   8-byte RSA tail per RSA block of M6.

use std::collections::VecDeque;

use super::error::VtsError;

/// A source of random bytes.
pub trait RandomSource: Send {
    /// Fill `buf` completely.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), VtsError>;
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), VtsError> {
        getrandom::fill(buf).map_err(|_| VtsError::Random)
    }
}

/// Replays fixed values, one per request; for tests with known vectors.
/// A request whose length differs from the next value fails.
#[derive(Debug, Default, Clone)]
pub struct ScriptedRandom {
    values: VecDeque<Vec<u8>>,
}

impl ScriptedRandom {
    /// Replays `values` in order.
    pub fn new(values: impl IntoIterator<Item = Vec<u8>>) -> Self {
        ScriptedRandom {
            values: values.into_iter().collect(),
        }
    }

    /// Values not requested yet.
    pub fn remaining(&self) -> usize {
        self.values.len()
    }
}

impl RandomSource for ScriptedRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), VtsError> {
        match self.values.pop_front() {
            Some(v) if v.len() == buf.len() => {
                buf.copy_from_slice(&v);
                Ok(())
            }
            _ => Err(VtsError::Random),
        }
    }
}

/// `n` random bytes.
#[allow(dead_code)]
pub(crate) fn bytes(rng: &mut dyn RandomSource, n: usize) -> Result<Vec<u8>, VtsError> {
    let mut v = vec![0u8; n];
    rng.fill(&mut v)?;
    Ok(v)
}
