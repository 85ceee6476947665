//! Every example in `examples/` run as users would: started on an
//! ephemeral loopback port, used with `versile call` (and HTTP where it
//! serves HTTP), stopped with SIGINT; each must exit 0 in time.

mod support;

use std::time::Duration;

use support::http::{http_get, metric};
use support::procs::*;

#[test]
fn echo_server_answers_versile_call() {
    let mut p = Proc::spawn(example("echo_server"), &["127.0.0.1:0"]);
    let addr = p.wait_vop_addr();
    let (ok, out, err) = versile_call(&[&format!("vop://{addr}/"), "echo", "\"hello\""]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "\"hello\"");
    p.signal_expect_success("-INT");
}

#[test]
fn typed_adder_calls_itself_and_answers_versile_call() {
    let mut p = Proc::spawn(example("typed_adder"), &["127.0.0.1:0"]);
    let addr = p.wait_vop_addr();
    // Its own typed client: values, the remote exception, the total.
    assert_eq!(p.wait_for("client: add(2) = "), "2");
    assert_eq!(p.wait_for("client: add(3) = "), "5");
    let overflow = p.wait_for("client: add(i64::MAX) ");
    assert!(
        overflow.starts_with("failed: remote exception: VException(\"overflow\", 5, "),
        "{overflow}"
    );
    assert_eq!(p.wait_for("client: total() = "), "5");
    // A new connection gets its own Adder.
    let (ok, out, err) = versile_call(&[&format!("vop://{addr}/"), "add", "5"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "5");
    p.signal_expect_success("-INT");
}

#[test]
fn custom_middleware_tags_the_call_context() {
    let mut p = Proc::spawn(example("custom_middleware"), &["127.0.0.1:0"]);
    let addr = p.wait_vop_addr();
    let (ok, out, err) = versile_call(&[&format!("vop://{addr}/"), "tenant"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "\"local\"");
    p.signal_expect_success("-INT");
}

#[test]
fn axum_embed_serves_both_and_one_signal_stops_both() {
    let mut p = Proc::spawn(example("axum_embed"), &["127.0.0.1:0", "127.0.0.1:0"]);
    let vop = p.wait_vop_addr();
    let http = p
        .wait_for("http on http://")
        .trim_end_matches('/')
        .to_owned();
    let (code, body) = http_get(&http, "/");
    assert_eq!((code, body.as_str()), (200, "versile beside axum\n"));
    assert_eq!(http_get(&http, "/readyz"), (200, "accepting\n".into()));
    let (ok, out, err) = versile_call(&[&format!("vop://{vop}/math/adder/"), "add", "5"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "5");
    let (code, body) = http_get(&http, "/links");
    assert_eq!(
        (code, body.trim()),
        (200, "0"),
        "links after the call ended"
    );
    p.signal_expect_success("-INT");
    // Both listeners are gone.
    assert!(std::net::TcpStream::connect(&http).is_err());
    assert!(std::net::TcpStream::connect(&vop).is_err());
}

#[test]
fn production_stack_serves_metrics_and_logs_json() {
    let mut p = Proc::spawn(example("production_stack"), &["127.0.0.1:0", "127.0.0.1:0"]);
    let vop = p.wait_vop_addr();
    let metrics = p.wait_for("metrics on http://");
    let metrics_addr = metrics.trim_end_matches("/metrics").to_owned();
    let (ok, out, err) = versile_call(&[&format!("vop://{vop}/"), "echo", "[1, 2]"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "[1,2]");
    let (code, page) = http_get(&metrics_addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metric(&page, "versile_connections_accepted_total") >= 1.0,
        "{page}"
    );
    assert!(
        metric(&page, "versile_calls_received_total") >= 1.0,
        "{page}"
    );
    assert_eq!(http_get(&metrics_addr, "/other").0, 404);
    assert_eq!(http_get(&metrics_addr, "/readyz").0, 200);
    assert_eq!(http_get(&metrics_addr, "/healthz").0, 200);
    let stderr = p.signal_expect_success("-INT");
    let first = stderr.lines().next().unwrap_or_default();
    let log: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    assert_eq!(log["fields"]["message"], "serving");
}

#[test]
fn soak_runs_briefly_and_finds_the_server_clean() {
    // A short soak (examples/soak): clients, injected faults, then the
    // end-of-run checks (no panic or failure, links and gauges at zero,
    // no task left, RSS back near the start). The program bounds itself;
    // the limit here only guards against a hang.
    let mut p = Proc::spawn(
        example("soak"),
        &["5", "--clients", "40", "--report-every", "5", "--seed", "7"],
    );
    let (status, stderr) = p.wait_exit(Duration::from_secs(180));
    let mut out = String::new();
    while let Some(line) = p.next_line(Duration::from_secs(1)) {
        out.push_str(&line);
        out.push('\n');
    }
    assert!(
        status.success(),
        "soak exited with {status}:\n{out}\n{stderr}"
    );
    assert!(out.contains("soak: PASS"), "{out}");
}
