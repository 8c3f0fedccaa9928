//! `conn` (docs/protocol.md#conn--who-is-connected) and connection life cycle.

use std::time::Duration;

use crate::common::{fixture_keys, Client, Server, MASTER};
use serde_json::{json, Value};

fn entries(c: &mut Client) -> Vec<Value> {
    let v = c.ok("conn", json!({}));
    assert_eq!(
        v.as_object().unwrap().len(),
        1,
        "conn response has extra members: {v}"
    );
    v["connections"]
        .as_array()
        .unwrap_or_else(|| panic!("no connections array: {v}"))
        .clone()
}

fn check_shape(list: &[Value]) {
    for e in list {
        let o = e
            .as_object()
            .unwrap_or_else(|| panic!("entry is not an object: {e}"));
        let mut keys: Vec<&str> = o.keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["ip", "name", "self", "since"], "entry members: {e}");
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        assert!(
            e["since"].is_u64() || e["since"].as_i64().is_some_and(|x| x >= 0),
            "since must be an integer >= 0: {e}"
        );
        assert!(e["name"].is_string() || e["name"].is_null(), "{e}");
        assert!(e["self"].is_boolean(), "{e}");
    }
    // Oldest first: `since` (elapsed time) never increases along the list.
    for w in list.windows(2) {
        assert!(
            w[0]["since"].as_i64().unwrap() >= w[1]["since"].as_i64().unwrap(),
            "connections not oldest first: {list:?}"
        );
    }
}

fn names(list: &[Value]) -> Vec<Value> {
    list.iter().map(|e| e["name"].clone()).collect()
}

fn selfs(list: &[Value]) -> Vec<bool> {
    list.iter().map(|e| e["self"].as_bool().unwrap()).collect()
}

#[test]
fn order_self_name_ip_since() {
    let s = Server::start(&[]);
    let mut a = s.master();
    fixture_keys(&mut a);
    let mut b = s.open("ro-key", None);
    let mut c = s.open("rw-key", Some(""));
    let mut d = s.open("rwd-key", Some("déjà vu"));
    let want_names = vec![json!("ops"), Value::Null, Value::Null, json!("déjà vu")];
    for (i, conn) in [&mut a, &mut b, &mut c, &mut d].into_iter().enumerate() {
        let list = entries(conn);
        check_shape(&list);
        assert_eq!(names(&list), want_names, "order on connection {i}");
        let mut want_self = vec![false; 4];
        want_self[i] = true;
        assert_eq!(selfs(&list), want_self, "self flags on connection {i}");
    }
    // `since` keeps growing (monotonic clock), per connection.
    let first = entries(&mut a);
    // Let at least a few milliseconds pass, measured by our own clock.
    std::thread::sleep(Duration::from_millis(30));
    let second = entries(&mut a);
    for (x, y) in first.iter().zip(&second) {
        let (x, y) = (x["since"].as_i64().unwrap(), y["since"].as_i64().unwrap());
        assert!(y >= x + 20, "since did not advance with time: {x} then {y}");
    }
}

#[test]
fn closed_connections_vanish() {
    let s = Server::start(&[]);
    let mut a = s.master();
    fixture_keys(&mut a);
    let mut b = s.open("ro-key", Some("b"));
    let _c = s.open("rw-key", Some("c"));
    assert_eq!(
        names(&entries(&mut a)),
        vec![json!("ops"), json!("b"), json!("c")]
    );
    // Clean close: gone as soon as the server has answered the close handshake.
    match b.close() {
        crate::common::Frame::Close(_) => {}
        other => panic!("close handshake: {}", other.describe()),
    }
    assert_eq!(names(&entries(&mut a)), vec![json!("ops"), json!("c")]);
    // Abrupt close (TCP dropped, no close frame): gone once the server notices; bounded wait.
    let d = s.open("rwd-key", Some("d"));
    assert_eq!(
        names(&entries(&mut a)),
        vec![json!("ops"), json!("c"), json!("d")]
    );
    d.stream().shutdown(std::net::Shutdown::Both).unwrap();
    drop(d);
    let mut list = Vec::new();
    let gone = crate::common::wait_until(Duration::from_secs(5), || {
        list = entries(&mut a);
        names(&list) == vec![json!("ops"), json!("c")]
    });
    assert!(gone, "dropped connection still listed after 5 s: {list:?}");
    // A new connection goes to the end of the list.
    let _e = s.open("ro-key", Some("e"));
    assert_eq!(
        names(&entries(&mut a)),
        vec![json!("ops"), json!("c"), json!("e")]
    );
}

#[test]
fn refused_handshakes_are_not_listed() {
    let s = Server::start(&[]);
    let mut a = s.master();
    for q in ["/", "/?api-key=", "/?api-key=wrong&name=intruder"] {
        let (code, _) = Client::open_expect_close(s.port, q);
        assert_eq!(code, 1008);
    }
    let list = entries(&mut a);
    check_shape(&list);
    assert_eq!(names(&list), vec![json!("ops")]);
    assert_eq!(selfs(&list), vec![true]);
}

#[test]
fn many_connections_listed_in_order() {
    let s = Server::start(&[]);
    let mut first = s.master();
    let mut others: Vec<Client> = (0..20)
        .map(|i| s.open(crate::common::MASTER, Some(&format!("n{i:02}"))))
        .collect();
    let list = entries(&mut first);
    check_shape(&list);
    let mut want = vec![json!("ops")];
    want.extend((0..20).map(|i| json!(format!("n{i:02}"))));
    assert_eq!(names(&list), want);
    // From the last one, only the last is self.
    let list = entries(others.last_mut().unwrap());
    let mut want_self = vec![false; 21];
    want_self[20] = true;
    assert_eq!(selfs(&list), want_self);
    // Close every other connection.
    for (i, c) in others.iter_mut().enumerate() {
        if i % 2 == 0 {
            assert!(matches!(c.close(), crate::common::Frame::Close(_)));
        }
    }
    let list = entries(&mut first);
    let mut want = vec![json!("ops")];
    want.extend(
        (0..20)
            .filter(|i| i % 2 == 1)
            .map(|i| json!(format!("n{i:02}"))),
    );
    assert_eq!(names(&list), want);
}

#[test]
fn ping_is_answered_and_pipelined_requests_stay_in_order() {
    let s = Server::start(&[]);
    let mut a = s.master();
    a.send_message(tungstenite::Message::Ping(b"hello"[..].into()));
    match a.read_raw() {
        Ok(tungstenite::Message::Pong(p)) => assert_eq!(&p[..], b"hello"),
        other => panic!("expected a pong, got {other:?}"),
    }
    a.send_text(&json!({"id": "after-ping", "type": "cols", "data": "{}"}).to_string());
    assert_eq!(
        a.recv_json(),
        json!({"id": "after-ping", "collections": []})
    );
    // 200 pipelined requests on one connection: answered in order, each seeing the previous.
    for i in 0..200 {
        let f = if i % 2 == 0 {
            json!({"id": format!("p{i}"), "type": "ins", "data": json!([{"col": "pipe", "doc": "d", "ts": i + 1, "data": format!("v{i}")}]).to_string()})
        } else {
            json!({"id": format!("p{i}"), "type": "qry", "data": json!({"col": "pipe", "ts": 1000}).to_string()})
        };
        a.send_text(&f.to_string());
    }
    for i in 0..200 {
        let v = a.recv_json();
        if i % 2 == 0 {
            assert_eq!(v, json!({"id": format!("p{i}")}));
        } else {
            assert_eq!(
                v,
                json!({"id": format!("p{i}"), "records": {"d": {"ts": i, "data": format!("v{}", i - 1)}}}),
                "response {i} must see the insert just before it"
            );
        }
    }
}

#[test]
fn requests_sent_before_ready_are_answered_after_it() {
    let s = Server::start(&[]);
    let mut c = Client::connect(s.port, "/?api-key=master-key").unwrap();
    // Send before reading anything: `ready` still comes first, then the answers in order.
    c.send_text(&json!({"id": "early1", "type": "sval", "data": "{\"col\":\"c\",\"key\":\"k\",\"value\":\"v\"}"}).to_string());
    c.send_text(&json!({"id": "early2", "type": "gvals", "data": "{\"col\":\"c\"}"}).to_string());
    c.expect_ready();
    assert_eq!(c.recv_json(), json!({"id": "early1"}));
    assert_eq!(c.recv_json(), json!({"id": "early2", "values": {"k": "v"}}));
}

/// Opens a master connection to `host` (an IP literal) and returns the `ip` of its own entry.
fn own_ip(host: &str, port: u16) -> Value {
    let addr: std::net::IpAddr = host.parse().unwrap();
    let stream = std::net::TcpStream::connect((addr, port)).unwrap();
    stream
        .set_read_timeout(Some(crate::common::READ_TIMEOUT))
        .unwrap();
    let url = match addr {
        std::net::IpAddr::V4(_) => format!("ws://{host}:{port}/?api-key=master-key"),
        std::net::IpAddr::V6(_) => format!("ws://[{host}]:{port}/?api-key=master-key"),
    };
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).unwrap();
    fn next(ws: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Value {
        loop {
            match ws.read().unwrap() {
                tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
    }
    assert_eq!(next(&mut ws)["type"], "ready");
    let req = json!({"id": "n", "type": "conn", "data": "{}"}).to_string();
    ws.send(tungstenite::Message::text(req)).unwrap();
    let v = next(&mut ws);
    let list = v["connections"].as_array().unwrap_or_else(|| panic!("{v}"));
    list.iter()
        .find(|e| e["self"] == json!(true))
        .expect("own entry")["ip"]
        .clone()
}

#[test]
fn ip_text_forms_on_a_dual_stack_listener() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback: skipped");
        return;
    }
    // Listening on `::` (dual stack), an IPv4 peer is seen as an IPv4-mapped address, which must
    // be shown unmapped (§4.17); an IPv6 peer in RFC 5952 form.
    let s = Server::start_exact(
        &[
            "--secret-key",
            crate::common::MASTER,
            "--port",
            "0",
            "--bind",
            "::",
        ],
        &[],
    );
    assert_eq!(own_ip("127.0.0.1", s.port), json!("127.0.0.1"));
    assert_eq!(own_ip("::1", s.port), json!("::1"));
    assert_eq!(own_ip("::ffff:127.0.0.1", s.port), json!("127.0.0.1"));
}

#[test]
fn no_subprotocol_is_selected() {
    // §1.1: ours never selects a WebSocket subprotocol, even when the client offers some.
    use std::io::{BufRead, BufReader, Write};
    let s = Server::start(&[]);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    tcp.set_read_timeout(Some(crate::common::READ_TIMEOUT))
        .unwrap();
    write!(
        tcp,
        "GET /?api-key=master-key HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, fluxiondb\r\n\r\n",
        s.port
    )
    .unwrap();
    let mut reader = BufReader::new(tcp);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(
        status.starts_with("HTTP/1.1 101"),
        "status line: {status:?}"
    );
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        headers.push(line.trim_end().to_ascii_lowercase());
    }
    assert!(
        headers
            .iter()
            .any(|h| h == "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "RFC 6455 accept key: {headers:?}"
    );
    assert!(
        !headers
            .iter()
            .any(|h| h.starts_with("sec-websocket-protocol")),
        "a subprotocol was selected: {headers:?}"
    );
}

/// An upgrade request longer than the handshake's 4 KiB read chunk (a 6,000-byte `name`) is
/// read whole, and the connection then works.
#[test]
fn a_long_upgrade_request_is_read_whole() {
    let s = Server::start(&[]);
    let name = "n".repeat(6000);
    let mut c = s.open(MASTER, Some(&name));
    let list = entries(&mut c);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], json!(name));
    assert_eq!(c.ok("cols", json!({})), json!({"collections": []}));
}

#[test]
fn an_upgrade_request_that_cannot_be_taken_gets_an_http_answer_with_its_reason() {
    // RFC 6455 §4.2.2: 426 with the version the server speaks, else 400; before, the socket was
    // closed without a word.
    use std::io::{Read, Write};
    let s = Server::start(&[]);
    let answer = |head: &str| {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        tcp.set_read_timeout(Some(crate::common::READ_TIMEOUT))
            .unwrap();
        tcp.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).unwrap();
        out
    };
    let head = |upgrade: &str, connection: &str, version: &str, key: &str| {
        format!(
            "GET /?api-key=master-key HTTP/1.1\r\nHost: x\r\nUpgrade: {upgrade}\r\n\
             Connection: {connection}\r\n{key}Sec-WebSocket-Version: {version}\r\n\r\n"
        )
    };
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let got = answer(&head("websocket", "Upgrade", "8", key));
    assert!(
        got.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{got}"
    );
    assert!(got.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{got}");
    assert!(
        got.ends_with("\r\n\r\nunsupported WebSocket version: this server speaks version 13\n"),
        "{got}"
    );
    for (head, reason) in [
        (
            head("websocket", "Upgrade", "13", ""),
            "a WebSocket upgrade needs a Sec-WebSocket-Key header",
        ),
        (
            head("websocket", "Upgrade", "13", "Sec-WebSocket-Key: short\r\n"),
            "Sec-WebSocket-Key must be 16 bytes in base64",
        ),
        (
            head("websocket", "keep-alive", "13", key),
            "a WebSocket upgrade needs a Connection header with the upgrade token",
        ),
        (
            head("h2c, websocket", "Upgrade", "13", key),
            "a WebSocket upgrade needs the header Upgrade: websocket",
        ),
    ] {
        let got = answer(&head);
        assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
        assert!(got.ends_with(&format!("\r\n\r\n{reason}\n")), "{got}");
    }
    // The server still takes a good upgrade.
    s.master().ok("cols", serde_json::json!({}));
}
