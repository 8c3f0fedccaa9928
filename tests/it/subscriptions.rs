//! Live subscriptions (issue 15) through real sockets: `sub` / `unsub`, every push type, the
//! selectors, the per-connection cap, `since` and `after_seq` under concurrent writers, crash
//! safety, slow subscribers and revoked keys.

use crate::common::{Client, Frame, Server, MASTER};
use serde_json::{json, Value};

/// Subscribes; returns the subscription id and the sequence number it starts from.
pub fn sub(c: &mut Client, payload: Value) -> (String, u64) {
    let v = c.ok("sub", payload);
    let id = v["sub"].as_str().expect("sub id").to_string();
    let seq = v["seq"].as_u64().expect("seq");
    (id, seq)
}

/// The next frame, which must be a push (no `id`).
pub fn push(c: &mut Client) -> Value {
    let v = c.recv_json();
    assert!(v.get("id").is_none(), "expected a push, got {v}");
    v
}

fn ins(c: &mut Client, recs: &[(&str, &str, i64, &str)]) {
    let data: Vec<Value> = recs
        .iter()
        .map(|(col, doc, ts, data)| json!({"col": col, "doc": doc, "ts": ts, "data": data}))
        .collect();
    c.ok("ins", Value::Array(data));
}

#[test]
fn every_push_type_in_apply_order_with_seq_one_per_write() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    let mut w = Client::open(server.port, MASTER, None);
    let (id, seq) = sub(&mut s, json!({"col": "c"}));
    assert_eq!(id, "s1");
    ins(
        &mut w,
        &[
            ("c", "a", 1, "x"),
            ("other", "a", 1, "no"),
            ("c", "b", 2, "y\""),
        ],
    );
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":"s1","col":"c","seq":seq + 1,"records":[
            {"doc":"a","ts":1,"data":"x"},{"doc":"b","ts":2,"data":"y\""}]})
    );
    // Key/value changes are not pushed; deletes that remove nothing are not writes.
    w.ok("sval", json!({"col":"c","key":"k","value":"v"}));
    w.ok("drec", json!({"col":"c","doc":"a","ts":99}));
    ins(
        &mut w,
        &[
            ("c", "a", 2, "x2"),
            ("c", "a", 3, "x3"),
            ("c", "a", 4, "x4"),
        ],
    );
    assert_eq!(push(&mut s)["seq"], seq + 2);
    w.ok("drec", json!({"col":"c","doc":"a","ts":1}));
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"c","seq":seq + 3,"doc":"a","from":1,"to":1})
    );
    w.ok("drrng", json!({"col":"c","doc":"a","fromTs":2,"toTs":3}));
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"c","seq":seq + 4,"doc":"a","from":2,"to":3})
    );
    ins(&mut w, &[("c", "d", 5, "z")]);
    assert_eq!(push(&mut s)["seq"], seq + 5);
    w.ok(
        "dmrec",
        json!([{"col":"c","doc":"a","ts":4},{"col":"c","doc":"d","ts":5},{"col":"c","doc":"d","ts":77}]),
    );
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"c","seq":seq + 6,"doc":"a","ts":[4],"more":true})
    );
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"c","seq":seq + 6,"doc":"d","ts":[5]})
    );
    w.ok("ddoc", json!({"doc":"b"}));
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"c","seq":seq + 7,"doc":"b"})
    );
    ins(&mut w, &[("c", "e", 9, "q")]);
    assert_eq!(push(&mut s)["seq"], seq + 8);
    w.ok("dcol", json!({"col":"c"}));
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"c","seq":seq + 9})
    );
    // The subscription outlives its collection.
    ins(&mut w, &[("c", "f", 1, "again")]);
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":"s1","col":"c","seq":seq + 10,"records":[{"doc":"f","ts":1,"data":"again"}]})
    );
    // The subscriber's own requests still get their answers, in order after the pushes.
    assert_eq!(s.ok("unsub", json!({"sub":"s1"})), json!({}));
    ins(&mut w, &[("c", "f", 2, "after")]);
    assert_eq!(
        s.ok("cols", json!({})),
        json!({"collections":["c","other"]})
    );
}

#[test]
fn document_patterns_where_and_filter_select_what_is_pushed() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    let mut w = Client::open(server.port, MASTER, None);
    let (p, _) = sub(
        &mut s,
        json!({"col":"c","doc":"/^dev-\\d$/i","where":"state:","filter":"/bad/"}),
    );
    let (l, _) = sub(&mut s, json!({"col":"c","doc":"dev-1"}));
    ins(
        &mut w,
        &[
            ("c", "DEV-1", 1, "state:ok"),
            ("c", "dev-10", 1, "state:ok"),
            ("c", "dev-2", 1, "temp:1"),
            ("c", "dev-3", 1, "state:bad"),
            ("c", "dev-1", 2, "temp:2"),
            ("c", "dev-4", 2, "state:fine"),
        ],
    );
    let a = push(&mut s);
    let b = push(&mut s);
    let (pv, lv) = if a["sub"] == p.as_str() {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(
        pv["records"],
        json!([{"doc":"DEV-1","ts":1,"data":"state:ok"},{"doc":"dev-4","ts":2,"data":"state:fine"}])
    );
    assert_eq!(lv["sub"], l.as_str());
    assert_eq!(
        lv["records"],
        json!([{"doc":"dev-1","ts":2,"data":"temp:2"}])
    );
    // A write nobody selects pushes nothing: the next frame is the answer to a request.
    ins(&mut w, &[("c", "zzz", 1, "state:ok")]);
    w.ok("ddoc", json!({"col":"c","doc":"dev-2"}));
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":p,"col":"c","seq":pv["seq"].as_u64().unwrap() + 2,"doc":"dev-2"})
    );
    assert_eq!(s.ok("cols", json!({})), json!({"collections":["c"]}));
}

#[test]
fn many_subscriptions_per_connection_up_to_the_cap() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    for n in 1..=256 {
        let (id, _) = sub(&mut s, json!({"col": format!("c{}", n % 7)}));
        assert_eq!(id, format!("s{n}"));
    }
    assert_eq!(
        s.err("sub", json!({"col":"c1"})),
        "too many subscriptions: at most 256 per connection"
    );
    assert_eq!(s.ok("unsub", json!({"sub":"s5"})), json!({}));
    assert_eq!(s.err("unsub", json!({"sub":"s5"})), "unknown subscription");
    assert_eq!(
        s.err("unsub", json!({"sub":"nope"})),
        "unknown subscription"
    );
    assert_eq!(sub(&mut s, json!({"col":"c1"})).0, "s257");
    assert_eq!(
        s.err("sub", json!({"col":"c1"})),
        "too many subscriptions: at most 256 per connection"
    );
    // Every subscription on a collection gets its own push of one write.
    let mut w = Client::open(server.port, MASTER, None);
    ins(&mut w, &[("c3", "d", 1, "x")]);
    let mut subs: Vec<String> = (0..37)
        .map(|_| push(&mut s)["sub"].as_str().unwrap().to_string())
        .collect();
    subs.sort_by_key(|s| s[1..].parse::<u32>().unwrap());
    let want: Vec<String> = (1..=256)
        .filter(|n| n % 7 == 3)
        .map(|n| format!("s{n}"))
        .collect();
    assert_eq!(subs, want);
    assert_eq!(s.ok("cols", json!({})), json!({"collections":["c3"]}));
}

#[test]
fn payload_errors_and_read_only_keys() {
    let server = Server::start(&[]);
    let mut m = Client::open(server.port, MASTER, None);
    m.ok(
        "keys",
        json!({"action":"add","key":"reader","scope":"readonly"}),
    );
    let mut r = Client::open(server.port, "reader", None);
    assert_eq!(
        r.err("sub", json!({})),
        "invalid payload: col must be a non-empty string"
    );
    assert_eq!(
        r.err("sub", json!({"col":"c","since":1,"after_seq":2})),
        "invalid payload: since and after_seq cannot be used together"
    );
    assert_eq!(
        r.err("sub", json!({"col":"c","since":"x"})),
        "invalid payload: since must be an integer"
    );
    assert_eq!(
        r.err("unsub", json!({})),
        "invalid payload: sub must be a non-empty string"
    );
    let (id, _) = sub(&mut r, json!({"col":"c"}));
    ins(&mut m, &[("c", "d", 1, "x")]);
    assert_eq!(push(&mut r)["sub"], id.as_str());
}

#[test]
fn clients_that_never_subscribe_never_see_a_push() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    sub(&mut s, json!({"col":"c"}));
    let mut w = Client::open(server.port, MASTER, None);
    for ts in 1..=50 {
        // `ok` asserts that the next frame answers this very request.
        ins(&mut w, &[("c", "d", ts, "x")]);
        w.ok("qry", json!({"col":"c","ts":ts}));
    }
    w.ok("ddoc", json!({"doc":"d"}));
    assert_eq!(w.ok("cols", json!({})), json!({"collections":[]}));
    for ts in 1..=50 {
        assert_eq!(push(&mut s)["records"][0]["ts"], ts);
    }
}

/// Revoked while writes keep coming: a delivery that finds the connection closing must not
/// end its subscriptions quietly, before the session sends each its `subend`.
#[test]
fn a_key_revoked_under_a_stream_of_writes_still_ends_each_subscription_with_subend() {
    let server = Server::start(&[]);
    let mut m = Client::open(server.port, MASTER, None);
    for round in 0..20 {
        let key = format!("temp{round}");
        m.ok("keys", json!({"action":"add","key":key,"scope":"readonly"}));
        let mut s = Client::open(server.port, &key, None);
        sub(&mut s, json!({"col":"c"}));
        sub(&mut s, json!({"col":"c","doc":"/^w/"}));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (port, stop) = (server.port, stop.clone());
            std::thread::spawn(move || {
                let mut w = Client::open(port, MASTER, None);
                let mut ts = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && ts < 100_000 {
                    ts += 1;
                    ins(&mut w, &[("c", "w", ts, "v")]);
                }
            })
        };
        // Revoked once pushes are flowing.
        assert_eq!(push(&mut s)["type"], "rec");
        m.ok("keys", json!({"action":"remove","key":key}));
        let mut ended = Vec::new();
        let close = loop {
            match s.next_frame() {
                Frame::Text(t) => {
                    let p: Value = serde_json::from_str(&t).expect("JSON push");
                    match p["type"].as_str() {
                        Some("rec") => assert!(ended.is_empty(), "a push after subend: {p}"),
                        Some("subend") => ended.push(p),
                        _ => panic!("unexpected frame: {p}"),
                    }
                }
                other => break other,
            }
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().expect("writer");
        ended.sort_by(|a, b| a["sub"].as_str().cmp(&b["sub"].as_str()));
        assert_eq!(
            ended,
            [
                json!({"type":"subend","sub":"s1","error":"API key revoked"}),
                json!({"type":"subend","sub":"s2","error":"API key revoked"})
            ],
            "round {round}"
        );
        assert!(
            matches!(&close, Frame::Close(Some((1008, r))) if r == "API key revoked"),
            "round {round}: {close:?}"
        );
    }
}

#[test]
fn revoking_the_key_ends_its_subscriptions_then_closes() {
    let server = Server::start(&[]);
    let mut m = Client::open(server.port, MASTER, None);
    m.ok(
        "keys",
        json!({"action":"add","key":"temp","scope":"readonly"}),
    );
    let mut s = Client::open(server.port, "temp", None);
    sub(&mut s, json!({"col":"c"}));
    sub(&mut s, json!({"col":"d"}));
    ins(&mut m, &[("c", "x", 1, "v")]);
    assert_eq!(push(&mut s)["type"], "rec");
    m.ok("keys", json!({"action":"remove","key":"temp"}));
    let mut ends = vec![push(&mut s), push(&mut s)];
    ends.sort_by(|a, b| a["sub"].as_str().cmp(&b["sub"].as_str()));
    assert_eq!(
        ends,
        [
            json!({"type":"subend","sub":"s1","error":"API key revoked"}),
            json!({"type":"subend","sub":"s2","error":"API key revoked"})
        ]
    );
    assert_eq!(s.recv_close(), (1008, "API key revoked".to_string()));
    // Writers go on as before.
    ins(&mut m, &[("c", "x", 2, "v")]);
    assert!(matches!(
        s.next_frame(),
        Frame::Dropped(_) | Frame::Close(_)
    ));
}

/// A `since` backlog that could never pass the connection's send-buffer limit ends the
/// subscription with `subend` `subscriber too slow`, as documented, and is not built in full
/// first: before, the whole backlog was rendered (under the collection's write lock) and only
/// then refused, so one readonly `sub` could make the server hold many times the store.
#[test]
fn a_since_backlog_past_the_send_buffer_ends_at_once_without_being_built() {
    let server = Server::start(&["--send-buffer-mib", "1"]);
    let mut w = Client::open(server.port, MASTER, None);
    w.set_read_timeout(std::time::Duration::from_secs(60));
    // 16 MB of records, each JSON text with quotes to escape.
    let pad = "\"x\":".repeat(500);
    for batch in 0..16 {
        let recs: Vec<Value> = (0..500)
            .map(|i| {
                let ts = batch * 500 + i + 1;
                json!({"col":"c","doc":format!("d{}", ts % 7),"ts":ts,"data":format!("{{\"n\":{ts},{pad}}}")})
            })
            .collect();
        w.ok("ins", Value::Array(recs));
    }
    let pid = server.pid().expect("server running");
    let peak = || crate::common::proc_status_kib(pid, "VmHWM").expect("VmHWM");
    let before = peak();
    let mut s = Client::open(server.port, MASTER, None);
    s.set_read_timeout(std::time::Duration::from_secs(60));
    let (id, _) = sub(&mut s, json!({"col": "c", "since": 0}));
    assert_eq!(
        push(&mut s),
        json!({"type":"subend","sub":id,"error":"subscriber too slow"})
    );
    let grown_mib = peak().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 16,
        "peak RSS grew by {grown_mib} MiB for a backlog refused past 1 MiB"
    );
    // A backlog within the limit is still sent whole, and the connection goes on.
    let answer = s.ok("sub", json!({"col": "c", "doc": "d0", "since": 7_950}));
    assert_eq!(answer["backlog"], 1, "{answer}");
    let id = answer["sub"].as_str().unwrap().to_owned();
    let v = push(&mut s);
    assert_eq!(
        (v["type"].as_str(), v["sub"].as_str()),
        (Some("rec"), Some(&*id))
    );
    let stamps: Vec<i64> = v["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["ts"].as_i64().expect("ts"))
        .collect();
    assert_eq!(
        stamps,
        (7_951..=8_000).filter(|t| t % 7 == 0).collect::<Vec<_>>()
    );
}

/// A collection's feed outlives its last subscriber for resuming, but not for good: past 256
/// feeds without subscribers, the one unused longest is dropped, and a resume from it is
/// answered `resume point lost` (the client then reads with `qry` and subscribes again).
#[test]
fn a_feed_unused_longest_is_dropped_past_the_cap_and_its_resume_point_is_lost() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    let mut w = Client::open(server.port, MASTER, None);
    let (id, seq) = sub(&mut s, json!({"col": "x"}));
    ins(&mut w, &[("x", "d", 1, "a")]);
    ins(&mut w, &[("x", "d", 2, "b")]);
    for ts in [1, 2] {
        assert_eq!(push(&mut s)["records"][0]["ts"], ts);
    }
    s.ok("unsub", json!({"sub": id}));
    // Within the window, with few unused feeds: resumed from the history.
    let (again, _) = sub(&mut s, json!({"col": "x", "after_seq": seq}));
    for ts in [1, 2] {
        let v = push(&mut s);
        assert_eq!(
            (v["sub"].as_str(), &v["records"][0]["ts"]),
            (Some(&*again), &json!(ts))
        );
    }
    s.ok("unsub", json!({"sub": again}));
    for i in 0..300 {
        let (other, _) = sub(&mut s, json!({"col": format!("other{i}")}));
        s.ok("unsub", json!({"sub": other}));
    }
    let (late, _) = sub(&mut s, json!({"col": "x", "after_seq": seq}));
    assert_eq!(
        push(&mut s),
        json!({"type":"subend","sub":late,"error":"resume point lost"})
    );
    // The collection itself is untouched, and a new subscription gets its writes.
    let (live, _) = sub(&mut s, json!({"col": "x"}));
    ins(&mut w, &[("x", "d", 3, "c")]);
    let v = push(&mut s);
    assert_eq!(
        (v["sub"].as_str(), &v["records"][0]["ts"]),
        (Some(&*live), &json!(3))
    );
}

/// `sub` and `unsub` on ever new names (a readonly key suffices) no longer grow the server
/// without bound: each left a feed behind for good (the audit: 100k pairs with 4 KiB names,
/// 856 MiB of RSS, kept after the client left).
#[test]
fn subscribing_to_ever_new_names_does_not_grow_the_server() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    let pid = server.pid().expect("server running");
    let peak = || crate::common::proc_status_kib(pid, "VmHWM").expect("VmHWM");
    let pad = "n".repeat(4000);
    let pair = |s: &mut Client, i: usize| {
        let (id, _) = sub(s, json!({"col": format!("{i}{pad}")}));
        s.ok("unsub", json!({"sub": id}));
    };
    // What a steady state holds (256 feeds kept for resuming, buffers, the allocator's own).
    for i in 0..1_000 {
        pair(&mut s, i);
    }
    let before = peak();
    for i in 1_000..10_000 {
        pair(&mut s, i);
    }
    let grown_mib = peak().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 16,
        "peak RSS grew by {grown_mib} MiB over 9,000 subscriptions to new names"
    );
}

/// Many subscriptions with different filters that all select every record: one large write
/// was encoded once per filter and all of it held at once (the audit: 1,024 filters and one
/// 1 MiB `ins`, 1.3 GB of peak RSS); it is now encoded one filter at a time past a budget.
#[test]
fn one_large_write_to_many_different_filters_is_not_held_once_per_filter() {
    let server = Server::start(&["--send-buffer-mib", "1"]);
    let mut subscribers: Vec<Client> = (0..2)
        .map(|_| Client::open(server.port, MASTER, None))
        .collect();
    for (c, s) in subscribers.iter_mut().enumerate() {
        for i in 0..128 {
            sub(
                s,
                json!({"col": "c", "doc": format!("/^d$|^none{c}x{i}$/")}),
            );
        }
    }
    let mut w = Client::open(server.port, MASTER, None);
    w.set_read_timeout(std::time::Duration::from_secs(60));
    // Warm up the write path and the allocator with a write nobody is pushed.
    let small = "\"q\"".repeat(1000);
    ins(&mut w, &[("c", "other", 1, &small)]);
    let pid = server.pid().expect("server running");
    let peak = || crate::common::proc_status_kib(pid, "VmHWM").expect("VmHWM");
    let before = peak();
    // 128 KiB of JSON text with quotes, to each of 256 filters.
    let big = "\"q\"".repeat((128 << 10) / 3);
    ins(&mut w, &[("c", "d", 1, &big)]);
    // Each subscription gets the write, or ends too slow where its connection's 1 MiB send
    // buffer filled up before it was read.
    for s in &mut subscribers {
        s.set_read_timeout(std::time::Duration::from_secs(60));
        for _ in 0..128 {
            let v = push(s);
            assert!(v["type"] == "rec" || v["type"] == "subend", "{v}");
        }
    }
    let grown_mib = peak().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 16,
        "peak RSS grew by {grown_mib} MiB for one 128 KiB write to 256 filters"
    );
}

/// A record that retention drops as it is inserted (older than the newest `max_records` of its
/// document) is acknowledged and never stored, so it is not pushed either: a subscriber that
/// mirrors the collection from its pushes would hold a record that was never there. The write
/// still takes its sequence number.
#[test]
fn records_retention_drops_as_they_are_inserted_are_not_pushed() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    let mut w = Client::open(server.port, MASTER, None);
    w.ok("sret", json!({"col": "r", "max_records": 1}));
    ins(&mut w, &[("r", "d", 10, "new")]);
    let (_, seq) = sub(&mut s, json!({"col": "r"}));
    ins(&mut w, &[("r", "d", 5, "old")]);
    // One batch pushing out its own first record.
    ins(&mut w, &[("r", "d", 30, "a"), ("r", "d", 40, "b")]);
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":"s1","col":"r","seq":seq + 2,"records":[
            {"doc":"d","ts":40,"data":"b"}]})
    );
    assert_eq!(
        w.ok("qdoc", json!({"col": "r", "doc": "d", "to": 100})),
        json!({"records": [{"ts": 40, "data": "b"}]})
    );
}
