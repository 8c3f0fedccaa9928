//! Process life cycle and command line (docs/protocol.md#persistence-as-clients-see-it,
//! README.md#running-the-server; the binary contract of the harness): the listening line, graceful
//! shutdown on SIGTERM/SIGINT, option errors, option spellings, environment fallback, connection
//! cap.

use std::process::Command;
use std::time::Duration;

use crate::common::{run_binary, Client, Frame, Server, MASTER};
use serde_json::json;

#[test]
fn listening_line_names_the_bound_address() {
    let s = Server::start(&[]);
    assert_eq!(
        s.listen_line,
        format!("fluxiondb listening on 127.0.0.1:{}", s.port)
    );
    let mut c = s.master();
    assert_eq!(c.ok("cols", json!({})), json!({"collections": []}));
}

fn graceful(signal: &str) {
    let mut s = Server::start(&[]);
    let mut a = s.master();
    let mut b = s.open(MASTER, None);
    a.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 1, "data": "x"}]),
    );
    let pid = s.pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(
        a.recv_close(),
        (1001, "server shutting down".to_string()),
        "{signal}"
    );
    assert_eq!(
        b.recv_close(),
        (1001, "server shutting down".to_string()),
        "{signal}"
    );
    let status = s
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit after {signal}"));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after {signal}: {status:?}\n{}",
        s.stderr_tail()
    );
}

#[test]
fn sigterm_closes_connections_with_1001_and_exits_0() {
    graceful("-TERM");
}

#[test]
fn sigint_closes_connections_with_1001_and_exits_0() {
    graceful("-INT");
}

#[test]
fn sigterm_without_connections_exits_0() {
    let mut s = Server::start(&[]);
    assert_eq!(s.sigterm().code(), Some(0));
}

#[test]
fn sigterm_after_a_request_in_flight_answers_it_first() {
    // Requests already received are finished before the connection is closed (§8.3).
    let mut s = Server::start(&[]);
    let mut a = s.master();
    let batch: Vec<_> = (1..=2000)
        .map(|t| json!({"col": "c", "doc": "d", "ts": t, "data": "x"}))
        .collect();
    a.send_text(&json!({"id": "big", "type": "ins", "data": json!(batch).to_string()}).to_string());
    a.send_text(&json!({"id": "after", "type": "cols", "data": "{}"}).to_string());
    // Wait until the server has answered the first request, then stop it.
    assert_eq!(a.recv_json(), json!({"id": "big"}));
    s.send_sigterm();
    loop {
        match a.next_frame() {
            Frame::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v, json!({"id": "after", "collections": ["c"]}));
            }
            Frame::Close(Some((code, reason))) => {
                assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
                break;
            }
            other => panic!("expected the close 1001, got {}", other.describe()),
        }
    }
    // Whether "after" was read before the signal is a race; if it was answered, the answer is
    // complete and comes before the close.
    assert_eq!(
        s.wait_exit(Duration::from_secs(10))
            .and_then(|st| st.code()),
        Some(0)
    );
}

#[test]
fn option_errors_exit_2() {
    let t = Duration::from_secs(10);
    for args in [
        vec![
            "--secret-key",
            "k",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--no-such-option",
        ],
        vec![
            "--secret-key",
            "k",
            "--port",
            "70000",
            "--bind",
            "127.0.0.1",
        ],
        vec!["--secret-key", "k", "--port", "abc", "--bind", "127.0.0.1"],
        vec!["--secret-key", "k", "--port", "-1", "--bind", "127.0.0.1"],
        vec![
            "--secret-key",
            "k",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--flush-interval",
            "0",
        ],
        vec![
            "--secret-key",
            "k",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--flush-interval",
            "soon",
        ],
        vec![
            "--secret-key",
            "k",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--date=/tmp/typo",
        ],
    ] {
        let (status, _out, err) = run_binary(&args, t);
        let status = status.unwrap_or_else(|| panic!("{args:?}: the server did not exit"));
        assert_eq!(
            status.code(),
            Some(2),
            "{args:?}: {status:?}\nstderr: {err}"
        );
        assert!(!err.trim().is_empty(), "{args:?}: no message on stderr");
    }
}

#[test]
fn missing_secret_key_refuses_to_start() {
    for args in [
        vec!["--port", "0", "--bind", "127.0.0.1"],
        vec!["--secret-key", "", "--port", "0", "--bind", "127.0.0.1"],
    ] {
        let (status, _out, err) = run_binary(&args, Duration::from_secs(10));
        let status =
            status.unwrap_or_else(|| panic!("{args:?}: the server kept running without a key"));
        assert!(!status.success(), "{args:?}: exit {status:?}");
        assert!(!err.trim().is_empty(), "{args:?}: no message on stderr");
    }
}

#[test]
fn bind_failure_exits_non_zero() {
    let s = Server::start(&[]);
    let port = s.port.to_string();
    let (status, _out, err) = run_binary(
        &["--secret-key", "k", "--port", &port, "--bind", "127.0.0.1"],
        Duration::from_secs(10),
    );
    let status = status.expect("the second server must exit when the port is taken");
    assert!(!status.success(), "exit {status:?}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("fluxiondb: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    let message = &lines[0]["fluxiondb: ".len()..];
    assert_eq!(err.matches(message).count(), 1, "printed once: {err}");
}

/// Runs `fluxiondb healthcheck` with `env` and `args`: its exit code and everything it printed.
pub fn healthcheck(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let out = crate::common::bare_command()
        .arg("healthcheck")
        .args(args)
        .env_remove("SECRET_KEY")
        .env_remove("PORT")
        .envs(env.iter().copied())
        .output()
        .expect("run fluxiondb healthcheck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// `fluxiondb healthcheck` (the image's HEALTHCHECK): `GET /readyz` over plain HTTP, 0 when
/// the server is ready whatever key is given (a key is accepted but not needed), 1 with no
/// server; `localhost` resolves without NSS. The probe opens no WebSocket, so the server logs
/// no connection for it.
#[test]
fn healthcheck_subcommand() {
    let s = Server::start(&[]);
    let port = s.port.to_string();
    for (env, args) in [
        (
            vec![("SECRET_KEY", MASTER), ("PORT", port.as_str())],
            vec![],
        ),
        (vec![], vec!["--host", "127.0.0.1", "--port", port.as_str()]),
        (
            vec![],
            vec!["-s", MASTER, "-p", port.as_str(), "--host", "LocalHost"],
        ),
        (
            vec![("SECRET_KEY", "wrong"), ("PORT", port.as_str())],
            vec![],
        ),
        (vec![("PORT", port.as_str())], vec![]),
    ] {
        let (code, text) = healthcheck(&env, &args);
        assert_eq!(code, Some(0), "{env:?} {args:?}: {text}");
        assert!(text.starts_with("healthy: "), "{text}");
    }
    // A client opened after the probes: once its line is in the log, the probes' would be too.
    let mut c = s.open(MASTER, Some("after-probes"));
    assert_eq!(c.ok("cols", json!({})), json!({"collections": []}));
    assert!(
        crate::common::wait_until(Duration::from_secs(10), || s
            .stderr_tail()
            .contains("after-probes")),
        "{}",
        s.stderr_tail()
    );
    let log = s.stderr_tail();
    assert_eq!(log.matches(" opened: ").count(), 1, "{log}");
    drop(c);
    drop(s);
    let (code, text) = healthcheck(&[("PORT", &port)], &["--timeout", "2"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
    let (code, _) = healthcheck(&[], &["--port", "1", "--bind", "x"]);
    assert_eq!(code, Some(2), "unknown healthcheck flags are usage errors");
}

/// A server that answers `/readyz` with 503 makes the probe exit 1 with the server's reason on
/// one line. The server here is a plain listener that answers as a recovering FluxionDB does.
#[test]
fn healthcheck_reports_not_ready() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener
        .local_addr()
        .expect("local address")
        .port()
        .to_string();
    let answering = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).expect("read the request");
            assert!(n > 0, "closed before the end of the request head");
            head.extend_from_slice(&buf[..n]);
        }
        conn.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
              Content-Length: 11\r\nConnection: close\r\n\r\nrecovering\n",
        )
        .expect("answer");
        String::from_utf8_lossy(&head).into_owned()
    });
    let (code, text) = healthcheck(&[], &["--host", "127.0.0.1", "--port", &port]);
    let request = answering.join().expect("the listener thread");
    assert!(request.starts_with("GET /readyz HTTP/1.1\r\n"), "{request}");
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text,
        format!("fluxiondb healthcheck: 127.0.0.1:{port}: not ready: 503 recovering\n")
    );
}

#[test]
fn help_and_version_exit_0() {
    for flag in ["--help", "-h", "--version", "-v"] {
        let (status, out, _err) = run_binary(&[flag], Duration::from_secs(10));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{flag}");
        assert!(!out.trim().is_empty(), "{flag}: nothing on stdout");
    }
}

#[test]
fn option_spellings_and_environment_fallback() {
    type Form<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let forms: Vec<Form> = vec![
        (
            vec!["--secret-key=eq-key", "--port=0", "--bind=127.0.0.1"],
            vec![],
            "eq-key",
        ),
        (
            vec!["-s", "short-key", "-p", "0", "--bind", "127.0.0.1"],
            vec![],
            "short-key",
        ),
        (
            vec!["--port", "0", "--bind", "127.0.0.1"],
            vec![("SECRET_KEY", "env-key")],
            "env-key",
        ),
        (
            vec!["--secret-key", "flag-key", "--bind", "127.0.0.1"],
            vec![("SECRET_KEY", "env-key"), ("PORT", "0")],
            "flag-key",
        ),
    ];
    for (args, env, key) in forms {
        let s = Server::start_exact(&args, &env);
        let mut c = s.open(key, None);
        assert_eq!(
            c.ok("keys", json!({"action": "list"}))["keys"][0]["key"],
            key,
            "{args:?} {env:?}"
        );
        if key == "flag-key" {
            assert_eq!(
                Client::open_expect_close(s.port, "/?api-key=env-key"),
                (1008, "Unknown API key".to_string())
            );
        }
    }
}

#[test]
fn connection_cap() {
    let s = Server::start(&["--max-connections", "2"]);
    let mut a = s.master();
    let _b = s.master();
    // The third connection is not admitted: it never sees `ready`.
    // (A handshake refused outright is fine too.)
    if let Ok(mut c) = Client::connect(s.port, "/?api-key=master-key") {
        match c.next_frame() {
            Frame::Close(_) | Frame::Dropped(_) => {}
            other => panic!(
                "third connection over a cap of 2: expected a refusal, got {}",
                other.describe()
            ),
        }
    }
    // The admitted ones keep working; once one leaves, a new one is admitted (bounded wait:
    // the server releases the slot when the closed connection's thread ends).
    assert_eq!(a.ok("cols", json!({})), json!({"collections": []}));
    assert!(matches!(a.close(), Frame::Close(_)));
    let admitted = crate::common::wait_until(Duration::from_secs(5), || {
        let Ok(mut c) = Client::connect(s.port, "/?api-key=master-key") else {
            return false;
        };
        match c.next_frame() {
            Frame::Text(t) => {
                assert!(t.contains("\"ready\""), "{t}");
                true
            }
            _ => false,
        }
    });
    assert!(admitted, "no slot freed within 5 s after a close");
}
