//! TraceLayer: a span per connection with the peer and transport; events
//! for the handshake and the close.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower::{service_fn, Layer, ServiceExt};
use versile_middleware::trace::TraceLayer;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn span_and_events() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let svc = TraceLayer::new().layer(service_fn(|c| toy(c, OnClose::Honour)));
    let (c, client) = conn("198.51.100.1:7");
    let mut client = BufReader::new(client);
    client.get_mut().write_all(b"hello\n").await.unwrap();
    let mut echo = String::new();
    let run = svc.clone().oneshot(c);
    tokio::pin!(run);
    tokio::select! {
        _ = &mut run => panic!("ended early"),
        r = client.read_line(&mut echo) => { r.unwrap(); }
    }
    drop(client);
    let out = tokio::time::timeout(BOUND, run).await.unwrap().unwrap();
    assert_eq!(out, "eof");

    // A connection that never handshakes.
    let (c, client) = conn("198.51.100.2:7");
    drop(client);
    assert!(svc.oneshot(c).await.is_err());

    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("connection{peer=198.51.100.1:7"), "{text}");
    assert!(
        text.contains("transport=\"toy\"") || text.contains("transport=toy"),
        "{text}"
    );
    assert!(text.contains("established"), "{text}");
    assert!(text.contains("closed"), "{text}");
    assert!(text.contains("handshake failed"), "{text}");
    assert!(text.contains("198.51.100.2:7"), "{text}");
}
