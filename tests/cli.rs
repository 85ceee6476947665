//! End-to-end tests of the `versile` binary: `serve --insecure` on an
//! ephemeral loopback port, `call` against it, exit codes, SIGTERM.
//!
//! Every child is held by a [`ChildGuard`] that kills and reaps it on drop
//! (so a failing assertion never leaks a server), and every wait is bounded.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_versile");
/// Upper bound for any single command or wait.
const LIMIT: Duration = Duration::from_secs(20);

/// Kills and reaps the child when dropped.
struct ChildGuard(Child);

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Wait for the exit, at most `limit`.
    fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A running `versile serve` and its address.
struct Server {
    child: ChildGuard,
    addr: String,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Server {
    /// `versile serve --insecure --listen 127.0.0.1:0 EXTRA`.
    fn start(extra: &[&str]) -> Server {
        let mut args = vec!["--insecure"];
        args.extend_from_slice(extra);
        Self::start_with(&args)
    }

    /// `versile serve --listen 127.0.0.1:0 ARGS`.
    fn start_with(args: &[&str]) -> Server {
        let child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn versile serve");
        let mut child = ChildGuard(child);
        let stdout = child.0.stdout.take().expect("stdout");
        let mut stderr = child.0.stderr.take().expect("stderr");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        // Read the first line on a thread so the wait can be bounded.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe.
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
        });
        let line = rx
            .recv_timeout(LIMIT)
            .expect("server did not print its address in time");
        let addr = line
            .trim_end()
            .strip_prefix("listening on vop://")
            .and_then(|s| s.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    fn vri(&self, path: &str) -> String {
        format!("vop://{}{path}", self.addr)
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} failed");
    }

    /// Wait for the exit (bounded) and return the status and stderr.
    fn wait_exit(mut self, limit: Duration) -> (ExitStatus, String) {
        let status = self
            .child
            .wait_timeout(limit)
            .unwrap_or_else(|| panic!("server did not exit within {limit:?}"));
        let stderr = self.stderr.take().and_then(|h| h.join().ok());
        (status, stderr.unwrap_or_default())
    }
}

/// Run `versile ARGS` to completion within [`LIMIT`].
fn versile(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn versile");
    let mut guard = ChildGuard(child);
    let mut stdout = guard.0.stdout.take().expect("stdout");
    let mut stderr = guard.0.stderr.take().expect("stderr");
    let out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let status = guard
        .wait_timeout(LIMIT)
        .unwrap_or_else(|| panic!("versile {args:?} did not finish within {LIMIT:?}"));
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// `versile call --insecure ARGS`: (exit code, stdout line, stderr).
fn call(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["call", "--insecure", "--timeout", "10"];
    all.extend_from_slice(args);
    let out = versile(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A successful call's stdout.
fn call_ok(args: &[&str]) -> String {
    let (code, out, err) = call(args);
    assert_eq!(code, 0, "call {args:?} failed: {err}");
    assert_eq!(out.lines().count(), 1, "one line of JSON: {out:?}");
    out
}

#[test]
fn adder_and_fresh_resolution() {
    let server = Server::start(&[]);
    let adder = server.vri("/math/adder/");
    assert_eq!(call_ok(&[&adder, "add", "5"]), "5");
    // A new resolution gets a new Adder: the sum starts from 0 again.
    assert_eq!(call_ok(&[&adder, "add", "5"]), "5");
    // The VRI's own query is the call when no METHOD is given.
    assert_eq!(call_ok(&[&server.vri("/math/adder/add?int:7")]), "7");
    // A resolved object prints as a reference.
    let obj = call_ok(&[&adder]);
    assert!(obj.starts_with("{\"object\":"), "{obj}");
}

#[test]
fn echo_round_trips() {
    let server = Server::start(&[]);
    let gw = server.vri("/");
    let echo = server.vri("/text/echo/");
    for (arg, expected) in [
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        ),
        (
            "-123456789012345678901234567890",
            "-123456789012345678901234567890",
        ),
        ("42", "42"),
        ("2.5", "2.5"),
        ("\"text\"", "\"text\""),
        ("hello", "\"hello\""),
        ("[1,\"a\",[null,true]]", "[1,\"a\",[null,true]]"),
        ("[]", "[]"),
        ("{\"bytes\":\"AAEC/w==\"}", "{\"bytes\":\"AAEC/w==\"}"),
        ("null", "null"),
        ("false", "false"),
    ] {
        assert_eq!(call_ok(&[&gw, "echo", arg]), expected, "gateway echo {arg}");
        assert_eq!(
            call_ok(&[&echo, "echo", arg]),
            expected,
            "Echoer echo {arg}"
        );
    }
}

#[test]
fn echo_gateway() {
    let server = Server::start(&["--gateway", "echo"]);
    assert_eq!(call_ok(&[&server.vri("/"), "echo", "[1,2]"]), "[1,2]");
    // The Echoer has no urlget.
    let (code, _, _) = call(&[&server.vri("/math/adder/"), "add", "1"]);
    assert_eq!(code, 1);
}

#[test]
fn failures_exit_1() {
    let server = Server::start(&[]);
    let (code, out, err) = call(&[&server.vri("/math/adder/"), "no_such_method"]);
    assert_eq!(code, 1, "unknown method");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("call error"), "{err}");

    let (code, out, err) = call(&[&server.vri("/no/such/")]);
    assert_eq!(code, 1, "bad path");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("did not resolve"), "{err}");

    // Wrong argument count is a CALL_ERROR too.
    let (code, _, _) = call(&[&server.vri("/math/adder/"), "add"]);
    assert_eq!(code, 1);

    // Nothing listening: port 1 is privileged and outside the ephemeral
    // range, so no server of a concurrent test can be there (a port bound
    // and released here could be handed to one).
    let (code, _, err) = call(&["vop://127.0.0.1:1/"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn call_without_insecure_fails_with_hint() {
    let server = Server::start(&[]);
    let out = versile(&["call", &server.vri("/math/adder/"), "add", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = versile(&["call", "--insecure", "vop://127.0.0.1:1"]); // no '/'
    assert_eq!(out.status.code(), Some(2));
    let out = versile(&[
        "call",
        "--insecure",
        "vop://127.0.0.1:1/",
        "echo",
        "{\"a\":1}",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = versile(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_without_insecure_exits_2_with_hint() {
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--transports",
            "tls,plain",
        ][..],
        &["serve", "--listen", "127.0.0.1:0", "--transports", ""][..],
    ] {
        let out = versile(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--insecure"), "{args:?}: {err}");
    }
    let err = String::from_utf8_lossy(&versile(&["serve", "--listen", "127.0.0.1:0"]).stderr)
        .into_owned();
    assert!(err.contains("VTS is not available"), "{err}");
}

#[test]
fn transports_plain_serves() {
    let server = Server::start_with(&["--transports", "plain"]);
    assert_eq!(call_ok(&[&server.vri("/"), "echo", "1"]), "1");
}

#[test]
fn sigterm_exits_0() {
    let server = Server::start(&[]);
    assert_eq!(call_ok(&[&server.vri("/math/adder/"), "add", "1"]), "1");
    let start = Instant::now();
    server.signal("-TERM");
    let (status, stderr) = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn sigint_with_idle_connection_forces_after_drain_timeout() {
    let server = Server::start(&["--drain-timeout", "0.5"]);
    // A connection that never finishes the VOP handshake keeps the server
    // from draining; the drain timeout must force it.
    let _idle = std::net::TcpStream::connect(&server.addr).expect("connect");
    thread::sleep(Duration::from_millis(100));
    server.signal("-INT");
    let (status, stderr) = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn help_and_version() {
    let out = versile(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("versile "));
    for cmd in [
        &["--help"][..],
        &["serve", "--help"],
        &["call", "--help"],
        &["bench", "--help"],
    ] {
        let out = versile(cmd);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        assert!(!out.stdout.is_empty());
    }
    let help = String::from_utf8_lossy(&versile(&["call", "--help"]).stdout).into_owned();
    assert!(
        help.contains("--insecure") && help.contains("bytes"),
        "{help}"
    );
}

#[test]
fn sigterm_closes_established_links_gracefully() {
    let server = Server::start(&["--drain-timeout", "10"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = versile::Client::new(versile::ClientConfig::insecure());
        let (link, gateway) = tokio::time::timeout(LIMIT, client.connect(&server.addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let v = tokio::time::timeout(LIMIT, gateway.call("echo", (7,)))
            .await
            .expect("call in time")
            .expect("call");
        assert_eq!(v, versile::Value::Int(7));
        // The link stays open (we hold the gateway) until the server stops.
        server.signal("-TERM");
        tokio::time::timeout(Duration::from_secs(5), link.closed())
            .await
            .expect("server closed the link on SIGTERM");
        drop(gateway);
    });
    let start = Instant::now();
    let (status, stderr) = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // Graceful: well before the 10 s drain timeout.
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn bench_json_is_one_line_or_a_clear_failure() {
    let out = versile(&[
        "bench",
        "--json",
        "--iterations",
        "20",
        "--in-flight",
        "2",
        "--duration",
        "0.2",
        "--payload",
        "8",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {
            assert_eq!(stdout.lines().count(), 1, "{stdout}");
            let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
            assert!(v.get("plain_rtt_us_p50").is_some(), "{v}");
        }
        // `versile::bench::run` may still be a stub in this build.
        Some(1) => assert!(stderr.contains("benchmark failed"), "{stderr}"),
        other => panic!("unexpected exit {other:?}: {stderr}"),
    }
}
