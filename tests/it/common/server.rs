//! The server under test: the real binary, started on an ephemeral port, with an optional
//! temporary data folder; process helpers.

use super::*;

const LISTEN_PREFIX: &str = "fluxiondb listening on ";
const STDERR_KEEP: usize = 64 * 1024;

/// Polls `cond` every 20 ms until it holds (true) or `timeout` has passed (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A temporary folder `<tmp>/fluxiondb-test-…/` holding the data folder `data/`. The parent is
/// empty apart from `data/` and is used as the server's working directory, so a test can verify
/// that the server never writes outside its data folder. Removed on drop.
pub struct TempDir {
    parent: tempfile::TempDir,
    data: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let parent = tempfile::Builder::new()
            .prefix("fluxiondb-test-")
            .tempdir()
            .expect("create temp parent folder");
        let data = parent.path().join("data");
        std::fs::create_dir(&data).expect("create temp data folder");
        TempDir { parent, data }
    }
    pub fn parent(&self) -> &Path {
        self.parent.path()
    }
    pub fn data(&self) -> &Path {
        &self.data
    }
}

/// `fluxiondb` with a clean environment (so no `SECRET_KEY`, `DATA_DIR`, `PORT`, … fallback
/// leaks in from the test runner); only `RUST_BACKTRACE` and `RUST_LOG` are passed through.
pub fn bare_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fluxiondb"));
    cmd.env_clear();
    for var in ["RUST_BACKTRACE", "RUST_LOG"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd
}

/// Runs the binary with `args` to completion (bounded by `timeout`, then killed); returns the
/// exit status (None on timeout), stdout and stderr.
pub fn run_binary(args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String, String) {
    let mut child = bare_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fluxiondb");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    (
        status,
        t_out.join().unwrap_or_default(),
        t_err.join().unwrap_or_default(),
    )
}

/// A running `fluxiondb` process. Killed (SIGKILL) on drop.
pub struct Server {
    child: Option<Child>,
    /// The port the current process listens on (changes on every restart).
    pub port: u16,
    secret: String,
    args: Vec<String>,
    dir: Option<TempDir>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    /// Environment variables of the process beyond the clean one of [`bare_command`].
    env: Vec<(String, String)>,
    /// Set by `start_exact`: spawn with exactly `args` (no default arguments).
    exact: bool,
    /// The `fluxiondb listening on …` line of the current process.
    pub listen_line: String,
}

impl Server {
    /// Starts the binary with `--secret-key master-key --port 0 --bind 127.0.0.1` plus `args`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_full(MASTER, args, false)
    }

    /// Like `start`, with `--data <temp folder>` (removed when the server is dropped).
    pub fn with_data_dir() -> Server {
        Server::start_full(MASTER, &[], true)
    }

    /// Like `with_data_dir`, with extra arguments (e.g. `--fsync always`).
    pub fn with_data_dir_args(args: &[&str]) -> Server {
        Server::start_full(MASTER, args, true)
    }

    /// Full control: master key, extra arguments, and whether to add a temporary data folder.
    pub fn start_full(secret: &str, args: &[&str], data_dir: bool) -> Server {
        Server::launch(secret, args, data_dir.then(TempDir::new), &[], false)
    }

    /// Like `start`, with extra environment variables (e.g. those pointing at an S3 store).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch(MASTER, args, None, env, false)
    }

    /// Starts the binary with exactly `args` (no default arguments) and extra environment
    /// variables, e.g. to test option spellings or environment fallbacks. The arguments must make
    /// the server listen on 127.0.0.1 with an ephemeral port.
    pub fn start_exact(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch("", args, None, env, true)
    }

    fn launch(
        secret: &str,
        args: &[&str],
        dir: Option<TempDir>,
        env: &[(&str, &str)],
        exact: bool,
    ) -> Server {
        let mut server = Server {
            child: None,
            port: 0,
            secret: secret.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            dir,
            stderr: Arc::new(Mutex::new(VecDeque::new())),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            exact,
            listen_line: String::new(),
        };
        server.spawn();
        server
    }

    /// The command line of the binary: `--secret-key SECRET --port 0 --bind 127.0.0.1
    /// [--data DIR] ARGS`, run in the data folder's parent (if any), with a clean environment.
    pub fn command(secret: &str, args: &[String], dir: Option<&TempDir>) -> Command {
        let mut cmd = bare_command();
        cmd.args(["--secret-key", secret, "--port", "0", "--bind", "127.0.0.1"]);
        if let Some(dir) = dir {
            cmd.arg("--data").arg(dir.data());
            cmd.current_dir(dir.parent());
        }
        cmd.args(args);
        cmd
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let mut cmd = if self.exact {
            let mut cmd = bare_command();
            cmd.args(&self.args);
            cmd
        } else {
            Server::command(&self.secret, &self.args, self.dir.as_ref())
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", env!("CARGO_BIN_EXE_fluxiondb")));

        // Drain stderr for the whole life of the process (keep the tail for diagnostics).
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&self.stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap();
                s.extend(&buf[..n]);
                while s.len() > STDERR_KEEP {
                    s.pop_front();
                }
            }
        });

        // Read stdout until the listening line; keep draining afterwards.
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<Result<(u16, String), String>>();
        thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(rest) = line.trim_end().strip_prefix(LISTEN_PREFIX) {
                        let port = rest.rsplit(':').next().unwrap_or("").parse::<u16>();
                        let msg = port
                            .map(|p| (p, line.trim_end().to_string()))
                            .map_err(|e| format!("bad listening line {line:?}: {e}"));
                        let _ = tx.send(msg);
                        sent = true;
                    }
                }
            }
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let result = rx.recv_timeout(START_TIMEOUT);
        self.child = Some(child);
        match result {
            Ok(Ok((port, line))) if port != 0 => {
                self.port = port;
                self.listen_line = line;
            }
            Ok(Ok(_)) => self.fail_start("listening line announced port 0"),
            Ok(Err(e)) => self.fail_start(&e),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed without the line: the process probably exited; give it a moment
                // to be reaped so the exit status can be shown.
                let status = self.wait_exit(deadline.saturating_duration_since(Instant::now()));
                self.fail_start(&format!(
                    "stdout closed before the listening line (exit: {status:?})"
                ))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.fail_start(&format!("no listening line within {START_TIMEOUT:?}"))
            }
        }
    }

    fn fail_start(&mut self, why: &str) -> ! {
        self.kill9();
        panic!(
            "fluxiondb did not start: {why}\n--- server stderr (tail) ---\n{}",
            self.stderr_tail()
        );
    }

    /// The last bytes the server wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        let s = self.stderr.lock().unwrap();
        let v: Vec<u8> = s.iter().copied().collect();
        String::from_utf8_lossy(&v).into_owned()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The data folder, when the server was started with one.
    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.data())
    }

    /// The empty parent of the data folder (the server's working directory).
    pub fn data_parent(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.parent())
    }

    /// SIGKILL the process (if running) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM without waiting (see `wait_exit`).
    pub fn send_sigterm(&self) {
        let pid = self.pid().expect("server not running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits (bounded) for the process to exit; returns its status, or None on timeout.
    /// On success the process is reaped and the server counts as stopped.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// SIGTERM and wait (up to 10 s) for the exit; panics when the process does not exit.
    pub fn sigterm(&mut self) -> ExitStatus {
        self.send_sigterm();
        match self.wait_exit(Duration::from_secs(10)) {
            Some(s) => s,
            None => {
                self.kill9();
                panic!(
                    "server did not exit within 10 s of SIGTERM\n{}",
                    self.stderr_tail()
                )
            }
        }
    }

    /// SIGKILL (if still running) and start again with the same arguments and data folder.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Like `restart`, with another master key.
    pub fn restart_with_secret(&mut self, secret: &str) {
        self.kill9();
        self.secret = secret.to_string();
        self.spawn();
    }

    /// Starts the process again after it stopped (e.g. after `sigterm`).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server still running");
        self.spawn();
    }

    /// Starts the process again after it stopped, with extra arguments from now on (e.g.
    /// `--repair`).
    pub fn start_again_with(&mut self, extra: &[&str]) {
        self.args.extend(extra.iter().map(|s| s.to_string()));
        self.start_again();
    }

    /// `ws://127.0.0.1:PORT` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path_and_query)
    }

    /// Opens a connection with `key` (and `name`), asserting the `ready` frame.
    pub fn open(&self, key: &str, name: Option<&str>) -> Client {
        Client::open(self.port, key, name)
    }

    /// A master connection named `ops`.
    pub fn master(&self) -> Client {
        self.open(MASTER, Some("ops"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`, `Threads`, …); None when the
/// process or the field is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn proc_cpu_time(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis((utime + stime) * 1000 / tick))
}

/// Starts the binary on the data folder `dir` (plus `extra` arguments) expecting it to refuse
/// to start; returns its stderr.
pub fn refused_start(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "--secret-key",
        "master-key",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--data",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (status, _out, err) = run_binary(&args, Duration::from_secs(10));
    let status = status.expect("the server should exit by itself");
    assert!(
        !status.success(),
        "the server started although it should refuse: {err}"
    );
    err
}
