//! VTS — Versile Transport Security (`vts.md`).
pub mod cipher;
pub mod config;
pub mod connection;
pub mod error;
pub mod handshake;
pub mod hash;
pub mod keys;
pub mod message;
pub mod prf;
pub mod random;
pub mod record;
pub mod rsa_block;
pub mod vhmac;
pub use error::VtsError;
