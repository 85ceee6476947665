//! Authorization over VTS (`docs/protocol/vop-service.md` §5.4): the server's
//! [`CredentialCheckLayer`] (sync and async), the link authorizer and
//! methods seeing protocol and credentials in their `CallContext`, and the
//! client's pin and credential hook.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower::ServiceBuilder;
use versile::client::{ClientError, TransportError};
use versile::object::{Call, ObjectBuilder};
use versile::server::{CredentialCheckLayer, PeerInfo};
use versile::vop::Transport;
use versile::{
    Client, ClientConfig, GatewayService, LinkOptions, LinkShutdown, LocalObject, RsaKeyPair,
    Server, Value, VtsClientTransport, VtsLayer,
};

mod support;
use support::keys::spec_key;

const T: Duration = Duration::from_secs(60);

/// A gateway whose `who()` returns (protocol, client key fingerprint or
/// None, peer address known, authorized).
fn who_gateway() -> LocalObject {
    ObjectBuilder::new(())
        .method("who", |_s: Arc<()>, call: Call| async move {
            let ctx = &call.ctx;
            let proto = ctx.protocol().map(|p| p.to_string());
            let fp = ctx.peer_identity().and_then(|p| p.key_fingerprint.clone());
            Ok(Value::from((
                proto,
                fp,
                ctx.peer_addr().is_some(),
                ctx.is_authorized(),
            )))
        })
        .build()
}

async fn serve(svc_layer: Option<CredentialCheckLayer>, options: LinkOptions) -> Server {
    let gw = GatewayService::new(who_gateway).with_options(options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match svc_layer {
        Some(check) => Server::serve(
            listener,
            ServiceBuilder::new()
                .layer(VtsLayer::new(spec_key("server")))
                .layer(check)
                .service(gw),
        ),
        None => Server::serve(
            listener,
            ServiceBuilder::new()
                .layer(VtsLayer::new(spec_key("server")))
                .service(gw),
        ),
    }
    .unwrap()
}

fn client(ck: Option<RsaKeyPair>) -> Client {
    let t = VtsClientTransport::new(ck).pin_server_key(spec_key("server").fingerprint());
    Client::new(ClientConfig::default().transport(t))
}

async fn who(client: &Client, server: &Server) -> Result<Value, versile::client::ClientError> {
    let (link, gw) = client.connect(&server.local_addr().to_string()).await?;
    let r = gw.call("who", ()).await?;
    link.shutdown(LinkShutdown::Graceful);
    Ok(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_see_protocol_and_credentials() {
    tokio::time::timeout(T, async {
        let server = serve(None, LinkOptions::default()).await;
        let r = who(&client(Some(spec_key("client"))), &server)
            .await
            .unwrap();
        let s = format!("{r:?}");
        assert!(s.contains("VTS"), "{s}");
        assert!(s.contains(&spec_key("client").fingerprint()), "{s}");
        // Anonymous: no key.
        let r = who(&client(None), &server).await.unwrap();
        assert!(!format!("{r:?}").contains("SHA256"), "{r:?}");
        // ClientConfig::default() offers VTS (unpinned).
        let r = who(&Client::new(ClientConfig::default()), &server).await;
        assert!(r.is_ok(), "{r:?}");
        // PLAIN only is refused by a VTS-only server.
        assert!(who(&Client::new(ClientConfig::insecure()), &server)
            .await
            .is_err());
        server.shutdown(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_check_layer_sync_and_async() {
    tokio::time::timeout(T, async {
        let allowed = spec_key("client").fingerprint();
        let seen = Arc::new(AtomicUsize::new(0));
        let seen2 = seen.clone();
        let check = CredentialCheckLayer::new(move |p: &PeerInfo| {
            seen2.fetch_add(1, Ordering::SeqCst);
            assert_eq!(p.protocol, Some(Transport::Vts));
            assert!(p.peer_addr.is_some());
            p.key_fingerprint.as_ref() == Some(&allowed)
        });
        let server = serve(Some(check), LinkOptions::default()).await;
        assert!(who(&client(Some(spec_key("client"))), &server)
            .await
            .is_ok());
        assert!(who(&client(None), &server).await.is_err());
        assert!(who(&client(Some(spec_key("ca"))), &server).await.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        server.shutdown(Duration::from_secs(5)).await;

        let allowed = spec_key("ca").fingerprint();
        let check = CredentialCheckLayer::new_async(move |p: PeerInfo| {
            let allowed = allowed.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                p.key_fingerprint == Some(allowed)
            }
        });
        let server = serve(Some(check), LinkOptions::default()).await;
        assert!(who(&client(Some(spec_key("ca"))), &server).await.is_ok());
        assert!(who(&client(Some(spec_key("client"))), &server)
            .await
            .is_err());
        server.shutdown(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_authorizer_sees_credentials() {
    tokio::time::timeout(T, async {
        let allowed = spec_key("client").fingerprint();
        let options = LinkOptions {
            authorizer: Some(Arc::new(move |ctx: versile::CallContext| {
                let ok = ctx.protocol() == Some(Transport::Vts)
                    && ctx.peer_identity().and_then(|p| p.key_fingerprint.as_ref())
                        == Some(&allowed);
                if ok {
                    ctx.authorize(Some("client".into()));
                }
                Box::pin(async move { ok })
            })),
            ..LinkOptions::default()
        };
        let server = serve(None, options).await;
        let r = who(&client(Some(spec_key("client"))), &server)
            .await
            .unwrap();
        assert!(format!("{r:?}").contains("Bool(true)"), "{r:?}");
        assert!(who(&client(None), &server).await.is_err());
        server.shutdown(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pin_and_hook() {
    tokio::time::timeout(T, async {
        let server = serve(None, LinkOptions::default()).await;
        let addr = server.local_addr().to_string();
        // Wrong pin.
        let t = VtsClientTransport::new(None).pin_server_key(spec_key("client").fingerprint());
        let e = Client::new(ClientConfig::default().transport(t))
            .connect(&addr)
            .await
            .unwrap_err();
        // Typed: the VTS error itself, not text (issue 9 §3).
        assert!(
            matches!(
                e,
                ClientError::Transport(TransportError::Vts(versile::vts::VtsError::Unauthorized))
            ),
            "{e}"
        );
        // Hook refusing, hook accepting (combined with the right pin).
        let t = VtsClientTransport::new(None).authorizer(|_| false);
        assert!(Client::new(ClientConfig::default().transport(t))
            .connect(&addr)
            .await
            .is_err());
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = calls.clone();
        let t = VtsClientTransport::new(None)
            .pin_server_key(spec_key("server").fingerprint().to_uppercase())
            .authorizer(move |p| {
                c2.fetch_add(1, Ordering::SeqCst);
                p.key.is_some()
            });
        let (link, _gw) = Client::new(ClientConfig::default().transport(t))
            .connect(&addr)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        link.shutdown(LinkShutdown::Graceful);
        server.shutdown(Duration::from_secs(5)).await;
    })
    .await
    .unwrap();
}
