//! RSA private-key operations as jobs the handshake hands out (`docs/protocol/vts.md`
//! §2.6 `AsymDec`; §5.4: the server's M5 header, the client's M6).
//!
//! A private operation costs milliseconds, so the sans-IO handshake does not
//! have to run it itself: in [`PrivateOps::Offload`] mode it stops in front
//! of it and offers a [`PrivateOp`] (key, ciphertext; `Send`, no borrow of
//! the connection). The driver runs it wherever it likes (the bounded
//! [`RsaPool`](super::rsa_pool::RsaPool) in [`VtsStream`](super::VtsStream))
//! and gives back the [`PrivateOpResult`]; the next `receive` continues.
//!
//! ```text
//! receive ─► M5/M6 complete, size checked ─► PendingOp { job } ─► take_private_op()
//!                                                                 └─► pool: job.run()
//! receive ◄─ PendingOp { result } ◄──────────────── complete_private_op(result)
//! ```
//!
//! [`PrivateOps::Inline`] (the default of [`VtsConnection`](super::VtsConnection))
//! runs the job inside `receive`, for in-memory use, tests and fuzzing.

use bytes::Bytes;

use super::error::VtsError;
use super::hash::HashAlg;
use super::keys::RsaKeyPair;
use super::rsa_block::asym_decrypt;

/// Where a handshake's RSA private-key operations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrivateOps {
    /// Inside `receive` (in-memory use, tests, fuzzing).
    #[default]
    Inline,
    /// Handed out by `take_private_op`; `receive` waits for the result.
    Offload,
}

/// One `AsymDec` with our private key (§2.6), detached from the connection.
pub struct PrivateOp {
    key: RsaKeyPair,
    mac_hash: HashAlg,
    ciphertext: Bytes,
}

/// What [`PrivateOp::run`] produced; give it back to the connection.
pub struct PrivateOpResult(Result<Vec<u8>, VtsError>);

impl PrivateOp {
    pub(crate) fn new(key: RsaKeyPair, mac_hash: HashAlg, ciphertext: Bytes) -> Self {
        PrivateOp {
            key,
            mac_hash,
            ciphertext,
        }
    }

    /// RSA private-key operations this job performs (one per block).
    pub fn blocks(&self) -> usize {
        self.ciphertext.len() / self.key.public().size().max(1)
    }

    /// Run it (milliseconds of CPU per block: keep it off async workers).
    pub fn run(self) -> PrivateOpResult {
        PrivateOpResult(asym_decrypt(&self.key, self.mac_hash, &self.ciphertext))
    }
}

/// A handshake step waiting for its private-key operation.
pub(crate) struct PendingOp {
    job: Option<PrivateOp>,
    result: Option<PrivateOpResult>,
}

impl PendingOp {
    pub(crate) fn new(job: PrivateOp) -> Self {
        PendingOp {
            job: Some(job),
            result: None,
        }
    }

    /// Hand the job out (once).
    pub(crate) fn take_job(&mut self) -> Option<PrivateOp> {
        self.job.take()
    }

    pub(crate) fn complete(&mut self, result: PrivateOpResult) {
        self.result = Some(result);
    }

    /// The plaintext once available (running the job now in `Inline`
    /// mode); `None` while the job is out.
    pub(crate) fn poll(&mut self, mode: PrivateOps) -> Option<Result<Vec<u8>, VtsError>> {
        if self.result.is_none() && mode == PrivateOps::Inline {
            self.result = self.job.take().map(PrivateOp::run);
        }
        self.result.take().map(|r| r.0)
    }
}
