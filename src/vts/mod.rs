//! VTS — Versile Transport Security (`vts.md`).
pub mod cipher;
pub mod error;
pub mod hash;
pub mod keys;
pub mod message;
pub mod prf;
pub mod random;
pub mod rsa_block;
pub mod vhmac;
pub use error::VtsError;
