//! Child processes: `versile serve` ([`VersileServe`]), other `versile`
//! commands, the examples, HAProxy. A [`Proc`] reads stdout lines on a
//! thread so every wait (an announced address, the exit) is bounded, and
//! kills and reaps the child on drop, so a failing assertion never leaks
//! a process.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for a process to announce itself or to exit.
pub const PROC_LIMIT: Duration = Duration::from_secs(30);

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

    /// The rest of the first stdout line (within [`PROC_LIMIT`]) that starts
    /// with `prefix`; panics (with stderr) if none comes.
    pub fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PROC_LIMIT;
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

    /// `metrics on http://ADDR/metrics` → ADDR.
    pub fn wait_metrics_addr(&mut self) -> String {
        self.wait_for("metrics on http://")
            .trim_end_matches("/metrics")
            .to_owned()
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

    /// Sends `sig` (`-INT`, `-TERM`), then waits for the exit within
    /// [`PROC_LIMIT`], which must be a success; returns stderr.
    pub fn signal_expect_success(&mut self, sig: &str) -> String {
        self.signal(sig);
        let (status, stderr) = self.wait_exit(PROC_LIMIT);
        assert!(status.success(), "{} exit {status}: {stderr}", self.name);
        stderr
    }

    /// [`Proc::signal_expect_success`] with SIGTERM.
    pub fn terminate_expect_success(&mut self) -> String {
        self.signal_expect_success("-TERM")
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

/// A running `versile serve --listen 127.0.0.1:0 ...` and the addresses
/// it announced on stdout. Derefs to its [`Proc`] (signal, wait, lines).
pub struct VersileServe {
    pub proc: Proc,
    /// `HOST:PORT` of `listening on vop://HOST:PORT/`.
    pub vop_addr: String,
    /// `HOST:PORT` of `metrics on http://HOST:PORT/metrics`, when asked for.
    pub metrics_addr: Option<String>,
}

impl VersileServe {
    /// `versile serve --listen 127.0.0.1:0 ARGS`; the first stdout line
    /// must announce the address (within [`PROC_LIMIT`]).
    pub fn start(args: &[&str]) -> VersileServe {
        Self::start_on("127.0.0.1:0", args)
    }

    /// `versile serve --listen LISTEN ARGS`, as [`VersileServe::start`].
    pub fn start_on(listen: &str, args: &[&str]) -> VersileServe {
        let mut all = vec!["serve", "--listen", listen];
        all.extend_from_slice(args);
        let proc = Proc::spawn(versile_bin(), &all);
        let line = proc
            .next_line(PROC_LIMIT)
            .expect("versile serve did not print its address in time");
        let vop_addr = line
            .strip_prefix("listening on vop://")
            .and_then(|s| s.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        VersileServe {
            proc,
            vop_addr,
            metrics_addr: None,
        }
    }

    /// `versile serve --insecure --listen 127.0.0.1:0 ARGS` (PLAIN).
    pub fn start_insecure(args: &[&str]) -> VersileServe {
        let mut all = vec!["--insecure"];
        all.extend_from_slice(args);
        Self::start(&all)
    }

    /// [`VersileServe::start_insecure`] with `--metrics 127.0.0.1:0`; waits
    /// for the `metrics on` line too.
    pub fn start_insecure_with_metrics(args: &[&str]) -> VersileServe {
        let mut all = vec!["--metrics", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut serve = Self::start_insecure(&all);
        serve.metrics_addr = Some(serve.proc.wait_metrics_addr());
        serve
    }

    /// The `key fingerprint ...` line a VTS server prints after its
    /// address (within [`PROC_LIMIT`]).
    pub fn wait_fingerprint(&mut self) -> String {
        self.proc.wait_for("key fingerprint ").trim().to_owned()
    }

    /// `vop://ADDR` + `path`.
    pub fn vri(&self, path: &str) -> String {
        format!("vop://{}{path}", self.vop_addr)
    }

    /// The metrics listener's address (panics if not started with one).
    pub fn metrics(&self) -> &str {
        self.metrics_addr
            .as_deref()
            .expect("started with --metrics")
    }
}

impl std::ops::Deref for VersileServe {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl std::ops::DerefMut for VersileServe {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// Run `versile ARGS` to completion within [`PROC_LIMIT`] (killed after it);
/// stdout and stderr as bytes.
pub fn run_versile(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(versile_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn versile");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
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
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > PROC_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("versile {args:?} did not finish within {PROC_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// `versile call --insecure ARGS` → (success, stdout, stderr), bounded.
pub fn versile_call(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(versile_bin());
    cmd.arg("call").arg("--insecure").args(args);
    let mut p = Proc::spawn_cmd(&mut cmd);
    let (status, stderr) = p.wait_exit(PROC_LIMIT);
    let mut out = String::new();
    while let Some(l) = p.next_line(Duration::from_millis(200)) {
        out.push_str(&l);
        out.push('\n');
    }
    (status.success(), out, stderr)
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
