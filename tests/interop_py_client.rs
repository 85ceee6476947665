//! Interop: the Python client (Versile Python 0.8.5, `py_client.py`) against
//! OUR server, over VOP PLAIN on loopback.
//!
//! Each test starts a [`Server`] in its own tokio runtime (127.0.0.1:0,
//! `VopLayer::insecure()`, a fresh gateway per connection), runs
//! `py_client.py` on it and requires every check to pass. The gateway is the
//! Rust twin of py_server.py's TestGateway (`support::interop_gateway`); one test
//! serves `versile::demo::SimpleGateway` instead. Every scenario also runs
//! as its own test so a failure names the scenario; `all_scenarios` runs
//! them in one client process as the harness self-test does against Python.
//!
//! After the client exits (it force-closes its links), the server's link
//! registry must drain: no link may outlive its TCP connection.

mod support;

use std::time::{Duration, Instant};

use support::interop_gateway::test_gateway;
use support::python::{run_py_client, ClientReport, PyProcess};
use support::servers::ServerOnOwnRuntime;
use versile::demo::SimpleGateway;
use versile::{GatewayService, LinkOptions};

/// Limit for one py_client.py run (the client gets 5 s less internally).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Limit for the server's links to close after the client has gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client side of the interop runs against a [`ServerOnOwnRuntime`].
trait RunPyClient {
    fn run_client(&self, scenarios: &str) -> ClientReport;
    fn assert_drained(&self);
}

impl RunPyClient for ServerOnOwnRuntime {
    /// Runs py_client.py with `scenarios`, then checks that every link of
    /// the server has closed.
    fn run_client(&self, scenarios: &str) -> ClientReport {
        let started = Instant::now();
        let report = run_py_client(scenarios, &self.vri(), CLIENT_TIMEOUT);
        eprintln!(
            "py_client.py {scenarios}: {} checks passed, {} failed, {:.2?}",
            report.passed(),
            report.failed_checks().len(),
            started.elapsed()
        );
        report
    }

    fn assert_drained(&self) {
        let drained = self.rt.block_on(async {
            tokio::time::timeout(DRAIN_TIMEOUT, self.server.links().drained()).await
        });
        assert!(
            drained.is_ok(),
            "{} server link(s) still open {DRAIN_TIMEOUT:?} after the Python client exited",
            self.server.links().len()
        );
    }
}

/// Runs `scenarios` against the Rust test gateway and requires all checks
/// (and at least the named ones) to pass.
fn scenario(scenarios: &str, must_run: &[&str]) {
    let server = ServerOnOwnRuntime::start(test_gateway);
    let report = server.run_client(scenarios);
    report.assert_all_passed();
    for name in must_run {
        assert!(
            report.check(name).is_some(),
            "check {name} did not run\n{}",
            report.stdout
        );
    }
    server.assert_drained();
}

#[test]
fn all_scenarios() {
    scenario(
        "all",
        &[
            "echo_types/gw/bytes_1MiB_random",
            "adder/independent_instances",
            "errors/unknown_method",
            "callbacks/keep_call_drop",
            "concurrency/separate_links_16x50",
        ],
    );
}

#[test]
fn echo_types() {
    let mut names = Vec::new();
    for target in ["gw", "text_echo"] {
        for label in [
            "connect",
            "none",
            "true",
            "int_2^64",
            "int_-2^64",
            "int_2^200",
            "int_-2^300",
            "float_0.1",
            "float_1e300",
            "float_5e-324",
            "decimal_10.30",
            "bytes_1MiB_random",
            "str_unicode",
            "str_nul",
            "tuple_empty",
            "tuple_nested",
            "tuple_1000_ints",
            "vexception",
            "tuple_with_vexception",
        ] {
            names.push(format!("echo_types/{target}/{label}"));
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    scenario("echo_types", &names);
}

#[test]
fn adder_state_per_instance() {
    scenario(
        "adder",
        &[
            "adder/resolve_twice",
            "adder/add_5_7",
            "adder/independent_instances",
            "adder/reset",
            "adder/bigint_sum",
        ],
    );
}

#[test]
fn errors_and_meta() {
    scenario(
        "errors",
        &[
            "errors/unknown_method",
            "errors/arity_too_few",
            "errors/arity_too_many",
            "errors/raise_vexception",
            "errors/raise_vexception_empty",
            "errors/python_exception_is_call_error",
            "errors/bad_path_no_such",
            "errors/bad_path_partial",
            "errors/bad_path_too_long",
            "errors/urlget_direct_call",
            "errors/vri_query_name",
            "errors/meta_methods",
            "errors/meta_doc_method",
            "errors/meta_doc_unknown_method",
            "errors/meta_unknown",
            "errors/echoer_meta_methods",
        ],
    );
}

#[test]
fn callbacks() {
    scenario(
        "callbacks",
        &[
            "callbacks/call_back",
            "callbacks/call_back_exception",
            "callbacks/call_back_unknown_method",
            "callbacks/keep_call_drop",
            "callbacks/own_object_identity",
            "callbacks/remote_object_identity",
            "callbacks/link_alive",
        ],
    );
}

#[test]
fn concurrency() {
    scenario(
        "concurrency",
        &[
            "concurrency/same_link_16x50",
            "concurrency/separate_links_16x50",
            "concurrency/pipelining",
            "concurrency/many_outstanding_calls",
        ],
    );
}

/// The library's own demo gateway, unchanged: the Python client resolves
/// `text/echo` and `math/adder` on it, echoes every value type through the
/// gateway's and the Echoer's `echo`, and drives two Adders
/// (add/result/reset). These two scenarios need nothing beyond what
/// `SimpleGateway` offers.
#[test]
fn simple_gateway() {
    let server = ServerOnOwnRuntime::start(SimpleGateway::new);
    let report = server.run_client("echo_types,adder");
    report.assert_all_passed();
    for name in [
        "echo_types/gw/connect",
        "echo_types/gw/str_unicode",
        "echo_types/text_echo/connect",
        "echo_types/text_echo/bytes_1MiB_random",
        "adder/resolve_twice",
        "adder/independent_instances",
        "adder/reset",
    ] {
        assert!(report.check(name).is_some(), "check {name} did not run");
    }
    server.assert_drained();
}

/// Runs `py_release.py ARGS VRI` against `server`, waits for its `done`
/// line, runs `while_alive` (the Python process is still running then),
/// stops it and returns its steps as `(name, detail)`; every step must
/// have passed.
fn run_py_release(
    server: &ServerOnOwnRuntime,
    args: &[&str],
    while_alive: impl FnOnce(),
) -> Vec<(String, serde_json::Value)> {
    let started = Instant::now();
    let vri = server.vri();
    let mut all = vec!["--timeout", "10"];
    all.extend_from_slice(args);
    all.push(&vri);
    let mut p = PyProcess::spawn("py_release.py", &all);
    p.wait_line("done", Duration::from_secs(60));
    while_alive();
    let (status, stdout, stderr) = p.stop(Duration::from_secs(10));
    eprintln!(
        "py_release.py {args:?}: {:.2?}\n{stdout}",
        started.elapsed()
    );
    let mut steps = Vec::new();
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        assert_eq!(v["ok"], serde_json::Value::Bool(true), "{line}\n{stderr}");
        let name = v["step"].as_str().unwrap_or("?").to_string();
        steps.push((name, v["detail"].clone()));
    }
    assert!(status.success(), "exit {status}\n{stdout}\n{stderr}");
    steps
}

fn step<'a>(steps: &'a [(String, serde_json::Value)], name: &str) -> &'a serde_json::Value {
    steps
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d)
        .unwrap_or_else(|| panic!("step {name} missing: {steps:?}"))
}

/// `py_release.py` against `SimpleGateway`: the Python client drops the
/// gateway (and later a resolved Adder) and the link must close because our
/// server confirms the NOTIFY_DEREF and both sides' tables are empty
/// (`docs/protocol/vol.md` §5.2, §5.3) — checked on our side while the Python process is
/// still alive, so it is not the process exit that closes the links.
#[test]
fn python_client_release_closes_links() {
    let server = ServerOnOwnRuntime::start(SimpleGateway::new);
    let steps = run_py_release(&server, &[], || server.assert_drained());
    assert_eq!(
        step(&steps, "gateway_methods"),
        &serde_json::json!(["echo", "urlget"])
    );
    for name in [
        "gateway_echo",
        "urlget_echo",
        "still_open_while_held",
        "gateway_release_closes_link",
        "adder_add",
        "adder_reset",
        "adder_link_open_while_held",
        "adder_release_closes_link",
    ] {
        step(&steps, name);
    }
}

/// The Python client requests keep-alive every 150 ms and our server (lowest
/// grant 100 ms) grants 150 ms (`docs/protocol/vol.md` §8). Python expires a link after
/// 225 ms without traffic and dies on the 6th KEEP_ALIVE it receives, so
/// surviving 2 s of idling means we kept the link alive with other traffic.
#[test]
fn python_client_keep_alive() {
    let mut options = LinkOptions::default();
    options.protocol.handshake_timeout = Some(Duration::from_secs(30));
    options.protocol.keep_alive_min_send = Duration::from_millis(100);
    let server = ServerOnOwnRuntime::start_service(
        GatewayService::new(SimpleGateway::new).with_options(options),
    );
    let steps = run_py_release(&server, &["--keepalive", "150"], || {});
    assert_eq!(step(&steps, "granted"), &serde_json::json!(150));
    step(&steps, "alive_after_idle");
    step(&steps, "echo_after_idle");
    server.assert_drained();
}
