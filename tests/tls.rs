//! TLS transport end to end over loopback TCP: our client ↔ our server
//! through `VopLayer` + `GatewayService` (`docs/protocol/vop-service.md` §2.7–2.8, §3).
//! No external tooling; every test is bounded in time.

use std::future::Future;
use std::time::Duration;

use versile::client::ClientError;
use versile::client::TransportError;
use versile::demo::SimpleGateway;
use versile::tls::{
    CertificateDer, PrivateKeyDer, TlsClientConfig, TlsClientTransport, TlsIdentity, TlsPeer,
    TlsServerConfig, TlsServerTransport, TlsVersion,
};
use versile::vop::Transport;
use versile::{
    Call, Client, ClientConfig, GatewayService, LinkHandle, LinkShutdown, LocalObject,
    ObjectBuilder, RemoteObject, Server, StopLinks, Value, VopLayer,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test finished in time");
}

/// The demo gateway plus `whoami`: what the call context knows about the
/// TLS peer — (protocol, key fingerprint, claimed identity, version).
fn gateway() -> LocalObject {
    ObjectBuilder::new(())
        .method("echo", |_, call: Call| async move {
            let (v,): (Value,) = call.into_args()?;
            Ok(v)
        })
        .method("whoami", |_, call: Call| async move {
            let ctx = &call.ctx;
            let peer = ctx.extensions().get::<TlsPeer>();
            Ok(Value::from((
                ctx.protocol().map(|p| format!("{p:?}")),
                peer.and_then(|p| p.key_fingerprint.clone()),
                ctx.claimed_identity().map(str::to_owned),
                peer.and_then(|p| p.version).map(|v| v.to_string()),
            )))
        })
        .build()
}

type WhoAmI = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn whoami(gw: &RemoteObject) -> WhoAmI {
    let v = gw.call("whoami", ()).await.expect("whoami");
    WhoAmI::try_from(v).expect("whoami tuple")
}

fn serve(tls: TlsServerConfig, plain: bool, custom_gateway: bool) -> Server {
    let mut layer =
        VopLayer::builder().transport(TlsServerTransport::new(tls).expect("tls server"));
    if plain {
        layer = layer.allow_insecure();
    }
    let layer = layer.build().expect("layer");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
    if custom_gateway {
        let svc = tower::ServiceBuilder::new()
            .layer(layer)
            .service(GatewayService::new(gateway));
        Server::serve(listener, svc).expect("serve")
    } else {
        let svc = tower::ServiceBuilder::new()
            .layer(layer)
            .service(GatewayService::new(SimpleGateway::new));
        Server::serve(listener, svc).expect("serve")
    }
}

fn client(tls: TlsClientConfig) -> Client {
    let mut config =
        ClientConfig::default().transport(TlsClientTransport::new(tls).expect("tls client"));
    config.connect_timeout = Duration::from_secs(10);
    Client::new(config)
}

async fn stop(server: Server, link: LinkHandle) {
    link.shutdown(LinkShutdown::Graceful);
    server.stop(StopLinks::Force);
}

fn server_identity() -> TlsIdentity {
    TlsIdentity::self_signed(vec!["vop.test".to_owned(), "127.0.0.1".to_owned()])
        .expect("self-signed")
}

/// A CA and a client certificate it signed (CN "client-1").
fn ca_and_client() -> (CertificateDer<'static>, TlsIdentity) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let mut leaf = rcgen::CertificateParams::new(vec!["client.test".to_owned()]).expect("params");
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "client-1");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .expect("leaf cert");
    let identity = TlsIdentity::from_der(
        vec![leaf_cert.der().clone()],
        PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .expect("identity");
    (ca_cert.der().clone(), identity)
}

#[tokio::test]
async fn self_signed_server_pinned_client_echo() {
    bounded(async {
        let tls = TlsServerConfig::self_signed(vec!["vop.test".to_owned()]).expect("cert");
        let pin = tls.key_fingerprint().to_owned();
        let server = serve(tls, false, false);
        let client = client(TlsClientConfig::pinned_key(&pin).expect("pin"));
        let (link, gw) = client
            .connect(&server.local_addr().to_string())
            .await
            .expect("connect");
        let ctx = link.context();
        assert_eq!(ctx.protocol(), Some(Transport::Tls));
        let peer = ctx.extensions().get::<TlsPeer>().expect("server recorded");
        assert_eq!(peer.key_fingerprint.as_deref(), Some(pin.as_str()));
        assert_eq!(ctx.claimed_identity(), Some("vop.test"));
        assert_eq!(peer.certificates.len(), 1);

        let v = gw.call("echo", ("hello",)).await.expect("echo");
        assert_eq!(String::try_from(v).expect("string"), "hello");
        // 1 MiB in one call: many TLS records each way (§3.5: Python fails
        // on anything over one record).
        let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let v = gw.call("echo", (big.clone(),)).await.expect("echo 1 MiB");
        assert_eq!(Vec::<u8>::try_from(v).expect("bytes"), big);

        // Also through a VRI, as a user would.
        let vri = format!("vop://{}/text/echo/", server.local_addr())
            .parse()
            .expect("vri");
        let r = client.resolve(&vri).await.expect("resolve");
        let echoer = r.value.as_remote().expect("object").clone();
        let v = echoer.call("echo", (5,)).await.expect("echo");
        assert_eq!(i64::try_from(v).expect("int"), 5);
        r.link.shutdown(LinkShutdown::Graceful);
        stop(server, link).await;
    })
    .await;
}

#[tokio::test]
async fn wrong_pin_is_refused_with_a_clear_error() {
    bounded(async {
        let server = serve(TlsServerConfig::new(server_identity()), false, false);
        let other = server_identity();
        let client = client(TlsClientConfig::pinned_key(other.key_fingerprint()).expect("pin"));
        let err = client
            .connect(&server.local_addr().to_string())
            .await
            .expect_err("wrong pin must fail");
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                ClientError::Transport(TransportError::Tls(versile::tls::TlsError::Handshake(_)))
            ),
            "{msg}"
        );
        assert!(msg.contains("does not match the pinned key"), "{msg}");
        server.stop(StopLinks::Force);
    })
    .await;
}

#[tokio::test]
async fn tls_preferred_over_plain() {
    bounded(async {
        let id = server_identity();
        let pin = id.key_fingerprint().to_owned();
        let server = serve(TlsServerConfig::new(id), true, true);
        let addr = server.local_addr().to_string();

        let both = ClientConfig::default().allow_insecure(true).transport(
            TlsClientTransport::new(TlsClientConfig::pinned_key(&pin).expect("pin")).expect("tls"),
        );
        let (link, gw) = Client::new(both).connect(&addr).await.expect("connect");
        assert_eq!(link.context().protocol(), Some(Transport::Tls));
        let (proto, key, _, _) = whoami(&gw).await;
        assert_eq!(proto.as_deref(), Some("Tls"));
        assert_eq!(key, None, "no client certificate was asked for");
        link.shutdown(LinkShutdown::Graceful);

        // A PLAIN-only client still gets PLAIN from the same server.
        let (plain_link, gw) = Client::new(ClientConfig::insecure())
            .connect(&addr)
            .await
            .expect("plain connect");
        assert_eq!(plain_link.context().protocol(), None);
        assert_eq!(whoami(&gw).await.0, None);
        stop(server, plain_link).await;
    })
    .await;
}

#[tokio::test]
async fn client_certificate_required_against_roots() {
    bounded(async {
        let (ca, client_id) = ca_and_client();
        let client_fp = client_id.key_fingerprint().to_owned();
        let id = server_identity();
        let pin = id.key_fingerprint().to_owned();
        let server = serve(
            TlsServerConfig::new(id).require_client_cert(vec![ca]),
            false,
            true,
        );
        let addr = server.local_addr().to_string();

        let with_cert = client(
            TlsClientConfig::pinned_key(&pin)
                .expect("pin")
                .client_identity(client_id),
        );
        let (link, gw) = with_cert.connect(&addr).await.expect("connect with cert");
        let (proto, key, identity, _) = whoami(&gw).await;
        assert_eq!(proto.as_deref(), Some("Tls"));
        assert_eq!(key.as_deref(), Some(client_fp.as_str()));
        assert_eq!(identity.as_deref(), Some("client-1"));
        link.shutdown(LinkShutdown::Graceful);

        // Without a certificate: refused during the handshake (TLS 1.3
        // reports it on the first read, so the link fails before or at
        // its own handshake).
        let without = client(TlsClientConfig::pinned_key(&pin).expect("pin"));
        let err = without.connect(&addr).await.expect_err("no certificate");
        assert!(err.to_string().contains("CertificateRequired"), "{err}");

        // A certificate from another issuer: refused too.
        let stranger = client(
            TlsClientConfig::pinned_key(&pin)
                .expect("pin")
                .client_identity(server_identity()),
        );
        assert!(stranger.connect(&addr).await.is_err());
        server.stop(StopLinks::Force);
    })
    .await;
}

#[tokio::test]
async fn any_client_certificate_checked_by_the_credential_hook() {
    bounded(async {
        let known = server_identity();
        let known_fp = known.key_fingerprint().to_owned();
        let allowed = known_fp.clone();
        let id = server_identity();
        let pin = id.key_fingerprint().to_owned();
        let tls = TlsServerConfig::new(id)
            .require_any_client_cert()
            .authorizer(move |peer: &TlsPeer| peer.matches_pin(&allowed));
        let server = serve(tls, false, true);
        let addr = server.local_addr().to_string();

        let good = client(
            TlsClientConfig::pinned_key(&pin)
                .expect("pin")
                .client_identity(known),
        );
        let (link, gw) = good.connect(&addr).await.expect("known key accepted");
        assert_eq!(whoami(&gw).await.1.as_deref(), Some(known_fp.as_str()));
        link.shutdown(LinkShutdown::Graceful);

        let unknown = client(
            TlsClientConfig::pinned_key(&pin)
                .expect("pin")
                .client_identity(server_identity()),
        );
        assert!(unknown.connect(&addr).await.is_err(), "unknown key refused");
        let none = client(TlsClientConfig::pinned_key(&pin).expect("pin"));
        assert!(
            none.connect(&addr).await.is_err(),
            "missing certificate refused"
        );
        server.stop(StopLinks::Force);
    })
    .await;
}

#[tokio::test]
async fn tls12_and_tls13_both_work() {
    bounded(async {
        for (server_versions, want) in [
            (&[TlsVersion::Tls12][..], "TLSv1.2"),
            (&[TlsVersion::Tls13][..], "TLSv1.3"),
            (&TlsVersion::ALL[..], "TLSv1.3"),
        ] {
            let client_id = server_identity();
            let client_fp = client_id.key_fingerprint().to_owned();
            let tls = TlsServerConfig::new(server_identity())
                .versions(server_versions)
                .accept_any_client_cert();
            let server = serve(tls, false, true);
            let c =
                client(TlsClientConfig::danger_accept_any_server_cert().client_identity(client_id));
            let (link, gw) = c
                .connect(&server.local_addr().to_string())
                .await
                .expect("connect");
            let peer = link
                .context()
                .extensions()
                .get::<TlsPeer>()
                .cloned()
                .expect("peer");
            assert_eq!(peer.version.map(|v| v.to_string()).as_deref(), Some(want));
            let (_, key, _, version) = whoami(&gw).await;
            assert_eq!(version.as_deref(), Some(want));
            assert_eq!(key.as_deref(), Some(client_fp.as_str()));
            let big = "x".repeat(100_000);
            let v = gw.call("echo", (big.as_str(),)).await.expect("echo");
            assert_eq!(String::try_from(v).expect("string"), big);
            stop(server, link).await;
        }

        // No common version: refused.
        let server = serve(
            TlsServerConfig::new(server_identity()).versions(&[TlsVersion::Tls13]),
            false,
            false,
        );
        let c =
            client(TlsClientConfig::danger_accept_any_server_cert().versions(&[TlsVersion::Tls12]));
        assert!(c.connect(&server.local_addr().to_string()).await.is_err());
        server.stop(StopLinks::Force);
    })
    .await;
}

#[tokio::test]
async fn webpki_roots_check_the_name() -> Result<(), BoxError> {
    bounded(async {
        let id = server_identity(); // names: vop.test, 127.0.0.1
        let root = id.certificate_chain()[0].clone();
        let server = serve(TlsServerConfig::new(id), false, false);
        let addr = server.local_addr().to_string();

        // By IP: the certificate has the IP address as a SAN.
        let by_ip = client(TlsClientConfig::with_roots(vec![root.clone()]));
        let (link, _gw) = by_ip.connect(&addr).await.expect("IP SAN matches");
        link.shutdown(LinkShutdown::Graceful);
        // By DNS name (SNI) through the override.
        let by_name =
            client(TlsClientConfig::with_roots(vec![root.clone()]).server_name("vop.test"));
        let (link, _gw) = by_name.connect(&addr).await.expect("DNS SAN matches");
        link.shutdown(LinkShutdown::Graceful);
        // A name the certificate does not carry: refused.
        let wrong = client(TlsClientConfig::with_roots(vec![root]).server_name("other.test"));
        assert!(wrong.connect(&addr).await.is_err());
        // Roots that do not include the server's certificate: refused.
        let other = client(TlsClientConfig::with_roots(vec![server_identity()
            .certificate_chain()[0]
            .clone()]));
        assert!(other.connect(&addr).await.is_err());
        server.stop(StopLinks::Force);
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn pem_files_and_service_key() {
    bounded(async {
        let dir = std::env::temp_dir().join(format!("versile-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // A P-256 PKCS#8 key, written as PEM with a self-signed certificate.
        let key = rcgen::KeyPair::generate().expect("key");
        let id =
            TlsIdentity::self_signed_with_key(vec!["pem.test".to_owned()], &key.serialize_der())
                .expect("cert for the given key");
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, id.certificate_pem()).expect("write cert");
        std::fs::write(&key_path, pem("PRIVATE KEY", &key.serialize_der())).expect("write key");

        let tls = TlsServerConfig::from_pem_files(&cert_path, &key_path).expect("from PEM");
        assert_eq!(tls.key_fingerprint(), id.key_fingerprint());
        let server = serve(tls, false, false);
        let c = client(
            TlsClientConfig::with_roots_pem_file(&cert_path)
                .expect("roots")
                .server_name("pem.test"),
        );
        let (link, gw) = c
            .connect(&server.local_addr().to_string())
            .await
            .expect("connect");
        let v = gw.call("echo", ("pem",)).await.expect("echo");
        assert_eq!(String::try_from(v).expect("string"), "pem");
        stop(server, link).await;
        assert!(TlsServerConfig::from_pem_files(dir.join("missing.pem"), &key_path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
