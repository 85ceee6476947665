//! VTS — Versile Transport Security, the default secure transport of VOP
//! (`docs/protocol/vts.md`), wire-compatible with Versile Python 0.8.5.
//!
//! ## Data flow
//!
//! ```text
//! ciphertext in ──► VtsConnection::receive
//!                     ├─ handshaking: handshake::{client,server} (§3)
//!                     │     M1/M2 protocol lines, M3..M6 VEC entities (bare context)
//!                     │     rsa_block (§2.6) · message (§2.5) · prf (§2.3) · vhmac (§2.2)
//!                     │     → Established { suite, SessionKeys, PeerCredentials }
//!                     └─ open: record::RecordLayer (§4) = message::{Sealer, Opener}
//!                              over cipher (Blowfish/AES, CBC/OFB, state kept, §2.4)
//! plaintext out ◄── read_plaintext        write_plaintext ──► pending_output ──► socket
//! ```
//!
//! The core is sans-IO ([`VtsConnection`]); [`VtsStream`] runs it on a
//! tokio stream, and [`VtsServerTransport`] / [`VtsClientTransport`] plug it
//! into [`VopLayer`](crate::server::VopLayer) and
//! [`ClientConfig`](crate::client::ClientConfig).
//!
//! ## Cryptography
//!
//! Primitives are RustCrypto crates (`sha1`, `sha2`, `blowfish`, `aes`,
//! `cbc`, `rsa`, `subtle`); only the VTS-specific constructions (VHMAC,
//! PRF, message format, RSA block layout, OFB feedback loop) are written
//! here, each checked against `vts-vectors.json` (`tests/vts_vectors.rs`).
//! `rsa` is 0.10: its constant-time crypto-bigint arithmetic is the fix for
//! RUSTSEC-2023-0071 (Marvin). The raw private operation runs on the key's
//! [`RsaBackend`], chosen once at key load: the system's OpenSSL with
//! feature `rsa-openssl` (on in the `versile` binary), else a pure-Rust
//! fixed-size CRT on `crypto-bigint`; both constant-time and blinded, with
//! a CRT fault check. RSA format and MAC failures are reported as one error
//! after all the work was done (§10 #4). MACs are compared in constant time.
//!
//! ## Security notes (`docs/protocol/vts.md` §10)
//!
//! VTS has no forward secrecy and no transcript authentication (see
//! `SECURITY.md`). Peer keys below 1024 bits are refused by default
//! ([`KeyPolicy::legacy`] allows the 512-bit keys of Python's examples);
//! keys we generate have 2048 bits. A client accepts any server key unless
//! it pins one ([`VtsClientTransport::pin_server_key`]) or sets an
//! authorizer ([`VtsClientTransport::authorizer`]). Credentials (identity
//! claims, certificate chains) are passed on **unverified**.
//!
//! ## CPU a peer can make us spend
//!
//! A handshake costs at most the RSA private-key operations of a real one
//! (one block for keys ≥ 1024 bits): a larger M5 header or M6 is refused by
//! its length before decryption ([`VtsError::CiphertextTooLarge`]). The
//! operation is handed out as a [`PrivateOp`] and runs on the
//! transport's bounded [`rsa_pool::RsaPool`] (`VtsConfig::rsa_workers`,
//! `VtsConfig::rsa_queue`; full → [`VtsError::RsaBusy`]), queued fairly per
//! peer address. Handshake entities are parsed by one decoder kept across
//! reads, so segmentation does not multiply parsing work.
//!
//! [`VtsLayer`] is the server preset (VTS only) for `ServiceBuilder`.
pub mod config;
pub mod connection;
pub mod error;
pub mod keys;
pub mod layer;
pub mod private_op;
mod rsa_backend;
pub mod rsa_pool;
pub mod stream;
pub mod transport;

// The primitives and the handshake states: public only for their users
// outside the crate, which check them piece by piece — the known-answer
// tests (tests/vts_vectors.rs), the fuzz targets (fuzz/) and benches/.
// Hidden from the docs, not an API; the types a user meets (suite parts,
// randomness, role) are re-exported below.
#[doc(hidden)]
pub mod cipher;
#[doc(hidden)]
pub mod handshake;
#[doc(hidden)]
pub mod hash;
#[doc(hidden)]
pub mod message;
#[doc(hidden)]
pub mod prf;
#[doc(hidden)]
pub mod random;
#[doc(hidden)]
pub mod record;
#[doc(hidden)]
pub mod rsa_block;
mod rsa_crt;
#[cfg(feature = "rsa-openssl")]
mod rsa_openssl;
#[doc(hidden)]
pub mod vhmac;

pub use cipher::{CipherAlg, Mode};
pub use config::{Authorizer, Credentials, PeerCredentials, Suite, VtsConfig};
pub use connection::VtsConnection;
pub use error::VtsError;
pub use hash::HashAlg;
pub use keys::{KeyPolicy, PublicKey, RsaKeyPair, DEFAULT_KEY_BITS, DEFAULT_MIN_PEER_BITS};
pub use layer::VtsLayer;
pub use private_op::{PrivateOp, PrivateOpResult, PrivateOps};
pub use random::{OsRandom, RandomSource};
pub use record::Role;
pub use rsa_backend::RsaBackend;
pub use stream::VtsStream;
pub use transport::{VtsClientTransport, VtsServerTransport};
