//! The Versile Python 0.8.5 peer of the interop tests.
//!
//! * [`python()`] returns a Python interpreter that can `import versile`
//!   (Versile Python 0.8.5).  By default it creates a virtual environment at
//!   `<workspace>/target/interop-venv` on first use (`python3 -m venv` +
//!   `pip install versile-python3==0.8.5`); `VERSILE_PYTHON=/path/to/python`
//!   overrides this, `VERSILE_BASE_PYTHON` selects the interpreter used to
//!   create the venv (default `python3`).  Failure panics: interop tests
//!   fail, they never skip.
//! * [`PyProcess`] runs a script from `tests/python/` with a bounded-time
//!   API; the child is killed and reaped when the value is dropped.
//! * [`PyServer`] starts `py_server.py` and knows its port;
//!   [`run_py_client`] runs `py_client.py` and parses its JSON report.
//!
//! Only loopback addresses are used, and every wait has a timeout.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The PyPI requirement installed into the interop venv.
pub const VERSILE_REQUIREMENT: &str = "versile-python3==0.8.5";

/// Time limits for creating the venv.
const VENV_CREATE_TIMEOUT: Duration = Duration::from_secs(60);
const PIP_INSTALL_TIMEOUT: Duration = Duration::from_secs(120);
const IMPORT_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long another process's venv creation is waited for.
const VENV_LOCK_WAIT: Duration = Duration::from_secs(170);
/// A lock file older than this is considered abandoned even if its owner
/// cannot be checked.
const VENV_LOCK_STALE: Duration = Duration::from_secs(300);

/// Root of the workspace (the `versile` package lives at the root).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a script in `tests/python/`.
pub fn script_path(script: &str) -> PathBuf {
    workspace_dir().join("tests").join("python").join(script)
}

// ---------------------------------------------------------------------------
// The Python interpreter / venv
// ---------------------------------------------------------------------------

/// Python interpreter with Versile Python 0.8.5 importable.
///
/// Thread-safe and process-safe: the first caller in a process does the
/// work (OnceLock); across processes (several test binaries) a lock file
/// `target/interop-venv.lock` (created with `create_new`) serialises the
/// creation, and the marker file inside the venv is written only after a
/// successful install and import check.  Panics with a clear message if the
/// interpreter cannot be provided.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(init_python).clone()
}

fn init_python() -> PathBuf {
    if let Some(p) = std::env::var_os("VERSILE_PYTHON") {
        let p = PathBuf::from(p);
        check_import(&p).unwrap_or_else(|e| {
            panic!("VERSILE_PYTHON={} cannot import versile: {e}", p.display())
        });
        return p;
    }
    let target = workspace_dir().join("target");
    fs::create_dir_all(&target)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", target.display()));
    let venv = target.join("interop-venv");
    let py = venv_python(&venv);
    let marker = venv.join(".versile-interop-ok");
    if marker.exists() && py.exists() {
        return py;
    }
    let lock = target.join("interop-venv.lock");
    let deadline = Instant::now() + VENV_LOCK_WAIT;
    loop {
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(mut f) => {
                let _guard = LockGuard(lock.clone());
                let _ = writeln!(f, "{}", std::process::id());
                drop(f);
                if !(marker.exists() && py.exists()) {
                    build_venv(&venv, &py, &marker);
                }
                return py;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if marker.exists() && py.exists() {
                    return py;
                }
                if lock_is_stale(&lock) {
                    eprintln!("support: removing stale lock {}", lock.display());
                    let _ = fs::remove_file(&lock);
                    continue;
                }
                if Instant::now() > deadline {
                    panic!(
                        "timed out after {:?} waiting for another process to create the \
                         interop venv (lock file {}); remove it if no test is running",
                        VENV_LOCK_WAIT,
                        lock.display()
                    );
                }
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create lock file {}: {e}", lock.display()),
        }
    }
}

/// Removes the venv lock file when dropped (also when unwinding).
struct LockGuard(PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn lock_is_stale(lock: &Path) -> bool {
    // Owner process gone (Linux: /proc/<pid>)?
    if let Ok(text) = fs::read_to_string(lock) {
        if let Ok(pid) = text.trim().parse::<u32>() {
            if Path::new("/proc/self").exists() {
                return !Path::new(&format!("/proc/{pid}")).exists();
            }
        }
    }
    // Otherwise (pid not written yet, or no /proc): by age.
    fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > VENV_LOCK_STALE)
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn build_venv(venv: &Path, py: &Path, marker: &Path) {
    if venv.exists() {
        // Left over from an interrupted or failed attempt (no marker).
        fs::remove_dir_all(venv)
            .unwrap_or_else(|e| panic!("cannot remove incomplete {}: {e}", venv.display()));
    }
    let base = std::env::var("VERSILE_BASE_PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "support: creating interop venv {} with {base}",
        venv.display()
    );
    let mut cmd = Command::new(&base);
    cmd.arg("-m").arg("venv").arg(venv);
    expect_success(cmd, VENV_CREATE_TIMEOUT, "python3 -m venv");

    eprintln!("support: pip install {VERSILE_REQUIREMENT}");
    let mut cmd = Command::new(py);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--timeout",
        "30",
        VERSILE_REQUIREMENT,
    ]);
    expect_success(cmd, PIP_INSTALL_TIMEOUT, "pip install");

    check_import(py).unwrap_or_else(|e| panic!("interop venv is not usable: {e}"));
    fs::write(marker, format!("{VERSILE_REQUIREMENT}\n"))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
}

fn expect_success(cmd: Command, timeout: Duration, what: &str) {
    let desc = format!("{cmd:?}");
    match run_with_timeout(cmd, timeout) {
        Ok((status, _out, err)) if status.success() => {
            let _ = err;
        }
        Ok((status, out, err)) => panic!(
            "failed to create the Python interop venv: {what} ({desc}) exited with \
             {status}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
        ),
        Err(e) => panic!("failed to create the Python interop venv: {what} ({desc}): {e}"),
    }
}

fn check_import(py: &Path) -> Result<(), String> {
    let mut cmd = Command::new(py);
    cmd.args(["-c", "import versile, versile.demo, versile.quick"]);
    match run_with_timeout(cmd, IMPORT_CHECK_TIMEOUT) {
        Ok((status, _, _)) if status.success() => Ok(()),
        Ok((status, out, err)) => Err(format!(
            "`{} -c 'import versile'` exited with {status}\n{out}{err}",
            py.display()
        )),
        Err(e) => Err(e),
    }
}

/// Runs a command to completion with piped output; kills it on timeout.
fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
) -> Result<(ExitStatus, String, String), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let out = collect(child.stdout.take().expect("stdout"));
    let err = collect(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok((status, out.finish(), err.finish()));
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{cmd:?} timed out after {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    out.finish(),
                    err.finish()
                ));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("waiting for {cmd:?}: {e}"));
            }
        }
    }
}

/// Output of a pipe collected by a thread.
struct Collector {
    text: Arc<Mutex<String>>,
    done: Receiver<()>,
}

impl Collector {
    /// The collected text once the pipe reached EOF (waits at most 2 s for
    /// that; a grandchild holding the pipe cannot block the caller).
    fn finish(&self) -> String {
        let _ = self.done.recv_timeout(Duration::from_secs(2));
        self.text.lock().unwrap().clone()
    }
}

fn collect<R: Read + Send + 'static>(pipe: R) -> Collector {
    let text = Arc::new(Mutex::new(String::new()));
    let (tx, done) = mpsc::channel();
    let t = text.clone();
    thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => t.lock().unwrap().push_str(&String::from_utf8_lossy(&buf)),
            }
        }
        let _ = tx.send(());
    });
    Collector { text, done }
}

// ---------------------------------------------------------------------------
// PyProcess
// ---------------------------------------------------------------------------

/// A running Python script from `tests/python/` (interpreter from
/// [`python()`]).
///
/// stdin is a pipe held open by this value (py_server.py exits on stdin
/// EOF; see [`PyProcess::close_stdin`]); stdout is delivered line by line to
/// [`PyProcess::wait_line`] and also kept in full; stderr is collected.
/// Dropping the value kills and reaps the child.
pub struct PyProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout_all: Arc<Mutex<String>>,
    stdout_done: Receiver<()>,
    stderr: Collector,
    reaped: bool,
}

impl PyProcess {
    /// The interpreter's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `tests/python/<script>` with `args`.
    pub fn spawn(script: &str, args: &[&str]) -> PyProcess {
        Self::spawn_with_env(script, args, &[])
    }

    /// Like [`PyProcess::spawn`] with extra environment variables.
    pub fn spawn_with_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> PyProcess {
        let py = python();
        let path = script_path(script);
        assert!(path.exists(), "script {} not found", path.display());
        let mut cmd = Command::new(&py);
        cmd.arg("-u")
            .arg(&path)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONWARNINGS", "ignore")
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {}: {e}", py.display(), path.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout pipe");
        let stderr = collect(child.stderr.take().expect("stderr pipe"));

        let (line_tx, lines) = mpsc::channel();
        let (done_tx, stdout_done) = mpsc::channel();
        let stdout_all = Arc::new(Mutex::new(String::new()));
        let all = stdout_all.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        all.lock().unwrap().push_str(&line);
                        let _ = line_tx.send(line.trim_end_matches(['\n', '\r']).to_string());
                    }
                }
            }
            let _ = done_tx.send(());
        });
        let name = format!("{script} {}", args.join(" "));
        PyProcess {
            name,
            child,
            stdin,
            lines,
            stdout_all,
            stdout_done,
            stderr,
            reaped: false,
        }
    }

    /// OS process id of the child.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// stdout received so far (all lines, including those returned by
    /// `wait_line`).
    pub fn stdout(&self) -> String {
        self.stdout_all.lock().unwrap().clone()
    }

    /// stderr received so far.
    pub fn stderr(&self) -> String {
        self.stderr.text.lock().unwrap().clone()
    }

    /// Waits for the next stdout line starting with `prefix` (earlier
    /// non-matching lines are skipped) and returns it without the line end.
    /// Panics, showing stdout and stderr, on timeout or if the process
    /// closes stdout / exits first.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                    "no stdout line starting with {prefix:?} within {timeout:?}"
                )),
                Err(RecvTimeoutError::Disconnected) => {
                    // Give the process a moment to finish so the report
                    // shows its exit status.
                    let status = self.try_wait_for(Duration::from_secs(2));
                    self.fail(&format!(
                        "stdout closed (exit status {status:?}) before a line \
                         starting with {prefix:?}"
                    ))
                }
            }
        }
    }

    /// Closes the child's stdin (py_server.py stops on EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends SIGTERM (Unix; elsewhere kills the process).
    pub fn terminate(&mut self) {
        if self.reaped {
            return;
        }
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        #[cfg(not(unix))]
        {
            let _ = self.child.kill();
        }
    }

    /// Waits for the process to exit; returns (status, full stdout, stderr).
    /// On timeout the process is killed and the call panics with its output.
    pub fn wait_exit(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        match self.try_wait_for(timeout) {
            Some(status) => {
                let _ = self.stdout_done.recv_timeout(Duration::from_secs(2));
                (status, self.stdout(), self.stderr.finish())
            }
            None => self.fail(&format!("did not exit within {timeout:?}")),
        }
    }

    /// Graceful stop: closes stdin, then waits up to `timeout` for the exit.
    pub fn stop(mut self, timeout: Duration) -> (ExitStatus, String, String) {
        self.close_stdin();
        self.wait_exit(timeout)
    }

    fn try_wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => return None,
                Err(e) => panic!("[{}] waiting for the process: {e}", self.name),
            }
        }
    }

    fn kill_and_reap(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    fn fail(&mut self, what: &str) -> ! {
        self.kill_and_reap();
        let _ = self.stdout_done.recv_timeout(Duration::from_millis(500));
        panic!(
            "[{}] {what}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.stdout(),
            self.stderr.finish()
        );
    }
}

impl Drop for PyProcess {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill_and_reap();
    }
}

// ---------------------------------------------------------------------------
// py_server.py / py_client.py
// ---------------------------------------------------------------------------

/// A running `py_server.py` (insecure VOP service on 127.0.0.1).
pub struct PyServer {
    pub process: PyProcess,
    pub port: u16,
}

impl PyServer {
    /// Starts `py_server.py --port 0 <extra_args>` and waits (30 s at most)
    /// for its `listening PORT` line.
    pub fn start(extra_args: &[&str]) -> PyServer {
        let mut args = vec!["--port", "0"];
        args.extend_from_slice(extra_args);
        let mut process = PyProcess::spawn("py_server.py", &args);
        let line = process.wait_line("listening ", Duration::from_secs(30));
        let port = line["listening ".len()..]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("bad listening line {line:?}: {e}"));
        PyServer { process, port }
    }

    /// `vop://127.0.0.1:PORT/<path>`.
    pub fn vri(&self, path: &str) -> String {
        format!(
            "vop://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// Graceful stop through stdin EOF; returns (status, stdout, stderr).
    pub fn stop(self, timeout: Duration) -> (ExitStatus, String, String) {
        self.process.stop(timeout)
    }
}

/// One `{"check": ...}` line of py_client.py.
#[derive(Debug, Clone)]
pub struct ClientCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Parsed result of a py_client.py run.
#[derive(Debug)]
pub struct ClientReport {
    pub status: ExitStatus,
    pub vri: Option<String>,
    pub checks: Vec<ClientCheck>,
    /// From the final summary line (None if it is missing).
    pub summary: Option<(u64, u64)>,
    pub stdout: String,
    pub stderr: String,
}

impl ClientReport {
    pub fn failed_checks(&self) -> Vec<&ClientCheck> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }

    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.ok).count()
    }

    /// The named check (`scenario/check`), if it ran.
    pub fn check(&self, name: &str) -> Option<&ClientCheck> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Panics with the failed checks (and the client's stderr) unless the
    /// client exited 0, printed a summary with no failures, and ran at least
    /// one check.
    pub fn assert_all_passed(&self) {
        let failed = self.failed_checks();
        let ok = self.status.success()
            && failed.is_empty()
            && !self.checks.is_empty()
            && matches!(self.summary, Some((_, 0)));
        if !ok {
            let mut msg = format!(
                "py_client.py against {:?}: status {}, summary {:?}, {} checks, {} failed\n",
                self.vri,
                self.status,
                self.summary,
                self.checks.len(),
                failed.len()
            );
            for c in failed {
                msg.push_str(&format!("FAILED {}: {}\n", c.name, c.detail));
            }
            msg.push_str(&format!("--- stderr ---\n{}", self.stderr));
            panic!("{msg}");
        }
    }
}

/// Runs `py_client.py SCENARIOS VRI` (e.g. `"all"`, `"echo_types,adder"`)
/// and parses its output.  The client gets an internal limit a little below
/// `timeout`; the process is killed (and the call panics) at `timeout`.
pub fn run_py_client(scenarios: &str, vri: &str, timeout: Duration) -> ClientReport {
    run_py_client_with(&[], scenarios, vri, timeout)
}

/// [`run_py_client`] with extra options (e.g. `--vts`).
pub fn run_py_client_with(
    options: &[&str],
    scenarios: &str,
    vri: &str,
    timeout: Duration,
) -> ClientReport {
    let inner = timeout
        .saturating_sub(Duration::from_secs(5))
        .max(Duration::from_secs(5));
    let inner = format!("{}", inner.as_secs_f64());
    let mut args = vec!["--timeout", inner.as_str()];
    args.extend_from_slice(options);
    args.extend_from_slice(&[scenarios, vri]);
    let p = PyProcess::spawn("py_client.py", &args);
    let (status, stdout, stderr) = p.wait_exit(timeout);
    parse_client_output(status, stdout, stderr)
}

/// Runs another check script of `tests/python/` that prints py_client.py's
/// JSON lines (e.g. `py_typed_client.py`), with the same time limits.
pub fn run_py_checks(script: &str, args: &[&str], timeout: Duration) -> ClientReport {
    let inner = timeout
        .saturating_sub(Duration::from_secs(5))
        .max(Duration::from_secs(5));
    let inner = format!("{}", inner.as_secs_f64());
    let mut all = vec!["--timeout", inner.as_str()];
    all.extend_from_slice(args);
    let p = PyProcess::spawn(script, &all);
    let (status, stdout, stderr) = p.wait_exit(timeout);
    parse_client_output(status, stdout, stderr)
}

fn parse_client_output(status: ExitStatus, stdout: String, stderr: String) -> ClientReport {
    let mut checks = Vec::new();
    let mut vri = None;
    let mut summary = None;
    for line in stdout.lines() {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if let Some(name) = v.get("check").and_then(|n| n.as_str()) {
            let detail = match v.get("detail") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            checks.push(ClientCheck {
                name: name.to_string(),
                ok: v.get("ok").and_then(|o| o.as_bool()).unwrap_or(false),
                detail,
            });
        } else if let Some(s) = v.get("summary") {
            let n = |k: &str| s.get(k).and_then(|x| x.as_u64()).unwrap_or(u64::MAX);
            summary = Some((n("passed"), n("failed")));
        } else if let Some(u) = v.get("vri").and_then(|u| u.as_str()) {
            vri = Some(u.to_string());
        }
    }
    ClientReport {
        status,
        vri,
        checks,
        summary,
        stdout,
        stderr,
    }
}

/// Starts `py_server.py ARGS`, runs `body(base_vri)` (e.g.
/// `vop://127.0.0.1:P/`) on a private two-thread runtime within `limit`,
/// prints the server's stderr if the body panics, and stops the server,
/// which must exit successfully.
pub fn with_py_server<F, Fut>(args: &[&str], limit: Duration, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = PyServer::start(args);
    let vri = server.vri("");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            tokio::time::timeout(limit, body(vri))
                .await
                .unwrap_or_else(|_| panic!("test body did not finish within {limit:?}"))
        })
    }));
    rt.shutdown_timeout(Duration::from_secs(5));
    if let Err(panic) = result {
        eprintln!("--- py_server.py stderr ---\n{}", server.process.stderr());
        std::panic::resume_unwind(panic);
    }
    eprintln!("test body took {:.2?}", started.elapsed());
    let (status, _, stderr) = server.stop(Duration::from_secs(15));
    assert!(status.success(), "py_server.py exit {status}\n{stderr}");
}
