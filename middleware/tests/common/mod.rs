//! Shared helpers for the layer tests: in-memory connections and a toy
//! terminal service that reports to the connection signals.
#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use versile_middleware::{
    BoxError, ConnectionRequest, ConnectionSignals, LinkCounters, SimpleConnection,
};

/// Every test wait is bounded by this.
pub const BOUND: Duration = Duration::from_secs(60);

/// A connection from `peer` over an in-memory pipe; the other end is the
/// client's.
pub fn conn(peer: &str) -> (SimpleConnection, DuplexStream) {
    let (server, client) = tokio::io::duplex(4096);
    let peer = peer.parse().expect("test address");
    let c = SimpleConnection::new(
        Box::pin(server),
        Some(peer),
        Some("127.0.0.1:4433".parse().expect("addr")),
    );
    (c, client)
}

/// How the toy terminal treats close requests from layers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnClose {
    Honour,
    Ignore,
}

/// A toy line protocol: the first line is the handshake (then the
/// connection is established); afterwards `call` counts a finished call,
/// `begin`/`end` open and close a call in flight, anything else is mere
/// traffic (`ping`). Every line (the handshake too) is echoed. Returns why it ended.
pub async fn toy(conn: SimpleConnection, on_close: OnClose) -> Result<String, BoxError> {
    let signals = conn
        .extension::<ConnectionSignals>()
        .cloned()
        .unwrap_or_default();
    let mut c = LinkCounters::default();
    let mut reader = BufReader::new(conn.io);
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err("eof before handshake".into());
    }
    c.bytes_in += line.len() as u64;
    signals.mark_established(Some("toy"));
    reader.get_mut().write_all(line.as_bytes()).await?;
    c.bytes_out += line.len() as u64;
    signals.report(c);
    let close = async {
        match on_close {
            OnClose::Honour => signals.close_requested().await,
            OnClose::Ignore => std::future::pending().await,
        }
    };
    tokio::pin!(close);
    loop {
        line.clear();
        tokio::select! {
            r = reader.read_line(&mut line) => {
                let n = r?;
                if n == 0 {
                    return Ok("eof".into());
                }
                c.bytes_in += n as u64;
                match line.trim() {
                    "call" => c.calls_received += 1,
                    "fail" => {
                        c.calls_received += 1;
                        c.call_errors += 1;
                    }
                    "begin" => c.calls_in_flight += 1,
                    "end" => {
                        c.calls_in_flight = c.calls_in_flight.saturating_sub(1);
                        c.calls_received += 1;
                    }
                    _ => {}
                }
                reader.get_mut().write_all(line.as_bytes()).await?;
                c.bytes_out += n as u64;
                signals.report(c);
            }
            reason = &mut close => return Ok(format!("closed: {reason}")),
        }
    }
}

/// A terminal that holds the connection until the client closes it.
pub async fn hold(mut conn: SimpleConnection) -> Result<(), BoxError> {
    let mut sink = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut conn.io, &mut sink).await?;
    Ok(())
}

/// The typed error inside a layer's `BoxError`.
pub fn downcast<E: std::error::Error + 'static>(e: &BoxError) -> &E {
    e.downcast_ref::<E>()
        .unwrap_or_else(|| panic!("expected {}, got {e:?}", std::any::type_name::<E>()))
}
