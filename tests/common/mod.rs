//! Shared harness of the end-to-end tests: start the real `fluxiondb` binary on an ephemeral
//! port (optionally with a temporary data folder) and talk to it with a real WebSocket client.
//!
//! Every test starts its own server, so tests are parallel-safe.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// The master key every test server is started with.
pub const MASTER: &str = "master-key";
/// How long a client waits for a frame before giving up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the harness waits for the server's `listening` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

const LISTEN_PREFIX: &str = "fluxiondb listening on ";
const STDERR_KEEP: usize = 64 * 1024;

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A unique, not yet existing path under the system temp folder.
pub fn unique_temp_path(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "fluxiondb-test-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ))
}

/// A temporary folder `<tmp>/fluxiondb-test-…/` holding the data folder `data/`. The parent is
/// empty apart from `data/` and is used as the server's working directory, so a test can verify
/// that the server never writes outside its data folder. Removed on drop.
pub struct TempDir {
    parent: PathBuf,
    data: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let parent = unique_temp_path("data");
        std::fs::create_dir_all(&parent).expect("create temp parent folder");
        let data = parent.join("data");
        std::fs::create_dir(&data).expect("create temp data folder");
        TempDir { parent, data }
    }
    pub fn parent(&self) -> &Path {
        &self.parent
    }
    pub fn data(&self) -> &Path {
        &self.data
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.parent);
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
    /// Set by `start_exact`: spawn with exactly `args` and this environment.
    exact_env: Option<Vec<(String, String)>>,
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
        let mut server = Server {
            child: None,
            port: 0,
            secret: secret.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            dir: if data_dir { Some(TempDir::new()) } else { None },
            stderr: Arc::new(Mutex::new(VecDeque::new())),
            exact_env: None,
            listen_line: String::new(),
        };
        server.spawn();
        server
    }

    /// Starts the binary with exactly `args` (no default arguments) and extra environment
    /// variables, e.g. to test option spellings or environment fallbacks. The arguments must make
    /// the server listen on 127.0.0.1 with an ephemeral port.
    pub fn start_exact(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut server = Server {
            child: None,
            port: 0,
            secret: String::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            dir: None,
            stderr: Arc::new(Mutex::new(VecDeque::new())),
            exact_env: None,
            listen_line: String::new(),
        };
        server.exact_env = Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
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
        let mut cmd = match &self.exact_env {
            Some(env) => {
                let mut cmd = bare_command();
                cmd.args(&self.args).envs(env.iter().map(|(k, v)| (k, v)));
                cmd
            }
            None => Server::command(&self.secret, &self.args, self.dir.as_ref()),
        };
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

/// `application/x-www-form-urlencoded` encoding of one value (space → `+`).
pub fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One frame read from the server, or what happened instead.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame: `None` when it carried no status code.
    Close(Option<(u16, String)>),
    /// The connection ended without a close frame (or was already closed).
    Dropped(String),
    /// Nothing arrived within the read timeout.
    Timeout,
}

impl Frame {
    pub fn describe(&self) -> String {
        match self {
            Frame::Text(t) => format!("text frame {}", truncate(t, 400)),
            Frame::Binary(b) => format!("binary frame of {} bytes", b.len()),
            Frame::Close(Some((c, r))) => format!("close {c} {r:?}"),
            Frame::Close(None) => "close frame without status code".to_string(),
            Frame::Dropped(e) => format!("connection dropped without close frame ({e})"),
            Frame::Timeout => format!("no frame within {READ_TIMEOUT:?}"),
        }
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// A WebSocket client connection to the test server.
pub struct Client {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    closed: bool,
}

impl Client {
    /// TCP connect to 127.0.0.1:port and perform the WebSocket handshake. Does not read any frame.
    pub fn connect(port: u16, path_and_query: &str) -> Result<Client, String> {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("tcp connect: {e}"))?;
        stream.set_nodelay(true).ok();
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let url = format!("ws://127.0.0.1:{port}{path_and_query}");
        // The client must never be the limiting side: no frame or message size limits.
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_frame_size(None)
            .max_message_size(None);
        match tungstenite::client::client_with_config(url.as_str(), stream, Some(config)) {
            Ok((ws, _response)) => Ok(Client {
                ws,
                next_id: 0,
                closed: false,
            }),
            Err(tungstenite::HandshakeError::Interrupted(_)) => {
                Err(format!("handshake to {url} timed out"))
            }
            Err(tungstenite::HandshakeError::Failure(e)) => {
                Err(format!("handshake to {url} failed: {e}"))
            }
        }
    }

    /// Connects with `?api-key=<key>[&name=<name>]` (form encoded) and asserts the `ready` frame.
    pub fn open(port: u16, key: &str, name: Option<&str>) -> Client {
        let mut q = format!("/?api-key={}", form_encode(key));
        if let Some(n) = name {
            q.push_str("&name=");
            q.push_str(&form_encode(n));
        }
        Client::open_path(port, &q)
    }

    /// Connects with a raw path and query and asserts the `ready` frame.
    pub fn open_path(port: u16, path_and_query: &str) -> Client {
        let mut c = Client::connect(port, path_and_query).unwrap_or_else(|e| panic!("{e}"));
        c.expect_ready();
        c
    }

    /// Reads the next frame and asserts it is exactly the `ready` frame.
    pub fn expect_ready(&mut self) {
        let v = self.recv_json();
        assert_eq!(
            v,
            json!({"type":"ready","message":"Authentication successful"}),
            "first frame must be the ready frame"
        );
    }

    /// Connects and expects the server to close the connection before any frame: returns
    /// (code, reason).
    pub fn open_expect_close(port: u16, path_and_query: &str) -> (u16, String) {
        let mut c = Client::connect(port, path_and_query).unwrap_or_else(|e| panic!("{e}"));
        c.recv_close()
    }

    pub fn stream(&self) -> &TcpStream {
        self.ws.get_ref()
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.ws.get_ref().set_read_timeout(Some(t)).unwrap();
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .unwrap_or_else(|e| panic!("send failed: {e}"));
    }

    pub fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        self.ws
            .send(Message::text(text.to_string()))
            .map_err(|e| e.to_string())
    }

    pub fn send_message(&mut self, m: Message) {
        self.ws
            .send(m)
            .unwrap_or_else(|e| panic!("send failed: {e}"));
    }

    /// Writes one raw frame (client-masked with a zero key, so the payload is unchanged) straight
    /// to the socket, bypassing tungstenite's checks: lets a test send invalid UTF-8 in a text
    /// frame, fragments, or oversize messages. `opcode`: 0 continuation, 1 text, 2 binary, 9 ping.
    pub fn send_raw_frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) -> std::io::Result<()> {
        let header = raw_frame_header(opcode, fin, payload.len() as u64);
        let s = self.ws.get_mut();
        s.write_all(&header)?;
        s.write_all(payload)?;
        s.flush()
    }

    /// Sends a text frame of `length` bytes of `fill` from a helper thread (errors ignored: the
    /// server may stop reading and close), so that the caller can read the server's reaction
    /// while the write is still in progress.
    pub fn send_big_text_frame(&mut self, fill: u8, length: usize) -> thread::JoinHandle<()> {
        let mut s = self.ws.get_ref().try_clone().expect("clone stream");
        thread::spawn(move || {
            let header = raw_frame_header(1, true, length as u64);
            if s.write_all(&header).is_err() {
                return;
            }
            let chunk = vec![fill; 64 * 1024];
            let mut left = length;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
            let _ = s.flush();
        })
    }

    /// Sends one text frame of `length` bytes and returns the server's reaction (the next
    /// frame), then hangs up: for messages over the size limit, which the server refuses
    /// (close 1009) without reading them whole.
    pub fn send_oversize(&mut self, length: usize) -> Frame {
        let writer = self.send_big_text_frame(b'x', length);
        let got = self.next_frame();
        let _ = self.stream().shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        got
    }

    /// The next message exactly as tungstenite returns it (pings and pongs included).
    pub fn read_raw(&mut self) -> tungstenite::Result<Message> {
        self.ws.read()
    }

    /// Reads the next data or close frame (pings and pongs are skipped; pings are answered by
    /// tungstenite).
    pub fn next_frame(&mut self) -> Frame {
        if self.closed {
            return Frame::Dropped("connection already closed".into());
        }
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Frame::Text(t.to_string()),
                Ok(Message::Binary(b)) => return Frame::Binary(b.to_vec()),
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => continue,
                Ok(Message::Close(cf)) => {
                    self.closed = true;
                    // Let tungstenite send its close reply; ignore failures.
                    let _ = self.ws.flush();
                    return Frame::Close(cf.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Frame::Timeout
                }
                Err(e) => {
                    self.closed = true;
                    return Frame::Dropped(e.to_string());
                }
            }
        }
    }

    /// Reads the next frame, which must be a text frame holding JSON.
    pub fn recv_json(&mut self) -> Value {
        match self.next_frame() {
            Frame::Text(t) => serde_json::from_str(&t).unwrap_or_else(|e| {
                panic!("server sent a text frame that is not JSON ({e}): {t:?}")
            }),
            other => panic!("expected a JSON text frame, got {}", other.describe()),
        }
    }

    /// Reads the next frame, which must be a close frame with a status code.
    pub fn recv_close(&mut self) -> (u16, String) {
        match self.next_frame() {
            Frame::Close(Some(cr)) => cr,
            other => panic!("expected a close frame, got {}", other.describe()),
        }
    }

    /// Sends `{"id":id,"type":ty,"data":data}` and returns the next frame as JSON, asserting that
    /// it echoes `id`.
    pub fn request(&mut self, id: &str, ty: &str, data: &str) -> Value {
        let frame = json!({"id": id, "type": ty, "data": data}).to_string();
        self.send_text(&frame);
        let v = self.recv_json();
        assert_eq!(
            v.get("id"),
            Some(&json!(id)),
            "response does not echo id {id:?}: {v} (request {frame})"
        );
        v
    }

    /// Sends a request with an automatic id and `data` = the JSON text of `payload` (or `payload`
    /// itself when it is a JSON string). Returns the response with the `id` member removed.
    pub fn call(&mut self, ty: &str, payload: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let data = match payload {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let mut v = self.request(&id, ty, &data);
        v.as_object_mut().unwrap().remove("id");
        v
    }

    /// `call`, asserting success (no `error` member); returns the response without `id`.
    pub fn ok(&mut self, ty: &str, payload: Value) -> Value {
        let shown = payload.to_string();
        let v = self.call(ty, payload);
        assert!(v.get("error").is_none(), "{ty} {shown} failed: {v}");
        v
    }

    /// `call`, asserting an error response with exactly the members `id` and `error`; returns the
    /// error text.
    pub fn err(&mut self, ty: &str, payload: Value) -> String {
        let shown = payload.to_string();
        let v = self.call(ty, payload);
        let obj = v.as_object().unwrap();
        match (obj.len(), obj.get("error")) {
            (1, Some(Value::String(e))) => e.clone(),
            _ => panic!("{ty} {shown}: expected an error response, got {v}"),
        }
    }

    /// Initiates a close (1000) and waits (bounded) for the server's close frame.
    pub fn close(&mut self) -> Frame {
        if self.closed {
            return Frame::Dropped("connection already closed".into());
        }
        let _ = self.ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.ws.flush();
        loop {
            match self.ws.read() {
                Ok(Message::Close(cf)) => {
                    self.closed = true;
                    let _ = self.ws.flush();
                    return Frame::Close(cf.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Ok(Message::Text(t)) => {
                    // Responses still in flight may arrive before the close reply; skip them.
                    let _ = t;
                    continue;
                }
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed) => {
                    self.closed = true;
                    return Frame::Close(None);
                }
                Err(tungstenite::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Frame::Timeout
                }
                Err(e) => {
                    self.closed = true;
                    return Frame::Dropped(e.to_string());
                }
            }
        }
    }
}

/// Header of a client frame with a zero masking key.
pub fn raw_frame_header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    h.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u16::MAX as u64 {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// Builds an `ins` payload (array) from `(col, doc, ts, data)` tuples.
pub fn recs(items: &[(&str, &str, i64, &str)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(c, d, t, x)| json!({"col": c, "doc": d, "ts": t, "data": x}))
            .collect(),
    )
}

/// Inserts the fixture F of PROTOCOL.md §12.0 (without the API keys) on a master connection.
pub fn fixture(c: &mut Client) {
    c.ok(
        "ins",
        recs(&[
            ("sensors", "dev-1", 100, "temp:20 state:flying"),
            ("sensors", "dev-1", 200, "temp:21 state:landed"),
            ("sensors", "dev-1", 300, "temp:22 state:flying quality:bad"),
            ("sensors", "dev-2", 150, "temp:30 state:flying"),
            ("sensors", "probe-9", 50, "temp:5 state:parked"),
        ]),
    );
    for (k, v) in [("env.prod", "v1"), ("env.stage", "v2"), ("region", "eu")] {
        c.ok("sval", json!({"col": "config", "key": k, "value": v}));
    }
}

/// Adds the three scoped keys of fixture F (`ro-key`, `rw-key`, `rwd-key`).
pub fn fixture_keys(c: &mut Client) {
    for (k, s) in [
        ("ro-key", "readonly"),
        ("rw-key", "read_write"),
        ("rwd-key", "read_write_delete"),
    ] {
        let v = c.ok("keys", json!({"action": "add", "key": k, "scope": s}));
        assert_eq!(v, json!({"status": "ok", "scope": s}));
    }
}

/// The `qry` answer of fixture F at ts 1000.
pub fn fixture_q1() -> Value {
    json!({"records": {
        "dev-1": {"ts": 300, "data": "temp:22 state:flying quality:bad"},
        "dev-2": {"ts": 150, "data": "temp:30 state:flying"},
        "probe-9": {"ts": 50, "data": "temp:5 state:parked"}
    }})
}

/// Asserts that fixture F is intact (records and key/values).
pub fn assert_fixture_intact(c: &mut Client) {
    assert_eq!(
        c.ok("qry", json!({"col": "sensors", "ts": 1000})),
        fixture_q1(),
        "fixture records changed"
    );
    assert_eq!(
        c.ok(
            "qdoc",
            json!({"col": "sensors", "doc": "dev-1", "to": 1000})
        ),
        json!({"records": [
            {"ts": 100, "data": "temp:20 state:flying"},
            {"ts": 200, "data": "temp:21 state:landed"},
            {"ts": 300, "data": "temp:22 state:flying quality:bad"}
        ]}),
        "fixture dev-1 history changed"
    );
    assert_eq!(
        c.ok("gvals", json!({"col": "config"})),
        json!({"values": {"env.prod": "v1", "env.stage": "v2", "region": "eu"}}),
        "fixture key/values changed"
    );
}

/// `cols` answer as a list of strings.
pub fn cols(c: &mut Client) -> Vec<String> {
    let v = c.ok("cols", json!({}));
    let list = v["collections"]
        .as_array()
        .unwrap_or_else(|| panic!("cols: no collections array: {v}"));
    list.iter()
        .map(|x| x.as_str().expect("collection name").to_string())
        .collect()
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
