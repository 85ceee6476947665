//! In-memory tests of the server transport's stream handling.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::verify::AnyServerCert;
use super::*;
use crate::server::{Connection, ServerTransport};

fn raw_connector() -> tokio_rustls::TlsConnector {
    let provider = provider();
    let algs = provider.signature_verification_algorithms;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServerCert { algs }))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A client that drops the TCP connection without close_notify (as Versile
/// Python does, `docs/protocol/vop-service.md` §3.6) looks like an ordinary EOF.
#[tokio::test]
async fn missing_close_notify_is_eof() {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let server = TlsServerTransport::new(
        TlsServerConfig::self_signed(vec!["localhost".to_owned()]).expect("cert"),
    )
    .expect("server");
    let conn = Connection::new(Box::pin(server_io), None, None);
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let (accepted, connected) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(
            server.accept(conn),
            raw_connector().connect(name, client_io)
        )
    })
    .await
    .expect("handshake in time");
    let mut conn = accepted.expect("accepted");
    let mut client = connected.expect("connected");
    assert_eq!(conn.info.protocol, Some(crate::vop::Transport::Tls));
    let peer = conn
        .info
        .extensions
        .get::<TlsPeer>()
        .expect("peer recorded");
    assert!(peer.certificates.is_empty(), "no client certificate asked");
    assert!(peer.version.is_some());

    client.write_all(b"hello").await.expect("write");
    client.flush().await.expect("flush");
    let mut buf = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), conn.io.read_exact(&mut buf))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(&buf, b"hello");

    let (raw, _session) = client.into_inner();
    drop(raw);
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), conn.io.read_to_end(&mut rest))
        .await
        .expect("in time")
        .expect("EOF, not an error");
    assert_eq!(n, 0);
}

#[test]
fn generated_certificates() {
    let id = TlsIdentity::self_signed(vec!["vop.test".to_owned(), "127.0.0.1".to_owned()])
        .expect("generate");
    assert_eq!(id.certificate_chain().len(), 1);
    assert!(id.key_fingerprint().starts_with("SHA256:"));
    assert_eq!(id.key_fingerprint().len(), 7 + 64);
    // PEM round trip.
    let chain = parse_certificates_pem(id.certificate_pem().as_bytes()).expect("pem");
    assert_eq!(chain, id.certificate_chain());
    // Subject CN is recorded as the claimed identity.
    let leaf = &id.certificate_chain()[0];
    assert_eq!(
        certificate_key_fingerprint(leaf).expect("fp"),
        id.key_fingerprint()
    );
    assert!(matches!(
        TlsIdentity::self_signed_with_key(vec!["x".to_owned()], b"not a key"),
        Err(TlsError::Key(_))
    ));
    assert!(matches!(
        TlsClientConfig::pinned_key("SHA256:00"),
        Err(TlsError::BadFingerprint(_))
    ));
    assert!(matches!(
        TlsServerTransport::new(TlsServerConfig::new(id).versions(&[])),
        Err(TlsError::NoVersion)
    ));
}
