//! The answer cache: repeated `qry` and `qdoc` on an unchanged collection are answered from it,
//! byte for byte what the server computes (checked against a twin server started with
//! `--answer-cache-mib 0` that is sent the very same frames); every kind of change is seen by
//! the next read; readers racing writers never see an answer older than an acknowledged
//! write; the cache keeps to its budget and can be turned off.

use crate::backup::metric;
use crate::common::{recs, Client, Frame, Server};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

const HITS: &str = "fluxiondb_answer_cache_hits_total";
const MISSES: &str = "fluxiondb_answer_cache_misses_total";
const BYTES: &str = "fluxiondb_answer_cache_bytes";

fn counter(s: &Server, name: &str) -> f64 {
    metric(s.port, name).unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A server with the cache and one without, each with a connection: every frame goes to both.
struct Twins {
    cached: Server,
    plain: Server,
    a: Client,
    b: Client,
    n: u64,
}

impl Twins {
    fn start() -> Twins {
        let cached = Server::start(&[]);
        let plain = Server::start(&["--answer-cache-mib", "0"]);
        let (a, b) = (cached.master(), plain.master());
        Twins {
            cached,
            plain,
            a,
            b,
            n: 0,
        }
    }

    /// Sends a request to both; their answers must be the same bytes. Returns the answer.
    fn both(&mut self, ty: &str, data: Value) -> String {
        self.n += 1;
        // Ids of different lengths and with characters to escape, so splicing is exercised.
        let id = format!("q\"{}\\{}", self.n, "x".repeat(self.n as usize % 7));
        let cached = self.a.answer_text(&id, ty, &data);
        let plain = self.b.answer_text(&id, ty, &data);
        assert_eq!(
            cached, plain,
            "{ty} {data}: the cached server answered differently"
        );
        cached
    }

    /// A change, sent to both; it must succeed.
    fn change(&mut self, ty: &str, data: Value) {
        let answer = self.both(ty, data.clone());
        assert!(!answer.contains("\"error\""), "{ty} {data}: {answer}");
    }

    /// Every read of the test, each asked twice (the second may come from the cache): the
    /// answers without their ids.
    fn reads(&mut self) -> Vec<Value> {
        let reads = [
            ("qry", json!({"col": "c", "ts": i64::MAX})),
            ("qry", json!({"col": "c", "ts": 25})),
            (
                "qry",
                json!({"col": "c", "ts": i64::MAX, "doc": "/^d[0-9]$/"}),
            ),
            ("qry", json!({"col": "c", "ts": i64::MAX, "doc": "d1"})),
            (
                "qry",
                json!({"col": "c", "ts": i64::MAX, "where": "/\"n\":[0-9]*[02468]\\}/"}),
            ),
            ("qdoc", json!({"col": "c", "doc": "d1", "to": i64::MAX})),
            (
                "qdoc",
                json!({"col": "c", "doc": "d1", "to": i64::MAX, "limit": 2, "reverse": true}),
            ),
            (
                "qdoc",
                json!({"col": "c", "doc": "d2", "from": 10, "to": 30}),
            ),
            ("qdoc", json!({"col": "c", "doc": "nope", "to": i64::MAX})),
            ("qry", json!({"col": "nope", "ts": i64::MAX})),
        ];
        let mut out = Vec::new();
        for (ty, data) in reads {
            let first = without_id(&self.both(ty, data.clone()));
            let again = without_id(&self.both(ty, data));
            assert_eq!(first, again);
            out.push(first);
        }
        out
    }
}

/// An answer without its id.
fn without_id(text: &str) -> Value {
    let mut v: Value = serde_json::from_str(text).unwrap();
    v.as_object_mut().unwrap().remove("id");
    v
}

fn rec(doc: &str, ts: i64) -> (String, i64, String) {
    (
        doc.to_string(),
        ts,
        format!("{{\"doc\":\"{doc}\",\"n\":{ts}}}"),
    )
}

fn ins(t: &mut Twins, records: &[(String, i64, String)]) {
    let items: Vec<(&str, &str, i64, &str)> = records
        .iter()
        .map(|(d, ts, data)| ("c", d.as_str(), *ts, data.as_str()))
        .collect();
    t.change("ins", recs(&items));
}

#[test]
fn repeated_reads_are_answered_from_the_cache_byte_for_byte() {
    let mut t = Twins::start();
    ins(
        &mut t,
        &[rec("d1", 10), rec("d1", 20), rec("d2", 15), rec("d3", 30)],
    );
    let before = counter(&t.cached, HITS);
    let first = t.reads();
    let hits = counter(&t.cached, HITS) - before;
    // Ten reads asked twice: the second asking of each read of an existing collection is a hit.
    assert!(hits >= 9.0, "only {hits} hits");
    assert_eq!(counter(&t.plain, HITS), 0.0);
    assert!(counter(&t.cached, BYTES) > 0.0);
    // Asked again, still the same (and from the cache).
    assert_eq!(t.reads(), first);
    assert!(counter(&t.cached, HITS) - before >= 9.0 + 18.0);
}

#[test]
fn every_kind_of_change_is_seen_by_the_next_read() {
    let mut t = Twins::start();
    ins(
        &mut t,
        &[rec("d1", 10), rec("d1", 20), rec("d2", 15), rec("d2", 25)],
    );
    let mut last = t.reads();
    let mut step = |t: &mut Twins, what: &str, change: &dyn Fn(&mut Twins)| {
        change(t);
        let now = t.reads();
        assert_ne!(
            now, last,
            "{what}: no read changed (the step tests nothing)"
        );
        last = now;
    };
    // Appends to an existing document (made under the collection's read lock).
    step(&mut t, "append", &|t| ins(t, &[rec("d1", 30)]));
    step(&mut t, "append batch", &|t| {
        ins(t, &[rec("d2", 40), rec("d2", 41)])
    });
    // One older record among newer ones (also under the read lock), and a replace.
    step(&mut t, "insert out of order", &|t| ins(t, &[rec("d1", 12)]));
    step(&mut t, "replace", &|t| {
        t.change(
            "ins",
            recs(&[("c", "d1", 30, "{\"n\":0,\"replaced\":true}")]),
        )
    });
    step(&mut t, "new document", &|t| ins(t, &[rec("d3", 5)]));
    step(&mut t, "drec", &|t| {
        t.change("drec", json!({"col": "c", "doc": "d1", "ts": 30}))
    });
    step(&mut t, "drrng", &|t| {
        t.change(
            "drrng",
            json!({"col": "c", "doc": "d2", "fromTs": 14, "toTs": 26}),
        )
    });
    step(&mut t, "dmrec", &|t| {
        t.change(
            "dmrec",
            json!([{"col": "c", "doc": "d1", "ts": 12}, {"col": "c", "doc": "d2", "ts": 41}]),
        )
    });
    step(&mut t, "ddoc", &|t| {
        t.change("ddoc", json!({"col": "c", "doc": "d3"}))
    });
    step(&mut t, "retention drop by sret", &|t| {
        t.change("sret", json!({"col": "c", "max_records": 1}))
    });
    step(&mut t, "retention drop by insert", &|t| {
        ins(t, &[rec("d1", 50), rec("d2", 60)])
    });
    step(&mut t, "retention by age", &|t| {
        t.change("sret", json!({"col": "c", "max_records": 0, "max_age": 5}));
        ins(t, &[rec("d1", 52), rec("d1", 53), rec("d1", 60)]);
    });
    step(&mut t, "dcol", &|t| t.change("dcol", json!({"col": "c"})));
    // The same name again, with the same timestamps as before the drop but other data.
    step(&mut t, "recreated", &|t| {
        t.change(
            "ins",
            recs(&[("c", "d1", 60, "{\"n\":2}"), ("c", "d2", 60, "{\"n\":3}")]),
        )
    });
    // A key/value change need not touch the answers; they stay right either way.
    t.change("sval", json!({"col": "c", "key": "k", "value": "v"}));
    assert_eq!(t.reads(), last);
    assert!(counter(&t.cached, HITS) > 0.0);
}

#[test]
fn a_cache_of_zero_mib_is_off() {
    let s = Server::start(&["--answer-cache-mib", "0"]);
    let mut c = s.master();
    c.ok("ins", recs(&[("c", "d", 1, "x"), ("c", "d", 2, "y")]));
    for _ in 0..20 {
        assert_eq!(
            c.ok("qdoc", json!({"col": "c", "doc": "d", "to": 9})),
            json!({"records": [{"ts": 1, "data": "x"}, {"ts": 2, "data": "y"}]})
        );
        c.ok("qry", json!({"col": "c", "ts": 9}));
    }
    assert_eq!(
        (counter(&s, HITS), counter(&s, MISSES), counter(&s, BYTES)),
        (0.0, 0.0, 0.0)
    );
}

#[test]
fn a_flood_of_distinct_queries_keeps_the_cache_within_its_budget() {
    let s = Server::start(&["--answer-cache-mib", "1"]);
    let mut c = s.master();
    let data = "\"quoted\" ".repeat(30);
    for chunk in 0..10 {
        let items: Vec<Value> = (0..200)
            .map(|i| json!({"col": "c", "doc": "d", "ts": 1 + chunk * 200 + i, "data": data}))
            .collect();
        c.ok("ins", Value::Array(items));
    }
    // 1,500 distinct answers of about 6 KB each: nine times the budget.
    for from in 1..=1_500 {
        let v = c.ok(
            "qdoc",
            json!({"col": "c", "doc": "d", "from": from, "to": i64::MAX, "limit": 20}),
        );
        assert_eq!(v["records"][0]["ts"], json!(from));
        if from % 250 == 0 {
            let bytes = counter(&s, BYTES);
            assert!(
                bytes <= 1_048_576.0,
                "{bytes} bytes cached, over the 1 MiB budget"
            );
        }
    }
    let bytes = counter(&s, BYTES);
    assert!(
        (500_000.0..=1_048_576.0).contains(&bytes),
        "{bytes} bytes cached"
    );
    assert_eq!(counter(&s, MISSES), 1_500.0);
    // The newest ones are still there.
    c.ok(
        "qdoc",
        json!({"col": "c", "doc": "d", "from": 1_500, "to": i64::MAX, "limit": 20}),
    );
    assert_eq!(counter(&s, HITS), 1.0);
}

/// Writers append to one document (under the collection's read lock) and create new documents
/// (under its write lock) while readers poll the same two reads. Every answer must hold every
/// write acknowledged before it was asked, never go back, and hold each record's own data.
#[test]
fn readers_racing_writers_never_see_an_answer_older_than_an_acknowledged_write() {
    const WRITES: i64 = 300;
    let s = Server::start(&[]);
    let mut setup = s.master();
    setup.ok(
        "ins",
        recs(&[("c", "a", 1, "{\"n\":1}"), ("c", "b-0", 1, "{\"n\":1}")]),
    );
    // The newest acknowledged timestamp of `a`, and documents `b-…` acknowledged.
    let acked_a = Arc::new(AtomicI64::new(1));
    let acked_b = Arc::new(AtomicI64::new(0));
    let writers_done = Arc::new(AtomicUsize::new(0));
    let appender = {
        let (port, acked, done) = (s.port, acked_a.clone(), writers_done.clone());
        thread::spawn(move || {
            let mut c = Client::open(port, crate::common::MASTER, None);
            for ts in 2..=WRITES {
                let data = format!("{{\"n\":{ts}}}");
                c.ok("ins", recs(&[("c", "a", ts, &data)]));
                acked.store(ts, Ordering::SeqCst);
            }
            done.fetch_add(1, Ordering::SeqCst);
        })
    };
    let creator = {
        let (port, acked, done) = (s.port, acked_b.clone(), writers_done.clone());
        thread::spawn(move || {
            let mut c = Client::open(port, crate::common::MASTER, None);
            for n in 1..=WRITES / 3 {
                let data = format!("{{\"n\":{}}}", n + 1);
                c.ok("ins", recs(&[("c", &format!("b-{n}"), n + 1, &data)]));
                acked.store(n, Ordering::SeqCst);
            }
            done.fetch_add(1, Ordering::SeqCst);
        })
    };
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (port, a, b, done) = (
                s.port,
                acked_a.clone(),
                acked_b.clone(),
                writers_done.clone(),
            );
            thread::spawn(move || {
                let mut c = Client::open(port, crate::common::MASTER, None);
                let (mut seen_a, mut seen_b, mut rounds) = (0, 0, 0);
                // Until both writers are done, and a few rounds after (bounded either way).
                let mut after = 0;
                while after < 20 {
                    rounds += 1;
                    assert!(rounds < 1_000_000, "the writers never finished");
                    if done.load(Ordering::SeqCst) == 2 {
                        after += 1;
                    }
                    let (min_a, min_b) = (a.load(Ordering::SeqCst), b.load(Ordering::SeqCst));
                    let v = c.ok("qry", json!({"col": "c", "ts": i64::MAX}));
                    let records = v["records"].as_object().unwrap();
                    let ts_a = records["a"]["ts"].as_i64().unwrap();
                    assert_eq!(records["a"]["data"], json!(format!("{{\"n\":{ts_a}}}")));
                    let docs_b = records.len() as i64 - 2;
                    assert!(ts_a >= min_a && ts_a >= seen_a, "a at {ts_a}: acked {min_a}, seen {seen_a}");
                    assert!(docs_b >= min_b && docs_b >= seen_b, "{docs_b} b-docs: acked {min_b}");
                    for n in 0..=docs_b {
                        let r = &records[&format!("b-{n}")];
                        let ts = n + 1;
                        assert_eq!(r, &json!({"ts": ts, "data": format!("{{\"n\":{ts}}}")}));
                    }
                    (seen_a, seen_b) = (ts_a, docs_b);
                    let min_a = a.load(Ordering::SeqCst);
                    let v = c.ok(
                        "qdoc",
                        json!({"col": "c", "doc": "a", "to": i64::MAX, "limit": 1, "reverse": true}),
                    );
                    let ts = v["records"][0]["ts"].as_i64().unwrap();
                    assert!(ts >= min_a && ts >= seen_a, "qdoc a at {ts}: acked {min_a}");
                    assert_eq!(v["records"][0]["data"], json!(format!("{{\"n\":{ts}}}")));
                }
                (seen_a, seen_b)
            })
        })
        .collect();
    appender.join().unwrap();
    creator.join().unwrap();
    for r in readers {
        assert_eq!(r.join().unwrap(), (WRITES, WRITES / 3));
    }
    // Once the writers stopped, the readers' repeated reads came from the cache.
    assert!(counter(&s, HITS) > 0.0);
}

/// The response limit counts the id: a remembered answer that would pass it under a long id is
/// not served from the cache but computed, and refused as the server refuses it uncached.
#[test]
fn a_remembered_answer_under_a_long_id_still_keeps_the_response_limit() {
    let s = Server::start(&["--max-response-mib", "1"]);
    let mut c = s.master();
    c.ok("ins", recs(&[("c", "d", 1, "x")]));
    let q = json!({"col": "c", "doc": "d", "to": 9});
    let short = c.answer_text("a", "qdoc", &q);
    assert_eq!(short, r#"{"id":"a","records":[{"ts":1,"data":"x"}]}"#);
    assert_eq!(
        c.answer_text("b", "qdoc", &q),
        short.replace("\"a\"", "\"b\"")
    );
    let hits = counter(&s, HITS);
    assert!(hits >= 1.0);
    let long = "i".repeat(1024 * 1024);
    let answer: Value = serde_json::from_str(&c.answer_text(&long, "qdoc", &q)).unwrap();
    assert_eq!(answer, json!({"id": long, "error": "response too large"}));
    assert_eq!(
        counter(&s, HITS),
        hits,
        "served from the cache past the limit"
    );
}

/// Answers of 1 KiB and more are sent from the cache by reference, between frames copied into
/// the connection's queue: pipelined requests (large and small answers, a hit whose frame needs
/// the 8-byte length because of a long id) arrive byte for byte as the uncached twin sends them.
#[test]
fn large_answers_sent_from_the_cache_arrive_whole_and_in_order_when_pipelined() {
    let mut t = Twins::start();
    let payload = format!("{{\"pad\":\"{}\"}}", "y".repeat(280));
    let records: Vec<(String, i64, String)> = (1..=180)
        .map(|ts| ("big".to_string(), ts, payload.clone()))
        .collect();
    ins(&mut t, &records);
    let big = json!({"col": "c", "doc": "big", "to": i64::MAX});
    let small = json!({"col": "c", "doc": "big", "to": i64::MAX, "limit": 1});
    let long_id = format!("long\"{}", "i".repeat(12_000));
    let frames: Vec<String> = [
        ("a", "qdoc", &big),
        ("b", "qdoc", &big),
        ("c", "qdoc", &small),
        ("d", "qdoc", &small),
        (long_id.as_str(), "qdoc", &big),
        ("e", "qry", &json!({"col": "c", "ts": i64::MAX})),
        ("f", "qdoc", &big),
    ]
    .iter()
    .map(|(id, ty, data)| json!({"id": id, "type": ty, "data": data.to_string()}).to_string())
    .collect();
    let before = counter(&t.cached, HITS);
    let answers = |c: &mut Client| -> Vec<String> {
        for f in &frames {
            c.send_text(f);
        }
        (0..frames.len())
            .map(|_| match c.next_frame() {
                Frame::Text(t) => t,
                other => panic!("expected an answer, got {}", other.describe()),
            })
            .collect()
    };
    let cached = answers(&mut t.a);
    let plain = answers(&mut t.b);
    for (i, (c, p)) in cached.iter().zip(&plain).enumerate() {
        assert!(c == p, "answer {i} differs from the uncached twin's");
        assert!(!c.contains("\"error\""), "answer {i}: {c}");
    }
    assert!(
        cached[0].len() > 50_000,
        "the large answer is only {} bytes",
        cached[0].len()
    );
    assert!(
        cached[4].len() > u16::MAX as usize,
        "the long-id answer fits 16 bits"
    );
    // b, d, the long id and f were hits (a and c were computed, then remembered).
    assert_eq!(counter(&t.cached, HITS) - before, 4.0);
}
