//! ProxyProtocolLayer: v1 and v2 headers replace the addresses, bytes past
//! the header reach the inner service, bad headers are refused.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use ppp::v2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{service_fn, Layer, ServiceExt};
use versile_middleware::proxy_protocol::{ProxyHeaderError, ProxyInfo, ProxyProtocolLayer};
use versile_middleware::{BoxError, ConnectionRequest, SimpleConnection};

#[derive(Debug)]
struct Seen {
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    info: Option<ProxyInfo>,
    /// Everything the inner service read.
    data: Vec<u8>,
}

/// Records what it sees and reads to the end of the stream.
async fn record(mut conn: SimpleConnection) -> Result<Seen, BoxError> {
    let mut data = Vec::new();
    conn.io.read_to_end(&mut data).await?;
    Ok(Seen {
        peer: conn.peer_addr(),
        local: conn.local_addr(),
        info: conn.extension::<ProxyInfo>().copied(),
        data,
    })
}

async fn run(layer: ProxyProtocolLayer, chunks: Vec<Vec<u8>>) -> Result<Seen, BoxError> {
    let svc = layer.layer(service_fn(record));
    let (c, mut client) = conn("10.0.0.1:40000");
    let writer = tokio::spawn(async move {
        for chunk in chunks {
            if client.write_all(&chunk).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    });
    let r = tokio::time::timeout(BOUND, svc.oneshot(c))
        .await
        .expect("bounded");
    writer.await.expect("writer");
    r
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn v1_tcp4_replaces_addresses_and_keeps_following_bytes() {
    let seen = run(
        ProxyProtocolLayer::new(),
        vec![
            b"PROXY TCP4 198.51.100.7 203.0.113.1 5555 4433\r\nvop_call_vec".to_vec(),
            b"\nmore".to_vec(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(seen.peer, Some(sa("198.51.100.7:5555")));
    assert_eq!(seen.local, Some(sa("203.0.113.1:4433")));
    assert_eq!(seen.data, b"vop_call_vec\nmore");
    let info = seen.info.unwrap();
    assert_eq!(info.proxy_addr, Some(sa("10.0.0.1:40000")));
    assert_eq!(info.header.version, 1);
}

#[tokio::test]
async fn v1_tcp6_trickled_byte_by_byte() {
    let header = b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 4433\r\nhi";
    let seen = run(
        ProxyProtocolLayer::new(),
        header.iter().map(|b| vec![*b]).collect(),
    )
    .await
    .unwrap();
    assert_eq!(seen.peer, Some(sa("[2001:db8::7]:5555")));
    assert_eq!(seen.data, b"hi");
}

#[tokio::test]
async fn v1_unknown_keeps_addresses() {
    let seen = run(
        ProxyProtocolLayer::new(),
        vec![b"PROXY UNKNOWN\r\nrest".to_vec()],
    )
    .await
    .unwrap();
    assert_eq!(seen.peer, Some(sa("10.0.0.1:40000")));
    assert_eq!(seen.data, b"rest");
}

fn v2_header(command: v2::Command, src: &str, dst: &str, tlv: bool) -> Vec<u8> {
    let addrs: v2::Addresses = (sa(src), sa(dst)).into();
    let mut b =
        v2::Builder::with_addresses(v2::Version::Two | command, v2::Protocol::Stream, addrs);
    if tlv {
        b = b.write_tlv(v2::Type::NoOp, b"padding").unwrap();
    }
    b.build().unwrap()
}

#[tokio::test]
async fn v2_ipv4_and_ipv6_with_tlvs() {
    let mut bytes = v2_header(v2::Command::Proxy, "192.0.2.9:1234", "192.0.2.1:4433", true);
    bytes.extend_from_slice(b"after");
    let seen = run(ProxyProtocolLayer::new(), vec![bytes]).await.unwrap();
    assert_eq!(seen.peer, Some(sa("192.0.2.9:1234")));
    assert_eq!(seen.local, Some(sa("192.0.2.1:4433")));
    assert_eq!(seen.data, b"after");
    assert_eq!(seen.info.unwrap().header.version, 2);

    let mut bytes = v2_header(
        v2::Command::Proxy,
        "[2001:db8::9]:1234",
        "[2001:db8::1]:4433",
        false,
    );
    let split = bytes.split_off(20);
    let seen = run(ProxyProtocolLayer::new(), vec![bytes, split, b"x".to_vec()])
        .await
        .unwrap();
    assert_eq!(seen.peer, Some(sa("[2001:db8::9]:1234")));
    assert_eq!(seen.data, b"x");
}

#[tokio::test]
async fn v2_local_keeps_addresses() {
    let bytes = v2_header(
        v2::Command::Local,
        "192.0.2.9:1234",
        "192.0.2.1:4433",
        false,
    );
    let seen = run(ProxyProtocolLayer::new(), vec![bytes]).await.unwrap();
    assert_eq!(seen.peer, Some(sa("10.0.0.1:40000")));
    assert!(seen.info.unwrap().header.addresses.is_none());
}

#[tokio::test]
async fn garbage_is_refused() {
    for garbage in [
        &b"vop_call_vec\n"[..],
        b"GET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP4 not.an.ip 1.2.3.4 1 2\r\n",
        b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n",
    ] {
        let err = run(ProxyProtocolLayer::new(), vec![garbage.to_vec()])
            .await
            .unwrap_err();
        assert!(
            matches!(
                downcast::<ProxyHeaderError>(&err),
                ProxyHeaderError::Invalid(_)
            ),
            "{garbage:?}: {err}"
        );
    }
}

#[tokio::test]
async fn overlong_headers_are_refused() {
    // A v1 line that never ends.
    let mut long = b"PROXY TCP4 ".to_vec();
    long.extend(std::iter::repeat_n(b' ', 700));
    let err = run(ProxyProtocolLayer::new(), vec![long])
        .await
        .unwrap_err();
    assert!(downcast::<ProxyHeaderError>(&err)
        .to_string()
        .contains("PROXY"));

    // A v2 header announcing more than the bound.
    let mut big = v2::PROTOCOL_PREFIX.to_vec();
    big.extend_from_slice(&[0x21, 0x11, 0x03, 0xe8]);
    big.extend(std::iter::repeat_n(0u8, 1000));
    let err = run(ProxyProtocolLayer::new(), vec![big.clone()])
        .await
        .unwrap_err();
    assert!(matches!(
        downcast::<ProxyHeaderError>(&err),
        ProxyHeaderError::TooLong(536)
    ));
    // Allowed with a larger bound.
    let seen = run(ProxyProtocolLayer::new().max_header_len(2048), vec![big])
        .await
        .unwrap();
    assert_eq!(seen.info.unwrap().header.len, 1016);
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_times_out_and_eof_is_refused() {
    let svc = ProxyProtocolLayer::new()
        .read_timeout(Duration::from_secs(3))
        .layer(service_fn(record));
    let (c, _client) = conn("10.0.0.1:1");
    let started = tokio::time::Instant::now();
    let err = tokio::time::timeout(BOUND, svc.clone().oneshot(c))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(
        downcast::<ProxyHeaderError>(&err),
        ProxyHeaderError::Timeout(_)
    ));
    assert_eq!(started.elapsed(), Duration::from_secs(3));

    let err = run(ProxyProtocolLayer::new(), vec![b"PROXY TCP4 1.2".to_vec()])
        .await
        .unwrap_err();
    assert!(matches!(
        downcast::<ProxyHeaderError>(&err),
        ProxyHeaderError::Eof
    ));
}
