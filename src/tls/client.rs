//! [`TlsClientTransport`]: the client side of the VOP TLS transport
//! (`docs/protocol/vop-service.md` §2.7–2.8, §3).
//!
//! After reading `USE_TRANSPORT:TLS` the client sends its ClientHello
//! (§2.7), verifies the server by the configured mode, records the server
//! in the connection info and runs the credential hook.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use tokio_rustls::TlsConnector;

use super::config::{ServerVerification, TlsAuthorizer, TlsClientConfig};
use super::peer::{CloseTolerant, TlsPeer};
use super::verify::{AnyServerCert, PinnedServerKey};
use super::{provider, rustls_versions, TlsError};
use crate::transport::{BoxedIo, ClientTransport, ConnectionInfo, TargetHost, TransportError};
use crate::vop::Transport;

/// Offers TLS in the VOP hello; add it with
/// `ClientConfig::default().transport(TlsClientTransport::new(config)?)`.
#[derive(Clone)]
pub struct TlsClientTransport {
    connector: TlsConnector,
    server_name: Option<String>,
    handshake_timeout: Duration,
    authorizer: Option<TlsAuthorizer>,
}

impl TlsClientTransport {
    /// Build the rustls client configuration. Session resumption is off:
    /// links are long-lived and every handshake then runs the full
    /// verification and credential hook.
    pub fn new(config: TlsClientConfig) -> Result<Self, TlsError> {
        let provider = provider();
        let algs = provider.signature_verification_algorithms;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&rustls_versions(&config.versions)?)?;
        let builder = match &config.verification {
            ServerVerification::Roots(roots) => {
                let mut store = RootCertStore::empty();
                for root in roots {
                    store.add(root.clone())?;
                }
                builder.with_root_certificates(store)
            }
            ServerVerification::PinnedKeys(pins) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedServerKey {
                    pins: pins.clone(),
                    algs,
                })),
            ServerVerification::DangerAcceptAny => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCert { algs })),
        };
        let mut tls = match &config.identity {
            Some(id) => builder.with_client_auth_cert(id.certificate_chain().to_vec(), id.key())?,
            None => builder.with_no_client_auth(),
        };
        tls.resumption = rustls::client::Resumption::disabled();
        Ok(TlsClientTransport {
            connector: TlsConnector::from(Arc::new(tls)),
            server_name: config.server_name.clone(),
            handshake_timeout: config.handshake_timeout,
            authorizer: config.authorizer.clone(),
        })
    }

    /// The server name for SNI and the WebPKI name check: the configured
    /// one, else the host connected to, else the peer's IP address. rustls
    /// sends SNI only for DNS names, never for IP addresses.
    fn server_name(&self, info: &ConnectionInfo) -> Result<ServerName<'static>, TransportError> {
        let name = self
            .server_name
            .clone()
            .or_else(|| info.extensions.get::<TargetHost>().map(|h| h.0.clone()))
            .or_else(|| info.peer_addr.map(|a| a.ip().to_string()))
            .unwrap_or_else(|| "localhost".to_owned());
        ServerName::try_from(name.clone()).map_err(|_| client_error(TlsError::ServerName(name)))
    }
}

impl std::fmt::Debug for TlsClientTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientTransport")
            .field("server_name", &self.server_name)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

fn client_error(e: TlsError) -> TransportError {
    TransportError::Tls(e)
}

impl ClientTransport for TlsClientTransport {
    fn transport(&self) -> Transport {
        Transport::Tls
    }

    fn connect(
        &self,
        io: BoxedIo,
        mut info: ConnectionInfo,
    ) -> BoxFuture<'static, Result<(BoxedIo, ConnectionInfo), TransportError>> {
        let connector = self.connector.clone();
        let timeout = self.handshake_timeout;
        let authorizer = self.authorizer.clone();
        let name = self.server_name(&info);
        Box::pin(async move {
            let name = name?;
            let stream = tokio::time::timeout(timeout, connector.connect(name, io))
                .await
                .map_err(|_| client_error(TlsError::Timeout))?
                .map_err(|e| client_error(TlsError::Handshake(e)))?;
            let (_, session) = stream.get_ref();
            let peer = TlsPeer::from_connection(session, None);
            if let Some(authorize) = &authorizer {
                if !authorize(&peer) {
                    return Err(client_error(TlsError::Refused));
                }
            }
            info.protocol = Some(Transport::Tls);
            info.set_peer_identity(peer.identity());
            info.extensions.insert(peer);
            let io: BoxedIo = Box::pin(CloseTolerant::new(stream));
            Ok((io, info))
        })
    }
}
