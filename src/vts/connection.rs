//! [`VtsConnection`]: one VTS endpoint, sans-IO (`docs/protocol/vts.md` §3, §4).
//!
//! Feed it every byte received ([`receive`](VtsConnection::receive)), send
//! what [`pending_output`](VtsConnection::pending_output) holds, move
//! plaintext in with [`write_plaintext`](VtsConnection::write_plaintext)
//! and out with [`read_plaintext`](VtsConnection::read_plaintext). Any
//! error is final: close the transport (the protocol has no alerts, §7).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;

use super::config::{PeerCredentials, VtsConfig};
use super::error::VtsError;
use super::handshake::client::ClientHandshake;
use super::handshake::server::ServerHandshake;
use super::handshake::Established;
use super::keys::RsaKeyPair;
use super::private_op::{PrivateOp, PrivateOpResult, PrivateOps};
use super::random::{OsRandom, RandomSource};
use super::record::{RecordLayer, Role};

enum Phase {
    Client(Box<ClientHandshake>),
    Server(Box<ServerHandshake>),
    Open(Box<RecordLayer>),
    Failed,
}

/// A VTS client or server connection.
pub struct VtsConnection {
    role: Role,
    config: Arc<VtsConfig>,
    phase: Phase,
    out: Vec<u8>,
    out_pos: usize,
    /// Received plaintext, a record's at a time: each is a part of the
    /// buffer its record arrived in (no copy, [`RecordLayer::open_record`]).
    plaintext_in: VecDeque<BytesMut>,
    /// Bytes in `plaintext_in`.
    plaintext_len: usize,
    /// Plaintext written while records may not be sent yet (handshake, or
    /// the §3.7 wait for the peer's first record).
    /// Each write stays its own record (as Python does, §4).
    held: Vec<Vec<u8>>,
    wait_for_peer_record: bool,
    peer: Option<PeerCredentials>,
}

impl VtsConnection {
    /// A client; M1 is ready in [`pending_output`](Self::pending_output)
    /// at once. `key`: client-key mode, else anonymous.
    pub fn client(config: Arc<VtsConfig>, key: Option<RsaKeyPair>) -> Self {
        Self::client_with_rng(config, key, Box::new(OsRandom))
    }

    /// A client drawing its randoms from `rng` (tests; see [`super::random`]).
    pub fn client_with_rng(
        config: Arc<VtsConfig>,
        key: Option<RsaKeyPair>,
        rng: Box<dyn RandomSource>,
    ) -> Self {
        let mut out = Vec::new();
        let hs = ClientHandshake::new(config.clone(), key, rng, &mut out);
        Self::new(Role::Client, config, Phase::Client(Box::new(hs)), out)
    }

    /// A server with its key pair.
    pub fn server(config: Arc<VtsConfig>, key: RsaKeyPair) -> Self {
        Self::server_with_rng(config, key, Box::new(OsRandom))
    }

    /// A server drawing its randoms from `rng`.
    pub fn server_with_rng(
        config: Arc<VtsConfig>,
        key: RsaKeyPair,
        rng: Box<dyn RandomSource>,
    ) -> Self {
        let hs = ServerHandshake::new(config.clone(), key, rng);
        Self::new(
            Role::Server,
            config,
            Phase::Server(Box::new(hs)),
            Vec::new(),
        )
    }

    /// The settings this connection runs with.
    pub fn config(&self) -> &VtsConfig {
        &self.config
    }

    fn new(role: Role, config: Arc<VtsConfig>, phase: Phase, out: Vec<u8>) -> Self {
        VtsConnection {
            role,
            config,
            phase,
            out,
            out_pos: 0,
            plaintext_in: VecDeque::new(),
            plaintext_len: 0,
            held: Vec::new(),
            wait_for_peer_record: false,
            peer: None,
        }
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the handshake's RSA private-key operations run (default
    /// [`PrivateOps::Inline`]); see [`super::private_op`].
    pub fn set_private_ops(&mut self, mode: PrivateOps) {
        match &mut self.phase {
            Phase::Client(hs) => hs.set_private_ops(mode),
            Phase::Server(hs) => hs.set_private_ops(mode),
            Phase::Open(_) | Phase::Failed => {}
        }
    }

    /// In [`PrivateOps::Offload`] mode: the private-key operation the
    /// handshake now waits for (handed out once). Run it, pass the result
    /// to [`complete_private_op`](Self::complete_private_op), then call
    /// [`receive`](Self::receive) again.
    pub fn take_private_op(&mut self) -> Option<PrivateOp> {
        match &mut self.phase {
            Phase::Client(hs) => hs.take_private_op(),
            Phase::Server(hs) => hs.take_private_op(),
            Phase::Open(_) | Phase::Failed => None,
        }
    }

    /// The result of the job from [`take_private_op`](Self::take_private_op).
    pub fn complete_private_op(&mut self, result: PrivateOpResult) {
        match &mut self.phase {
            Phase::Client(hs) => hs.complete_private_op(result),
            Phase::Server(hs) => hs.complete_private_op(result),
            Phase::Open(_) | Phase::Failed => {}
        }
    }

    /// Parsing work (bytes) the handshake spent on messages that were still
    /// incomplete: bounded by their size, however they were segmented.
    #[doc(hidden)]
    pub fn handshake_parse_work(&self) -> u64 {
        match &self.phase {
            Phase::Client(hs) => hs.parse_work(),
            Phase::Server(hs) => hs.parse_work(),
            Phase::Open(_) | Phase::Failed => 0,
        }
    }

    /// Consume received bytes from `buf` (handshake messages, then
    /// records). Bytes of an incomplete message stay in `buf` or inside
    /// the connection; call again when more arrive.
    pub fn receive(&mut self, buf: &mut BytesMut) -> Result<(), VtsError> {
        let r = self.receive_inner(buf);
        if r.is_err() {
            self.phase = Phase::Failed;
        }
        r
    }

    fn receive_inner(&mut self, buf: &mut BytesMut) -> Result<(), VtsError> {
        let done = match &mut self.phase {
            Phase::Client(hs) => hs.advance(buf, &mut self.out)?,
            Phase::Server(hs) => hs.advance(buf, &mut self.out)?,
            Phase::Open(_) => None,
            Phase::Failed => return Err(VtsError::Failed),
        };
        if let Some(est) = done {
            self.establish(est)?;
        }
        // Records, including any that arrived with the last handshake
        // message (§3.7: do not replicate the Python stall).
        if let Phase::Open(rl) = &mut self.phase {
            let mut got_record = false;
            while let Some(plaintext) = rl.open_record(buf)? {
                got_record = true;
                self.plaintext_len += plaintext.len();
                self.plaintext_in.push_back(plaintext);
            }
            if got_record && self.wait_for_peer_record {
                self.wait_for_peer_record = false;
                self.flush_held()?;
            }
        }
        Ok(())
    }

    fn establish(&mut self, est: Established) -> Result<(), VtsError> {
        let rl = RecordLayer::new(
            self.role,
            &est.suite,
            &est.keys,
            self.config.max_send_record,
            self.config.max_recv_record,
            self.config.max_bytes_64bit_cipher,
        )?;
        self.phase = Phase::Open(Box::new(rl));
        self.peer = Some(est.peer);
        self.wait_for_peer_record = est.wait_for_peer_record;
        self.flush_held()
    }

    fn flush_held(&mut self) -> Result<(), VtsError> {
        if self.wait_for_peer_record || self.held.is_empty() {
            return Ok(());
        }
        if let Phase::Open(rl) = &mut self.phase {
            for chunk in std::mem::take(&mut self.held) {
                rl.seal(&chunk, &mut self.out)?;
            }
        }
        Ok(())
    }

    /// Queue plaintext. Before the handshake is done (and while §3.7
    /// requires waiting for the peer's first record) it is held and sealed
    /// later; afterwards it is sealed into records at once.
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<(), VtsError> {
        if data.is_empty() {
            return Ok(());
        }
        match &mut self.phase {
            Phase::Failed => Err(VtsError::Failed),
            Phase::Open(rl) if !self.wait_for_peer_record => rl.seal(data, &mut self.out),
            _ => {
                self.held.push(data.to_vec());
                Ok(())
            }
        }
    }

    /// Move received plaintext into `out`; returns the number of bytes.
    pub fn read_plaintext(&mut self, out: &mut BytesMut) -> usize {
        let n = self.plaintext_len;
        out.reserve(n);
        while let Some(chunk) = self.take_next(usize::MAX) {
            out.extend_from_slice(&chunk);
        }
        n
    }

    /// Received plaintext not read yet.
    pub fn plaintext_available(&self) -> usize {
        self.plaintext_len
    }

    /// Take up to `n` bytes of received plaintext, from one record: call
    /// again for more. Empty when none is left (or `n` is 0).
    pub fn take_plaintext(&mut self, n: usize) -> BytesMut {
        self.take_next(n).unwrap_or_default()
    }

    fn take_next(&mut self, n: usize) -> Option<BytesMut> {
        let front = self.plaintext_in.front_mut()?;
        let chunk = if n < front.len() {
            front.split_to(n)
        } else {
            self.plaintext_in.pop_front()?
        };
        self.plaintext_len -= chunk.len();
        if self.plaintext_in.is_empty() {
            // No queue stays behind while the link idles.
            self.plaintext_in = VecDeque::new();
        }
        (!chunk.is_empty()).then_some(chunk)
    }

    /// Bytes to send to the peer.
    pub fn pending_output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Mark `n` bytes of [`pending_output`](Self::pending_output) as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            // All sent: no buffer stays behind while the link idles.
            self.out = Vec::new();
            self.out_pos = 0;
        } else if self.out_pos > 64 * 1024 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Plaintext written but not yet sealed (held by §3.7 or the handshake).
    pub fn held_plaintext(&self) -> usize {
        self.held.iter().map(Vec::len).sum()
    }

    /// True until the handshake has completed.
    pub fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Client(_) | Phase::Server(_))
    }

    /// True after an error: the connection must be closed.
    pub fn is_failed(&self) -> bool {
        matches!(self.phase, Phase::Failed)
    }

    /// What the handshake learned about the peer (after it completed).
    pub fn peer(&self) -> Option<&PeerCredentials> {
        self.peer.as_ref()
    }

    /// The peer's public key, if it has one.
    pub fn peer_public_key(&self) -> Option<&super::keys::PublicKey> {
        self.peer.as_ref().and_then(|p| p.key.as_ref())
    }

    /// Whether a record is partly received (a truncated stream at EOF).
    pub fn has_partial_record(&self) -> bool {
        matches!(&self.phase, Phase::Open(rl) if rl.has_partial())
    }
}
