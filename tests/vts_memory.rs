//! Our VTS client ↔ our VTS server in memory: handshakes in both modes,
//! a VOL link over `VtsStream`, bulk data, tampering and hostile input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use versile::demo::SimpleGateway;
use versile::object::ConnectionInfo;
use versile::runtime::{connect_link, spawn_link, LinkOptions};
use versile::vts::{KeyPolicy, RsaKeyPair, VtsConfig, VtsConnection, VtsError, VtsStream};
use versile::{Client, ClientConfig, LinkShutdown, VtsClientTransport};

mod support;
use support::keys::{legacy_vts_config, spec_key};
use support::servers::serve_vts_with_spec_key;
use support::vts_sansio::{pump, take_output};

const T: Duration = Duration::from_secs(60);

type Duplex = tokio::io::DuplexStream;

async fn pair(client_key: Option<RsaKeyPair>) -> (VtsStream<Duplex>, VtsStream<Duplex>) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(VtsStream::accept(
        b,
        legacy_vts_config(),
        spec_key("server"),
    ));
    let client = VtsStream::connect(a, legacy_vts_config(), client_key)
        .await
        .expect("client");
    let server = server.await.unwrap().expect("server");
    (client, server)
}

#[tokio::test]
async fn handshake_anonymous_and_echo() {
    tokio::time::timeout(T, async {
        let (mut c, mut s) = pair(None).await;
        assert!(s.peer().unwrap().key.is_none());
        assert_eq!(
            c.peer().unwrap().key.as_ref(),
            Some(spec_key("server").public())
        );
        // Anonymous client: its first record waits for the server's (§3.7).
        c.write_all(b"ping").await.unwrap();
        c.flush().await.unwrap();
        s.write_all(b"hello").await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn handshake_client_key_and_1mib() {
    tokio::time::timeout(T, async {
        let (mut c, mut s) = pair(Some(spec_key("client"))).await;
        assert_eq!(
            s.peer().unwrap().key.as_ref(),
            Some(spec_key("client").public())
        );
        let data: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        let d2 = data.clone();
        let w = tokio::spawn(async move {
            c.write_all(&d2).await.unwrap();
            c.flush().await.unwrap();
            c.shutdown().await.unwrap();
            c
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        let _c = w.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_large_write_yields_between_pieces_and_is_read_in_large_pieces() {
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    tokio::time::timeout(T, async {
        // Room for everything: the stream never waits for its peer, so
        // each `Pending` is the stream giving its worker back.
        let (a, b) = tokio::io::duplex(4 << 20);
        let server = tokio::spawn(VtsStream::accept(
            b,
            legacy_vts_config(),
            spec_key("server"),
        ));
        let mut c = VtsStream::connect(a, legacy_vts_config(), Some(spec_key("client")))
            .await
            .expect("client");
        let mut s = server.await.unwrap().expect("server");
        let data: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();

        let waker = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let w = Waker::from(waker.clone());
        let mut cx = Context::from_waker(&w);
        let (mut sent, mut yields) = (0, 0);
        while sent < data.len() {
            match Pin::new(&mut c).poll_write(&mut cx, &data[sent..]) {
                Poll::Ready(n) => sent += n.unwrap(),
                Poll::Pending => yields += 1,
            }
        }
        // The worker given back after each 256 KiB sealed,
        // and woken again each time (or the writer would hang).
        assert_eq!(yields, 3);
        assert_eq!(waker.0.load(Ordering::Relaxed), yields);
        c.flush().await.unwrap();

        // Read in pieces of up to 256 KiB, not 16 KiB ones.
        let mut got = vec![0u8; data.len()];
        let (mut filled, mut reads) = (0, 0);
        while filled < got.len() {
            let mut buf = ReadBuf::new(&mut got[filled..]);
            poll_fn(|cx| Pin::new(&mut s).poll_read(cx, &mut buf))
                .await
                .unwrap();
            assert!(!buf.filled().is_empty(), "EOF after {filled} bytes");
            filled += buf.filled().len();
            reads += 1;
        }
        assert!(got == data);
        assert!(reads <= 8, "{reads} reads for 1 MiB");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn vol_link_over_vts() {
    tokio::time::timeout(T, async {
        for client_key in [None, Some(spec_key("client"))] {
            let (c, s) = pair(client_key).await;
            let _server = spawn_link(
                s,
                SimpleGateway::new(),
                ConnectionInfo::default(),
                LinkOptions::default(),
            );
            let gw_client = versile::ObjectBuilder::new(()).build();
            let (link, gw) = connect_link(
                c,
                gw_client,
                ConnectionInfo::default(),
                LinkOptions::default(),
            )
            .await
            .expect("link");
            let r = gw.call("echo", ("hello VTS",)).await.unwrap();
            assert_eq!(String::try_from(r).unwrap(), "hello VTS");
            let big = bytes::Bytes::from(vec![0xabu8; 1024 * 1024]);
            let r = gw.call("echo", (big.clone(),)).await.unwrap();
            assert_eq!(bytes::Bytes::try_from(r).unwrap(), big);
            link.shutdown(LinkShutdown::Graceful);
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn vop_layer_and_client_over_tcp() {
    tokio::time::timeout(T, async {
        let fp = spec_key("server").fingerprint();
        let server = serve_vts_with_spec_key(SimpleGateway::new).await;
        let addr = server.local_addr().to_string();
        for ck in [None, Some(spec_key("client"))] {
            let t = VtsClientTransport::with_config(ck, (*legacy_vts_config()).clone())
                .pin_server_key(fp.clone());
            let client = Client::new(ClientConfig::default().transport(t));
            let (link, gw) = client.connect(&addr).await.expect("connect");
            let r = gw.call("echo", (5,)).await.unwrap();
            assert_eq!(i64::try_from(r).unwrap(), 5);
            let ctx = link.context();
            assert_eq!(ctx.protocol(), Some(versile::vop::Transport::Vts));
            let vts = ctx.extensions().get::<versile::vts::PeerCredentials>();
            let peer = vts.and_then(|p| p.key.clone());
            assert_eq!(peer.as_ref(), Some(spec_key("server").public()));
            link.shutdown(LinkShutdown::Graceful);
        }
        // A wrong pin: the handshake is refused.
        let t = VtsClientTransport::with_config(None, (*legacy_vts_config()).clone())
            .pin_server_key("SHA256:00");
        let client = Client::new(ClientConfig::default().transport(t));
        assert!(client.connect(&addr).await.is_err());
    })
    .await
    .unwrap();
}

#[test]
fn tampered_record_fails_mac() {
    let mut c = VtsConnection::client(legacy_vts_config(), None);
    let mut s = VtsConnection::server(legacy_vts_config(), spec_key("server"));
    pump(&mut c, &mut s).unwrap();
    assert!(!c.is_handshaking() && !s.is_handshaking());
    s.write_plaintext(b"first").unwrap();
    let rec = take_output(&mut s);
    c.receive(&mut BytesMut::from(&rec[..])).unwrap();
    s.write_plaintext(b"second record").unwrap();
    let mut rec = s.pending_output().to_vec();
    let last = rec.len() - 1;
    rec[last] ^= 0x01;
    assert!(matches!(
        c.receive(&mut BytesMut::from(&rec[..])),
        Err(VtsError::BadMac)
    ));
    assert!(c.is_failed());
    assert!(c.write_plaintext(b"x").is_err());
}

#[tokio::test]
async fn tampered_stream_closes_with_error() {
    tokio::time::timeout(T, async {
        // Client ↔ proxy ↔ server; the proxy flips one bit of the first
        // record the server sends after the handshake.
        let (a, mut pa) = tokio::io::duplex(64 * 1024);
        let (mut pb, b) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut s = VtsStream::accept(b, legacy_vts_config(), spec_key("server"))
                .await
                .unwrap();
            s.write_all(b"a record that will be damaged").await.unwrap();
            s.flush().await.unwrap();
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf).await;
        });
        let proxy = tokio::spawn(async move {
            // c2s: M1, M3, M5 pass through; s2c: M2, M4, then the record.
            let mut buf = vec![0u8; 65536];
            let mut buf2 = vec![0u8; 65536];
            let mut s2c_total = 0usize;
            loop {
                tokio::select! {
                    n = pa.read(&mut buf) => {
                        let n = n.unwrap_or(0);
                        if n == 0 { break; }
                        pb.write_all(&buf[..n]).await.unwrap();
                    }
                    n = pb.read(&mut buf2) => {
                        let n = n.unwrap_or(0);
                        if n == 0 { break; }
                        // M2 (14) + M4: after those, damage the last byte.
                        if s2c_total > 14 + 200 { buf2[n - 1] ^= 1; }
                        s2c_total += n;
                        if pa.write_all(&buf2[..n]).await.is_err() { break; }
                    }
                }
            }
        });
        let mut c = VtsStream::connect(a, legacy_vts_config(), None)
            .await
            .unwrap();
        let mut got = Vec::new();
        let r = c.read_to_end(&mut got).await;
        assert!(r.is_err(), "MAC failure must be an error, got {got:?}");
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        drop(c);
        proxy.abort();
        server.abort();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn garbage_and_truncated_handshakes_fail_cleanly() {
    tokio::time::timeout(T, async {
        let inputs: Vec<Vec<u8>> = vec![
            b"VTS_DRAFT-0.9\n".to_vec(),
            b"VTS_DRAFT-0.8\r\n".to_vec(),
            vec![b'A'; 40],
            b"VTS_DRAFT-0.8\n\xf6\x06\xf6\x01".to_vec(), // truncated M3, then EOF
            b"VTS_DRAFT-0.8\n\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
            [
                b"VTS_DRAFT-0.8\n".as_slice(),
                &[0xf3, 0xef, 0xff, 0xff, 0xff, 0xff],
            ]
            .concat(),
        ];
        for input in inputs {
            let (mut a, b) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(VtsStream::accept(
                b,
                legacy_vts_config(),
                spec_key("server"),
            ));
            a.write_all(&input).await.unwrap();
            a.shutdown().await.unwrap();
            let r = server.await.unwrap();
            assert!(r.is_err(), "{input:?}");
        }
        // Client side: a server that answers garbage.
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        let client = tokio::spawn(VtsStream::connect(a, legacy_vts_config(), None));
        let mut line = [0u8; 14];
        b.read_exact(&mut line).await.unwrap();
        b.write_all(b"VTS_DRAFT-0.8\n\xf6\x09\xf5\x04")
            .await
            .unwrap();
        drop(b);
        assert!(client.await.unwrap().is_err());
    })
    .await
    .unwrap();
}

/// Handshake time with fresh 2048-bit keys (printed; run with --nocapture).
#[tokio::test]
async fn handshake_time_2048() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let t0 = Instant::now();
        let (sk, ck) = tokio::task::spawn_blocking(|| {
            (
                RsaKeyPair::generate(2048).unwrap(),
                RsaKeyPair::generate(2048).unwrap(),
            )
        })
        .await
        .unwrap();
        eprintln!("2048-bit key generation x2: {:?}", t0.elapsed());
        assert!(sk.fingerprint().starts_with("SHA256:") && sk.fingerprint().len() == 7 + 64);
        let config = Arc::new(VtsConfig::default());
        for client_key in [None, Some(ck)] {
            let mode = if client_key.is_some() {
                "client-key"
            } else {
                "anonymous"
            };
            let (a, b) = tokio::io::duplex(64 * 1024);
            let t = Instant::now();
            let server = tokio::spawn(VtsStream::accept(b, config.clone(), sk.clone()));
            let _c = VtsStream::connect(a, config.clone(), client_key)
                .await
                .unwrap();
            let _s = server.await.unwrap().unwrap();
            eprintln!("VTS handshake, 2048-bit keys, {mode}: {:?}", t.elapsed());
        }
    })
    .await
    .unwrap();
}

/// Sweet32 (`docs/protocol/vts.md` §10 #9): with a 64-bit-block cipher the connection
/// refuses to carry more than the configured bytes under one key; AES is
/// not limited.
#[tokio::test]
async fn blowfish_byte_limit_closes_the_connection() {
    use versile::vts::cipher::{CipherAlg, Mode};
    tokio::time::timeout(T, async {
        for (cipher, limited) in [(CipherAlg::Blowfish, true), (CipherAlg::Aes256, false)] {
            let cfg = Arc::new(VtsConfig {
                key_policy: KeyPolicy::legacy(),
                ciphers: vec![(cipher, vec![Mode::Cbc])],
                max_bytes_64bit_cipher: Some(100_000),
                ..VtsConfig::default()
            });
            let (a, b) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(VtsStream::accept(b, cfg.clone(), spec_key("server")));
            let mut c = VtsStream::connect(a, cfg, Some(spec_key("client")))
                .await
                .expect("client");
            let mut s = server.await.unwrap().expect("server");
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got).await;
                got.len()
            });
            let chunk = vec![7u8; 10_000];
            let mut result = Ok(());
            for _ in 0..20 {
                result = c.write_all(&chunk).await;
                if result.is_err() {
                    break;
                }
            }
            let _ = c.shutdown().await;
            drop(c);
            let got = reader.await.unwrap();
            if limited {
                assert!(result.is_err(), "the write past the limit fails");
                assert!(got <= 100_000, "received {got} bytes");
            } else {
                assert!(result.is_ok());
                assert_eq!(got, 200_000);
            }
        }
    })
    .await
    .unwrap();
}

/// `VtsConfig::handshake_timeout` ends a handshake whose peer stalls
/// (docs/deployment.md, "Handshake time limits").
#[tokio::test]
async fn a_stalled_handshake_ends_at_the_configured_limit() {
    let (_silent_peer, b) = tokio::io::duplex(64 * 1024);
    let config = Arc::new(VtsConfig {
        handshake_timeout: Duration::from_millis(200),
        ..(*legacy_vts_config()).clone()
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        VtsStream::accept(b, config, spec_key("server")),
    )
    .await
    .expect("the configured 200 ms limit ended it, not the 30 s default");
    assert!(
        matches!(outcome, Err(VtsError::NotReady(m)) if m.contains("timed out")),
        "the handshake timed out"
    );
}
