//! `versile bench VRI` against running services (our `versile serve` over
//! PLAIN and VTS, Versile Python's `VOPService` from `py_server.py`), the
//! two-process TCP baseline (`--baseline-server` / `--baseline-connect`),
//! and `versile serve --threads 1`.
//!
//! Each test runs a short benchmark (few iterations, `--duration 1`) and
//! checks the JSON report's shape and counts: calls made, none failed. No
//! timing is asserted (figures live in `versile bench` itself).

mod support;

use std::time::Duration;

use support::procs::{versile_bin, Proc, VersileServe, PROC_LIMIT};

/// Run `versile bench ARGS --json` (bounded) and parse its one line.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(args);
    let mut p = Proc::spawn(versile_bin(), &all);
    let line = p.next_line(PROC_LIMIT * 2);
    let (status, stderr) = p.wait_exit(PROC_LIMIT);
    let line = line.unwrap_or_else(|| panic!("no report from bench {args:?}; stderr:\n{stderr}"));
    assert!(
        status.success(),
        "bench {args:?}: {status}\n{stderr}\n{line}"
    );
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
}

/// Short phases: 50 sequential calls, 1 s of 2 links × 4 in flight.
const SHORT: [&str; 12] = [
    "--iterations",
    "50",
    "--warmup",
    "5",
    "--duration",
    "1",
    "--connections",
    "2",
    "--in-flight",
    "4",
    "--timeout",
    "20",
];

/// Both phases ran, answered calls and had no error; the percentiles are
/// there and ordered.
fn assert_phases(report: &serde_json::Value, transport: &str) {
    assert_eq!(report["transport"], transport, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    let seq = &report["sequential"];
    assert_eq!(seq["calls"], 50, "{report}");
    assert_eq!(seq["errors"], 0, "{report}");
    let conc = &report["concurrent"];
    assert!(conc["calls"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(conc["connections"], 2);
    assert_eq!(conc["in_flight"], 4);
    assert_eq!(
        report["calls"].as_u64(),
        Some(seq["calls"].as_u64().unwrap() + conc["calls"].as_u64().unwrap())
    );
    for phase in [seq, conc] {
        let l = &phase["latency_us"];
        let p = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("{k} in {l}"));
        assert!(p("p50") > 0.0, "{l}");
        assert!(p("p50") <= p("p90") && p("p90") <= p("p99"), "{l}");
        assert!(p("p99") <= p("p99_9") && p("p99_9") <= p("max"), "{l}");
        assert!(phase["calls_per_s"].as_f64().unwrap() > 0.0);
        assert!(phase["client_cpu_us_per_call"].as_f64().is_some());
    }
}

/// A `--latency-log` path of this test process's own, removed on drop.
struct LogPath(std::path::PathBuf);

impl LogPath {
    fn new(name: &str) -> Self {
        LogPath(
            std::env::temp_dir().join(format!("versile-bench-{}-{name}.log", std::process::id())),
        )
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("temp paths here are UTF-8")
    }

    /// The log holds `calls` lines after its header, in start order, each
    /// a positive latency.
    fn assert_calls(&self, calls: usize) {
        let text = std::fs::read_to_string(&self.0).expect("the log was written");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("# start_us latency_us"));
        let rows: Vec<(f64, f64)> = lines
            .map(|l| {
                let (s, t) = l.split_once(' ').expect("two columns");
                (s.parse().unwrap(), t.parse().unwrap())
            })
            .collect();
        assert_eq!(rows.len(), calls, "the timed calls, not the warm-up");
        assert_eq!(rows[0].0, 0.0, "times from the first timed call");
        assert!(rows.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0 + 1.0));
        assert!(rows.iter().all(|r| r.1 > 0.0));
    }
}

impl Drop for LogPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `versile serve ARGS --listen 127.0.0.1:0`: (process, address,
/// fingerprint line if any).
fn serve(args: &[&str]) -> (VersileServe, String, Option<String>) {
    let mut p = VersileServe::start(args);
    let addr = p.vop_addr.clone();
    let fingerprint = (!args.contains(&"--insecure")).then(|| p.wait_fingerprint());
    (p, addr, fingerprint)
}

#[test]
fn plain_against_our_server_on_one_thread() {
    // --threads 1: a current-thread runtime serves both phases.
    let (mut server, addr, _) = serve(&["--insecure", "--threads", "1"]);
    let pid = server.pid().to_string();
    let vri = format!("vop://{addr}/echo");
    let log = LogPath::new("plain");
    let mut args = vec![
        "--insecure",
        "--server-pid",
        &pid,
        "--latency-log",
        log.arg(),
        &vri,
    ];
    args.extend_from_slice(&SHORT);
    let report = bench_json(&args);
    assert_phases(&report, "PLAIN");
    log.assert_calls(50);
    assert_eq!(report["method"], "echo");
    assert_eq!(report["server_pid"].as_u64(), Some(server.pid() as u64));
    assert!(report["sequential"]["server_cpu_us_per_call"]
        .as_f64()
        .is_some_and(|c| c > 0.0));

    // The demo's text/echo object, named by --connect, with a payload.
    let vri = format!("vop://{addr}/text/echo/");
    let mut args = vec!["--insecure", "--payload", "4096", "--connect", &vri];
    args.extend_from_slice(&SHORT);
    let report = bench_json(&args);
    assert_phases(&report, "PLAIN");
    assert_eq!(report["payload_bytes"], 4096);
    server.terminate_expect_success();
}

#[test]
fn vts_against_our_server() {
    let (mut server, addr, fingerprint) = serve(&["--transports", "vts"]);
    let fingerprint = fingerprint.expect("a VTS server prints its key");
    let vri = format!("vop://{addr}/echo");
    let mut args = vec!["--pin", &fingerprint, &vri];
    args.extend_from_slice(&SHORT);
    let report = bench_json(&args);
    assert_phases(&report, "VTS");
    server.terminate_expect_success();
}

#[test]
fn tls_against_our_server() {
    let (mut server, addr, fingerprint) = serve(&["--transports", "tls"]);
    let fingerprint = fingerprint.expect("a TLS server prints its key");
    let vri = format!("vop://{addr}/echo");
    let mut args = vec!["--pin", &fingerprint, &vri];
    args.extend_from_slice(&SHORT);
    let report = bench_json(&args);
    assert_phases(&report, "TLS");
    server.terminate_expect_success();
}

#[test]
fn plain_against_versile_python() {
    let server = support::python::PyServer::start(&[]);
    let pid = server.process.pid().to_string();
    for vri in [server.vri("echo"), server.vri("text/echo/")] {
        let mut args = vec!["--insecure", "--server-pid", &pid, &vri];
        args.extend_from_slice(&SHORT);
        let report = bench_json(&args);
        assert_phases(&report, "PLAIN");
        assert!(report["concurrent"]["server_cpu_us_per_call"]
            .as_f64()
            .is_some());
    }
    let (status, _, stderr) = server.stop(Duration::from_secs(15));
    assert!(status.success(), "py_server.py exit {status}\n{stderr}");
}

#[test]
fn failures_are_reported() {
    let (mut server, addr, _) = serve(&["--insecure"]);
    // A method the gateway does not have: every call fails, exit 1.
    let vri = format!("vop://{addr}/no_such_method");
    let mut p = Proc::spawn(
        versile_bin(),
        &[
            "bench",
            "--json",
            "--insecure",
            "--warmup",
            "0",
            "--iterations",
            "3",
            "--duration",
            "0",
            &vri,
        ],
    );
    let line = p
        .next_line(PROC_LIMIT)
        .expect("a report even when calls fail");
    let (status, stderr) = p.wait_exit(PROC_LIMIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["errors"], 3, "{report}");
    assert_eq!(report["calls"], 0);
    assert!(report["sequential"]["first_error"].is_string());
    assert!(stderr.contains("3 call(s) failed"), "{stderr}");
    // Without --insecure nothing is in common with a PLAIN server.
    let vri = format!("vop://{addr}/echo");
    let mut p = Proc::spawn(versile_bin(), &["bench", "--iterations", "3", &vri]);
    let (status, stderr) = p.wait_exit(PROC_LIMIT);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    server.terminate_expect_success();
}

#[test]
fn two_process_tcp_baseline() {
    let mut server = Proc::spawn(
        versile_bin(),
        &["bench", "--baseline-server", "127.0.0.1:0"],
    );
    let addr = server.wait_for("listening on tcp://");
    let pid = server.pid().to_string();
    let log = LogPath::new("baseline");
    let report = bench_json(&[
        "--latency-log",
        log.arg(),
        "--baseline-connect",
        &addr,
        "--iterations",
        "200",
        "--warmup",
        "10",
        "--payload",
        "1000",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(report["calls"], 200, "{report}");
    assert_eq!(report["errors"], 0);
    assert!(report["request_bytes"].as_u64().unwrap() > 1000);
    assert!(report["response_bytes"].as_u64().unwrap() > 1000);
    let seq = &report["sequential"];
    assert!(seq["latency_us"]["p50"].as_f64().unwrap() > 0.0);
    assert!(seq["server_cpu_us_per_call"].as_f64().is_some());
    log.assert_calls(200);
    server.signal("-TERM");
    let (status, stderr) = server.wait_exit(PROC_LIMIT);
    assert!(status.success(), "baseline server exit {status}\n{stderr}");
}
