//! The seams for what comes next, driven in process: a server started from the library
//! (`fluxiondb::Server`), its push seam (`Server::push`, which no client request
//! reaches) and its socket-free dispatcher (`Server::local_session`).

use crate::common::{in_process_config, wait_until, Client, Frame, MASTER};
use fluxiondb::{Boot, LocalSession, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// An in-memory server on an ephemeral loopback port. The idle timeout is long, so a session's
/// read timeout (a quarter of the ping interval, itself a quarter of the idle timeout: 37.5 s)
/// cannot be what wakes it during a test.
pub fn start(extra: &[&str]) -> Server {
    let mut flags = vec!["--idle-timeout", "600"];
    flags.extend_from_slice(extra);
    let config = in_process_config(&flags);
    let listener = fluxiondb::bind(&config).expect("bind");
    Server::start(config, Boot::default(), listener).expect("server starts")
}

fn json_of(reply: &str) -> Value {
    serde_json::from_str(reply).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply}"))
}

/// Waits until `conn` (asked in process) lists a connection named `name`.
fn wait_listed(local: &mut LocalSession, name: &str) {
    let listed = wait_until(Duration::from_secs(5), || {
        let v = json_of(
            &local
                .request(r#"{"id":"c","type":"conn","data":"{}"}"#)
                .unwrap(),
        );
        v["connections"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["name"] == name))
    });
    assert!(listed, "{name} never appeared in conn");
}

#[test]
fn a_push_reaches_a_silent_client_at_once() {
    let server = start(&[]);
    let port = server.local_addr().port();
    let mut client = Client::open(port, MASTER, Some("listener"));
    let mut probe = server.local_session(MASTER, Some("probe")).unwrap();
    wait_listed(&mut probe, "listener");
    // The client sends nothing from here on: its session blocks in `recv`.
    std::thread::sleep(Duration::from_millis(100));
    let sent = Instant::now();
    assert_eq!(server.push("listener", r#"{"type":"push","n":1}"#), 1);
    // Nothing else can wake the session for 37.5 s; the client gives up after 5.
    assert_eq!(client.recv_json(), json!({"type":"push","n":1}));
    eprintln!("push latency to an idle session: {:?}", sent.elapsed());
    // Pushes to nobody go nowhere; the connection still serves requests.
    assert_eq!(server.push("nobody", "{}"), 0);
    assert_eq!(client.ok("cols", json!({})), json!({"collections": []}));
}

#[test]
fn pushes_interleave_whole_frames_with_replies_of_a_busy_session() {
    let server = start(&[]);
    let port = server.local_addr().port();
    let mut client = Client::open(port, MASTER, Some("busy"));
    let mut probe = server.local_session(MASTER, None).unwrap();
    wait_listed(&mut probe, "busy");
    const PUSHES: usize = 2000;
    const REQUESTS: usize = 300;
    std::thread::scope(|s| {
        let server = &server;
        s.spawn(move || {
            for n in 0..PUSHES {
                let text = format!(
                    r#"{{"type":"push","n":{n},"pad":"{}"}}"#,
                    "x".repeat(n % 300)
                );
                assert_eq!(server.push("busy", &text), 1, "push {n} refused");
            }
        });
        let mut next_push = 0;
        for i in 0..REQUESTS {
            let data = json!([{"col": "c", "doc": "d", "ts": i + 1, "data": "v"}]).to_string();
            client.send_text(
                &json!({"id": format!("r{i}"), "type": "ins", "data": data}).to_string(),
            );
            loop {
                let v = client.recv_json();
                if v["type"] == "push" {
                    assert_eq!(v["n"], next_push, "pushes arrive whole and in order");
                    next_push += 1;
                    continue;
                }
                assert_eq!(v, json!({"id": format!("r{i}")}));
                break;
            }
        }
        while next_push < PUSHES {
            let v = client.recv_json();
            assert_eq!(v["n"], next_push);
            next_push += 1;
        }
    });
    assert_eq!(
        client.ok(
            "qdoc",
            json!({"col":"c","doc":"d","to":1_000_000,"limit":1,"reverse":true})
        ),
        json!({"records":[{"ts": REQUESTS, "data": "v"}]})
    );
}

#[test]
fn pushes_respect_the_send_buffer_limit() {
    let server = start(&["--send-buffer-mib", "1"]);
    let port = server.local_addr().port();
    let client = Client::open(port, MASTER, Some("deaf"));
    let mut probe = server.local_session(MASTER, None).unwrap();
    wait_listed(&mut probe, "deaf");
    // The client reads nothing: the socket buffers fill, then the outbox up to 1 MiB.
    let chunk = format!(r#"{{"type":"push","pad":"{}"}}"#, "x".repeat(64 * 1024));
    let taken = (0..2000)
        .take_while(|_| server.push("deaf", &chunk) == 1)
        .count();
    assert!(taken < 2000, "pushes were never refused");
    // The outbox alone holds 15 of these frames within 1 MiB; the socket takes more only when
    // the session was already idle at the first push (it may still be finishing its turn).
    assert!(taken >= 15, "refused after only {taken} pushes");
    drop(client);
}

#[test]
fn a_local_session_answers_exactly_like_a_websocket_session() {
    let server = start(&[]);
    let port = server.local_addr().port();
    let mut ws = Client::open(port, MASTER, Some("ws"));
    let mut local = server.local_session(MASTER, Some("local")).unwrap();
    let frames = [
        r#"{"id":"1","type":"ins","data":"[{\"col\":\"s\",\"doc\":\"d\",\"ts\":5,\"data\":\"t\\\"x\"}]"}"#,
        r#"{"id":"2","type":"qry","data":"{\"col\":\"s\",\"ts\":10}"}"#,
        r#"{"id":"3","type":"qdoc","data":"{\"col\":\"s\",\"doc\":\"d\",\"to\":10}"}"#,
        r#"{"id":"4","type":"sval","data":"{\"col\":\"k\",\"key\":\"a\",\"value\":\"b\"}"}"#,
        r#"{"id":"5","type":"gvals","data":"{\"col\":\"k\"}"}"#,
        r#"{"id":"6","type":"keys","data":"{\"action\":\"list\"}"}"#,
        r#"{"id":"7","type":"auth","data":"x"}"#,
        r#"{"id":"8","type":"nope","data":"x"}"#,
        r#"{"id":"9","type":"qry","data":"[]"}"#,
        r#"{"type":"cols","data":"{}"}"#,
        r#"not json"#,
    ];
    for f in frames {
        let local_reply = local.request(f).unwrap();
        ws.send_text(f);
        let Frame::Text(ws_reply) = ws.next_frame() else {
            panic!("no reply to {f}")
        };
        // Writes are repeated by the second caller: the replies must still agree.
        assert_eq!(local_reply, ws_reply, "{f}");
    }
}

#[test]
fn a_local_session_is_a_session_revocation_and_shutdown_close_it() {
    let mut server = start(&[]);
    let mut master = server.local_session(MASTER, Some("admin")).unwrap();
    let add = r#"{"id":"a","type":"keys","data":"{\"action\":\"add\",\"key\":\"k1\",\"scope\":\"read-only\"}"}"#;
    assert_eq!(json_of(&master.request(add).unwrap())["status"], "ok");
    let mut ro = server.local_session("k1", Some("ro")).unwrap();
    assert!(server.local_session("unknown", None).is_none());
    let write =
        r#"{"id":"w","type":"sval","data":"{\"col\":\"c\",\"key\":\"k\",\"value\":\"v\"}"}"#;
    assert_eq!(
        json_of(&ro.request(write).unwrap()),
        json!({"id":"w","error":"permission denied"})
    );
    let conn = json_of(
        &ro.request(r#"{"id":"c","type":"conn","data":"{}"}"#)
            .unwrap(),
    );
    let names: Vec<_> = conn["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["ip"].clone(), c["name"].clone(), c["self"].clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            (json!("127.0.0.1"), json!("admin"), json!(false)),
            (json!("127.0.0.1"), json!("ro"), json!(true)),
        ]
    );
    let started = Instant::now();
    let remove = r#"{"id":"r","type":"keys","data":"{\"action\":\"remove\",\"key\":\"k1\"}"}"#;
    assert_eq!(json_of(&master.request(remove).unwrap())["status"], "ok");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "revocation waited for an in-process session"
    );
    assert_eq!(ro.request(write), Err((1008, "API key revoked")));
    server.shutdown();
    assert_eq!(
        master.request(r#"{"id":"x","type":"cols","data":"{}"}"#),
        Err((1001, "server shutting down"))
    );
}
