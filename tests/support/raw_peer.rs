//! A raw VOP/VEC/VOL client for hostile tests: it speaks the protocol by
//! hand over a tokio `TcpStream`, so a test can stop at any stage and send
//! arbitrary bytes or entities.
//!
//! Stages: [`RawPeer::connect`] (TCP only) → [`RawPeer::vop_plain`] (VOP
//! PLAIN negotiated) → [`RawPeer::vec_hello`] (our `VEC_DRAFT-0.8-utf8`
//! hello sent, the server's read) → [`RawPeer::vol_hello`] (VOL hellos
//! exchanged) → [`RawPeer::handshake`] (handshake objects, both `finish`
//! calls, a keep-alive request granted as asked; the server gateway is
//! known). Every read has a timeout.
//!
//! Self-contained (no `super::`): `benches/hostile_memory.rs` includes
//! this file on its own.

#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use versile::vec::{
    self, Decoder, DecoderConfig, EncodeConfig, Entity, StrCodec, WireRef, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_ENTITY_SIZE,
};

pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub const VOP_PLAIN: &[u8] = b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\n";
pub const VOP_ANSWER_PLAIN: &[u8] = b"VOP_DRAFT-0.8 USE_TRANSPORT:PLAIN\n";
pub const VEC_HELLO: &[u8] = b"VEC_DRAFT-0.8-utf8\n";

/// How a wait for the connection to close ended.
#[derive(Debug)]
pub enum Closed {
    /// EOF or connection reset, after these bytes (usually none).
    Yes(Vec<u8>),
    /// Still open at the deadline, after these bytes.
    StillOpen(Vec<u8>),
}

pub struct RawPeer {
    pub stream: TcpStream,
    pub buf: BytesMut,
    dec: Decoder,
    next_id: i64,
    /// The server's handshake object and gateway (ids in its id space).
    pub server_hs: i64,
    pub server_gw: i64,
    /// The keep-alive interval (ms) the server requested in the handshake.
    pub keep_alive_requested: Option<i64>,
}

pub fn s(v: &str) -> Entity {
    Entity::String(v.into())
}

pub fn tuple(items: Vec<Entity>) -> Entity {
    Entity::Tuple(items)
}

pub fn msg(id: i64, code: i64, payload: Entity) -> Entity {
    tuple(vec![Entity::Int(id), Entity::Int(code), payload])
}

pub fn encode(e: &Entity) -> Vec<u8> {
    let mut out = BytesMut::new();
    vec::encode(e, &EncodeConfig::LINK, &mut out).expect("encodable");
    out.to_vec()
}

/// Python's VOL hello (`docs/protocol/vol.md` §2.2) in the `F4` string form.
pub fn vol_hello() -> Entity {
    tuple(vec![
        Entity::Bytes(Bytes::from_static(b"VOL_DRAFT")),
        tuple(vec![
            Entity::Bool(true),
            s("LGPLv3"),
            s("https://www.gnu.org/licenses/lgpl.txt"),
        ]),
        tuple(vec![Entity::Int(0), Entity::Int(8)]),
    ])
}

impl RawPeer {
    pub async fn connect(addr: SocketAddr) -> RawPeer {
        let stream = tokio::time::timeout(READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timeout")
            .expect("connect");
        stream.set_nodelay(true).unwrap();
        RawPeer {
            stream,
            buf: BytesMut::new(),
            dec: Decoder::new(DecoderConfig {
                max_entity_size: DEFAULT_MAX_ENTITY_SIZE,
                max_depth: DEFAULT_MAX_DEPTH,
                str_decoding: Some(StrCodec::Utf8),
                allow_refs: true,
                max_decoded_bytes: usize::MAX,
            }),
            next_id: 1,
            server_hs: 0,
            server_gw: 0,
            keep_alive_requested: None,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn send(&mut self, e: &Entity) {
        self.send_raw(&encode(e)).await.expect("write");
    }

    async fn fill(&mut self) -> io::Result<usize> {
        match tokio::time::timeout(READ_TIMEOUT, self.stream.read_buf(&mut self.buf)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "read timeout")),
        }
    }

    /// Read one LF-terminated line.
    pub async fn read_line(&mut self) -> Vec<u8> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                return self.buf.split_to(p + 1).to_vec();
            }
            let n = self.fill().await.expect("read line");
            assert!(n > 0, "EOF while reading a line");
        }
    }

    /// Read one entity (panics on EOF, timeout or undecodable bytes).
    pub async fn recv(&mut self) -> Entity {
        loop {
            if let Some(e) = self
                .dec
                .decode(&mut self.buf)
                .expect("server entity decodes")
            {
                return e;
            }
            let n = self.fill().await.expect("read entity");
            assert!(n > 0, "EOF while waiting for an entity");
        }
    }

    /// Read messages until the response (codes 4–6) to `call_id`; other
    /// messages (dereference traffic) are skipped. Returns `(code, payload)`.
    pub async fn reply(&mut self, call_id: i64) -> (i64, Entity) {
        loop {
            let e = self.recv().await;
            let t = e.as_tuple().expect("message tuple").to_vec();
            let code = t[1].as_i64().unwrap();
            let quoted = match code {
                4 | 5 => t[2].as_tuple().unwrap()[0].as_i64(),
                6 => t[2].as_i64(),
                _ => None,
            };
            if quoted == Some(call_id) {
                return (code, t[2].clone());
            }
        }
    }

    /// Wait until the server closes (EOF or reset) or `deadline` passes.
    pub async fn wait_closed(&mut self, deadline: Duration) -> Closed {
        let mut got = self.buf.split().to_vec();
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(end, self.stream.read(&mut chunk)).await {
                Err(_) => return Closed::StillOpen(got),
                Ok(Ok(0)) | Ok(Err(_)) => return Closed::Yes(got),
                Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Assert the server closes within 5 s without writing anything more.
    pub async fn expect_silent_close(&mut self, case: &str) {
        match self.wait_closed(Duration::from_secs(5)).await {
            Closed::Yes(b) if b.is_empty() => {}
            Closed::Yes(b) => panic!("{case}: server wrote {b:02X?} before closing"),
            Closed::StillOpen(b) => panic!("{case}: still open after 5 s (got {b:02X?})"),
        }
    }

    /// Assert the connection stays open (and silent) for `d`.
    pub async fn expect_open(&mut self, d: Duration, case: &str) {
        match self.wait_closed(d).await {
            Closed::StillOpen(b) if b.is_empty() => {}
            other => panic!("{case}: expected an open, silent connection, got {other:?}"),
        }
    }

    /// TCP + VOP PLAIN negotiated (`docs/protocol/vop-service.md` §2).
    pub async fn vop_plain(addr: SocketAddr) -> RawPeer {
        let mut p = RawPeer::connect(addr).await;
        p.send_raw(VOP_PLAIN).await.unwrap();
        assert_eq!(p.read_line().await, VOP_ANSWER_PLAIN);
        p
    }

    /// …and VEC hellos exchanged (`docs/protocol/vec.md` §8.2).
    pub async fn vec_hello(addr: SocketAddr) -> RawPeer {
        let mut p = RawPeer::vop_plain(addr).await;
        p.send_raw(VEC_HELLO).await.unwrap();
        assert_eq!(p.read_line().await, VEC_HELLO);
        p
    }

    /// …and VOL hellos exchanged (`docs/protocol/vol.md` §2.2).
    pub async fn vol_hello(addr: SocketAddr) -> RawPeer {
        let mut p = RawPeer::vec_hello(addr).await;
        p.send(&vol_hello()).await;
        let hello = p.recv().await;
        assert_eq!(hello.as_tuple().map(|t| t.len()), Some(3), "server hello");
        p
    }

    /// …and the link handshake done (`docs/protocol/vol.md` §2.1): our handshake object
    /// is `FC 1`, our gateway `FC 2`. Ends with an echo round trip so that
    /// the server's post-handshake dereference traffic has been read.
    pub async fn handshake(addr: SocketAddr) -> RawPeer {
        let mut p = RawPeer::vol_hello(addr).await;
        p.send(&Entity::Ref(WireRef::SenderOwned(1))).await;
        let Entity::Ref(WireRef::SenderOwned(hs)) = p.recv().await else {
            panic!("server handshake object is not FC")
        };
        p.server_hs = hs;
        let finish = p.call(hs, vec![s("finish")]).await;
        // Answer the server's finish; read until our finish is answered.
        let mut answered = false;
        let mut gateway = None;
        while !answered || gateway.is_none() {
            let e = p.recv().await;
            let t = e.as_tuple().expect("message").to_vec();
            let (id, code) = (t[0].as_i64().unwrap(), t[1].as_i64().unwrap());
            match code {
                1 => {
                    let payload = t[2].as_tuple().unwrap();
                    assert_eq!(payload[0], Entity::Ref(WireRef::ReceiverOwned(1)));
                    if let [name, Entity::Int(ms)] = payload[1].as_tuple().unwrap_or_default() {
                        // The server asks for keep-alive before its finish
                        // (`docs/protocol/vol.md` §2.1 H6, §8): grant exactly what it asked.
                        assert_eq!(*name, s("keep_alive"));
                        p.keep_alive_requested = Some(*ms);
                        let m = p.next_msg(4, tuple(vec![Entity::Int(id), Entity::Int(*ms)]));
                        p.send(&m).await;
                        continue;
                    }
                    assert_eq!(payload[1], tuple(vec![s("finish")]));
                    let our_gw = Entity::Ref(WireRef::SenderOwned(2));
                    let m = p.next_msg(4, tuple(vec![Entity::Int(id), our_gw]));
                    p.send(&m).await;
                    answered = true;
                }
                4 => {
                    let payload = t[2].as_tuple().unwrap();
                    assert_eq!(payload[0], Entity::Int(finish));
                    let Entity::Ref(WireRef::SenderOwned(gw)) = payload[1] else {
                        panic!("finish result is not FC")
                    };
                    gateway = Some(gw);
                }
                _ => {}
            }
        }
        p.server_gw = gateway.unwrap();
        p.assert_echo("handshake").await;
        p
    }

    /// A message with the next msg_id.
    pub fn next_msg(&mut self, code: i64, payload: Entity) -> Entity {
        let id = self.next_id;
        self.next_id += 1;
        msg(id, code, payload)
    }

    /// The msg_id the next message will get.
    pub fn peek_id(&self) -> i64 {
        self.next_id
    }

    /// Send METHOD_CALL `(FD target, args)`; returns the call id.
    pub async fn call(&mut self, target: i64, args: Vec<Entity>) -> i64 {
        let id = self.next_id;
        let m = self.next_msg(
            1,
            tuple(vec![
                Entity::Ref(WireRef::ReceiverOwned(target)),
                tuple(args),
            ]),
        );
        self.send(&m).await;
        id
    }

    /// `echo("ping")` on the server gateway must come back as a result.
    pub async fn assert_echo(&mut self, case: &str) {
        let id = self.call(self.server_gw, vec![s("echo"), s("ping")]).await;
        let (code, payload) = self.reply(id).await;
        assert_eq!(
            (code, payload),
            (4, tuple(vec![Entity::Int(id), s("ping")])),
            "{case}: echo after the case"
        );
    }
}

/// How long [`time_until_closed`] waits for a close.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(20);

/// Reads from `s` (discarding) until the server closes it; returns how
/// long that took. Panics if it is still open after [`CLOSE_LIMIT`].
pub async fn time_until_closed(mut s: TcpStream) -> Duration {
    let start = std::time::Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(CLOSE_LIMIT, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server did not close the connection"),
        }
    }
}
