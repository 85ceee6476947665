//! [`TlsServerTransport`]: the server side of the VOP TLS transport
//! (`docs/protocol/vop-service.md` §2.7–2.8, §3).
//!
//! After the VOP answer `USE_TRANSPORT:TLS` the client speaks first (its
//! ClientHello, §2.7); we run the rustls server handshake over the
//! connection's stream — including any bytes the VOP layer read past the
//! hello line — record the peer in the connection info, run the credential
//! hook and hand the decrypted stream to the link.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::RootCertStore;
use tokio_rustls::TlsAcceptor;
use tower::BoxError;

use super::config::{ClientCertMode, TlsAuthorizer, TlsServerConfig};
use super::peer::{CloseTolerant, TlsPeer};
use super::verify::AnyClientCert;
use super::{provider, rustls_versions, TlsError};
use crate::transport::{Connection, ServerTransport};
use crate::vop::Transport;

/// Accepts TLS after the VOP handshake; add it with
/// `VopLayer::builder().transport(TlsServerTransport::new(config)?)`.
#[derive(Clone)]
pub struct TlsServerTransport {
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    authorizer: Option<TlsAuthorizer>,
    key_fingerprint: String,
}

impl TlsServerTransport {
    /// Build the rustls server configuration.
    ///
    /// Session tickets are off: Versile Python's read path fails on a TLS
    /// 1.3 NewSessionTicket (`docs/protocol/vop-service.md` §3.5), and VOP links are
    /// long-lived, so resumption buys nothing. No ALPN, as in Python.
    pub fn new(config: TlsServerConfig) -> Result<Self, TlsError> {
        let provider = provider();
        let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = match &config
            .client_cert
        {
            ClientCertMode::None => WebPkiClientVerifier::no_client_auth(),
            ClientCertMode::Roots { roots, required } => {
                let mut store = RootCertStore::empty();
                for root in roots {
                    store.add(root.clone())?;
                }
                let mut builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone());
                if !required {
                    builder = builder.allow_unauthenticated();
                }
                builder
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?
            }
            ClientCertMode::AnyKey { required } => Arc::new(AnyClientCert {
                required: *required,
                algs: provider.signature_verification_algorithms,
            }),
        };
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&rustls_versions(&config.versions)?)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                config.identity.certificate_chain().to_vec(),
                config.identity.key(),
            )?;
        tls.send_tls13_tickets = 0;
        tls.session_storage = Arc::new(NoServerSessionStorage {});
        Ok(TlsServerTransport {
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            handshake_timeout: config.handshake_timeout,
            authorizer: config.authorizer.clone(),
            key_fingerprint: config.key_fingerprint().to_owned(),
        })
    }

    /// `SHA256:<hex>` of the server's public key, for clients to pin.
    pub fn key_fingerprint(&self) -> &str {
        &self.key_fingerprint
    }
}

impl std::fmt::Debug for TlsServerTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServerTransport")
            .field("key_fingerprint", &self.key_fingerprint)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl ServerTransport for TlsServerTransport {
    fn transport(&self) -> Transport {
        Transport::Tls
    }

    fn accept(&self, conn: Connection) -> BoxFuture<'static, Result<Connection, BoxError>> {
        let acceptor = self.acceptor.clone();
        let timeout = self.handshake_timeout;
        let authorizer = self.authorizer.clone();
        Box::pin(async move {
            let Connection { io, mut info } = conn;
            let stream = tokio::time::timeout(timeout, acceptor.accept(io))
                .await
                .map_err(|_| TlsError::Timeout)?
                .map_err(TlsError::Handshake)?;
            let (_, session) = stream.get_ref();
            let peer = TlsPeer::from_connection(session, session.server_name());
            // The credential check (Python's `accept_credentials`, §3.4
            // step 3, §5.4); the link authorizer runs later on the context.
            if let Some(authorize) = &authorizer {
                if !authorize(&peer) {
                    tracing::info!(peer = ?info.peer_addr, key = ?peer.key_fingerprint, "TLS client refused by the authorizer");
                    return Err(TlsError::Refused.into());
                }
            }
            tracing::debug!(peer = ?info.peer_addr, version = ?peer.version, suite = ?peer.cipher_suite, key = ?peer.key_fingerprint, "TLS established");
            info.protocol = Some(Transport::Tls);
            info.set_peer_identity(peer.identity());
            info.extensions.insert(peer);
            Ok(Connection {
                io: Box::pin(CloseTolerant::new(stream)),
                info,
            })
        })
    }
}
