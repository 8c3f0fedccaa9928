//! Plain HTTP on the WebSocket port (health, readiness, metrics), asked by a real HTTP client
//! (`ureq`), the metrics read by a real Prometheus text parser; the slow-request log; readiness
//! while the data folder is recovered and once the storage stopped taking writes.

use crate::common::*;
use prometheus_parse::{Sample, Scrape, Value as PromValue};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// An HTTP client that hands every status back instead of failing on 4xx/5xx.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

struct Answer {
    status: u16,
    content_type: String,
    connection: String,
    allow: String,
    content_length: String,
    body: String,
}

fn answer(mut resp: ureq::http::Response<ureq::Body>) -> Answer {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (content_type, connection, allow, content_length) = (
        header("content-type"),
        header("connection"),
        header("allow"),
        header("content-length"),
    );
    Answer {
        status: resp.status().as_u16(),
        content_type,
        connection,
        allow,
        content_length,
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn get(port: u16, path: &str) -> Answer {
    answer(
        agent()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}")),
    )
}

fn get_with_key(port: u16, path: &str, key: &str) -> Answer {
    answer(
        agent()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header("Authorization", format!("Bearer {key}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}")),
    )
}

/// Sends `raw` as it is and reads the whole answer (the server closes after one).
fn raw_http(port: u16, raw: &[u8]) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn scrape(port: u16, key: &str) -> Scrape {
    let a = get_with_key(port, "/metrics", key);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        a.content_type
    );
    for name in [
        "fluxiondb_requests_total",
        "fluxiondb_request_duration_seconds",
    ] {
        assert!(
            a.body.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        assert!(
            a.body.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}"
        );
    }
    Scrape::parse(a.body.lines().map(|l| Ok(l.to_owned()))).expect("a Prometheus text exposition")
}

fn sample<'a>(s: &'a Scrape, metric: &str, label: Option<(&str, &str)>) -> &'a Sample {
    s.samples
        .iter()
        .find(|x| x.metric == metric && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {metric} {label:?}"))
}

/// A counter's or gauge's value.
fn value(s: &Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    match &sample(s, metric, label).value {
        PromValue::Counter(v) | PromValue::Gauge(v) | PromValue::Untyped(v) => *v,
        other => panic!("{metric} is not a number: {other:?}"),
    }
}

/// A histogram's `+Inf` bucket: its number of observations.
fn observations(s: &Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    match &sample(s, metric, label).value {
        PromValue::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .expect("a +Inf bucket"),
        other => panic!("{metric} is not a histogram: {other:?}"),
    }
}

#[test]
fn health_readiness_and_http_errors_on_the_websocket_port() {
    let s = Server::start(&[]);
    let a = get(s.port, "/healthz");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    assert_eq!(a.connection, "close");
    assert!(a.content_type.starts_with("text/plain"));
    let a = get(s.port, "/readyz");
    assert_eq!((a.status, a.body.as_str()), (200, "ready\n"));

    let a = get(s.port, "/health");
    assert_eq!(a.status, 404);
    let a = get(s.port, "/");
    assert_eq!(a.status, 404);

    let a = answer(
        agent()
            .post(format!("http://127.0.0.1:{}/healthz", s.port))
            .send("x")
            .unwrap(),
    );
    assert_eq!(a.status, 405);
    assert_eq!(a.allow, "GET, HEAD");
    let a = answer(
        agent()
            .delete(format!("http://127.0.0.1:{}/readyz", s.port))
            .call()
            .unwrap(),
    );
    assert_eq!(a.status, 405);

    let a = answer(
        agent()
            .head(format!("http://127.0.0.1:{}/healthz", s.port))
            .call()
            .unwrap(),
    );
    assert_eq!((a.status, a.body.as_str()), (200, ""));
    assert_eq!(
        a.content_length, "3",
        "HEAD announces the GET body's length"
    );

    for bad in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nBad Header Line\r\n\r\n",
    ] {
        let got = raw_http(s.port, bad);
        assert!(
            got.starts_with("HTTP/1.1 400 "),
            "{:?} answered {got:?}",
            String::from_utf8_lossy(bad)
        );
        assert!(got.contains("Connection: close\r\n"));
    }
    // HTTP/1.0 and bare line feeds are requests too.
    let got = raw_http(s.port, b"GET /healthz HTTP/1.0\n\n");
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("\r\n\r\nok\n"),
        "{got:?}"
    );

    // Upgrades keep working on any path, on the same port.
    let mut c = s.master();
    assert_eq!(c.ok("cols", json!({})), json!({"collections": []}));
    let mut c = Client::open_path(s.port, &format!("/any/path?api-key={MASTER}&name=p"));
    assert_eq!(c.ok("cols", json!({})), json!({"collections": []}));
    let (code, reason) = Client::open_expect_close(s.port, "/healthz");
    assert_eq!((code, reason.as_str()), (1008, "Missing API key parameter"));
}

/// An oversized request head is cut off without an answer, like a slow one.
#[test]
fn oversized_heads_are_cut_off() {
    let s = Server::start(&[]);
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nX-Pad: ".to_vec();
    head.resize(head.len() + 70 * 1024, b'a');
    // The server may hang up while this is still being written.
    let _ = c.write_all(&head);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    assert!(
        out.is_empty(),
        "answered {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(get(s.port, "/healthz").status, 200);
}

#[test]
fn metrics_need_a_key_and_count_traffic() {
    let s = Server::with_data_dir_args(&["--fsync", "always"]);
    let mut m = s.master();
    m.ok(
        "keys",
        json!({"action": "add", "key": "ro-key", "scope": "readonly"}),
    );

    let a = get(s.port, "/metrics");
    assert_eq!(a.status, 401);
    assert_eq!(a.body, "missing API key\n");
    assert_eq!(get_with_key(s.port, "/metrics", "nope").status, 401);
    assert_eq!(get(s.port, "/metrics?api-key=nope").status, 401);
    // Any scope will do, by header or by query parameter.
    assert_eq!(get(s.port, "/metrics?api-key=ro-key").status, 200);
    let before = scrape(s.port, "ro-key");

    let recs: Vec<_> = (1..=5)
        .map(|i| json!({"col": "m", "doc": format!("d{i}"), "ts": i, "data": "{\"v\":1}"}))
        .collect();
    for r in &recs {
        m.ok("ins", json!([r]));
    }
    m.ok("qdoc", json!({"col": "m", "doc": "d1", "to": 10}));
    m.err("qdoc", json!({"col": 5}));
    m.send_text("not json");
    m.recv_json();

    let after = scrape(s.port, MASTER);
    let moved = |metric: &str, ty: &str| {
        value(&after, metric, Some(("type", ty))) - value(&before, metric, Some(("type", ty)))
    };
    assert_eq!(moved("fluxiondb_requests_total", "ins"), 5.0);
    assert_eq!(moved("fluxiondb_request_errors_total", "ins"), 0.0);
    assert_eq!(moved("fluxiondb_requests_total", "qdoc"), 2.0);
    assert_eq!(moved("fluxiondb_request_errors_total", "qdoc"), 1.0);
    assert_eq!(moved("fluxiondb_request_errors_total", "unknown"), 1.0);
    assert!(moved("fluxiondb_response_bytes_total", "qdoc") > 0.0);
    assert!(moved("fluxiondb_request_bytes_total", "ins") > 0.0);
    let ins = Some(("type", "ins"));
    assert_eq!(
        observations(&after, "fluxiondb_request_duration_seconds", ins)
            - observations(&before, "fluxiondb_request_duration_seconds", ins),
        5.0
    );
    assert_eq!(value(&after, "fluxiondb_collections", None), 1.0);
    assert_eq!(value(&after, "fluxiondb_documents", None), 5.0);
    assert_eq!(value(&after, "fluxiondb_records", None), 5.0);
    assert!(value(&after, "fluxiondb_store_bytes", None) > 0.0);
    assert_eq!(value(&after, "fluxiondb_open_connections", None), 1.0);
    assert!(value(&after, "fluxiondb_connections_accepted_total", None) >= 2.0);
    assert!(
        value(&after, "fluxiondb_wal_bytes_written_total", None)
            > value(&before, "fluxiondb_wal_bytes_written_total", None)
    );
    assert!(
        value(&after, "fluxiondb_fsyncs_total", None)
            >= value(&before, "fluxiondb_fsyncs_total", None) + 5.0,
        "--fsync always syncs before every acknowledgement"
    );
    assert!(observations(&after, "fluxiondb_fsync_duration_seconds", None) >= 5.0);
    assert_eq!(value(&after, "fluxiondb_storage_available", None), 1.0);
    assert!(value(&after, "process_resident_memory_bytes", None) > 0.0);
    assert!(value(&after, "process_open_fds", None) > 0.0);
    assert!(value(&after, "process_start_time_seconds", None) > 1.6e9);
    assert!(value(&after, "process_cpu_seconds_total", None) >= 0.0);
    assert!(value(&after, "fluxiondb_recovery_duration_seconds", None) > 0.0);

    let refused = |s: &Scrape| {
        value(
            s,
            "fluxiondb_connections_refused_total",
            Some(("reason", "unknown_key")),
        )
    };
    let (code, _) = Client::open_expect_close(s.port, "/?api-key=wrong");
    assert_eq!(code, 1008);
    assert_eq!(refused(&scrape(s.port, MASTER)) - refused(&after), 1.0);
    drop(m);
    assert!(wait_until(Duration::from_secs(5), || value(
        &scrape(s.port, MASTER),
        "fluxiondb_open_connections",
        None
    ) == 0.0));
}

#[test]
fn checkpoints_show_in_metrics() {
    let s = Server::with_data_dir_args(&["--flush-interval", "1"]);
    let mut m = s.master();
    m.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}]),
    );
    let done = wait_until(Duration::from_secs(10), || {
        let sc = scrape(s.port, MASTER);
        value(&sc, "fluxiondb_snapshot_bytes_written_total", None) > 0.0
            && value(&sc, "fluxiondb_last_checkpoint_timestamp_seconds", None) > 1.6e9
    });
    assert!(done, "no checkpoint showed in /metrics");
}

#[test]
fn metrics_public_from_the_environment_takes_the_usual_spellings() {
    for (value, public) in [
        ("1", true),
        ("yes", true),
        ("on", true),
        ("0", false),
        ("off", false),
    ] {
        let s = Server::start_exact(
            &["--secret-key", MASTER, "--port", "0", "--bind", "127.0.0.1"],
            &[("METRICS_PUBLIC", value)],
        );
        let status = get(s.port, "/metrics").status;
        assert_eq!(
            status,
            if public { 200 } else { 401 },
            "METRICS_PUBLIC={value}"
        );
    }
}

#[test]
fn metrics_public_needs_no_key() {
    let s = Server::start(&["--metrics-public"]);
    let a = get(s.port, "/metrics");
    assert_eq!(a.status, 200);
    Scrape::parse(a.body.lines().map(|l| Ok(l.to_owned()))).unwrap();
}

/// The complete slow-request line (its last field written) that contains `needle`.
fn logged_line(s: &Server, needle: &str) -> String {
    let mut found = None;
    let complete = wait_until(Duration::from_secs(5), || {
        found = s
            .stderr_tail()
            .split_inclusive('\n')
            .find(|l| l.contains(needle) && l.ends_with('\n'))
            .map(|l| l.trim_end().to_owned());
        found.is_some()
    });
    assert!(
        complete,
        "no slow-request line with {needle}: {}",
        s.stderr_tail()
    );
    found.unwrap()
}

#[test]
fn slow_requests_are_logged() {
    let s = Server::start(&["--slow-ms", "0"]);
    let mut c = s.open(MASTER, Some("slow-app"));
    c.request("slow-1", "cols", "{}");
    let line = logged_line(&s, "id=\"slow-1\"");
    for part in [
        "slow request:",
        "name=\"slow-app\"",
        "ip=127.0.0.1",
        "type=cols",
        "request_bytes=",
        "response_bytes=",
        "elapsed_ms=",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
}

#[test]
fn slow_request_lines_are_short_and_at_most_twenty_a_second() {
    let s = Server::start(&["--slow-ms", "0"]);
    let name = "n".repeat(3_000); // the test client's handshake takes no longer URL
    let mut c = s.open(MASTER, Some(&name));
    let id = "i".repeat(70_000);
    c.request(&id, "cols", "{}");
    let line = logged_line(&s, "id=\"iiii");
    let shown = "i".repeat(128);
    assert!(
        line.contains(&format!("id=\"{shown}\"…(70000 bytes) type=cols")),
        "{line}"
    );
    assert!(line.contains(&format!("name=\"{}\"…(3000 bytes)", "n".repeat(128))));
    assert!(line.len() < 1000, "a line of {} bytes", line.len());
    // 200 slow requests at once: at most 20 lines a second (a second's turn may let the
    // next one start), and a later line counts those left out.
    let started = std::time::Instant::now();
    for i in 0..200 {
        c.request(&format!("burst-{i}"), "cols", "{}");
    }
    let seconds = started.elapsed().as_secs() + 2;
    let mut n = 0;
    let noted = wait_until(Duration::from_secs(10), || {
        n += 1;
        c.request(&format!("later-{n}"), "cols", "{}");
        std::thread::sleep(Duration::from_millis(50));
        s.stderr_tail()
            .contains("slow requests not logged before this one")
    });
    assert!(noted, "{}", s.stderr_tail());
    let lines = s.stderr_tail().matches("id=\"burst-").count() as u64;
    assert!(
        lines <= 20 * seconds,
        "{lines} burst lines in about {seconds} s"
    );
}

#[test]
fn large_responses_are_logged() {
    let s = Server::start(&["--large-response-kib", "1"]);
    let mut c = s.open(MASTER, Some("big"));
    let data = "y".repeat(2000);
    c.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 1, "data": data}]),
    );
    c.request("small-1", "cols", "{}");
    c.request(
        "large-1",
        "qdoc",
        &json!({"col": "c", "doc": "d", "to": 9}).to_string(),
    );
    let line = logged_line(&s, "id=\"large-1\"");
    assert!(
        !s.stderr_tail().contains("id=\"small-1\""),
        "a small answer was logged"
    );
    assert!(
        line.contains("type=qdoc") && line.contains("name=\"big\""),
        "{line}"
    );
}

/// A server started by hand (for what the harness cannot set up): its stderr lines arrive on a
/// channel. Killed on drop.
struct Manual {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Manual {
    /// Waits for a stderr line containing `needle`; returns it.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {needle:?}: {e}"),
            }
        }
    }
}

impl Drop for Manual {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_manual(mut cmd: std::process::Command) -> Manual {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fluxiondb");
    let err = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Manual { child, lines }
}

fn port_of(line: &str) -> u16 {
    let addr = line
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches(';');
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The port is bound before recovery: meanwhile `/healthz` is 200, `/readyz` 503 `recovering`,
/// `/metrics` 503, and upgrades are closed with 1013 `recovering`. Recovery is held still
/// deterministically: the log segment it must read is a FIFO, which blocks the read until the
/// test opens its writing end.
#[test]
fn readiness_while_recovering() {
    let dir = TempDir::new();
    let fifo = dir.data().join("wal-0000000000000001.log");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let cmd = Server::command(MASTER, &[], Some(&dir));
    let m = spawn_manual(cmd);
    let port = port_of(&m.wait_line("recovering"));

    let a = get(port, "/healthz");
    assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
    let a = get(port, "/readyz");
    assert_eq!((a.status, a.body.as_str()), (503, "recovering\n"));
    assert_eq!(get_with_key(port, "/metrics", MASTER).status, 503);
    assert_eq!(get(port, "/nope").status, 404);
    let (code, reason) = Client::open_expect_close(port, &format!("/?api-key={MASTER}"));
    assert_eq!((code, reason.as_str()), (1013, "recovering"));

    // Let recovery read an empty segment and finish.
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    m.wait_line("listening on");
    let a = get(port, "/readyz");
    assert_eq!((a.status, a.body.as_str()), (200, "ready\n"));
    let mut c = Client::open(port, MASTER, None);
    assert_eq!(c.ok("cols", json!({})), json!({"collections": []}));
    let sc = scrape(port, MASTER);
    assert_eq!(
        value(
            &sc,
            "fluxiondb_connections_refused_total",
            Some(("reason", "recovering"))
        ),
        1.0
    );
}

/// Once the log cannot be written, `/readyz` says so. The disk is made to fail for real: the
/// server runs with a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored), so the log write that
/// would pass it fails with EFBIG.
#[test]
fn readiness_when_storage_is_unavailable() {
    let dir = TempDir::new();
    let mut cmd = Server::command(MASTER, &["--fsync".into(), "always".into()], Some(&dir));
    // SAFETY: between fork and exec only async-signal-safe calls (setrlimit, signal).
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let m = spawn_manual(cmd);
    let port = port_of(&m.wait_line("listening on"));
    assert_eq!(get(port, "/readyz").status, 200);

    // The write that passes the limit fails the log: that connection is dropped with its
    // acknowledgement unsent, and every later write is refused.
    let data = "z".repeat(8 * 1024);
    let unavailable = (1..=64).any(|i| {
        let mut c = Client::open(port, MASTER, None);
        let req = json!({"id": "w", "type": "ins",
            "data": json!([{"col": "c", "doc": "d", "ts": i, "data": data}]).to_string()});
        let _ = c.try_send_text(&req.to_string());
        let _ = c.read_raw();
        get(port, "/readyz").status == 503
    });
    assert!(
        unavailable,
        "a 64 KiB file-size limit never failed a log write"
    );
    let mut c = Client::open(port, MASTER, None);
    assert_eq!(
        c.err(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}])
        ),
        "storage unavailable: the server cannot persist writes"
    );
    let a = get(port, "/readyz");
    assert_eq!(a.status, 503);
    assert!(a.body.starts_with("storage unavailable"), "{}", a.body);
    assert_eq!(a.body.lines().count(), 1);
    assert_eq!(get(port, "/healthz").status, 200);
    let sc = scrape(port, MASTER);
    assert_eq!(value(&sc, "fluxiondb_storage_available", None), 0.0);
}

/// Plain HTTP requests count toward `--max-connections` like upgrades; past it they are
/// answered 503.
#[test]
fn http_past_the_connection_limit_is_503() {
    let s = Server::start(&["--max-connections", "1"]);
    let mut c = s.master();
    let a = get(s.port, "/healthz");
    assert_eq!(
        (a.status, a.body.as_str()),
        (503, "connection limit reached\n")
    );
    assert_eq!(a.connection, "close");
    c.close();
    drop(c);
    let healthy = || get(s.port, "/healthz").status == 200;
    assert!(wait_until(Duration::from_secs(5), healthy));
}
