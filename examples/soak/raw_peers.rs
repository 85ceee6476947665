//! Raw TCP peers for the fault injector: they never complete a handshake
//! (reset, half-close, a byte at a time, garbage after the VOP or VEC
//! hello), and the server must close each of them within
//! [`MUST_CLOSE_WITHIN`] (its handshake deadline plus slack).

use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::clients::Shared;
use crate::faults::{garbage_bytes, MUST_CLOSE_WITHIN};
use crate::gateway::Rng;

const VOP_PLAIN: &[u8] = b"VOP_DRAFT-0.8 TRANSPORTS:PLAIN\n";
const VEC_HELLO: &[u8] = b"VEC_DRAFT-0.8-utf8\n";

/// Raw TCP peers that never complete a handshake.
pub async fn raw_peer(kind: &str, shared: &Shared, rng: &mut Rng) -> &'static str {
    let Ok(Ok(mut s)) = timeout(Duration::from_secs(10), TcpStream::connect(&shared.addr)).await
    else {
        shared.stats.fail("raw_connect", kind.to_owned());
        return "connect_failed";
    };
    let must_close = match kind {
        "raw_reset" => {
            let n = rng.below(VOP_PLAIN.len() as u64 + 1) as usize;
            let _ = s.write_all(&VOP_PLAIN[..n]).await;
            tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
            let _ = SockRef::from(&s).set_linger(Some(Duration::ZERO));
            return "reset";
        }
        "raw_half_close" => {
            let n = rng.below(VOP_PLAIN.len() as u64 + 1) as usize;
            let _ = s.write_all(&VOP_PLAIN[..n]).await;
            let _ = s.shutdown().await;
            true
        }
        "raw_slow_writer" => return raw_slow_writer(shared, s, rng).await,
        "raw_garbage_after_vop" | "raw_garbage_after_vec" => {
            if s.write_all(VOP_PLAIN).await.is_err() || !read_line(&mut s).await {
                return "closed_early";
            }
            if kind == "raw_garbage_after_vec" && s.write_all(VEC_HELLO).await.is_err() {
                return "closed_early";
            }
            let _ = s.write_all(&garbage_bytes(rng)).await;
            true
        }
        other => {
            shared.stats.fail("unknown_fault", other.to_owned());
            return "unknown";
        }
    };
    if must_close && !closed_within(&mut s, MUST_CLOSE_WITHIN).await {
        shared
            .stats
            .fail("raw_not_closed", format!("{kind}: server kept it open"));
        return "left_open";
    }
    "closed_by_server"
}

/// Send a VOP and VEC hello and then a VOL-hello-like tuple header one
/// byte every 50–200 ms; the handshake deadline must close it.
async fn raw_slow_writer(shared: &Shared, s: TcpStream, rng: &mut Rng) -> &'static str {
    let (mut rd, mut wr) = s.into_split();
    let gap = Duration::from_millis(rng.range(50, 200));
    let mut bytes = [VOP_PLAIN, VEC_HELLO].concat();
    // A tuple with many elements, never finished.
    bytes.extend([0xF6, 0xEF, 0xF8, 0x20]);
    bytes.extend(std::iter::repeat_n(0x01, 1000));
    let trickle = async {
        for b in bytes {
            if wr.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(gap).await;
        }
        std::future::pending::<()>().await;
    };
    let closed = async {
        let mut sink = [0u8; 1024];
        loop {
            match rd.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let r = timeout(MUST_CLOSE_WITHIN, async {
        tokio::select! {
            _ = trickle => {}
            _ = closed => {}
        }
    })
    .await;
    if r.is_err() {
        shared
            .stats
            .fail("raw_not_closed", "raw_slow_writer: server kept it open");
        return "left_open";
    }
    "closed_by_server"
}

/// Read one line (the VOP answer), bounded.
async fn read_line(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let read = async {
        let mut b = [0u8; 1];
        while buf.len() < 256 {
            match s.read(&mut b).await {
                Ok(1) => {
                    buf.push(b[0]);
                    if b[0] == b'\n' {
                        return true;
                    }
                }
                _ => return false,
            }
        }
        false
    };
    timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or(false)
}

/// Whether the peer closes (EOF or reset) within `limit`, discarding what
/// it sends.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let wait = async {
        let mut sink = [0u8; 4096];
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(limit, wait).await.is_ok()
}
