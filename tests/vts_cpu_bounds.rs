//! CPU a hostile VTS peer can make us spend (issue #7 point 2): RSA
//! private-key operations per handshake, the bounded RSA pool, and
//! handshake parsing that stays linear however the input is segmented.
//! Work is counted (RSA operations per key, bytes parsed), never timed.

use std::net::IpAddr;
use std::time::Duration;

use bytes::BytesMut;
use versile::vec::{encode, EncodeConfig, Entity};
use versile::vts::private_op::{PrivateOp, PrivateOps};
use versile::vts::rsa_pool::RsaPool;
use versile::vts::{VtsConnection, VtsError, VtsStream};

mod support;
use support::keys::{legacy_vts_config, spec_key};
use support::vts_sansio::take_output;

const T: Duration = Duration::from_secs(60);

fn enc(e: &Entity) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(e, &EncodeConfig::PLAIN, &mut out).expect("encode");
    out.to_vec()
}

fn bytes_entity(b: &[u8]) -> Entity {
    Entity::Bytes(bytes::Bytes::copy_from_slice(b))
}

/// Run client and server until the client has written M5; returns the
/// client's M5 bytes (not yet delivered to the server).
fn up_to_m5(c: &mut VtsConnection, s: &mut VtsConnection) -> Vec<u8> {
    let m1 = take_output(c);
    s.receive(&mut BytesMut::from(&m1[..])).unwrap();
    let m2 = take_output(s);
    c.receive(&mut BytesMut::from(&m2[..])).unwrap();
    let m3 = take_output(c);
    s.receive(&mut BytesMut::from(&m3[..])).unwrap();
    let m4 = take_output(s);
    c.receive(&mut BytesMut::from(&m4[..])).unwrap();
    take_output(c)
}

/// M5 with `enc_header` replaced by `blocks` RSA-sized blocks of garbage.
fn hostile_m5(blocks: usize, k: usize) -> Vec<u8> {
    let header = vec![0x5a; blocks * k];
    enc(&Entity::Tuple(vec![
        bytes_entity(&header),
        bytes_entity(&[0u8; 32]),
    ]))
}

#[test]
fn real_handshake_costs_one_private_op() {
    let server_key = spec_key("server");
    let mut c = VtsConnection::client(legacy_vts_config(), None);
    let mut s = VtsConnection::server(legacy_vts_config(), server_key.clone());
    let m5 = up_to_m5(&mut c, &mut s);
    s.receive(&mut BytesMut::from(&m5[..])).unwrap();
    assert!(!s.is_handshaking());
    assert_eq!(server_key.private_ops(), 1);
}

#[test]
fn oversized_m5_header_refused_before_any_private_op() {
    let server_key = spec_key("server");
    let k = server_key.public().size();
    // One block more than a real header needs (1 with a 1024-bit key and
    // SHA-1), and a 16 KiB one: both refused with no RSA work at all.
    for blocks in [2, (16 * 1024 - 64) / k] {
        let mut c = VtsConnection::client(legacy_vts_config(), None);
        let mut s = VtsConnection::server(legacy_vts_config(), server_key.clone());
        let _real = up_to_m5(&mut c, &mut s);
        let r = s.receive(&mut BytesMut::from(&hostile_m5(blocks, k)[..]));
        assert!(
            matches!(r, Err(VtsError::CiphertextTooLarge { len, max }) if len == blocks * k && max == k),
            "{blocks} blocks: {r:?}"
        );
        assert!(s.is_failed());
    }
    assert_eq!(server_key.private_ops(), 0);
    // A one-block garbage header is what a real header costs: one op.
    let mut c = VtsConnection::client(legacy_vts_config(), None);
    let mut s = VtsConnection::server(legacy_vts_config(), server_key.clone());
    let _real = up_to_m5(&mut c, &mut s);
    let r = s.receive(&mut BytesMut::from(&hostile_m5(1, k)[..]));
    assert!(matches!(r, Err(VtsError::RsaDecrypt)), "{r:?}");
    assert_eq!(server_key.private_ops(), 1);
}

#[test]
fn oversized_m6_refused_by_client_before_any_private_op() {
    let client_key = spec_key("client");
    let k = client_key.public().size();
    let mut c = VtsConnection::client(legacy_vts_config(), Some(client_key.clone()));
    let mut s = VtsConnection::server(legacy_vts_config(), spec_key("server"));
    let m5 = up_to_m5(&mut c, &mut s);
    s.receive(&mut BytesMut::from(&m5[..])).unwrap();
    let _real_m6 = take_output(&mut s);
    let hostile = enc(&bytes_entity(&vec![0x5a; 100 * k]));
    let r = c.receive(&mut BytesMut::from(&hostile[..]));
    assert!(
        matches!(r, Err(VtsError::CiphertextTooLarge { max, .. }) if max == k),
        "{r:?}"
    );
    assert_eq!(client_key.private_ops(), 0);
}

/// A handshake entity of nearly 16 KiB: a header of 400 one-byte `None`s
/// (as many as the handshake's decoded-memory cap lets through) and a byte
/// string making up the rest, so a decoder that started over on every read
/// would re-parse the header once per payload byte.
fn header_heavy(arity: usize) -> Vec<u8> {
    let nones = Entity::Tuple(vec![Entity::None; 400]);
    let mut v = vec![nones, Entity::Bytes(vec![0x5a; 15_700].into())];
    v.resize(arity, Entity::None);
    let bytes = enc(&Entity::Tuple(v));
    assert!(
        bytes.len() > 16_000 && bytes.len() <= 16_384,
        "{}",
        bytes.len()
    );
    bytes
}

/// Feed `data` one byte per `receive`, all but the last byte.
fn feed_bytewise(conn: &mut VtsConnection, data: &[u8]) {
    let mut buf = BytesMut::new();
    for b in &data[..data.len() - 1] {
        buf.extend_from_slice(&[*b]);
        conn.receive(&mut buf).unwrap();
    }
}

#[test]
fn server_parses_a_bytewise_client_hello_once() {
    let mut s = VtsConnection::server(legacy_vts_config(), spec_key("server"));
    s.receive(&mut BytesMut::from(&b"VTS_DRAFT-0.8\n"[..]))
        .unwrap();
    let m3 = header_heavy(6);
    feed_bytewise(&mut s, &m3);
    // Re-parsing from the start on every read would cost the header once
    // per payload byte (about 6e6 bytes); keeping the decoder's state makes
    // it at most len.
    let work = s.handshake_parse_work();
    assert!(work > 0 && work <= m3.len() as u64, "parse work {work}");
    assert!(s.is_handshaking());
}

#[test]
fn client_parses_a_bytewise_server_hello_once() {
    let mut c = VtsConnection::client(legacy_vts_config(), None);
    let _m1 = take_output(&mut c);
    c.receive(&mut BytesMut::from(&b"VTS_DRAFT-0.8\n"[..]))
        .unwrap();
    let m4 = header_heavy(9);
    feed_bytewise(&mut c, &m4);
    let work = c.handshake_parse_work();
    assert!(work > 0 && work <= m4.len() as u64, "parse work {work}");
}

/// `n` servers, each waiting for the private op on a real client's M5.
fn pending_jobs(n: usize) -> Vec<PrivateOp> {
    (0..n)
        .map(|_| {
            let mut c = VtsConnection::client(legacy_vts_config(), None);
            let mut s = VtsConnection::server(legacy_vts_config(), spec_key("server"));
            s.set_private_ops(PrivateOps::Offload);
            let m5 = up_to_m5(&mut c, &mut s);
            s.receive(&mut BytesMut::from(&m5[..])).unwrap();
            assert!(s.is_handshaking());
            s.take_private_op().expect("a private op is pending")
        })
        .collect()
}

#[tokio::test]
async fn full_rsa_pool_refuses_and_counts() {
    tokio::time::timeout(T, async {
        // One worker, one waiting job: of 8 jobs submitted at once, one
        // runs, one waits, the rest are refused (an RSA operation takes far
        // longer than submitting eight jobs).
        let pool = RsaPool::new(1, 1, 0);
        let peer: Option<IpAddr> = Some([10, 0, 0, 1].into());
        let runs = pending_jobs(8).into_iter().map(|job| pool.run(peer, job));
        let results = futures::future::join_all(runs).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(VtsError::RsaBusy { .. })))
            .count();
        let done = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(busy + done, 8);
        assert!(done >= 2, "{done} completed");
        assert!(busy >= 1, "{busy} refused");
        assert_eq!(pool.refused(), busy as u64);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn full_rsa_pool_drops_the_flooding_address_first() {
    tokio::time::timeout(T, async {
        let pool = RsaPool::new(1, 2, 0);
        let flooder: Option<IpAddr> = Some([10, 0, 0, 1].into());
        let other: Option<IpAddr> = Some("2001:db8::7".parse().unwrap());
        let mut jobs = pending_jobs(5);
        let good = jobs.pop().unwrap();
        // The flooder fills the worker and the queue (one more is refused),
        // then another address arrives: the flooder's newest job makes room.
        let flood = futures::future::join_all(jobs.into_iter().map(|j| pool.run(flooder, j)));
        let good = pool.run(other, good);
        let (flood, good) = futures::future::join(flood, good).await;
        assert!(good.is_ok(), "the other address is served");
        let busy = flood
            .iter()
            .filter(|r| matches!(r, Err(VtsError::RsaBusy { .. })))
            .count();
        assert_eq!(busy, 2, "one refused at the door, one dropped for room");
        assert_eq!(pool.refused(), 2);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_handshakes_on_a_tiny_pool_complete_or_are_refused() {
    tokio::time::timeout(T, async {
        let pool = RsaPool::new(1, 0, 0);
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (a, b) = tokio::io::duplex(64 * 1024);
            let pool = pool.clone();
            let server = tokio::spawn(async move {
                let conn = VtsConnection::server(legacy_vts_config(), spec_key("server"));
                VtsStream::handshake_on(b, conn, Some(pool), Some([10, 0, 0, 9].into())).await
            });
            let client = tokio::spawn(VtsStream::connect(a, legacy_vts_config(), None));
            tasks.push((server, client));
        }
        let (mut done, mut busy) = (0u64, 0u64);
        for (server, client) in tasks {
            match server.await.unwrap() {
                Ok(_) => {
                    done += 1;
                    assert!(client.await.unwrap().is_ok());
                }
                Err(VtsError::RsaBusy { .. }) => busy += 1,
                Err(e) => panic!("unexpected failure: {e}"),
            }
        }
        assert_eq!(done + busy, 12);
        assert!(done >= 1);
        assert_eq!(pool.refused(), busy);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_leaves_while_queued_costs_no_rsa_work() {
    tokio::time::timeout(T, async {
        // Keep the only worker busy with 16 jobs of another key.
        let pool = RsaPool::new(1, 32, 0);
        let peer: Option<IpAddr> = Some([10, 0, 0, 1].into());
        let busy: Vec<_> = pending_jobs(16)
            .into_iter()
            .map(|job| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(peer, job).await.is_ok() })
            })
            .collect();
        // A client that sends M1…M5 and hangs up before the answer.
        let leaver_key = spec_key("client");
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let server = {
            let (pool, leaver_key) = (pool.clone(), leaver_key.clone());
            tokio::spawn(async move {
                let conn = VtsConnection::server(legacy_vts_config(), leaver_key);
                VtsStream::handshake_on(b, conn, Some(pool), Some([10, 0, 0, 2].into())).await
            })
        };
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = VtsConnection::client(legacy_vts_config(), None);
        let mut inbuf = BytesMut::new();
        while c.is_handshaking() {
            let out = take_output(&mut c);
            a.write_all(&out).await.unwrap();
            a.read_buf(&mut inbuf).await.unwrap();
            c.receive(&mut inbuf).unwrap();
        }
        let m5 = take_output(&mut c);
        a.write_all(&m5).await.unwrap();
        drop(a);
        let r = server.await.unwrap();
        assert!(matches!(r, Err(VtsError::BadHandshake(_))), "{:?}", r.err());
        let still_busy = busy.iter().filter(|t| !t.is_finished()).count();
        for t in busy {
            assert!(t.await.unwrap());
        }
        // Meaningful only if the leaver's job was still queued when it left.
        assert!(still_busy > 0, "the worker finished the other jobs first");
        assert_eq!(leaver_key.private_ops(), 0, "the abandoned job did not run");
    })
    .await
    .unwrap();
}
