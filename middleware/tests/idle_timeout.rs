//! IdleTimeoutLayer: established connections without calls are closed;
//! calls (not keep-alive traffic) reset the clock.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::time::Instant;
use tower::{service_fn, Layer, ServiceExt};
use versile_middleware::idle::{IdleTimeout, IdleTimeoutLayer};

/// Send a line and wait for its echo (so the report has been made).
async fn say(client: &mut BufReader<DuplexStream>, line: &str) {
    client.get_mut().write_all(line.as_bytes()).await.unwrap();
    let mut echo = String::new();
    client.read_line(&mut echo).await.unwrap();
    assert_eq!(echo, line);
}

fn start(
    layer: IdleTimeoutLayer,
    on_close: OnClose,
) -> (
    BufReader<DuplexStream>,
    tokio::task::JoinHandle<Result<String, versile_middleware::BoxError>>,
) {
    let svc = layer.layer(service_fn(move |c| toy(c, on_close)));
    let (c, client) = conn("192.0.2.1:1");
    (BufReader::new(client), tokio::spawn(svc.oneshot(c)))
}

#[tokio::test(start_paused = true)]
async fn calls_reset_the_clock() {
    let (mut client, running) = start(
        IdleTimeoutLayer::new(Duration::from_secs(10)),
        OnClose::Honour,
    );
    say(&mut client, "hello\n").await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    say(&mut client, "call\n").await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    say(&mut client, "call\n").await;
    assert!(!running.is_finished());
    let out = tokio::time::timeout(BOUND, running).await.unwrap().unwrap();
    assert_eq!(out.unwrap(), "closed: idle");
    // Closed 10 s after the last call, at 16 s.
    assert_eq!(t0.elapsed(), Duration::from_secs(26));
}

#[tokio::test(start_paused = true)]
async fn calls_in_flight_keep_the_connection() {
    let (mut client, running) = start(
        IdleTimeoutLayer::new(Duration::from_secs(10)),
        OnClose::Honour,
    );
    say(&mut client, "hello\n").await;
    say(&mut client, "begin\n").await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!running.is_finished());
    say(&mut client, "end\n").await;
    let t_end = Instant::now();
    let out = tokio::time::timeout(BOUND, running).await.unwrap().unwrap();
    assert_eq!(out.unwrap(), "closed: idle");
    assert!(t_end.elapsed() >= Duration::from_secs(10));
    assert!(t_end.elapsed() <= Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn keep_alive_traffic_does_not_count_unless_asked() {
    let (mut client, running) = start(
        IdleTimeoutLayer::new(Duration::from_secs(10)),
        OnClose::Honour,
    );
    say(&mut client, "hello\n").await;
    let t0 = Instant::now();
    let pinger = tokio::spawn(async move {
        for _ in 0..30 {
            if client.get_mut().write_all(b"ping\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let out = tokio::time::timeout(BOUND, running).await.unwrap().unwrap();
    assert_eq!(out.unwrap(), "closed: idle");
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    pinger.abort();

    let layer = IdleTimeoutLayer::new(Duration::from_secs(10)).count_traffic(true);
    let (mut client, running) = start(layer, OnClose::Honour);
    say(&mut client, "hello\n").await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        say(&mut client, "ping\n").await;
    }
    assert!(!running.is_finished());
    drop(client);
    let out = tokio::time::timeout(BOUND, running).await.unwrap().unwrap();
    assert_eq!(out.unwrap(), "eof");
}

#[tokio::test(start_paused = true)]
async fn a_connection_ignoring_the_close_request_is_dropped_after_the_grace() {
    let layer = IdleTimeoutLayer::new(Duration::from_secs(10)).grace(Duration::from_secs(3));
    let (mut client, running) = start(layer, OnClose::Ignore);
    say(&mut client, "hello\n").await;
    let t0 = Instant::now();
    let err = tokio::time::timeout(BOUND, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.is::<IdleTimeout>());
    assert_eq!(t0.elapsed(), Duration::from_secs(13));
}

#[tokio::test(start_paused = true)]
async fn the_clock_starts_at_established() {
    let (mut client, running) = start(
        IdleTimeoutLayer::new(Duration::from_secs(10)),
        OnClose::Honour,
    );
    // A slow handshake is not idleness (the handshake deadline's job).
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert!(!running.is_finished());
    say(&mut client, "hello\n").await;
    let t0 = Instant::now();
    let out = tokio::time::timeout(BOUND, running).await.unwrap().unwrap();
    assert_eq!(out.unwrap(), "closed: idle");
    assert!(t0.elapsed() <= Duration::from_secs(10));
}
