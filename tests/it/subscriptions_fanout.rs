//! Live subscriptions under many pipelining writers (issue 15): while one thread delivers, the
//! other writers leave their pushes to it rather than wait; every subscription must still get
//! every write exactly once, one push per write, in `seq` order, the last write included (a
//! deliverer that stopped just as a writer left its pushes to it would strand that write, and
//! the test reads what is owed after every burst of writes, so each burst's end is a chance
//! to catch it).

use crate::common::{Client, Server, MASTER};
use crate::subscriptions::{push, sub};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;

const COL: &str = "fan";
const WRITERS: usize = 12;
/// Bursts of writes: after each, every subscription must have every write so far (each end
/// of a burst is a chance for the last writes to be left to a deliverer that stops).
const BURSTS: i64 = 25;
const PER_BURST: i64 = 12;
/// Inserts each writer keeps in flight.
const DEPTH: i64 = 6;

/// One writer on its own connection: `BURSTS` bursts of `PER_BURST` single-record inserts
/// into document `w<n>`, `DEPTH` of them in flight at a time; it waits at `gate` after each
/// burst is acknowledged, and again before the next.
fn writer(port: u16, n: usize, gate: &Barrier) {
    let mut c = Client::open(port, MASTER, None);
    let doc = format!("w{n}");
    let request = |ts: i64| {
        let data = json!([{"col": COL, "doc": doc, "ts": ts, "data": format!("v{n}-{ts}")}]);
        json!({"id": format!("i{ts}"), "type": "ins", "data": data.to_string()}).to_string()
    };
    let (mut sent, mut acked) = (0, 0);
    for burst in 1..=BURSTS {
        while acked < burst * PER_BURST {
            while sent < burst * PER_BURST && sent - acked < DEPTH {
                sent += 1;
                c.send_text(&request(sent));
            }
            let answer = c.recv_json();
            acked += 1;
            assert_eq!(answer, json!({"id": format!("i{acked}")}), "writer {n}");
        }
        gate.wait();
        gate.wait();
    }
}

/// One subscriber connection: its subscriptions (id, the seq each started after) and the
/// records each was pushed.
struct Reader {
    c: Client,
    ids: Vec<(String, u64)>,
    got: Vec<Vec<Value>>,
}

impl Reader {
    fn new(port: u16, filters: &[Value]) -> Reader {
        let mut c = Client::open(port, MASTER, None);
        let ids: Vec<_> = filters.iter().map(|f| sub(&mut c, f.clone())).collect();
        let got = vec![Vec::new(); ids.len()];
        Reader { c, ids, got }
    }

    /// Reads until each subscription has `want` pushes: each a `rec` of one record, `seq`
    /// following `seq` (bounded by the client's read timeout).
    fn read_until(&mut self, want: usize) {
        while self.got.iter().any(|g| g.len() < want) {
            let p = push(&mut self.c);
            let i = self
                .ids
                .iter()
                .position(|(id, _)| p["sub"] == json!(id))
                .unwrap_or_else(|| panic!("push of an unknown subscription: {p}"));
            let seq = self.ids[i].1 + self.got[i].len() as u64 + 1;
            assert_eq!(p["seq"], json!(seq), "out of order or missing: {p}");
            assert_eq!(p["type"], "rec", "{p}");
            assert_eq!(p["col"], COL, "{p}");
            let records = p["records"].as_array().expect("records");
            assert_eq!(records.len(), 1, "one write, one record: {p}");
            self.got[i].push(records[0].clone());
        }
    }
}

/// Every record exactly once, each writer's in the order it wrote them.
fn assert_every_write(records: &[Value]) {
    let mut seen = BTreeSet::new();
    let mut last = [0i64; WRITERS];
    for r in records {
        let doc = r["doc"].as_str().expect("doc");
        let n: usize = doc[1..].parse().expect("writer number");
        let ts = r["ts"].as_i64().expect("ts");
        assert_eq!(r["data"], json!(format!("v{n}-{ts}")), "{r}");
        assert_eq!(ts, last[n] + 1, "writer {n}'s records out of order: {r}");
        last[n] = ts;
        assert!(seen.insert((n, ts)), "record pushed twice: {r}");
    }
    assert_eq!(seen.len(), WRITERS * (BURSTS * PER_BURST) as usize);
}

#[test]
fn pipelining_writers_on_many_connections_reach_every_subscriber_once_in_order() {
    let server = Server::start(&[]);
    let all = json!({"col": COL});
    // Three connections with one subscription each, and one with two (two filter groups).
    let mut readers: Vec<Reader> = (0..3)
        .map(|_| Reader::new(server.port, std::slice::from_ref(&all)))
        .collect();
    readers.push(Reader::new(
        server.port,
        &[all.clone(), json!({"col": COL, "doc": "/^w/"})],
    ));
    let names: Vec<&str> = readers[3].ids.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(names, ["s1", "s2"]);

    let gate = Arc::new(Barrier::new(WRITERS + 1));
    let port = server.port;
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let gate = gate.clone();
            thread::spawn(move || writer(port, n, &gate))
        })
        .collect();
    for burst in 1..=BURSTS {
        gate.wait();
        // Every write of the burst was acknowledged: each push of it is owed now.
        let want = WRITERS * (burst * PER_BURST) as usize;
        for r in &mut readers {
            r.read_until(want);
        }
        gate.wait();
    }
    for w in writers {
        w.join().expect("writer");
    }
    for r in &readers {
        for records in &r.got {
            assert_every_write(records);
        }
    }
    // Nothing more was owed: a write acknowledged after all of the above is the next push.
    let total = WRITERS * (BURSTS * PER_BURST) as usize;
    let mut w = Client::open(server.port, MASTER, None);
    w.ok(
        "ins",
        json!([{"col": COL, "doc": "w-last", "ts": 1, "data": "end"}]),
    );
    for r in &mut readers {
        for (id, from) in r.ids.iter() {
            let seq = from + total as u64 + 1;
            let p = push(&mut r.c);
            assert_eq!(
                p,
                json!({"type":"rec","sub":id,"col":COL,"seq":seq,
                    "records":[{"doc":"w-last","ts":1,"data":"end"}]})
            );
        }
    }
}
