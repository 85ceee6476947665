//! Self-test of the Python interop harness (Python server ↔ Python client):
//! venv creation, process start/stop/cleanup, timeouts and the client's
//! report parsing.  No Rust VOP code is involved.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use support::python::{python, run_py_client, PyProcess, PyServer};

#[test]
fn python_client_passes_against_python_server() {
    let py = python();
    assert!(py.exists(), "python() returned missing {}", py.display());

    let server = PyServer::start(&[]);
    let vri = server.vri("");
    let report = run_py_client("all", &vri, Duration::from_secs(120));
    report.assert_all_passed();
    assert_eq!(report.vri.as_deref(), Some(vri.as_str()));
    for name in [
        "echo_types/gw/bytes_1MiB_random",
        "echo_types/text_echo/int_-2^300",
        "adder/independent_instances",
        "errors/bad_path_no_such",
        "callbacks/call_back",
        "concurrency/separate_links_16x50",
    ] {
        assert!(report.check(name).is_some(), "check {name} did not run");
    }

    // Graceful stop through stdin EOF.
    let (status, stdout, stderr) = server.stop(Duration::from_secs(15));
    assert!(status.success(), "server exit {status}\n{stderr}");
    assert!(stdout.contains("stopped"), "stdout: {stdout}");
}

/// The client must report failures: without the getargspec shim, Python
/// 0.8.5 on Python >= 3.11 cannot resolve any urlget path.
#[test]
fn python_client_reports_failures() {
    let server = PyServer::start(&["--no-shim"]);
    let report = run_py_client("adder", &server.vri(""), Duration::from_secs(60));
    assert!(!report.status.success(), "{}", report.stdout);
    assert_eq!(report.status.code(), Some(1));
    let c = report
        .check("adder/resolve_twice")
        .expect("resolve_twice ran");
    assert!(!c.ok);
    assert!(c.detail.contains("did not resolve"), "{}", c.detail);
    assert_eq!(report.summary, Some((0, 1)));
}

#[test]
fn python_server_stops_on_sigterm() {
    let mut server = PyServer::start(&["--ignore-stdin"]);
    server.process.terminate();
    let (status, stdout, stderr) = server.process.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit {status}\n{stderr}");
    assert!(stdout.contains("stopped"), "stdout: {stdout}");
}

#[test]
fn wait_line_times_out_and_drop_kills() {
    let mut server = PyServer::start(&[]);
    let pid = server.process.id();
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| {
        server
            .process
            .wait_line("never printed", Duration::from_millis(500))
    }));
    let err = r.expect_err("wait_line must panic on timeout");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("never printed"), "panic message: {msg}");
    assert!(msg.contains("listening"), "stdout missing from: {msg}");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(server);
    if cfg!(target_os = "linux") {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "server process {pid} still exists after drop"
        );
    }

    // Early exit is detected too (the client exits at once on bad usage).
    let mut p = PyProcess::spawn("py_client.py", &["no_such_scenario", "vop://127.0.0.1:1/"]);
    let r = catch_unwind(AssertUnwindSafe(|| {
        p.wait_line("{", Duration::from_secs(30))
    }));
    let msg = r.expect_err("wait_line must panic on early exit");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("stdout closed"), "panic message: {msg}");
    assert!(msg.contains("unknown scenario"), "stderr missing: {msg}");
}
