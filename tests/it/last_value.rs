//! The newest record each document keeps rendered for `qry` (a last-value cache, see the
//! store's `series/tail.rs`): after every kind of change, a quiet `qry` answers exactly as
//! without it. Two references that cannot share its bugs: the same `qry` with a `filter` that
//! drops nothing (`"\u0001"`, which no record here holds: a query with a predicate has each
//! record written from its data, never from the rendered tail), compared byte for byte; and each document's newest record read back
//! with `qdoc` (a scan of the series).

use crate::common::{recs, Client, Server};
use serde_json::{json, Map, Value};

/// Every document name the tests use (a `qdoc` of one that does not exist answers nothing).
const DOCS: [&str; 5] = ["d1", "d2", "d3", "e\"1", "long"];

/// The newest record at or before `at` of each document, from `qdoc`, as a `qry` answer's
/// `records` member.
fn by_qdoc(c: &mut Client, at: i64, from: i64) -> Value {
    let mut records = Map::new();
    for doc in DOCS {
        let v = c.ok(
            "qdoc",
            json!({"col": "c", "doc": doc, "from": from, "to": at, "reverse": true, "limit": 1}),
        );
        if let Some(r) = v["records"].as_array().and_then(|a| a.first()) {
            records.insert(doc.to_owned(), r.clone());
        }
    }
    Value::Object(records)
}

/// Asserts that `qry` over every document (and over a pattern), at "now" and at earlier
/// times, answers what both references do.
fn check(c: &mut Client, what: &str) {
    for (at, from) in [
        (i64::MAX, 0),
        (1_000_000, 0),
        (35, 0),
        (20, 0),
        (i64::MAX, 45),
    ] {
        for doc in [None, Some("/^[a-z]/")] {
            let mut q = json!({"col": "c", "ts": at, "from": from});
            if let Some(doc) = doc {
                q["doc"] = json!(doc);
            }
            let fast = c.answer_text("q", "qry", &q);
            q["filter"] = json!("\u{1}");
            let slow = c.answer_text("q", "qry", &q);
            assert_eq!(fast, slow, "{what}: at {at} from {from} doc {doc:?}");
            if doc.is_none() {
                let answer: Value = serde_json::from_str(&fast).unwrap();
                let records = answer.get("records").cloned().unwrap_or(json!({}));
                assert_eq!(
                    records,
                    by_qdoc(c, at, from),
                    "{what}: at {at} from {from}: qry against qdoc"
                );
            }
        }
    }
}

fn ins(c: &mut Client, items: &[(&str, i64, &str)]) {
    let items: Vec<(&str, &str, i64, &str)> =
        items.iter().map(|&(d, t, x)| ("c", d, t, x)).collect();
    assert_eq!(c.call("ins", recs(&items)), json!({}));
}

fn change(c: &mut Client, ty: &str, payload: Value) {
    let v = c.call(ty, payload.clone());
    assert!(v.get("error").is_none(), "{ty} {payload} failed: {v}");
}

fn server(data_dir: bool) -> Server {
    // No answer cache: every `qry` walks the documents.
    let args = ["--answer-cache-mib", "0"];
    if data_dir {
        Server::with_data_dir_args(&args)
    } else {
        Server::start(&args)
    }
}

#[test]
fn every_kind_of_change_answers_as_without_the_rendered_records() {
    let mut s = server(true);
    let mut c = s.master();
    // New documents (the collection's write lock), then appends (its read lock).
    ins(
        &mut c,
        &[("d1", 10, "a"), ("d2", 15, "b"), ("e\"1", 12, "q\"\\")],
    );
    check(&mut c, "new documents");
    ins(&mut c, &[("d1", 30, "a30")]);
    check(&mut c, "append");
    let batch: Vec<(&str, i64, String)> = (40..1040).map(|t| ("d2", t, format!("v{t}"))).collect();
    let batch: Vec<(&str, i64, &str)> = batch.iter().map(|(d, t, x)| (*d, *t, &**x)).collect();
    ins(&mut c, &batch);
    check(&mut c, "a batch past several seals");
    ins(&mut c, &[("d1", 20, "late")]);
    check(&mut c, "insert out of order");
    ins(&mut c, &[("d2", 100, "into sealed history")]);
    check(&mut c, "replace in sealed history");
    ins(&mut c, &[("d2", 60, "x"), ("d2", 1039, "newest replaced")]);
    check(&mut c, "replace of the newest in a batch");
    ins(&mut c, &[("d2", 1039, "newest \"replaced\" alone")]);
    check(&mut c, "replace of the newest alone");
    ins(
        &mut c,
        &[
            ("d3", 5, "x"),
            ("d1", 31, "y"),
            ("d3", 6, "z"),
            ("d1", 32, "w"),
        ],
    );
    check(&mut c, "a batch over two documents, interleaved");
    let long = "L".repeat(300);
    ins(&mut c, &[("long", 50, &long)]);
    check(&mut c, "data too long for a tail");
    ins(&mut c, &[("long", 51, "short again")]);
    check(&mut c, "short after long");
    change(&mut c, "drec", json!({"col": "c", "doc": "d1", "ts": 32}));
    check(&mut c, "drec of the newest");
    change(&mut c, "drec", json!({"col": "c", "doc": "d1", "ts": 10}));
    check(&mut c, "drec of another");
    change(
        &mut c,
        "drrng",
        json!({"col": "c", "doc": "d2", "fromTs": 1000, "toTs": 2000}),
    );
    check(&mut c, "drrng of the newest");
    change(
        &mut c,
        "dmrec",
        json!([{"col": "c", "doc": "d2", "ts": 999}, {"col": "c", "doc": "d3", "ts": 5}]),
    );
    check(&mut c, "dmrec of the newest and another");
    change(&mut c, "ddoc", json!({"col": "c", "doc": "d3"}));
    check(&mut c, "ddoc");
    ins(&mut c, &[("d3", 7, "back")]);
    check(&mut c, "a document again");
    // Load from the log (killed), then from a snapshot (a clean stop writes one).
    s.restart();
    let mut c = s.master();
    check(&mut c, "replayed from the log");
    ins(&mut c, &[("d1", 33, "after replay")]);
    check(&mut c, "append after replay");
    s.sigterm();
    s.start_again();
    let mut c = s.master();
    check(&mut c, "loaded from a snapshot");
    ins(&mut c, &[("d1", 34, "after load")]);
    check(&mut c, "append after load");
    // Retention: by count (applied at once and on each insert), then by age.
    change(&mut c, "sret", json!({"col": "c", "max_records": 2}));
    check(&mut c, "retention by count");
    ins(&mut c, &[("d1", 35, "trimmed"), ("d2", 2000, "trimmed")]);
    check(&mut c, "insert trimmed by count");
    change(
        &mut c,
        "sret",
        json!({"col": "c", "max_records": 0, "max_age": 5}),
    );
    ins(&mut c, &[("d1", 36, "aged"), ("d1", 50, "aged 2")]);
    check(&mut c, "retention by age");
    change(&mut c, "dcol", json!({"col": "c"}));
    check(&mut c, "dcol");
    ins(&mut c, &[("d1", 36, "recreated"), ("d2", 36, "recreated")]);
    check(&mut c, "recreated");
}

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_random_mix_of_writes_and_deletes_answers_as_without_the_rendered_records() {
    let s = server(false);
    let mut c = s.master();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let docs = ["d1", "d2", "d3", "e\"1"];
    for step in 0..400 {
        let doc = docs[rng.next(docs.len() as u64) as usize];
        let ts = 1 + rng.next(200) as i64;
        let data = match rng.next(4) {
            0 => format!("{{\"s\":{step}}}"),
            1 => format!("q\"{step}\\"),
            2 => "x".repeat(250 + rng.next(10) as usize),
            _ => format!("{step}"),
        };
        match rng.next(10) {
            0..=3 => ins(&mut c, &[(doc, ts, &data)]),
            4 => {
                let n = 1 + rng.next(100) as i64;
                let batch: Vec<(&str, i64, &str)> = (0..n).map(|i| (doc, ts + i, &*data)).collect();
                ins(&mut c, &batch);
            }
            5 => change(&mut c, "drec", json!({"col": "c", "doc": doc, "ts": ts})),
            // The newest record of the document goes (alone or with older ones).
            6 if rng.next(2) == 0 => {
                let newest = c.ok(
                    "qdoc",
                    json!({"col": "c", "doc": doc, "to": i64::MAX, "reverse": true, "limit": 1}),
                )["records"][0]["ts"]
                    .as_i64();
                if let Some(newest) = newest {
                    let from = newest - rng.next(3) as i64;
                    change(
                        &mut c,
                        "drrng",
                        json!({"col": "c", "doc": doc, "fromTs": from, "toTs": newest}),
                    );
                }
            }
            6 => change(
                &mut c,
                "drrng",
                json!({"col": "c", "doc": doc, "fromTs": ts, "toTs": ts + rng.next(50) as i64}),
            ),
            7 => change(
                &mut c,
                "dmrec",
                json!([{"col": "c", "doc": doc, "ts": ts}, {"col": "c", "doc": "d1", "ts": ts + 1}]),
            ),
            8 if rng.next(8) == 0 => change(&mut c, "ddoc", json!({"col": "c", "doc": doc})),
            _ => ins(&mut c, &[(doc, 300 + step, &data)]),
        }
        check(&mut c, &format!("step {step}"));
    }
    check(&mut c, "the end");
}
