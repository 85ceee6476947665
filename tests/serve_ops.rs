//! `versile serve` operations options end to end: `--config FILE` merged
//! with flags, configuration errors exit 2 naming the problem (PROXY
//! protocol without trusted balancers among them), the
//! `metrics on` line after `listening on`, JSON logs.

mod support;

use std::time::Duration;
use versile::LinkShutdown;

use support::calls::{block_on, connect_plain, plain_client};
use support::http::{http_get, metric};
use support::procs::*;

struct TempFile(std::path::PathBuf);
impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("versile-{}-{name}", std::process::id()));
        std::fs::write(&p, text).expect("write temp file");
        TempFile(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `/readyz` on `http` polled until it answers other than 200 (or
/// [`PROC_LIMIT`] passes): the last answer.
fn readyz_once_not_200(http: &str) -> (u16, String) {
    let deadline = std::time::Instant::now() + PROC_LIMIT;
    loop {
        let r = http_get(http, "/readyz");
        if r.0 != 200 || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_configuration_exits_2_with_a_clear_message() {
    let bad_key = TempFile::new("bad-key.toml", "[stack]\nmax_conections = 5\n");
    let bad_net = TempFile::new("bad-net.toml", "[stack]\ndeny = [\"10.0.0.0/40\"]\n");
    let bad_limit = TempFile::new(
        "bad-limit.toml",
        "[stack.link]\nmax_decoded_entity = \"lots\"\n",
    );
    for (args, expect) in [
        (vec!["--config", bad_key.path()], "max_conections"),
        (vec!["--config", bad_net.path()], "10.0.0.0/40"),
        (
            vec!["--config", "/nonexistent/versile.toml"],
            "cannot read config",
        ),
        (vec!["--rate-per-ip", "nan"], "rate_per_ip"),
        // Link limits (issue #7): bad sizes, 0 where off makes no sense.
        (vec!["--max-link-memory", "12MB"], "--max-link-memory"),
        (vec!["--max-exports", "0"], "--max-exports"),
        (vec!["--config", bad_limit.path()], "max_decoded_entity"),
        // PROXY protocol must be told whom to believe (issue #7).
        (vec!["--proxy-protocol"], "--proxy-trusted CIDR"),
        (vec!["--proxy-protocol"], "--proxy-trust-any"),
        (
            vec!["--proxy-trust-any"],
            "need proxy_protocol (--proxy-protocol)",
        ),
        (
            vec!["--log", "=bad=filter=", "--log-format", "json"],
            "invalid log filter",
        ),
    ] {
        let mut cmd = std::process::Command::new(versile_bin());
        cmd.args(["serve", "--insecure", "--listen", "127.0.0.1:0"])
            .args(&args);
        let mut p = Proc::spawn_cmd(&mut cmd);
        let (status, stderr) = p.wait_exit(PROC_LIMIT);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(
            p.next_line(Duration::from_millis(100)).is_none(),
            "{args:?} printed"
        );
    }
}

#[test]
fn config_file_and_flags_metrics_line_and_json_logs() {
    // The file asks for metrics, JSON logs and a per-IP limit of 1; the
    // flag raises the limit to 2.
    let cfg = TempFile::new(
        "serve.toml",
        "metrics = \"127.0.0.1:0\"\nlog_format = \"json\"\nlog = \"info\"\n\
         [stack]\nmax_connections_per_ip = 1\nhandshake_timeout = 5\n",
    );
    let mut p =
        VersileServe::start_insecure(&["--config", cfg.path(), "--max-connections-per-ip", "2"]);
    // VersileServe::start checked the first line: `listening on`.
    let addr = p.vop_addr.clone();
    let second = p.next_line(PROC_LIMIT).expect("second line");
    let metrics = second
        .strip_prefix("metrics on http://")
        .unwrap_or_else(|| panic!("second stdout line {second:?}"))
        .trim_end_matches("/metrics")
        .to_owned();

    // Two links at once are allowed (the flag won over the file).
    block_on(async {
        let client = plain_client();
        let (la, ga) = connect_plain(&addr).await;
        let (lb, gb) = connect_plain(&addr).await;
        ga.call("echo", (1,)).await.expect("echo a");
        gb.call("echo", (2,)).await.expect("echo b");
        let third = tokio::time::timeout(PROC_LIMIT, client.connect(&addr))
            .await
            .unwrap();
        assert!(third.is_err(), "third link over --max-connections-per-ip 2");
        la.shutdown(LinkShutdown::Graceful);
        lb.shutdown(LinkShutdown::Graceful);
        la.closed().await;
        lb.closed().await;
    });
    // The calls are counted when the server's side of each link ends,
    // which may be just after the client saw its own side close.
    let deadline = std::time::Instant::now() + PROC_LIMIT;
    let page = loop {
        let (code, page) = http_get(&metrics, "/metrics");
        assert_eq!(code, 200);
        let counted = metric(&page, "versile_calls_received_total") >= 2.0;
        if counted || std::time::Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        metric(&page, "versile_calls_received_total") >= 2.0,
        "{page}"
    );

    let stderr = p.terminate_expect_success();
    let mut messages = Vec::new();
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line:?}"));
        messages.push(
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert!(messages.iter().any(|m| m == "serving"), "{stderr}");
    assert!(
        messages.iter().any(|m| m.starts_with("stopping")),
        "{stderr}"
    );
}

/// A link limit from the file, lowered by a flag, is enforced by the
/// running server: with `--max-exports 4` the demo gateway's `urlget`
/// answers CALL_ERROR once the link exports 4 objects (the gateway
/// included), and the link goes on; the startup log names the limit.
#[test]
fn max_exports_flag_is_enforced_by_the_server() {
    let cfg = TempFile::new("limits.toml", "[stack.link]\nmax_exports = 64\n");
    let mut p = VersileServe::start_insecure(&[
        "--log",
        "info",
        "--config",
        cfg.path(),
        "--max-exports",
        "4",
    ]);
    let addr = p.vop_addr.clone();
    let (ok, refused) = block_on(async {
        let (link, gw) = connect_plain(&addr).await;
        // Hold every echoer, so none is released.
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..10 {
            let r = tokio::time::timeout(
                PROC_LIMIT,
                gw.call("urlget", vec![versile::Value::from(("text", "echo"))]),
            )
            .await
            .expect("urlget timed out");
            match r {
                Ok(v) => held.push(v),
                Err(versile::object::CallError::Failed(_)) => refused += 1,
                Err(e) => panic!("urlget: {e:?}"),
            }
        }
        let echoed = tokio::time::timeout(PROC_LIMIT, gw.call("echo", (7,)))
            .await
            .expect("echo timed out");
        assert_eq!(echoed.expect("link still serves"), versile::Value::from(7));
        link.shutdown(LinkShutdown::Graceful);
        link.closed().await;
        (held.len(), refused)
    });
    // The gateway (and maybe the handshake object) take 1–2 of the 4.
    assert!(
        (2..=3).contains(&ok),
        "{ok} urlget results under max_exports 4"
    );
    assert_eq!(ok + refused, 10);
    let stderr = p.terminate_expect_success();
    assert!(stderr.contains("max_exports=4"), "{stderr}");
}

/// Issue 10.1: `/healthz` and `/readyz` on the `--metrics` listener; on
/// SIGTERM `/readyz` answers 503 while a running call keeps its link
/// draining; a second SIGTERM forces the exit.
#[test]
fn sigterm_turns_readyz_503_before_exit() {
    let mut p = VersileServe::start_insecure_with_metrics(&["--drain-timeout", "60"]);
    let addr = p.vop_addr.clone();
    let http = p.metrics().to_owned();
    assert_eq!(http_get(&http, "/healthz"), (200, "accepting\n".into()));
    assert_eq!(http_get(&http, "/readyz"), (200, "accepting\n".into()));

    // A call that outlives the drain window of this test.
    let caller = std::thread::spawn(move || {
        block_on(async {
            let (_link, gw) = connect_plain(&addr).await;
            tokio::time::timeout(PROC_LIMIT * 3, gw.call("sleep", (60_000,))).await
        })
    });
    let deadline = std::time::Instant::now() + PROC_LIMIT;
    while metric(
        &http_get(&http, "/metrics").1,
        "versile_calls_received_total",
    ) < 1.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    p.signal("-TERM");
    let ready = readyz_once_not_200(&http);
    assert_eq!(ready, (503, "draining\n".into()));
    assert_eq!(http_get(&http, "/healthz").0, 200, "draining is alive");
    assert!(p.running(), "exited while the call still runs");

    p.terminate_expect_success();
    let call = caller.join().expect("caller thread");
    assert!(
        matches!(call, Ok(Err(_))),
        "the forced link must fail the call: {call:?}"
    );
}

/// `--shutdown-delay`: after SIGTERM `/readyz` answers 503 while the
/// server still accepts new links (the balancer's window to notice); a
/// second SIGTERM ends the wait, and with no link open the process exits.
#[test]
fn shutdown_delay_keeps_accepting_while_readyz_is_503() {
    let mut p = VersileServe::start_insecure_with_metrics(&["--shutdown-delay", "120"]);
    let addr = p.vop_addr.clone();
    let http = p.metrics().to_owned();
    assert_eq!(http_get(&http, "/readyz").0, 200);
    p.signal("-TERM");
    let ready = readyz_once_not_200(&http);
    assert_eq!(ready, (503, "accepting, gate closed\n".into()));
    // Still accepting: a new link is served.
    block_on(async {
        let (link, gw) = connect_plain(&addr).await;
        gw.call("echo", (7,)).await.expect("echo");
        link.shutdown(LinkShutdown::Graceful);
        tokio::time::timeout(PROC_LIMIT, link.closed())
            .await
            .unwrap();
    });
    assert!(p.running());
    p.terminate_expect_success();
}
