//! Memory limits of a link (`docs/design.md`, reliability): the small entity
//! limits before the VOL handshake completes, the decoded-memory limit
//! after it, the per-link and the shared (process-wide) budgets, and the
//! unsent-output limit that stops reading from a peer that does not read.
//!
//! Sans-IO cases drive `vol::Link` in memory; the others run a real server
//! on 127.0.0.1:0 against a raw peer (`support/raw_peer.rs`). Each would
//! fail without its limit: the peer would be kept (and read) instead.

mod support;
use support::calls::assert_new_link_echoes;
use support::servers::serve_plain_on;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use support::links::{LinkPair, NumberedObj};
use support::raw_peer::{encode, msg, s, tuple, Closed, RawPeer, VEC_HELLO};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use versile::demo::SimpleGateway;
use versile::runtime::{LinkOptions, MemoryBudget, MemoryLimits};
use versile::server::Server;
use versile::vec::netbytes::encode_posint_u64;
use versile::vec::{Entity, VecError};
use versile::vol::{CallKind, Event, Link, LinkConfig, LinkError};

// ---------------------------------------------------------------------------
// Sans-IO
// ---------------------------------------------------------------------------

/// `F6 n` and `n` one-byte integers.
fn tiny_ints(n: usize) -> Vec<u8> {
    let mut b = vec![0xF6];
    encode_posint_u64(n as u64, &mut b);
    b.extend(std::iter::repeat_n(0x01, n));
    b
}

/// `F3 len` and `len` bytes of payload.
fn byte_string(len: usize, sent: usize) -> Vec<u8> {
    let mut b = vec![0xF3];
    encode_posint_u64(len as u64, &mut b);
    b.extend(std::iter::repeat_n(0x55, sent));
    b
}

/// A fresh server-side link fed our VEC hello and then `entity`.
fn feed_before_handshake(config: LinkConfig, entity: &[u8]) -> Result<(), LinkError> {
    let mut link = Link::new(config, NumberedObj(1), Instant::now());
    let mut input = BytesMut::from(VEC_HELLO);
    input.extend_from_slice(entity);
    link.receive(&mut input, Instant::now())
}

#[test]
fn before_handshake_entities_are_small() {
    // 8 KiB on the wire: over the 4 KiB handshake limit.
    let r = feed_before_handshake(LinkConfig::default(), &byte_string(8192, 8192));
    assert!(
        matches!(
            r,
            Err(LinkError::Vec(VecError::EntityTooLarge { max: 4096, .. }))
        ),
        "{r:?}"
    );
    // 3 KiB of one-byte integers fits the wire limit but not the 64 KiB of
    // memory an unauthenticated peer may make us spend.
    let r = feed_before_handshake(LinkConfig::default(), &tiny_ints(3000));
    assert!(
        matches!(
            r,
            Err(LinkError::Vec(VecError::DecodedTooLarge { max: 65536, .. }))
        ),
        "{r:?}"
    );
    // With the post-handshake limits instead, the same entity is decoded
    // (and refused only as a bad VOL hello): the small limits refused it.
    let roomy = LinkConfig {
        handshake_max_entity_size: 1 << 20,
        handshake_max_decoded_bytes: 1 << 24,
        ..LinkConfig::default()
    };
    let r = feed_before_handshake(roomy.clone(), &tiny_ints(3000));
    assert!(matches!(r, Err(LinkError::BadHello(_))), "{r:?}");
    let r = feed_before_handshake(roomy, &byte_string(8192, 100));
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn after_handshake_the_configured_limits_apply() {
    let server = LinkConfig {
        max_decoded_bytes: 1 << 20,
        ..LinkConfig::default()
    };
    let now = Instant::now();
    let (LinkPair { mut a, mut b, .. }, gw, _) =
        LinkPair::connected(LinkConfig::default(), server, now);
    // 8 KiB of bytes, refused before the handshake, is a normal argument now.
    let arg = Entity::Bytes(vec![7u8; 8192].into());
    a.call(gw, CallKind::Normal, vec![arg]).unwrap();
    let mut input = a.take_output();
    b.receive(&mut input, now).unwrap();
    assert!(matches!(b.poll_event(), Some(Event::Call { .. })));
    // 20,000 small integers cost ~4.6 MB decoded: over the 1 MiB limit.
    let args = vec![Entity::Tuple(vec![Entity::Int(1); 20_000])];
    a.call(gw, CallKind::Normal, args).unwrap();
    let mut input = a.take_output();
    let r = b.receive(&mut input, now);
    assert!(
        matches!(r, Err(LinkError::Vec(VecError::DecodedTooLarge { max, .. })) if max == 1 << 20),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------
// A real server
// ---------------------------------------------------------------------------

async fn server_with(memory: MemoryLimits) -> Server {
    let options = LinkOptions {
        memory,
        ..LinkOptions::default()
    };
    serve_plain_on("127.0.0.1:0", SimpleGateway::new, options).await
}

fn limits(link: usize, reserve: usize, unsent: usize, process: &Arc<MemoryBudget>) -> MemoryLimits {
    MemoryLimits {
        link_budget: link,
        link_reserve: reserve,
        max_unsent_output: unsent,
        process: process.clone(),
    }
}

/// Send as much of `bytes` as the server takes (it may close on us).
async fn send_hostile(p: &mut RawPeer, bytes: &[u8]) {
    for chunk in bytes.chunks(64 * 1024) {
        if p.send_raw(chunk).await.is_err() {
            return;
        }
    }
}

/// Wait (bounded) until the shared budget holds at least `n` bytes.
async fn wait_used(budget: &MemoryBudget, n: usize) {
    for _ in 0..500 {
        if budget.used() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("budget never reached {n} bytes (used {})", budget.used());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_entity_before_handshake_closes() {
    let process = MemoryBudget::new(64 << 20);
    let server = server_with(limits(64 << 20, 256 << 10, 8 << 20, &process)).await;
    let addr = server.local_addr();
    let mut p = RawPeer::vec_hello(addr).await;
    let _server_vol_hello = p.recv().await;
    // The start of a 1 MiB entity of one-byte integers.
    send_hostile(&mut p, &tiny_ints(1 << 20)[..64 * 1024]).await;
    match p.wait_closed(Duration::from_secs(5)).await {
        Closed::Yes(b) => assert!(b.is_empty(), "server wrote {b:02X?}"),
        Closed::StillOpen(_) => panic!("a hostile pre-handshake entity is still being read"),
    }
    assert_new_link_echoes(addr, "served", "a normal client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_bigger_than_the_link_budget_closes() {
    let process = MemoryBudget::new(64 << 20);
    let server = server_with(limits(1 << 20, 256 << 10, 8 << 20, &process)).await;
    let addr = server.local_addr();
    let mut p = RawPeer::handshake(addr).await;
    // An 8 MiB byte string, 2 MiB of it sent: the read buffer would have
    // to outgrow the 1 MiB link budget, and nothing the link holds drains.
    send_hostile(&mut p, &byte_string(8 << 20, 2 << 20)).await;
    assert!(
        matches!(p.wait_closed(Duration::from_secs(5)).await, Closed::Yes(_)),
        "link over its budget still open"
    );
    assert_new_link_echoes(addr, "served", "a normal client").await;
    assert!(
        process.used() < 1 << 20,
        "charges released: {}",
        process.used()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_share_the_process_budget() {
    // Each link may hold 64 MiB, all of them together 3 MiB.
    let process = MemoryBudget::new(3 << 20);
    let server = server_with(limits(64 << 20, 256 << 10, 8 << 20, &process)).await;
    let addr = server.local_addr();
    // The first hostile link holds a partial 32 MiB entity, 1 MiB of it.
    let mut first = RawPeer::handshake(addr).await;
    send_hostile(&mut first, &byte_string(32 << 20, 1 << 20)).await;
    wait_used(&process, 1 << 20).await;
    // A second one doing the same does not fit the shared budget: closed.
    let mut second = RawPeer::handshake(addr).await;
    send_hostile(&mut second, &byte_string(32 << 20, 2 << 20)).await;
    assert!(
        matches!(
            second.wait_closed(Duration::from_secs(5)).await,
            Closed::Yes(_)
        ),
        "second link kept past the shared budget"
    );
    // The first is untouched, and ordinary clients (within their reserve)
    // are served while the shared budget is taken.
    first
        .expect_open(Duration::from_millis(300), "first hostile link")
        .await;
    assert_new_link_echoes(addr, "served", "a normal client").await;
    assert!(process.used() <= process.limit());
}

const UNSENT: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_read_is_not_read() {
    // Budgets far above the 64 MiB sent: only the unsent-output limit
    // can stop the reading.
    let process = MemoryBudget::new(1 << 30);
    let server = server_with(limits(512 << 20, 256 << 10, UNSENT, &process)).await;
    let addr = server.local_addr();
    let p = RawPeer::handshake(addr).await;
    // 256 echo calls of 256 KiB each (64 MiB), never reading the results.
    let mut calls = Vec::new();
    let payload = "x".repeat(256 << 10);
    for id in 0..256i64 {
        let call = msg(
            1000 + id,
            1,
            tuple(vec![
                Entity::Ref(versile::vec::WireRef::ReceiverOwned(p.server_gw)),
                tuple(vec![s("echo"), s(&payload)]),
            ]),
        );
        calls.extend_from_slice(&encode(&call));
    }
    let (mut rd, mut wr) = p.stream.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(&calls).await.expect("write");
        wr
    });
    // The server stops reading once 1 MiB of results waits for us (plus
    // what the sockets buffer), so the 64 MiB cannot all be sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !writer.is_finished(),
        "the server kept reading a peer that does not read"
    );
    assert!(process.used() < 32 << 20, "held {}", process.used());
    // Once we read, it reads again: paused, not closed.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        while total < 64 << 20 {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    });
    let _wr = tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("writes resume once we read")
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("all results arrive")
        .unwrap();
    assert!(got >= 64 << 20, "results: {got} bytes");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_honest_arguments_get_the_room_they_need() {
    // Room is handed to the decoder in steps; a single node bigger than a
    // step (a 3 MiB integer, the node list doubling past 1 MiB) must still
    // be given what it needs.
    let process = MemoryBudget::new(512 << 20);
    let server = server_with(limits(192 << 20, 256 << 10, 8 << 20, &process)).await;
    let mut p = RawPeer::handshake(server.local_addr()).await;
    let big = Entity::int(num_bigint::BigInt::from(1) << (8 * 3 * 1024 * 1024));
    let many = tuple(vec![tuple(vec![Entity::Int(1); 1000]); 150]);
    for arg in [big, many] {
        let id = p.call(p.server_gw, vec![s("echo"), arg.clone()]).await;
        let (code, payload) = tokio::time::timeout(Duration::from_secs(60), p.reply(id))
            .await
            .expect("echo of a large argument");
        assert_eq!(code, 4);
        assert_eq!(payload, tuple(vec![Entity::Int(id), arg]));
    }
}
