//! The transport-neutral peer identity (issue 9 §3): what VTS, TLS and
//! PLAIN record in the connection info (`transport::PeerIdentity`), as the
//! credential check and the call context see it on both sides, and one
//! credential check, written against the neutral identity, serving VTS and
//! TLS alike. Loopback only; every test is bounded in time.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use versile::server::{CredentialCheckLayer, PeerInfo};
use versile::tls::{
    TlsClientConfig, TlsClientTransport, TlsIdentity, TlsServerConfig, TlsServerTransport,
};
use versile::transport::PeerIdentity;
use versile::vop::Transport;
use versile::vts::{Credentials, PeerCredentials};
use versile::{
    Call, Client, ClientConfig, GatewayService, LinkHandle, LinkShutdown, LocalObject,
    ObjectBuilder, RemoteObject, RsaKeyPair, Server, StopLinks, Value, VopLayer,
    VtsClientTransport, VtsConfig, VtsLayer, VtsServerTransport,
};

use support::keys::{generated_rsa_2048, spec_key};

const T: Duration = Duration::from_secs(60);

/// `who()`: what the call context's neutral identity holds — (identity
/// recorded, key fingerprint, claimed identity, certificate count).
fn who_gateway() -> LocalObject {
    ObjectBuilder::new(())
        .method("who", |_, call: Call| async move {
            let id = call.ctx.peer_identity();
            Ok(Value::from((
                id.is_some(),
                id.and_then(|i| i.key_fingerprint.clone()),
                id.and_then(|i| i.claimed_identity.clone()),
                id.map_or(0, |i| i.certificates.len() as i64),
            )))
        })
        .build()
}

type Who = (bool, Option<String>, Option<String>, i64);

async fn who(gw: &RemoteObject) -> Who {
    let v = gw.call("who", ()).await.expect("who");
    Who::try_from(v).expect("who tuple")
}

/// The `PeerInfo`s a credential check saw.
type Seen = Arc<Mutex<Vec<PeerInfo>>>;

/// A check that records what it sees and accepts peers for which `allow`
/// says so.
fn recording_check(
    allow: impl Fn(&PeerInfo) -> bool + Send + Sync + 'static,
) -> (CredentialCheckLayer, Seen) {
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let check = CredentialCheckLayer::new(move |p: &PeerInfo| {
        seen2.lock().unwrap().push(p.clone());
        allow(p)
    });
    (check, seen)
}

async fn serve(layer: VopLayer, check: CredentialCheckLayer) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let svc = tower::ServiceBuilder::new()
        .layer(layer)
        .layer(check)
        .service(GatewayService::new(who_gateway));
    Server::serve(listener, svc).expect("serve")
}

fn client(config: ClientConfig) -> Client {
    let mut config = config;
    config.connect_timeout = Duration::from_secs(20);
    Client::new(config)
}

fn tls_only(t: TlsClientTransport) -> ClientConfig {
    ClientConfig::default().without_transports().transport(t)
}

async fn stop(server: Server, link: LinkHandle) {
    link.shutdown(LinkShutdown::Graceful);
    server.stop(StopLinks::Force);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vts_fills_the_identity_on_both_sides() {
    tokio::time::timeout(T, async {
        let (server_key, client_key) = (spec_key("server"), spec_key("client"));
        let (check, seen) = recording_check(|_| true);
        let server = serve(VtsLayer::new(server_key.clone()).into(), check).await;
        let addr = server.local_addr().to_string();

        // A keyed client with a certificate chain (VTS records it
        // unverified, `docs/protocol/vts.md` §3.8).
        let chain = vec![b"leaf-der".to_vec(), b"ca-der".to_vec()];
        let config = VtsConfig {
            credentials: Some(Credentials::Certificates(chain.clone())),
            ..VtsConfig::default()
        };
        let vts = VtsClientTransport::with_config(Some(client_key.clone()), config);
        let (link, gw) = client(ClientConfig::default().transport(vts))
            .connect(&addr)
            .await
            .expect("connect");
        // The server's check and context: the client's key, its chain.
        let p = seen.lock().unwrap().pop().expect("check ran");
        assert_eq!(p.protocol, Some(Transport::Vts));
        assert_eq!(p.key_fingerprint, Some(client_key.fingerprint()));
        assert_eq!(p.certificates, chain);
        assert_eq!(p.claimed_identity, None);
        // VTS's own record stays reachable through the extensions.
        let vts_peer = p.extensions.get::<PeerCredentials>().expect("VTS record");
        assert_eq!(vts_peer.key.as_ref(), Some(client_key.public()));
        assert_eq!(
            who(&gw).await,
            (true, Some(client_key.fingerprint()), None, 2)
        );
        // The client's context: the server's key, nothing else.
        assert_eq!(
            link.context().peer_identity(),
            Some(&PeerIdentity {
                key_fingerprint: Some(server_key.fingerprint()),
                ..PeerIdentity::default()
            })
        );
        link.shutdown(LinkShutdown::Graceful);

        // A keyed client with an identity claim: hex DER.
        let config = VtsConfig {
            credentials: Some(Credentials::Identity(vec![0x30, 0x00])),
            ..VtsConfig::default()
        };
        let vts = VtsClientTransport::with_config(Some(client_key.clone()), config);
        let (link, gw) = client(ClientConfig::default().transport(vts))
            .connect(&addr)
            .await
            .expect("connect");
        assert_eq!(
            who(&gw).await,
            (true, Some(client_key.fingerprint()), Some("3000".into()), 0)
        );
        link.shutdown(LinkShutdown::Graceful);

        // An anonymous client: VTS ran, but the peer proved no key.
        let (link, gw) = client(ClientConfig::default())
            .connect(&addr)
            .await
            .expect("connect");
        assert_eq!(who(&gw).await, (true, None, None, 0));
        let p = seen.lock().unwrap().pop().expect("check ran");
        assert_eq!(p.key_fingerprint, None);
        assert!(p.certificates.is_empty());
        stop(server, link).await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_fills_the_identity_on_both_sides() {
    tokio::time::timeout(T, async {
        let server_id = TlsIdentity::self_signed(vec!["vop.test".to_owned()]).expect("cert");
        let server_pin = server_id.key_fingerprint().to_owned();
        let client_id = TlsIdentity::self_signed(vec!["client-1".to_owned()]).expect("cert");
        let client_fp = client_id.key_fingerprint().to_owned();
        let client_chain: Vec<Vec<u8>> = client_id
            .certificate_chain()
            .iter()
            .map(|c| c.to_vec())
            .collect();
        let tls = TlsServerConfig::new(server_id).require_any_client_cert();
        let layer = VopLayer::only(TlsServerTransport::new(tls).expect("tls server"));
        let (check, seen) = recording_check(|_| true);
        let server = serve(layer, check).await;

        let tls = TlsClientConfig::pinned_key(&server_pin)
            .expect("pin")
            .client_identity(client_id);
        let tls = TlsClientTransport::new(tls).expect("tls client");
        let (link, gw) = client(tls_only(tls))
            .connect(&server.local_addr().to_string())
            .await
            .expect("connect");
        let p = seen.lock().unwrap().pop().expect("check ran");
        assert_eq!(p.protocol, Some(Transport::Tls));
        assert_eq!(p.key_fingerprint.as_deref(), Some(client_fp.as_str()));
        assert_eq!(p.certificates, client_chain);
        assert_eq!(p.claimed_identity.as_deref(), Some("client-1"));
        assert!(p.extensions.get::<versile::TlsPeer>().is_some());
        assert_eq!(
            who(&gw).await,
            (true, Some(client_fp), Some("client-1".into()), 1)
        );
        let id = link.context().peer_identity().cloned().expect("identity");
        assert_eq!(id.key_fingerprint.as_deref(), Some(server_pin.as_str()));
        assert_eq!(id.claimed_identity.as_deref(), Some("vop.test"));
        assert_eq!(id.certificates.len(), 1);
        stop(server, link).await;
    })
    .await
    .expect("test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_records_no_identity() {
    tokio::time::timeout(T, async {
        let (check, seen) = recording_check(|_| true);
        let server = serve(VopLayer::insecure(), check).await;
        let (link, gw) = client(ClientConfig::insecure())
            .connect(&server.local_addr().to_string())
            .await
            .expect("connect");
        let p = seen.lock().unwrap().pop().expect("check ran");
        assert_eq!(p.protocol, None);
        assert_eq!(
            (p.key_fingerprint, p.claimed_identity, p.certificates.len()),
            (None, None, 0)
        );
        assert_eq!(who(&gw).await, (false, None, None, 0));
        assert!(link.context().peer_identity().is_none());
        stop(server, link).await;
    })
    .await
    .expect("test finished in time");
}

/// One check against the neutral identity guards a server offering VTS and
/// TLS: the same RSA key, as a VTS client key or in a TLS client
/// certificate, has the same fingerprint, so one allow-list serves both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_credential_check_serves_vts_and_tls() {
    tokio::time::timeout(T, async {
        let allowed_key = generated_rsa_2048("allowed");
        let allowed = allowed_key.fingerprint();
        let check = CredentialCheckLayer::new(move |p: &PeerInfo| {
            p.key_fingerprint.as_deref() == Some(allowed.as_str())
        });
        let server_id = TlsIdentity::self_signed(vec!["vop.test".to_owned()]).expect("cert");
        let server_pin = server_id.key_fingerprint().to_owned();
        let tls = TlsServerConfig::new(server_id).require_any_client_cert();
        let layer = VopLayer::builder()
            .transport(VtsServerTransport::new(spec_key("server")))
            .transport(TlsServerTransport::new(tls).expect("tls server"))
            .build()
            .expect("layer");
        let server = serve(layer, check).await;
        let addr = server.local_addr().to_string();

        let vts_with = |key: RsaKeyPair| {
            client(ClientConfig::default().transport(VtsClientTransport::new(Some(key))))
        };
        let tls_with = |id: TlsIdentity| {
            let tls = TlsClientConfig::pinned_key(&server_pin)
                .expect("pin")
                .client_identity(id);
            client(tls_only(TlsClientTransport::new(tls).expect("tls client")))
        };
        let allowed_cert = TlsIdentity::self_signed_with_key(
            vec!["client-1".to_owned()],
            &allowed_key.to_pkcs8_der().expect("pkcs8"),
        )
        .expect("cert for the allowed key");
        let other_cert = TlsIdentity::self_signed(vec!["client-2".to_owned()]).expect("cert");

        let (link, _gw) = vts_with(allowed_key.clone())
            .connect(&addr)
            .await
            .expect("allowed key over VTS");
        assert_eq!(link.context().protocol(), Some(Transport::Vts));
        link.shutdown(LinkShutdown::Graceful);
        let (link, _gw) = tls_with(allowed_cert)
            .connect(&addr)
            .await
            .expect("allowed key over TLS");
        assert_eq!(link.context().protocol(), Some(Transport::Tls));
        link.shutdown(LinkShutdown::Graceful);

        assert!(vts_with(spec_key("client")).connect(&addr).await.is_err());
        assert!(client(ClientConfig::default())
            .connect(&addr)
            .await
            .is_err());
        assert!(tls_with(other_cert).connect(&addr).await.is_err());
        server.stop(StopLinks::Force);
    })
    .await
    .expect("test finished in time");
}
