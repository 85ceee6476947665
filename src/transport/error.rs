//! [`TransportError`]: why a client's transport handshake failed, typed per
//! transport.

/// Why a transport handshake failed, typed per transport: callers match
/// the variant (and the transport's own error inside) instead of text.
///
/// A transport added to the crate gets a variant here; one of the
/// application's own reports [`Other`](Self::Other).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The VTS handshake failed (`docs/protocol/vts.md` §3): key policy, authorizer,
    /// timeout, malformed messages.
    #[error("VTS: {0}")]
    Vts(#[from] crate::vts::VtsError),
    /// The TLS handshake failed or the TLS settings did not fit the peer.
    #[cfg(feature = "tls")]
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// A transport of the application's own
    /// ([`ClientTransport`](super::ClientTransport)).
    #[error("{0}")]
    Other(tower::BoxError),
}
