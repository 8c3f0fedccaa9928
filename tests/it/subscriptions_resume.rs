//! Live subscriptions under concurrent writers (issue 15): what a subscriber saw, applied to an
//! empty model, must equal the final state — nothing missing, nothing twice, per-collection
//! order kept — whether it started with `since`, resumed with `after_seq` in the middle of a
//! write storm, or the server was killed; and a subscriber that stops reading is cut off alone.

use crate::common::{wait_until, Client, Frame, Server, MASTER};
use crate::subscriptions::{push, sub};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const COL: &str = "m";
const WRITERS: usize = 3;
const OPS: usize = 400;
/// Operations each writer makes at least once the subscription under test is in place, so that
/// it sees live pushes however late the test's own thread gets to subscribe on a busy machine.
const AFTER_SUB: usize = 100;

/// What a subscriber knows: `(doc, ts) → data`, built from pushes only.
#[derive(Default)]
struct Model {
    records: BTreeMap<(String, i64), String>,
    /// Every `(doc, ts)` ever inserted (writers never insert one twice).
    inserted: HashSet<(String, i64)>,
    /// The last write seen in full (frames with `more` are not the end of their write).
    complete: u64,
    last_seq: u64,
    pushes: usize,
}

impl Model {
    /// Applies one push; `backlog` is the `since` backlog's sequence number, if any.
    fn apply(&mut self, v: &Value, backlog: Option<u64>) {
        let seq = v["seq"].as_u64().expect("seq");
        let in_backlog = backlog == Some(seq) && v["type"] == "rec" && self.last_seq == seq;
        if !in_backlog {
            let same_write = seq == self.last_seq && self.complete < seq;
            assert!(
                same_write || seq == self.last_seq + 1,
                "push out of order: seq {seq} after {} ({v})",
                self.last_seq
            );
        }
        self.last_seq = seq;
        if v.get("more").is_none() {
            self.complete = seq;
        }
        self.pushes += 1;
        let doc = v["doc"].as_str().map(str::to_string);
        match v["type"].as_str() {
            Some("rec") => {
                for r in v["records"].as_array().expect("records") {
                    let key = (
                        r["doc"].as_str().unwrap().to_string(),
                        r["ts"].as_i64().unwrap(),
                    );
                    assert!(
                        self.inserted.insert(key.clone()),
                        "record pushed twice: {r}"
                    );
                    self.records
                        .insert(key, r["data"].as_str().unwrap().to_string());
                }
            }
            Some("del") => match (doc, v.get("ts"), v.get("from")) {
                (Some(d), Some(ts), _) => {
                    for t in ts.as_array().unwrap() {
                        self.records.remove(&(d.clone(), t.as_i64().unwrap()));
                    }
                }
                (Some(d), None, Some(from)) => {
                    let (from, to) = (from.as_i64().unwrap(), v["to"].as_i64().unwrap());
                    self.records
                        .retain(|(rd, t), _| !(*rd == d && (from..=to).contains(t)));
                }
                (Some(d), None, None) => self.records.retain(|(rd, _), _| *rd != d),
                (None, _, _) => self.records.clear(),
            },
            other => panic!("unexpected push type {other:?}: {v}"),
        }
    }
}

/// A writer's storm on its own documents: inserts of fresh timestamps, record, range,
/// multi-record and document deletes, each acknowledged before the next.
/// One writer's operations: `OPS` of them, and on until `AFTER_SUB` were begun after
/// `subscribed` was set (at most ten times `OPS` in all).
fn storm(port: u16, w: usize, progress: Arc<AtomicUsize>, subscribed: Arc<AtomicBool>) {
    let mut c = Client::open(port, MASTER, None);
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut ts = 0i64;
    let mut after = 0;
    for done in 0..10 * OPS {
        if done >= OPS && after >= AFTER_SUB {
            break;
        }
        if subscribed.load(Ordering::Acquire) {
            after += 1;
        }
        let doc = format!("w{w}-{}", next(3));
        let pick = next(100);
        if pick < 65 || ts < 4 {
            ts += 1;
            let batch = 1 + next(3) as i64;
            let recs: Vec<Value> = (0..batch)
                .map(|i| json!({"col": COL, "doc": format!("w{w}-{}", (i as u64 + next(3)) % 3), "ts": ts * 10 + i, "data": format!("v{w}-{ts}-{i}")}))
                .collect();
            c.ok("ins", Value::Array(recs));
        } else if pick < 80 {
            let t = 10 * (1 + next(ts as u64) as i64) + next(3) as i64;
            c.ok("drec", json!({"col": COL, "doc": doc, "ts": t}));
        } else if pick < 90 {
            let from = 10 * (1 + next(ts as u64) as i64);
            c.ok(
                "drrng",
                json!({"col": COL, "doc": doc, "fromTs": from, "toTs": from + 25}),
            );
        } else if pick < 97 {
            let t = 10 * (1 + next(ts as u64) as i64);
            c.ok(
                "dmrec",
                json!([{"col": COL, "doc": format!("w{w}-0"), "ts": t}, {"col": COL, "doc": format!("w{w}-1"), "ts": t + 1}, {"col": COL, "doc": format!("w{w}-2"), "ts": t}]),
            );
        } else {
            c.ok("ddoc", json!({"col": COL, "doc": doc}));
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// The server's final state of the writers' documents.
fn final_state(c: &mut Client) -> BTreeMap<(String, i64), String> {
    let mut all = BTreeMap::new();
    for w in 0..WRITERS {
        for k in 0..3 {
            let doc = format!("w{w}-{k}");
            let v = c.ok("qdoc", json!({"col": COL, "doc": doc, "to": i64::MAX}));
            for r in v["records"].as_array().unwrap() {
                all.insert(
                    (doc.clone(), r["ts"].as_i64().unwrap()),
                    r["data"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    all
}

/// Reads pushes into `model` until the end marker (a record of document `end`) arrives.
fn read_to_marker(c: &mut Client, model: &mut Model, backlog: Option<u64>) {
    for _ in 0..1_000_000 {
        let v = push(c);
        model.apply(&v, backlog);
        if v["type"] == "rec"
            && v["records"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["doc"] == "end")
        {
            model.records.retain(|(d, _), _| d != "end");
            return;
        }
    }
    panic!("the end marker never arrived");
}

fn run_storm(
    port: u16,
    subscribed: &Arc<AtomicBool>,
) -> (Arc<AtomicUsize>, Vec<thread::JoinHandle<()>>) {
    let progress = Arc::new(AtomicUsize::new(0));
    let writers = (0..WRITERS)
        .map(|w| {
            let (p, s) = (progress.clone(), subscribed.clone());
            thread::spawn(move || storm(port, w, p, s))
        })
        .collect();
    (progress, writers)
}

fn finish(port: u16, writers: Vec<thread::JoinHandle<()>>) -> Client {
    for w in writers {
        w.join().expect("writer");
    }
    let mut m = Client::open(port, MASTER, None);
    m.ok(
        "ins",
        json!([{"col": COL, "doc": "end", "ts": 1, "data": "end"}]),
    );
    m
}

#[test]
fn since_sends_the_stored_records_then_every_write_without_gap_or_duplicate() {
    let server = Server::start(&[]);
    let subscribed = Arc::new(AtomicBool::new(false));
    let (progress, writers) = run_storm(server.port, &subscribed);
    assert!(wait_until(Duration::from_secs(30), || progress
        .load(Ordering::Relaxed)
        >= 150));
    let mut s = Client::open(server.port, MASTER, None);
    let (_, start) = sub(&mut s, json!({"col": COL, "since": 0}));
    subscribed.store(true, Ordering::Release);
    let mut model = Model {
        last_seq: start,
        complete: start,
        ..Model::default()
    };
    let mut m = finish(server.port, writers);
    read_to_marker(&mut s, &mut model, Some(start));
    assert_eq!(model.records, final_state(&mut m));
    assert!(model.pushes > 100, "only {} pushes", model.pushes);
}

#[test]
fn since_skips_older_records_and_keeps_the_selection() {
    let server = Server::start(&[]);
    let mut w = Client::open(server.port, MASTER, None);
    w.ok("ins", json!([{"col":"c","doc":"a","ts":5,"data":"old"},{"col":"c","doc":"a","ts":10,"data":"x"},{"col":"c","doc":"b","ts":11,"data":"y"},{"col":"c","doc":"a","ts":12,"data":"skip me"}]));
    let mut s = Client::open(server.port, MASTER, None);
    // The answer says how many backlog frames follow.
    let answer = s.ok(
        "sub",
        json!({"col":"c","doc":"a","since":5,"filter":"skip"}),
    );
    assert_eq!(answer["backlog"], 1, "{answer}");
    let (id, seq) = (
        answer["sub"].as_str().unwrap().to_owned(),
        answer["seq"].as_u64().unwrap(),
    );
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":id,"col":"c","seq":seq,"records":[{"doc":"a","ts":10,"data":"x"}]})
    );
    w.ok("ins", json!([{"col":"c","doc":"a","ts":1,"data":"late"}]));
    assert_eq!(
        push(&mut s)["records"],
        json!([{"doc":"a","ts":1,"data":"late"}])
    );
    // A collection that does not exist yet: nothing stored, then every write.
    let answer = s.ok("sub", json!({"col":"new","since":0}));
    assert_eq!(answer["backlog"], 0, "{answer}");
    let (id, seq) = (
        answer["sub"].as_str().unwrap().to_owned(),
        answer["seq"].as_u64().unwrap(),
    );
    w.ok(
        "ins",
        json!([{"col":"new","doc":"a","ts":1,"data":"first"}]),
    );
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":id,"col":"new","seq":seq + 1,"records":[{"doc":"a","ts":1,"data":"first"}]})
    );
    // Nothing is above the largest timestamp: a backlog from there is empty.
    w.ok(
        "ins",
        json!([{"col":"top","doc":"a","ts":i64::MAX,"data":"max"}]),
    );
    let (id, seq) = sub(&mut s, json!({"col":"top","since":i64::MAX}));
    w.ok("ins", json!([{"col":"top","doc":"a","ts":1,"data":"live"}]));
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":id,"col":"top","seq":seq + 1,"records":[{"doc":"a","ts":1,"data":"live"}]})
    );
}

#[test]
fn after_seq_resumes_in_the_middle_of_a_write_storm() {
    let server = Server::start(&[]);
    let mut s = Client::open(server.port, MASTER, None);
    let (_, start) = sub(&mut s, json!({"col": COL}));
    let mut model = Model {
        last_seq: start,
        complete: start,
        ..Model::default()
    };
    let (_, writers) = run_storm(server.port, &Arc::new(AtomicBool::new(true)));
    // Read some, then drop the connection without a word while the writers go on.
    while model.pushes < 150 {
        let v = push(&mut s);
        model.apply(&v, None);
    }
    drop(s);
    let mut s = Client::open(server.port, MASTER, None);
    let (_, at) = sub(&mut s, json!({"col": COL, "after_seq": model.complete}));
    assert!(at >= model.complete);
    model.last_seq = model.complete;
    let mut m = finish(server.port, writers);
    read_to_marker(&mut s, &mut model, None);
    assert_eq!(model.records, final_state(&mut m));
    // A point the history never held (or no longer holds) is refused with `subend`.
    let (id, _) = sub(&mut s, json!({"col": COL, "after_seq": start - 5}));
    assert_eq!(
        push(&mut s),
        json!({"type":"subend","sub":id,"error":"resume point lost"})
    );
    let (id, now) = sub(&mut s, json!({"col": COL, "after_seq": u64::MAX / 4}));
    assert_eq!(
        push(&mut s),
        json!({"type":"subend","sub":id,"error":"resume point lost"})
    );
    assert_eq!(s.err("unsub", json!({"sub": id})), "unknown subscription");
    // Resuming from the present replays nothing and goes on live.
    let (id, _) = sub(&mut s, json!({"col": COL, "after_seq": now}));
    m.ok(
        "ins",
        json!([{"col": COL, "doc": "x", "ts": 1, "data": "live"}]),
    );
    // Both the resumed subscription (s1) and the new one get it.
    let mut got: Vec<(String, u64)> = (0..2)
        .map(|_| {
            let v = push(&mut s);
            (
                v["sub"].as_str().unwrap().to_string(),
                v["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, [("s1".to_string(), now + 1), (id, now + 1)]);
}

#[test]
fn no_push_for_a_write_that_does_not_survive_kill_9() {
    // With fsync on every write, appends pile up in the log's buffer while a sync runs: a
    // push sent before its write reached the log would be lost to the kill.
    let mut server = Server::with_data_dir_args(&["--fsync", "always"]);
    let mut s = Client::open(server.port, MASTER, None);
    sub(&mut s, json!({"col": COL}));
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let stop = stop.clone();
            thread::spawn(move || {
                let Ok(mut c) = Client::connect(port, "/?api-key=master-key") else {
                    return;
                };
                if !matches!(c.next_frame(), Frame::Text(_)) {
                    return;
                }
                for ts in 1..1_000_000 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let data = json!([{"col": COL, "doc": format!("w{w}"), "ts": ts, "data": "x"}])
                        .to_string();
                    let frame = json!({"id": "i", "type": "ins", "data": data}).to_string();
                    if c.try_send_text(&frame).is_err() || !matches!(c.next_frame(), Frame::Text(_))
                    {
                        return;
                    }
                }
            })
        })
        .collect();
    let mut pushed = Vec::new();
    while pushed.len() < 300 {
        for r in push(&mut s)["records"].as_array().unwrap() {
            pushed.push((
                r["doc"].as_str().unwrap().to_string(),
                r["ts"].as_i64().unwrap(),
            ));
        }
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    // Whatever else was on its way: every push must be of a write that survived.
    while let Frame::Text(t) = s.next_frame() {
        let v: Value = serde_json::from_str(&t).unwrap();
        for r in v["records"].as_array().unwrap() {
            pushed.push((
                r["doc"].as_str().unwrap().to_string(),
                r["ts"].as_i64().unwrap(),
            ));
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    server.start_again();
    let mut c = Client::open(server.port, MASTER, None);
    let mut stored = HashSet::new();
    for w in 0..WRITERS {
        let doc = format!("w{w}");
        let v = c.ok("qdoc", json!({"col": COL, "doc": doc, "to": i64::MAX}));
        for r in v["records"].as_array().unwrap() {
            stored.insert((doc.clone(), r["ts"].as_i64().unwrap()));
        }
    }
    let lost: Vec<_> = pushed.iter().filter(|p| !stored.contains(*p)).collect();
    assert!(
        lost.is_empty(),
        "{} pushed records did not survive: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn a_subscriber_that_stops_reading_is_cut_off_alone() {
    // With the default idle timeout, the session's read timeout (7.5 s) is longer than the
    // client's 5 s wait: the rest of a push the full socket took only in part must not wait
    // for it (regression: it did, until pushers woke the session).
    let server = Server::start(&["--send-buffer-mib", "1"]);
    let mut s = Client::open(server.port, MASTER, None);
    let (id, _) = sub(&mut s, json!({"col": "c"}));
    let (fast, _) = sub(
        &mut Client::open(server.port, MASTER, None),
        json!({"col": "c"}),
    );
    let _ = fast;
    let mut reader = Client::open(server.port, MASTER, None);
    sub(&mut reader, json!({"col": "c"}));
    // `s` reads nothing from here on; the writer's every insert is still acknowledged.
    const WRITES: usize = 400;
    let big = "x".repeat(32 * 1024);
    let mut w = Client::open(server.port, MASTER, None);
    for ts in 1..=WRITES {
        w.ok(
            "ins",
            json!([{"col": "c", "doc": "d", "ts": ts, "data": big}]),
        );
        // A subscriber that keeps up gets every push.
        assert_eq!(push(&mut reader)["records"][0]["ts"], ts);
    }
    let mut recs = 0;
    let end = loop {
        let v = push(&mut s);
        if v["type"] != "rec" {
            break v;
        }
        assert_eq!(
            v["records"][0]["ts"],
            recs + 1,
            "pushes before the end stay in order"
        );
        recs += 1;
    };
    assert_eq!(
        end,
        json!({"type":"subend","sub":id,"error":"subscriber too slow"})
    );
    assert!(
        recs < WRITES,
        "the slow subscriber's pushes were all queued: memory not bounded"
    );
    // The connection stays open, and the ended subscription gets nothing more.
    w.ok(
        "ins",
        json!([{"col": "c", "doc": "d", "ts": 100_000, "data": "after"}]),
    );
    assert_eq!(push(&mut reader)["records"][0]["ts"], 100_000);
    assert_eq!(s.err("unsub", json!({"sub": id})), "unknown subscription");
    assert_eq!(s.ok("cols", json!({})), json!({"collections":["c"]}));
}
