//! HandshakeDeadlineLayer: silent and trickling clients are dropped at the
//! deadline; established connections are not.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceExt};
use versile_middleware::deadline::{HandshakeDeadlineLayer, HandshakeTimeout};
use versile_middleware::SimpleConnection;

fn service() -> impl tower::Service<
    SimpleConnection,
    Response = String,
    Error = versile_middleware::BoxError,
    Future = impl std::future::Future + Send,
> + Clone {
    HandshakeDeadlineLayer::new(Duration::from_secs(10))
        .layer(service_fn(|c| toy(c, OnClose::Honour)))
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_dropped_at_the_deadline() {
    let (c, mut client) = conn("192.0.2.1:1");
    let started = Instant::now();
    let err = tokio::time::timeout(BOUND, service().oneshot(c))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        *downcast::<HandshakeTimeout>(&err),
        HandshakeTimeout {
            after: Duration::from_secs(10)
        }
    );
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    // The stream was closed.
    let mut buf = Vec::new();
    assert_eq!(client.read_to_end(&mut buf).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_trickling_client_is_dropped_at_the_same_deadline() {
    let (c, mut client) = conn("192.0.2.1:1");
    // One byte a second, never a full line: every byte "makes progress".
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if client.write_all(b"v").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let started = Instant::now();
    let err = tokio::time::timeout(BOUND, service().oneshot(c))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is::<HandshakeTimeout>());
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    tokio::time::timeout(BOUND, trickle).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn no_deadline_after_established() {
    let (c, mut client) = conn("192.0.2.1:1");
    let running = tokio::spawn(service().oneshot(c));
    tokio::time::sleep(Duration::from_secs(9)).await;
    client.write_all(b"hello\n").await.unwrap();
    // Long past the deadline, the connection still works.
    tokio::time::sleep(Duration::from_secs(60)).await;
    client.write_all(b"ping\n").await.unwrap();
    let mut echo = [0u8; 11];
    client.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"hello\nping\n");
    assert!(!running.is_finished());
    drop(client);
    let out = tokio::time::timeout(BOUND, running).await.unwrap().unwrap();
    assert_eq!(out.unwrap(), "eof");
}

#[tokio::test(start_paused = true)]
async fn signals_inserted_by_an_outer_layer_are_reused() {
    // Two deadline layers share one set of signals: the inner, shorter
    // one wins, and establishing disarms both.
    let svc = HandshakeDeadlineLayer::new(Duration::from_secs(30)).layer(
        HandshakeDeadlineLayer::new(Duration::from_secs(5))
            .layer(service_fn(|c| toy(c, OnClose::Honour))),
    );
    let (c, mut client) = conn("192.0.2.1:1");
    client.write_all(b"hello\n").await.unwrap();
    let running = tokio::spawn(svc.oneshot(c));
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert!(!running.is_finished());
    drop(client);
    assert_eq!(
        tokio::time::timeout(BOUND, running)
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
        "eof"
    );
}
