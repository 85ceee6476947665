//! Hostile peers against a real server on 127.0.0.1:0: malformed VOP lines
//! (`docs/protocol/vop-service.md` §2.4, §2.6), bad VEC input (`docs/protocol/vec.md` §8.2, §8.4) and VOL
//! protocol violations (`docs/protocol/vol.md` §2.4, §3.9).
//!
//! Each case uses a raw TCP peer (`support/raw_peer.rs`) and asserts the
//! spec's reaction: a silent close (EOF or reset within a deadline, nothing
//! written in response) for structural violations, CALL_ERROR with the link
//! still usable for call-level problems, "ignored" for stale ids. After every
//! case a normal `versile::Client` must still connect and echo, and no panic
//! may have happened inside the library (a panic hook records panics whose
//! location is under `src/`).

mod support;
use support::calls::assert_new_link_echoes;
use support::servers::serve_plain;

use std::net::SocketAddr;
use std::sync::{Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use support::raw_peer::{
    msg, s, tuple, vol_hello, Closed, RawPeer, VEC_HELLO, VOP_ANSWER_PLAIN, VOP_PLAIN,
};
use tokio::io::AsyncWriteExt;
use versile::demo::SimpleGateway;
use versile::server::Server;
use versile::vec::{Entity, WireRef};

static LIB_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Record panics raised in library code (`src/`), then run the default hook.
fn install_panic_hook() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                if loc.file().starts_with("src/") || loc.file().contains("/src/") {
                    LIB_PANICS
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(format!("{info}"));
                }
            }
            default(info)
        }));
    });
}

async fn start_server() -> Server {
    install_panic_hook();
    serve_plain(SimpleGateway::new).await
}

/// A normal client can still connect and echo; no library panic so far.
async fn assert_healthy(addr: SocketAddr, case: &str) {
    assert_new_link_echoes(addr, "still fine", case).await;
    let panics = LIB_PANICS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(panics.is_empty(), "{case}: library panicked: {panics:?}");
}

/// Run one case with an overall deadline, then the health check.
macro_rules! case {
    ($addr:expr, $name:expr, $body:expr) => {{
        tokio::time::timeout(Duration::from_secs(20), $body)
            .await
            .unwrap_or_else(|_| panic!("{}: case timed out", $name));
        assert_healthy($addr, $name).await;
    }};
}

// ---------------------------------------------------------------------------
// VOP (`docs/protocol/vop-service.md` §2.4 table, §2.6)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vop_malformed_lines() {
    let server = start_server().await;
    let addr = server.local_addr();
    // Rows of the §2.4 table that must close without an answer. Our server
    // enables only PLAIN, so the "no overlap" row is a VTS-only hello.
    let rows: &[(&str, &[u8])] = &[
        ("duplicate", b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN:PLAIN\n"),
        ("lower case", b"VOP_DRAFT-0.8 TRANSPORTS:plain\n"),
        ("unknown token", b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN:FOO\n"),
        ("empty list", b"VOP_DRAFT-0.8 TRANSPORTS:\n"),
        ("no colon", b"VOP_DRAFT-0.8 TRANSPORTS\n"),
        ("CRLF", b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\r\n"),
        ("other version", b"VOP_DRAFT-0.9 TRANSPORTS:PLAIN\n"),
        ("no overlap", b"VOP_DRAFT-0.8 TRANSPORTS:VTS\n"),
        ("garbage", b"\x00\xff\xfe hello\n"),
        ("empty line", b"\n"),
    ];
    for (name, line) in rows {
        case!(addr, name, async {
            let mut p = RawPeer::connect(addr).await;
            p.send_raw(line).await.unwrap();
            p.expect_silent_close(name).await;
        });
    }

    // Valid rows: answered (order of client tokens irrelevant, §2.3).
    for line in [
        &b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\n"[..],
        b"VOP_DRAFT-0.8 TRANSPORTS:VTS:TLS:PLAIN\n",
        b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN:TLS:VTS\n",
    ] {
        case!(addr, "valid line", async {
            let mut p = RawPeer::connect(addr).await;
            p.send_raw(line).await.unwrap();
            assert_eq!(p.read_line().await, VOP_ANSWER_PLAIN);
        });
    }

    // 64 bytes without LF: closed at once, without waiting for EOF.
    case!(addr, "64 bytes", async {
        let mut p = RawPeer::connect(addr).await;
        p.send_raw(&[b'A'; 64]).await.unwrap();
        p.expect_silent_close("64 bytes without LF").await;
    });
    // 63 bytes without LF: still open, still waiting.
    case!(addr, "63 bytes", async {
        let mut p = RawPeer::connect(addr).await;
        p.send_raw(&[b'A'; 63]).await.unwrap();
        p.expect_open(Duration::from_millis(500), "63 bytes without LF")
            .await;
    });
    // A valid hello dribbled byte by byte works (§2.4).
    case!(addr, "dribble", async {
        let mut p = RawPeer::connect(addr).await;
        for b in VOP_PLAIN {
            p.send_raw(&[*b]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(p.read_line().await, VOP_ANSWER_PLAIN);
    });
    // EOF mid-line: closes without an answer.
    case!(addr, "EOF mid-line", async {
        let mut p = RawPeer::connect(addr).await;
        p.send_raw(b"VOP_DRAFT-0.8 TRANSP").await.unwrap();
        p.stream.shutdown().await.unwrap();
        p.expect_silent_close("EOF mid-line").await;
    });
    // EOF before anything.
    case!(addr, "EOF at once", async {
        let mut p = RawPeer::connect(addr).await;
        p.stream.shutdown().await.unwrap();
        p.expect_silent_close("EOF at once").await;
    });
}

// ---------------------------------------------------------------------------
// VEC (`docs/protocol/vec.md` §8.2, §8.4)
// ---------------------------------------------------------------------------

/// After the VEC hellos the server's first entity is its VOL hello; read it,
/// send `bytes`, expect a silent close.
async fn vec_garbage(addr: SocketAddr, name: &str, bytes: &[u8]) {
    let mut p = RawPeer::vec_hello(addr).await;
    let _server_vol_hello = p.recv().await;
    p.send_raw(bytes).await.unwrap();
    p.expect_silent_close(name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vec_hostile_input() {
    let server = start_server().await;
    let addr = server.local_addr();

    for (name, line) in [
        ("bad VEC name", &b"VEX_DRAFT-0.8-utf8\n"[..]),
        ("VEC version", b"VEC_DRAFT-0.9-utf8\n"),
        ("VEC codec", b"VEC_DRAFT-0.8-latin1\n"),
        ("VEC CRLF", b"VEC_DRAFT-0.8-utf8\r\n"),
        ("VEC empty codec", b"VEC_DRAFT-0.8-\n"),
        ("VEC 32 bytes no LF", &[b'V'; 32]),
    ] {
        case!(addr, name, async {
            let mut p = RawPeer::vop_plain(addr).await;
            p.send_raw(line).await.unwrap();
            // The server's own VEC hello may already be out; nothing else.
            match p.wait_closed(Duration::from_secs(5)).await {
                Closed::Yes(b) if b.is_empty() || b == VEC_HELLO => {}
                other => panic!("{name}: {other:?}"),
            }
        });
    }

    case!(addr, "type code FF", vec_garbage(addr, "FF", &[0xFF]));
    case!(
        addr,
        "garbage after valid",
        vec_garbage(addr, "garbage", &[0xF6, 0x01, 0xFF, 0x00])
    );
    case!(addr, "truncated then EOF", async {
        let mut p = RawPeer::vec_hello(addr).await;
        let _ = p.recv().await;
        // A 3-tuple with only its first element.
        p.send_raw(&[0xF6, 0x03, 0x02]).await.unwrap();
        p.stream.shutdown().await.unwrap();
        p.expect_silent_close("truncated").await;
    });
    // Huge declared lengths: refused before any allocation (the server
    // stays healthy, checked by case!).
    let mut huge_bytes = vec![0xF3];
    huge_bytes.extend(posint(1 << 40));
    case!(addr, "F3 2^40", vec_garbage(addr, "F3 2^40", &huge_bytes));
    let mut huge_tuple = vec![0xF6];
    huge_tuple.extend(posint(1 << 40));
    case!(addr, "F6 2^40", vec_garbage(addr, "F6 2^40", &huge_tuple));
    let mut huge_str = vec![0xF4];
    huge_str.extend(posint(u64::MAX / 2));
    case!(addr, "F4 2^63", vec_garbage(addr, "F4 2^63", &huge_str));
    // Deep nesting: 10,000 × (F6 01) closes without a stack overflow.
    let deep: Vec<u8> = std::iter::repeat_n([0xF6u8, 0x01], 10_000)
        .flatten()
        .collect();
    case!(addr, "deep nesting", vec_garbage(addr, "deep", &deep));

    // F4 strings although we announced no codec (`docs/protocol/vec.md` §8.3): the VOL
    // hello written with F4 strings is undecodable → close; written with F5
    // strings it is accepted (control).
    case!(addr, "F4 without codec", async {
        let mut p = RawPeer::vop_plain(addr).await;
        p.send_raw(b"VEC_DRAFT-0.8\n").await.unwrap();
        assert_eq!(p.read_line().await, VEC_HELLO);
        let _ = p.recv().await;
        p.send(&vol_hello()).await; // F4 strings (EncodeConfig::LINK)
        p.expect_silent_close("F4 without codec").await;
    });
    case!(addr, "F5 without codec", async {
        let mut p = RawPeer::vop_plain(addr).await;
        p.send_raw(b"VEC_DRAFT-0.8\n").await.unwrap();
        assert_eq!(p.read_line().await, VEC_HELLO);
        let _ = p.recv().await;
        let mut out = bytes::BytesMut::new();
        let plain = versile::vec::EncodeConfig {
            str_encoding: None,
            allow_refs: true,
        };
        versile::vec::encode(&vol_hello(), &plain, &mut out).unwrap();
        p.send_raw(&out).await.unwrap();
        // Accepted: the server's handshake object follows.
        assert_eq!(p.recv().await, Entity::Ref(WireRef::SenderOwned(1)));
    });
}

/// Unsigned netbytes (`docs/protocol/vec.md` §1.1) of `v`.
fn posint(v: u64) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    versile::vec::netbytes::encode_posint_u64(v, &mut out);
    out.to_vec()
}

// ---------------------------------------------------------------------------
// VOL (`docs/protocol/vol.md` §2.2, §2.3, §2.4, §3.9)
// ---------------------------------------------------------------------------

fn hello_with(f: impl FnOnce(&mut Vec<Entity>)) -> Entity {
    let Entity::Tuple(mut items) = vol_hello() else {
        unreachable!()
    };
    f(&mut items);
    Entity::Tuple(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vol_bad_hello_and_handshake() {
    let server = start_server().await;
    let addr = server.local_addr();
    let bad_hellos: Vec<(&str, Entity)> = vec![
        ("name as string", hello_with(|h| h[0] = s("VOL_DRAFT"))),
        (
            "other name",
            hello_with(|h| h[0] = Entity::Bytes(Bytes::from_static(b"VOL_DRAFX"))),
        ),
        (
            "version (0, 9)",
            hello_with(|h| h[2] = tuple(vec![Entity::Int(0), Entity::Int(9)])),
        ),
        (
            "version (0, 8, 0)",
            hello_with(|h| h[2] = tuple(vec![Entity::Int(0), Entity::Int(8), Entity::Int(0)])),
        ),
        (
            "ftp url",
            hello_with(|h| h[1] = tuple(vec![Entity::Bool(true), s("x"), s("ftp://x")])),
        ),
        (
            "integer copyleft flag",
            hello_with(|h| h[1] = tuple(vec![Entity::Int(1), s("x"), s("http://x")])),
        ),
        (
            "strings with false",
            hello_with(|h| h[1] = tuple(vec![Entity::Bool(false), s("x"), s("http://x")])),
        ),
        (
            "2-tuple",
            tuple(vec![Entity::Bytes(Bytes::from_static(b"VOL_DRAFT"))]),
        ),
        ("not a tuple", Entity::Int(7)),
        ("message triple", msg(1, 9, Entity::None)),
    ];
    for (name, hello) in bad_hellos {
        case!(addr, name, async {
            let mut p = RawPeer::vec_hello(addr).await;
            let _server_hello = p.recv().await;
            p.send(&hello).await;
            // No handshake object may follow (`docs/protocol/vol.md` §2.4).
            p.expect_silent_close(name).await;
        });
    }
    // (false, None, None) is a valid licence (§2.2).
    case!(addr, "not copyleft accepted", async {
        let mut p = RawPeer::vec_hello(addr).await;
        let _ = p.recv().await;
        p.send(&hello_with(|h| {
            h[1] = tuple(vec![Entity::Bool(false), Entity::None, Entity::None])
        }))
        .await;
        assert_eq!(p.recv().await, Entity::Ref(WireRef::SenderOwned(1)));
    });

    // Second entity not an FC reference (§2.1 H5).
    for (name, second) in [
        ("message as 2nd entity", msg(1, 9, Entity::None)),
        ("FD as 2nd entity", Entity::Ref(WireRef::ReceiverOwned(1))),
        ("int as 2nd entity", Entity::Int(2)),
    ] {
        case!(addr, name, async {
            let mut p = RawPeer::vol_hello(addr).await;
            assert_eq!(p.recv().await, Entity::Ref(WireRef::SenderOwned(1)));
            p.send(&second).await;
            p.expect_silent_close(name).await;
        });
    }

    // Misuse of the handshake object (§2.3): second finish, keep_alive(0),
    // unknown method → force-close.
    for (name, args) in [
        ("second finish", vec![s("finish")]),
        ("keep_alive(0)", vec![s("keep_alive"), Entity::Int(0)]),
        ("keep_alive(-5)", vec![s("keep_alive"), Entity::Int(-5)]),
        ("keep_alive(str)", vec![s("keep_alive"), s("x")]),
        ("unknown hs method", vec![s("bogus")]),
    ] {
        case!(addr, name, async {
            let mut p = RawPeer::handshake(addr).await;
            let hs = p.server_hs;
            p.call(hs, args).await;
            p.expect_silent_close(name).await;
        });
    }
}

/// Builds a hostile message from the peer's handshake state.
type BuildMsg = Box<dyn Fn(&RawPeer) -> Entity + Send + Sync>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vol_message_violations() {
    let server = start_server().await;
    let addr = server.local_addr();

    // Structural violations → silent close (§3.9).
    let closing: Vec<(&str, BuildMsg)> = vec![
        ("code 0", Box::new(|_| msg(50, 0, Entity::None))),
        ("code 10", Box::new(|_| msg(50, 10, Entity::None))),
        ("not a tuple", Box::new(|_| Entity::Int(5))),
        (
            "2-tuple",
            Box::new(|_| tuple(vec![Entity::Int(50), Entity::Int(9)])),
        ),
        (
            "msg_id string",
            Box::new(|_| tuple(vec![s("x"), Entity::Int(9), Entity::None])),
        ),
        (
            "call payload not 2-tuple",
            Box::new(|p| {
                msg(
                    50,
                    1,
                    tuple(vec![Entity::Ref(WireRef::ReceiverOwned(p.server_gw))]),
                )
            }),
        ),
        (
            "call target FC",
            Box::new(|_| {
                msg(
                    50,
                    1,
                    tuple(vec![
                        Entity::Ref(WireRef::SenderOwned(2)),
                        tuple(vec![s("echo"), s("x")]),
                    ]),
                )
            }),
        ),
        (
            "call target int",
            Box::new(|_| msg(50, 1, tuple(vec![Entity::Int(2), tuple(vec![s("echo")])]))),
        ),
        (
            "call args not tuple",
            Box::new(|p| {
                msg(
                    50,
                    1,
                    tuple(vec![
                        Entity::Ref(WireRef::ReceiverOwned(p.server_gw)),
                        s("echo"),
                    ]),
                )
            }),
        ),
        (
            "call on unknown FD",
            Box::new(|_| {
                msg(
                    50,
                    1,
                    tuple(vec![
                        Entity::Ref(WireRef::ReceiverOwned(999)),
                        tuple(vec![s("echo"), s("x")]),
                    ]),
                )
            }),
        ),
        (
            "unknown FD in args",
            Box::new(|p| {
                msg(
                    50,
                    1,
                    tuple(vec![
                        Entity::Ref(WireRef::ReceiverOwned(p.server_gw)),
                        tuple(vec![s("echo"), Entity::Ref(WireRef::ReceiverOwned(77))]),
                    ]),
                )
            }),
        ),
        (
            "KEEP_ALIVE with payload",
            Box::new(|_| msg(50, 9, Entity::Int(1))),
        ),
        (
            "CALL_RESULT malformed",
            Box::new(|_| msg(50, 4, Entity::Int(3))),
        ),
        ("CALL_ERROR not int", Box::new(|_| msg(50, 6, s("x")))),
        (
            "NOTIFY_DEREF malformed",
            Box::new(|_| msg(50, 7, Entity::Int(3))),
        ),
        ("CONFIRM_DEREF not int", Box::new(|_| msg(50, 8, s("x")))),
    ];
    for (name, build) in &closing {
        case!(addr, name, async {
            let mut p = RawPeer::handshake(addr).await;
            let m = build(&p);
            p.send(&m).await;
            p.expect_silent_close(name).await;
        });
    }

    // Stale ids → ignored; the link stays usable (§3.9, §5.2).
    let ignored: Vec<(&str, Entity)> = vec![
        (
            "NOTIFY_DEREF never handed out",
            msg(50, 7, tuple(vec![Entity::Int(999), Entity::Int(1)])),
        ),
        (
            "NOTIFY_DEREF (0, 0)",
            msg(50, 7, tuple(vec![Entity::Int(0), Entity::Int(0)])),
        ),
        (
            "NOTIFY_DEREF wrong count",
            msg(50, 7, tuple(vec![Entity::Int(2), Entity::Int(5)])),
        ),
        ("CONFIRM_DEREF unknown", msg(50, 8, Entity::Int(999))),
        (
            "CALL_RESULT unknown call",
            msg(50, 4, tuple(vec![Entity::Int(12345), Entity::None])),
        ),
        ("CALL_ERROR unknown call", msg(50, 6, Entity::Int(12345))),
        ("KEEP_ALIVE None", msg(50, 9, Entity::None)),
        (
            "huge msg_id",
            tuple(vec![
                Entity::int(num_bigint::BigInt::from(1) << 70),
                Entity::Int(9),
                Entity::None,
            ]),
        ),
    ];
    for (name, m) in ignored {
        case!(addr, name, async {
            let mut p = RawPeer::handshake(addr).await;
            p.send(&m).await;
            p.assert_echo(name).await;
        });
    }

    // Call-level problems → CALL_ERROR, link alive (§3.9, §4.1).
    let call_errors: Vec<(&str, Vec<Entity>)> = vec![
        ("method name int", vec![Entity::Int(5)]),
        (
            "method name bytes",
            vec![Entity::Bytes(Bytes::from_static(b"echo"))],
        ),
        ("empty args", vec![]),
        ("(None,)", vec![Entity::None]),
        ("meta name int", vec![Entity::None, Entity::Int(1)]),
        ("unknown method", vec![s("nope")]),
        ("unknown meta", vec![Entity::None, s("nope")]),
        ("wrong arity", vec![s("echo")]),
    ];
    for (name, args) in call_errors {
        case!(addr, name, async {
            let mut p = RawPeer::handshake(addr).await;
            let gw = p.server_gw;
            let id = p.call(gw, args).await;
            assert_eq!(p.reply(id).await, (6, Entity::Int(id)), "{name}");
            p.assert_echo(name).await;
        });
    }

    // A huge msg_id on a call is quoted back unchanged (§3.1).
    case!(addr, "huge call id", async {
        let mut p = RawPeer::handshake(addr).await;
        let big = Entity::int(num_bigint::BigInt::from(1) << 70);
        let gw = p.server_gw;
        p.send(&tuple(vec![
            big.clone(),
            Entity::Int(1),
            tuple(vec![
                Entity::Ref(WireRef::ReceiverOwned(gw)),
                tuple(vec![s("echo"), s("big")]),
            ]),
        ]))
        .await;
        let reply = p.recv().await;
        assert_eq!(
            reply.as_tuple().unwrap()[2],
            tuple(vec![big, s("big")]),
            "result quotes the big id"
        );
        p.assert_echo("huge call id").await;
    });

    // Many connections at once that never finish the handshake must not
    // starve a normal client (`docs/protocol/vol.md` §2.4, §6.3).
    case!(addr, "stalled handshakes", async {
        let mut stalled = Vec::new();
        for _ in 0..8 {
            let mut p = RawPeer::vol_hello(addr).await;
            p.send(&Entity::Ref(WireRef::SenderOwned(1))).await;
            stalled.push(p);
        }
        assert_healthy(addr, "during stalled handshakes").await;
        drop(stalled);
    });
}
