//! Child processes for the operations tests (examples, HAProxy, load):
//! spawn, read announced addresses from stdout with a bound, signal, wait
//! for the exit with a bound; killed and reaped on drop, so a failing
//! assertion never leaks a process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for a process to announce itself or to exit.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A child whose stdout lines arrive on a channel.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Proc {
    /// Spawn `program args` with piped stdout/stderr.
    pub fn spawn(program: impl AsRef<Path>, args: &[&str]) -> Proc {
        Self::spawn_cmd(Command::new(program.as_ref()).args(args))
    }

    /// Spawn a prepared command with piped stdout/stderr.
    pub fn spawn_cmd(cmd: &mut Command) -> Proc {
        let name = format!("{:?}", cmd.get_program());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Keep draining so the child never blocks on a full pipe.
                    continue;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Proc {
            name,
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line, within `limit`.
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// The rest of the first stdout line (within [`LIMIT`]) that starts
    /// with `prefix`; panics (with stderr) if none comes.
    pub fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(_) => break,
            }
        }
        let status = self.child.try_wait().ok().flatten();
        let stderr = self.take_stderr_now();
        panic!(
            "{}: no line starting with {prefix:?} (exit: {status:?}); stderr:\n{stderr}",
            self.name
        );
    }

    /// `listening on vop://ADDR/` → ADDR.
    pub fn wait_vop_addr(&mut self) -> String {
        let rest = self.wait_for("listening on vop://");
        rest.trim_end_matches('/').to_owned()
    }

    /// Send a signal (`-INT`, `-TERM`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {} failed", self.name);
    }

    /// The exit status within `limit`, or None.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for the exit (panics after `limit`); returns status and stderr.
    pub fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, String) {
        let status = self
            .wait_timeout(limit)
            .unwrap_or_else(|| panic!("{} did not exit within {limit:?}", self.name));
        let stderr = self.stderr.take().and_then(|h| h.join().ok());
        (status, stderr.unwrap_or_default())
    }

    /// Kill, reap and return stderr (for diagnostics).
    fn take_stderr_now(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `target/<profile>/`: the test executable lives in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The binary of example `name`. `cargo test` builds the examples next to
/// the tests; when only this test was built (`cargo test --test NAME`),
/// build the example first.
pub fn example(name: &str) -> PathBuf {
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    assert!(path.exists(), "example binary {} missing", path.display());
    path
}

/// The `versile` binary.
pub fn versile_bin() -> &'static str {
    env!("CARGO_BIN_EXE_versile")
}

/// `versile call --insecure ARGS` → (success, stdout, stderr), bounded.
pub fn versile_call(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(versile_bin());
    cmd.arg("call").arg("--insecure").args(args);
    let mut p = Proc::spawn_cmd(&mut cmd);
    let (status, stderr) = p.wait_exit(LIMIT);
    let mut out = String::new();
    while let Some(l) = p.next_line(Duration::from_millis(200)) {
        out.push_str(&l);
        out.push('\n');
    }
    (status.success(), out, stderr)
}

/// A one-shot HTTP/1.1 GET on loopback: (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read http response");
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad http response {resp:?}"));
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (code, body.to_owned())
}

/// The value of an unlabelled metric, or of one `name{labels}` line, in a
/// Prometheus text page (0 if absent).
pub fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == series).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// [`http_get`] that returns `None` instead of panicking when nothing
/// answers (an instance that is down), with short timeouts. HTTP/1.0, so
/// the body is never chunked (HAProxy's stats page would be).
pub fn try_http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let addr_parsed: std::net::SocketAddr = addr.parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr_parsed, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((code, body.to_owned()))
}

/// The `haproxy` executable (PATH, then the sbin directories); panics
/// without it, so tests that need it fail rather than skip.
pub fn haproxy_bin() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()]);
    for dir in candidates {
        let p = dir.join("haproxy");
        if p.is_file() {
            return p;
        }
    }
    panic!("haproxy not found (install the Debian package `haproxy`; .ci/run does)");
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("versile-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
