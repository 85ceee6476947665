//! [`TlsError`]: why a TLS configuration could not be built or a TLS
//! handshake failed.

use std::io;
use std::path::PathBuf;

/// A TLS configuration or handshake failure.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// PEM input did not parse.
    #[error("bad PEM input ({what}): {reason}")]
    Pem {
        /// What was being read (e.g. "certificate", "private key").
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// PEM input held no certificate.
    #[error("no certificate found in the PEM input")]
    NoCertificate,
    /// A private key was refused (format, type or size).
    #[error("unusable private key: {0}")]
    Key(String),
    /// A certificate could not be parsed (webpki refuses X.509 v1, for
    /// example: `docs/protocol/vop-service.md` §3.2).
    #[error("unusable certificate: {0}")]
    Certificate(String),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// A peer-verification setting could not be built (e.g. empty roots).
    #[error("cannot build the peer verifier: {0}")]
    Verifier(String),
    /// A key pin was not of the form `SHA256:<64 hex digits>`.
    #[error("bad key fingerprint {0:?}: expected SHA256:<64 hex digits>")]
    BadFingerprint(String),
    /// No protocol version enabled.
    #[error("no TLS version enabled")]
    NoVersion,
    /// The TLS handshake failed (the rustls reason is in the message).
    #[error("TLS handshake failed: {}", describe(.0))]
    Handshake(io::Error),
    /// The TLS handshake did not finish in time.
    #[error("TLS handshake timed out")]
    Timeout,
    /// The credential hook refused the peer (`docs/protocol/vop-service.md` §5.4).
    #[error("peer credentials refused by the authorizer")]
    Refused,
    /// The name to verify the server against is not a DNS name or an IP
    /// address.
    #[error("not a valid TLS server name: {0:?}")]
    ServerName(String),
}

/// The handshake error as a person should read it: rustls wraps our
/// verifiers' reasons (e.g. a pin mismatch) in `Debug`-formatted layers.
fn describe(e: &io::Error) -> String {
    let reason = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                Some(format!("invalid peer certificate: {}", other.0))
            }
            _ => None,
        });
    reason.unwrap_or_else(|| e.to_string())
}
