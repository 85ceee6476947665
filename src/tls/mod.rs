//! TLS as a negotiable VOP transport (`docs/protocol/vop-service.md` §2.7–2.8, §3), on
//! rustls (ring provider), TLS 1.2 and 1.3 only.
//!
//! **A modern transport for our own peers and standard tooling.** Versile
//! Python 0.8.5's TLS cannot interoperate on a current Python: it speaks
//! TLS 1.0 only and fails before sending anything on Python ≥ 3.10 /
//! OpenSSL 3, and even when patched its receive path breaks on messages
//! larger than one record (§3.5–3.7). Use VTS for Python peers. As in
//! Python, TLS is off unless configured, on both sides.
//!
//! # Server
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use versile::tls::{TlsServerConfig, TlsServerTransport};
//! use versile::{demo::SimpleGateway, GatewayService, Server, VopLayer};
//!
//! let tls = TlsServerConfig::self_signed(vec!["vop.example".to_owned()])?;
//! println!("pin: {}", tls.key_fingerprint());
//! let layer = VopLayer::builder().transport(TlsServerTransport::new(tls)?).build()?;
//! let svc = tower::ServiceBuilder::new()
//!     .layer(layer)
//!     .service(GatewayService::new(SimpleGateway::new));
//! let server = Server::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?, svc)?;
//! # let _ = server; Ok(()) }
//! ```
//!
//! The certificate comes from PEM files ([`TlsServerConfig::from_pem_files`])
//! or is generated at start: a fresh P-256 key
//! ([`TlsServerConfig::self_signed`]) or the service's own RSA/P-256 key
//! ([`TlsServerConfig::self_signed_with_key`]); X.509 v3, SHA-256. No
//! session tickets (§3.5). Client certificates: none (default), validated
//! against roots ([`require_client_cert`](TlsServerConfig::require_client_cert),
//! [`optional_client_cert`](TlsServerConfig::optional_client_cert)), or any
//! certificate whose key signs the handshake, left to the credential hook
//! ([`require_any_client_cert`](TlsServerConfig::require_any_client_cert)).
//!
//! # Client
//!
//! ```no_run
//! # async fn f(pin: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use versile::tls::{TlsClientConfig, TlsClientTransport};
//! use versile::{Client, ClientConfig};
//!
//! let tls = TlsClientTransport::new(TlsClientConfig::pinned_key(pin)?)?;
//! let client = Client::new(ClientConfig::default().transport(tls));
//! let (link, gateway) = client.connect("127.0.0.1:4433").await?;
//! # let _ = (link, gateway); Ok(()) }
//! ```
//!
//! Verification modes ([`ServerVerification`]): WebPKI roots with the name
//! check; a pinned public key (`SHA256:<hex>` of the SubjectPublicKeyInfo,
//! or for RSA the VTS form over PKCS#1) with no name or chain check — VOP
//! has no server-name convention, so the key is the identity; or
//! [`danger_accept_any_server_cert`](TlsClientConfig::danger_accept_any_server_cert)
//! for tests. Every mode verifies the handshake signature. SNI is the VRI
//! host when it is a DNS name.
//!
//! # What the link sees
//!
//! Both sides set `protocol` to `TLS`, record the neutral
//! [`PeerIdentity`](crate::transport::PeerIdentity) ([`TlsPeer::identity`]:
//! key fingerprint, certificate chain, the subject common name as the
//! claimed identity, §2.8, §3.4) and the full [`TlsPeer`] (also the public
//! key, version, cipher suite) in the connection info. Methods read them
//! with `call.ctx.peer_identity()` and
//! `call.ctx.extensions().get::<TlsPeer>()`; the TLS credential hook
//! ([`TlsServerConfig::authorizer`], [`TlsClientConfig::authorizer`],
//! Python's `accept_credentials`, §5.4) and the link authorizer see it too.
//!
//! A peer that ends the TCP connection without a close_notify (Python
//! does, §3.6) is an ordinary end of stream for the link, not an error.

mod client;
mod config;
mod error;
mod layer;
mod peer;
mod server;
mod verify;

use std::sync::Arc;

pub use client::TlsClientTransport;
pub use config::{
    load_certificates_pem_file, parse_certificates_pem, ClientCertMode, ServerVerification,
    TlsAuthorizer, TlsClientConfig, TlsIdentity, TlsServerConfig, DEFAULT_HANDSHAKE_TIMEOUT,
};
pub use error::TlsError;
pub use layer::TlsLayer;
pub use peer::{certificate_key_fingerprint, fingerprint, TlsPeer, TlsVersion};
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer};
pub use server::TlsServerTransport;

/// The crypto provider for both sides: ring (builds with a C compiler
/// alone; aws-lc-rs would need cmake).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The configured versions for rustls; refuses an empty list.
fn rustls_versions(
    versions: &[TlsVersion],
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    if versions.is_empty() {
        return Err(TlsError::NoVersion);
    }
    let mut out: Vec<_> = TlsVersion::ALL
        .iter()
        .filter(|v| versions.contains(v))
        .map(|v| v.rustls())
        .collect();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests;
