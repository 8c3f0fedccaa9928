//! Resource limits (docs/protocol.md#limits, #how-errors-are-chosen): message size, unread
//! responses, idle connections, response size, streaks of invalid frames. The limits are lowered
//! with the server's options (`--max-message-mib`, `--send-buffer-mib`, `--idle-timeout`,
//! `--max-response-mib`) so that the tests stay fast; the defaults are covered by errors.rs and the
//! vectors (16 MiB).

use std::time::{Duration, Instant};

use crate::common::{padded_cols_frame, Frame, Server};
use serde_json::{json, Value};

#[test]
fn configured_message_limit() {
    let s = Server::start(&["--max-message-mib", "1"]);
    let mut a = s.master();
    // Exactly 1 MiB is accepted.
    let limit = 1024 * 1024;
    let frame = padded_cols_frame("m", limit);
    a.send_text(&frame);
    assert_eq!(a.recv_json(), json!({"id": "m", "collections": []}));
    // One byte more closes with 1009.
    let mut b = s.master();
    let got = b.send_oversize(limit + 1);
    assert_eq!(
        got,
        Frame::Close(Some((1009, "message too big".to_string()))),
        "{}",
        got.describe()
    );
    // The limit applies to the reassembled message, not to each fragment.
    let mut c = s.master();
    let half = vec![b'y'; limit / 2 + 1];
    c.send_raw_frame(1, false, &half).unwrap();
    c.send_raw_frame(0, true, &half).unwrap();
    let got = c.next_frame();
    assert_eq!(
        got,
        Frame::Close(Some((1009, "message too big".to_string()))),
        "{}",
        got.describe()
    );
    assert_eq!(a.ok("cols", json!({})), json!({"collections": []}));
}

#[test]
fn client_that_stops_reading_is_closed_without_losing_responses() {
    // The server may apply back-pressure (stop reading requests) for a while; a client that
    // leaves more than the limit unread for long (the server's grace period is a few seconds) is
    // closed. Every response that does arrive is complete and in order.
    let s = Server::start(&["--send-buffer-mib", "1"]);
    let mut a = s.master();
    let big = "b".repeat(256 * 1024);
    a.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 1, "data": big}]),
    );
    // 400 requests with ~256 KiB answers each (100 MiB), then stop reading for a while.
    let req = json!({"col": "c", "doc": "d", "to": 1}).to_string();
    for i in 0..400 {
        let frame = json!({"id": format!("q{i}"), "type": "qdoc", "data": req}).to_string();
        if a.try_send_text(&frame).is_err() {
            break; // the server may already have closed
        }
    }
    std::thread::sleep(Duration::from_millis(7500));
    let mut next = 0;
    let end = loop {
        match a.next_frame() {
            Frame::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("complete JSON response");
                assert_eq!(
                    v["id"],
                    json!(format!("q{next}")),
                    "responses out of order or dropped"
                );
                assert_eq!(
                    v["records"][0]["data"].as_str().map(str::len),
                    Some(big.len())
                );
                next += 1;
            }
            other => break other,
        }
    };
    eprintln!("send buffer: {next} responses, then {}", end.describe());
    match &end {
        Frame::Close(Some((1008, reason))) if reason == "send buffer limit exceeded" => {}
        // The close frame cannot always be delivered to a client that does not read.
        Frame::Dropped(_) => {}
        other => panic!(
            "after {next} responses: expected close 1008, got {}",
            other.describe()
        ),
    }
    assert!(
        next < 400,
        "the server never gave up on a client that did not read"
    );
    // The server itself is fine.
    let mut b = s.master();
    assert_eq!(b.ok("cols", json!({})), json!({"collections": ["c"]}));
}

// With `--idle-timeout 2` the server pings after 0.5 s of silence and closes after 2 s.

#[test]
fn reading_client_is_kept_alive_by_pings() {
    // `--idle-timeout 4`: a ping after each second of silence (a quarter of the timeout), a
    // close after 4 s of it. Each pong thus has 3 s to arrive, however slowly
    // a loaded machine schedules this thread; with `--idle-timeout 2` a pong held up for a
    // second was enough to close the connection.
    let idle_timeout = Duration::from_secs(4);
    let s = Server::start(&["--idle-timeout", "4"]);
    let mut a = s.master();
    // Read (and so answer pings) without sending any request. Had the pongs not counted, the
    // server would ping once and close 4 s into the silence, before a second ping. Five pings
    // in a row, then an answer, prove the pongs kept it open; counted, not timed (a loaded
    // machine only spaces them out).
    const PINGS: usize = 5;
    let start = Instant::now();
    a.set_read_timeout(crate::common::SLOW_READ_TIMEOUT);
    for pings in 0..PINGS {
        match a.read_raw() {
            Ok(tungstenite::Message::Ping(_)) => {}
            Ok(other) => panic!(
                "after {pings} pings, at {:?}: unexpected {other:?}",
                start.elapsed()
            ),
            Err(e) => panic!(
                "after {pings} pings, at {:?}: connection ended or silent although pongs were \
                 sent: {e}",
                start.elapsed()
            ),
        }
    }
    // Each ping follows a second of silence at the server: the idle timeout has passed.
    assert!(
        start.elapsed() >= idle_timeout,
        "{PINGS} pings within {:?}: not one per second of silence",
        start.elapsed()
    );
    assert_eq!(a.ok("cols", json!({})), json!({"collections": []}));
}

#[test]
fn silent_client_is_closed_1001_idle_timeout() {
    let s = Server::start(&["--idle-timeout", "2"]);
    let mut b = s.master();
    // b sends nothing and does not read (so it does not answer pings).
    std::thread::sleep(Duration::from_millis(2500));
    // The close may come late on a loaded machine: awaited generously.
    b.set_read_timeout(crate::common::SLOW_READ_TIMEOUT);
    let got = b.next_frame();
    assert_eq!(
        got,
        Frame::Close(Some((1001, "idle timeout".to_string()))),
        "{}",
        got.describe()
    );
    // The server is fine.
    let mut a = s.master();
    assert_eq!(a.ok("cols", json!({})), json!({"collections": []}));
}

#[test]
fn response_size_limit() {
    let s = Server::start(&["--max-response-mib", "1"]);
    let mut a = s.master();
    let big = "r".repeat(600 * 1024);
    a.ok("ins", json!([{"col": "c", "doc": "d", "ts": 1, "data": big}, {"col": "c", "doc": "d", "ts": 2, "data": big}]));
    assert_eq!(
        a.call("qdoc", json!({"col": "c", "doc": "d", "to": 10})),
        json!({"error": "response too large"})
    );
    // A smaller answer from the same data is fine, and the connection still works.
    let v = a.ok(
        "qdoc",
        json!({"col": "c", "doc": "d", "to": 10, "limit": 1}),
    );
    assert_eq!(
        v["records"][0]["data"].as_str().map(str::len),
        Some(big.len())
    );
    assert_eq!(
        a.call("qry", json!({"col": "c", "ts": 10, "doc": "d"}))["records"]["d"]["ts"],
        2
    );
}

#[test]
fn streak_of_invalid_frames_closes_1008() {
    let s = Server::start(&[]);
    let mut a = s.master();
    // 100 in a row are answered; a valid request resets the streak.
    for round in 0..2 {
        for i in 0..100 {
            a.send_text("nope");
            assert_eq!(
                a.recv_json(),
                json!({"error": "invalid message: expected a JSON object"}),
                "round {round} frame {i}"
            );
        }
        assert_eq!(a.ok("cols", json!({})), json!({"collections": []}));
    }
    // Errors that carry an id do not count.
    for _ in 0..150 {
        assert_eq!(a.err("nope-type", json!({})), "Unknown message type");
    }
    // The 101st consecutive id-less invalid frame closes the connection (SHOULD, §2.3).
    for _ in 0..100 {
        a.send_text("[]");
        assert_eq!(
            a.recv_json(),
            json!({"error": "invalid message: expected a JSON object"})
        );
    }
    a.send_text("[]");
    loop {
        match a.next_frame() {
            Frame::Text(t) => assert_eq!(
                t.parse::<Value>().ok(),
                Some(json!({"error": "invalid message: expected a JSON object"}))
            ),
            Frame::Close(Some((code, reason))) => {
                assert_eq!((code, reason.as_str()), (1008, "too many invalid frames"));
                break;
            }
            other => panic!("expected close 1008, got {}", other.describe()),
        }
    }
}

/// A document's 4 GiB limit holds for its data as stored, however well its sealed history
/// compresses. Found by an audit: the check that a batch fits went by the document's
/// compressed size, so a batch that passed it could fail part way through, after it was
/// logged and pushed: its first records were stored although the answer was an error, and a
/// restart then refused the log entry that would grow the document past 4 GiB. Sends 4 GiB
/// (compressible: the server holds some 200 MB): `make test-large`, a release build.
#[test]
#[ignore = "sends 4 GiB: run with `make test-large` (release build)"]
fn a_batch_past_a_documents_4_gib_is_refused_whole_even_when_it_compresses() {
    let mut s = Server::with_data_dir_args(&["--max-message-mib", "64", "-f", "86400"]);
    let mut c = s.master();
    c.set_read_timeout(Duration::from_secs(120));
    let big = "a".repeat((64 << 20) - 1024);
    for ts in 1..=64 {
        c.ok(
            "ins",
            json!([{"col":"big","doc":"d","ts":ts,"data":big.as_str()}]),
        );
    }
    let batch = json!([
        {"col":"big","doc":"d","ts":1000,"data":"small"},
        {"col":"big","doc":"d","ts":1001,"data":big.as_str()}
    ]);
    assert_eq!(
        c.err("ins", batch),
        "document too large: at most 4 GiB of data per document"
    );
    let after = c.ok("qdoc", json!({"col":"big","doc":"d","from":1000,"to":2000}));
    assert_eq!(
        after,
        json!({"records": []}),
        "part of a refused batch was stored"
    );
    drop(c);
    s.kill9();
    s.start_again();
    let mut c = s.master();
    c.set_read_timeout(Duration::from_secs(120));
    let v = c.ok(
        "qdoc",
        json!({"col":"big","doc":"d","from":60,"to":70,"limit":1}),
    );
    assert_eq!(v["records"][0]["ts"], 60);
}

/// A `qdoc` of large records stops near the response limit: it checked the answer's size only
/// every 256 records, so records of 16 MiB could build 4 GiB before it was refused. Found by
/// an audit. (A 1 MiB limit and 48 records of 600 KiB: the answer was built whole, 28 MiB.)
#[test]
fn a_qdoc_of_large_records_stops_near_the_response_limit() {
    let s = Server::start(&["--max-response-mib", "1"]);
    let mut a = s.master();
    let big = "r".repeat(600 * 1024);
    for batch in 0..4 {
        let recs: Vec<Value> = (0..12)
            .map(|i| json!({"col": "c", "doc": "d", "ts": batch * 12 + i + 1, "data": big}))
            .collect();
        a.ok("ins", Value::Array(recs));
    }
    let pid = s.pid().expect("server running");
    let peak = || crate::common::proc_status_kib(pid, "VmHWM").expect("VmHWM");
    let before = peak();
    assert_eq!(
        a.call("qdoc", json!({"col": "c", "doc": "d", "to": 100})),
        json!({"error": "response too large"})
    );
    let grown_mib = peak().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 12,
        "peak RSS grew by {grown_mib} MiB for an answer refused past 1 MiB"
    );
    // Within the limit the records still come whole.
    let v = a.ok(
        "qdoc",
        json!({"col": "c", "doc": "d", "to": 100, "limit": 1, "reverse": true}),
    );
    assert_eq!(v["records"][0]["ts"], 48);
}
