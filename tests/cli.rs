//! End-to-end tests of the `versile` binary: `serve` (VTS by default,
//! `--insecure` for PLAIN) on an ephemeral loopback port, `call` against
//! it (with `--pin`), `keygen`, exit codes, SIGTERM.
//!
//! Every child is held by a `support::procs::Proc` that kills and reaps it
//! on drop (so a failing assertion never leaks a server), and every wait
//! is bounded.

use std::time::{Duration, Instant};
use versile::LinkShutdown;

mod support;
use support::procs::{run_versile, VersileServe, PROC_LIMIT};

/// `versile serve --listen 127.0.0.1:0 ARGS` with VTS: the server and
/// the fingerprint from its second stdout line.
fn start_vts(args: &[&str]) -> (VersileServe, String) {
    let server = VersileServe::start(args);
    let line = server
        .next_line(PROC_LIMIT)
        .expect("server did not print its key fingerprint in time");
    let fp = line
        .strip_prefix("key fingerprint ")
        .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
        .to_owned();
    assert!(fp.starts_with("SHA256:") && fp.len() == 71, "{fp}");
    (server, fp)
}

/// `versile call --insecure ARGS`: (exit code, stdout line, stderr).
fn call(args: &[&str]) -> (i32, String, String) {
    call_with(&["--insecure"], args)
}

/// `versile call OPTIONS --timeout 10 ARGS`: (exit code, stdout line, stderr).
fn call_with(options: &[&str], args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["call"];
    all.extend_from_slice(options);
    all.extend_from_slice(&["--timeout", "10"]);
    all.extend_from_slice(args);
    let out = run_versile(&all);
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
    let server = VersileServe::start_insecure(&[]);
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

/// A VRI that names a method takes every word after it as an argument
/// (issue 9 §6): `vop://HOST/echo '"x"'` is echo("x") on the gateway.
#[test]
fn vri_naming_a_method_takes_the_words_as_arguments() {
    let server = VersileServe::start_insecure(&[]);
    assert_eq!(call_ok(&[&server.vri("/echo"), "\"x\""]), "\"x\"");
    assert_eq!(call_ok(&[&server.vri("/math/adder/add"), "5"]), "5");
    // The VRI's arguments come first, then the command line's: add takes
    // one argument, so one of each is one too many.
    let (code, _, err) = call(&[&server.vri("/math/adder/add?int:2"), "3"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("calling add with 2 arguments on /math/adder/"),
        "{err}"
    );
    // A method that refuses the argument count: the error names the call.
    let (code, _, err) = call(&[&server.vri("/echo"), "1", "2"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("calling echo with 2 arguments on /"),
        "the error says which call failed: {err}"
    );
    // An unknown path: the error names it.
    let (code, _, err) = call(&[&server.vri("/no/such/"), "echo", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("VRI path /no/such/ did not resolve"), "{err}");
}

#[test]
fn a_bad_vri_shows_the_expected_form() {
    let out = run_versile(&["call", "notaurl"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vop://HOST[:PORT]/PATH/"), "{err}");
}

#[test]
fn echo_round_trips() {
    let server = VersileServe::start_insecure(&[]);
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
    let server = VersileServe::start_insecure(&["--gateway", "echo"]);
    assert_eq!(call_ok(&[&server.vri("/"), "echo", "[1,2]"]), "[1,2]");
    // The Echoer has no urlget.
    let (code, _, _) = call(&[&server.vri("/math/adder/"), "add", "1"]);
    assert_eq!(code, 1);
}

#[test]
fn failures_exit_1() {
    let server = VersileServe::start_insecure(&[]);
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
fn call_without_insecure_to_plain_server_fails_with_hint() {
    let server = VersileServe::start_insecure(&[]);
    let out = run_versile(&["call", &server.vri("/math/adder/"), "add", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure"), "{err}");
}

/// `versile call` without --insecure (VTS only) and optional extra args.
fn call_vts(args: &[&str]) -> (i32, String, String) {
    call_with(&[], args)
}

#[test]
fn serve_defaults_to_vts_with_an_ephemeral_key() {
    let (server, fp) = start_vts(&[]);
    let vri = server.vri("/math/adder/");
    // Unpinned, pinned, pinned in upper case, pinned with --insecure too.
    let upper = format!("SHA256:{}", fp[7..].to_uppercase());
    for extra in [
        &[][..],
        &["--pin", fp.as_str()][..],
        &["--pin", upper.as_str()][..],
        &["--insecure", "--pin", fp.as_str()][..],
    ] {
        let mut args = extra.to_vec();
        args.extend_from_slice(&[vri.as_str(), "add", "5"]);
        let (code, out, err) = call_vts(&args);
        assert_eq!((code, out.as_str()), (0, "5"), "{extra:?}: {err}");
    }
    // A wrong pin: exit 1, and the message says why.
    let wrong = format!("SHA256:{}", "0".repeat(64));
    let (code, out, err) = call_vts(&["--pin", &wrong, &vri, "add", "5"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("not authorized") && err.contains("--pin"),
        "{err}"
    );
    // A malformed pin is a usage error.
    let (code, _, _) = call_vts(&["--pin", "SHA256:xyz", &vri]);
    assert_eq!(code, 2);
    // `--insecure` adds PLAIN to the offer; the server still picks VTS.
    let (code, out, _) = call(&[&server.vri("/"), "echo", "1"]);
    assert_eq!((code, out.as_str()), (0, "1"));
    // Each start has a new key.
    let (_server2, fp2) = start_vts(&[]);
    assert_ne!(fp, fp2);
}

#[test]
fn keygen_serve_key_and_client_key() {
    let dir = std::env::temp_dir().join(format!("versile-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server_key = dir.join("server.pem");
    let client_key = dir.join("client.pem");
    let _ = std::fs::remove_file(&server_key);
    let _ = std::fs::remove_file(&client_key);
    let out = run_versile(&["keygen", server_key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let pem = std::fs::read_to_string(&server_key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&server_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = versile::RsaKeyPair::from_pem(&pem).unwrap();
    assert_eq!(key.public().bits(), 2048);
    assert_eq!(key.fingerprint(), printed);
    // No overwrite without --force.
    let out = run_versile(&["keygen", server_key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let out = run_versile(&[
        "keygen",
        "--format",
        "pkcs1",
        "--bits",
        "1024",
        client_key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let cpem = std::fs::read_to_string(&client_key).unwrap();
    assert!(cpem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let out = run_versile(&["keygen", "--bits", "512", "x.pem"]);
    assert_eq!(out.status.code(), Some(2));

    // serve --key prints that key's fingerprint; a client key works.
    let (server, fp) = start_vts(&["--key", server_key.to_str().unwrap()]);
    assert_eq!(fp, printed);
    let (code, out, err) = call_vts(&[
        "--pin",
        &fp,
        "--key",
        client_key.to_str().unwrap(),
        &server.vri("/"),
        "echo",
        "\"k\"",
    ]);
    assert_eq!((code, out.as_str()), (0, "\"k\""), "{err}");
    // A client key below the server's --min-peer-key-bits is refused.
    let (server2, fp2) = start_vts(&["--min-peer-key-bits", "2048"]);
    let (code, _, _) = call_vts(&[
        "--pin",
        &fp2,
        "--key",
        client_key.to_str().unwrap(),
        &server2.vri("/"),
        "echo",
        "1",
    ]);
    assert_eq!(code, 1);
    let (code, _, _) = call_vts(&["--pin", &fp2, &server2.vri("/"), "echo", "1"]);
    assert_eq!(code, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_tls_with_the_same_pin() {
    let (server, fp) = start_vts(&["--transports", "tls"]);
    let (code, out, err) = call_vts(&["--pin", &fp, &server.vri("/"), "echo", "3"]);
    assert_eq!((code, out.as_str()), (0, "3"), "{err}");
    let wrong = format!("SHA256:{}", "0".repeat(64));
    let (code, _, _) = call_vts(&["--pin", &wrong, &server.vri("/"), "echo", "3"]);
    assert_eq!(code, 1);
}

#[test]
fn serve_vts_and_plain() {
    let (server, _fp) = start_vts(&["--transports", "vts,plain"]);
    // PLAIN-only client (old-style) and VTS client both work.
    let c = versile::ClientConfig::insecure();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (link, gw) = tokio::time::timeout(
            PROC_LIMIT,
            versile::Client::new(c).connect(&server.vop_addr),
        )
        .await
        .expect("in time")
        .expect("PLAIN connect");
        assert_eq!(link.context().protocol(), None);
        drop(gw);
        link.shutdown(LinkShutdown::Forced);
    });
    let (code, out, _) = call_vts(&[&server.vri("/"), "echo", "2"]);
    assert_eq!((code, out.as_str()), (0, "2"));
}

#[test]
fn usage_errors_exit_2() {
    let out = run_versile(&["call", "--insecure", "vop://127.0.0.1:1"]); // no '/'
    assert_eq!(out.status.code(), Some(2));
    let out = run_versile(&[
        "call",
        "--insecure",
        "vop://127.0.0.1:1/",
        "echo",
        "{\"a\":1}",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_versile(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_configuration_errors_exit_2() {
    for (args, expect) in [
        (&["--transports", ""][..], "no transport"),
        (&["--insecure", "--key", "k.pem"][..], "--key"),
        (&["--key", "/nonexistent/k.pem"][..], "cannot load the key"),
    ] {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let out = run_versile(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn transports_plain_serves() {
    let server = VersileServe::start(&["--transports", "plain"]);
    assert_eq!(call_ok(&[&server.vri("/"), "echo", "1"]), "1");
}

#[test]
fn sigterm_exits_0() {
    let mut server = VersileServe::start_insecure(&[]);
    assert_eq!(call_ok(&[&server.vri("/math/adder/"), "add", "1"]), "1");
    let start = Instant::now();
    server.signal("-TERM");
    let (status, stderr) = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn sigint_with_idle_connection_forces_after_drain_timeout() {
    let mut server = VersileServe::start_insecure(&["--drain-timeout", "0.5"]);
    // A connection that never finishes the VOP handshake keeps the server
    // from draining; the drain timeout must force it.
    let _idle = std::net::TcpStream::connect(&server.vop_addr).expect("connect");
    std::thread::sleep(Duration::from_millis(100));
    server.signal("-INT");
    let (status, stderr) = server.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn help_and_version() {
    let out = run_versile(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("versile "));
    for cmd in [
        &["--help"][..],
        &["serve", "--help"],
        &["call", "--help"],
        &["bench", "--help"],
        &["keygen", "--help"],
    ] {
        let out = run_versile(cmd);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        assert!(!out.stdout.is_empty());
    }
    let help = String::from_utf8_lossy(&run_versile(&["call", "--help"]).stdout).into_owned();
    assert!(
        help.contains("--insecure") && help.contains("--pin") && help.contains("bytes"),
        "{help}"
    );
}

#[test]
fn sigterm_closes_established_links_gracefully() {
    let mut server = VersileServe::start_insecure(&["--drain-timeout", "10"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = versile::Client::new(versile::ClientConfig::insecure());
        let (link, gateway) = tokio::time::timeout(PROC_LIMIT, client.connect(&server.vop_addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let v = tokio::time::timeout(PROC_LIMIT, gateway.call("echo", (7,)))
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
fn bench_json_is_one_line() {
    let out = run_versile(&[
        "bench",
        "--json",
        "--iterations",
        "20",
        "--rounds",
        "4",
        "--in-flight",
        "2",
        "--duration",
        "0.2",
        "--payload",
        "8",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(
        v["plain_rtt_us_p50"].as_f64().is_some_and(|t| t > 0.0),
        "{v}"
    );
    assert_eq!(v["rounds"], 4, "{v}");
    assert_eq!(v["iterations"], 20, "{v}");

    // No rounds at all is a usage error, not an empty measurement.
    let out = run_versile(&["bench", "--rounds", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rounds"));
}

#[test]
fn bench_hiccups_measures_the_machine() {
    let out = run_versile(&["bench", "--hiccups", "--duration", "0.2", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert!(v["seconds"].as_f64().is_some_and(|s| s >= 0.2), "{v}");
    assert!(v["readings"].as_u64().is_some_and(|n| n > 1_000), "{v}");
    assert!(v["gaps_per_s"].as_f64().is_some_and(|r| r >= 0.0), "{v}");
    assert!(
        v["lost_percent"]
            .as_f64()
            .is_some_and(|p| (0.0..=100.0).contains(&p)),
        "{v}"
    );
    assert_eq!(v["threshold_us"], 5.0, "{v}");

    // Nothing to spin for, or a threshold without the mode: usage errors.
    for args in [
        &["bench", "--hiccups", "--duration", "0"][..],
        &["bench", "--hiccup-threshold", "10"][..],
        &["bench", "--hiccups", "--hiccup-threshold", "0"][..],
        &["bench", "--hiccups", "vop://127.0.0.1:1/echo"][..],
        // The latency log is for two-process runs.
        &["bench", "--latency-log", "/dev/null"][..],
    ] {
        let out = run_versile(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A log that cannot be created fails before anything is measured.
    let out = run_versile(&[
        "bench",
        "--latency-log",
        "/nonexistent-versile-dir/calls.log",
        "--baseline-connect",
        "127.0.0.1:1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create"));
}
