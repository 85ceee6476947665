//! The client side of in-process tests: a PLAIN client, bounded connects
//! and `echo` calls, and polling until a condition holds. Every wait is
//! bounded by [`CALL_LIMIT`].

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use versile::{Client, ClientConfig, LinkHandle, RemoteObject, Value};

/// Upper bound for one connect, call or wait.
pub const CALL_LIMIT: Duration = Duration::from_secs(20);

/// A client without a secure transport (PLAIN VOP).
pub fn plain_client() -> Client {
    Client::new(ClientConfig::insecure())
}

/// A PLAIN link to `addr` (`HOST:PORT`) and the peer's gateway, or why
/// not (including a timeout).
pub async fn try_connect_plain(addr: impl Display) -> Result<(LinkHandle, RemoteObject), String> {
    match tokio::time::timeout(CALL_LIMIT, plain_client().connect(&addr.to_string())).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

/// A PLAIN link to `addr` and the peer's gateway; panics on failure.
pub async fn connect_plain(addr: impl Display) -> (LinkHandle, RemoteObject) {
    tokio::time::timeout(CALL_LIMIT, plain_client().connect(&addr.to_string()))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

/// `echo(v)` on `gw`, bounded; panics if the call fails.
pub async fn echo(gw: &RemoteObject, v: impl Into<Value>) -> Value {
    tokio::time::timeout(CALL_LIMIT, gw.call("echo", vec![v.into()]))
        .await
        .expect("call timed out")
        .expect("call failed")
}

/// `echo(v)` on `gw` answers `v`.
pub async fn assert_echoes(gw: &RemoteObject, v: impl Into<Value>) {
    let v = v.into();
    assert_eq!(echo(gw, v.clone()).await, v);
}

/// `f`, which must finish within [`CALL_LIMIT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(CALL_LIMIT, f)
        .await
        .expect("no answer in time")
}

/// Polls `cond` until it holds (bounded by [`CALL_LIMIT`]).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(CALL_LIMIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// Runs `f` to completion on a new current-thread runtime (for tests on
/// plain threads that drive a child process).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// A new PLAIN link to `addr` answers `echo(text)` with `text`, all within
/// [`CALL_LIMIT`]; `case` names the situation in the failure message.
pub async fn assert_new_link_echoes(addr: impl Display, text: &str, case: &str) {
    let run = async {
        let (_link, gw) = plain_client()
            .connect(&addr.to_string())
            .await
            .unwrap_or_else(|e| panic!("{case}: connect: {e}"));
        gw.call("echo", (text,))
            .await
            .unwrap_or_else(|e| panic!("{case}: echo: {e}"))
    };
    let v = tokio::time::timeout(CALL_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("{case}: healthy client timed out"));
    assert_eq!(v, Value::from(text), "{case}");
}
