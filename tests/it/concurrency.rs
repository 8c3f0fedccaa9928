//! Concurrency (docs/protocol.md#order-pipelining-and-visibility): many writers and readers at
//! once. Checks that
//! * every acknowledged record is present afterwards;
//! * a reader never sees half of an `ins` batch within one collection;
//! * an acknowledged write is visible to every request sent after the ack was received;
//! * what one reader sees never goes backwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Client, Server, MASTER};
use serde_json::{json, Value};

const WRITERS: usize = 32;
const READERS: usize = 6;
/// Documents per writer and collection written by every batch.
const N: usize = 6;
/// Collections shared by groups of writers (besides "shared", written by everyone).
const GROUPS: usize = 4;
const MAX_BATCHES: i64 = 400;
const RUN_FOR: Duration = Duration::from_millis(2500);

fn group_col(w: usize) -> String {
    format!("group{}", w % GROUPS)
}

fn doc(w: usize, i: usize) -> String {
    format!("w{w:02}-d{i}")
}

/// Batch `b` of writer `w`: at ts `b`, N documents in "shared" and N in its group collection, all
/// carrying the marker `w:b`.
fn batch(w: usize, b: i64) -> Value {
    let mut items = Vec::with_capacity(2 * N);
    for i in 0..N {
        let marker = format!("w{w}:b{b}");
        items.push(json!({"col": "shared", "doc": doc(w, i), "ts": b, "data": marker}));
        items.push(json!({"col": group_col(w), "doc": doc(w, i), "ts": b, "data": marker}));
    }
    Value::Array(items)
}

/// Checks one `qry` answer on a collection: for every writer present, all N of its documents
/// carry the same batch (ts and marker agree). Returns writer → batch seen (0 if absent).
fn check_snapshot(col: &str, writers: &[usize], v: &Value) -> Result<BTreeMap<usize, i64>, String> {
    let recs = v["records"]
        .as_object()
        .ok_or_else(|| format!("{col}: no records object: {v}"))?;
    let mut seen = BTreeMap::new();
    for &w in writers {
        let mut batches = Vec::new();
        for i in 0..N {
            match recs.get(&doc(w, i)) {
                None => batches.push(0),
                Some(r) => {
                    let ts = r["ts"].as_i64().ok_or_else(|| format!("bad record {r}"))?;
                    if r["data"] != json!(format!("w{w}:b{ts}")) {
                        return Err(format!(
                            "{col}: {}: data {} does not match ts {ts}",
                            doc(w, i),
                            r["data"]
                        ));
                    }
                    batches.push(ts);
                }
            }
        }
        if batches.iter().any(|b| *b != batches[0]) {
            return Err(format!(
                "{col}: half-applied batch of writer {w}: documents show batches {batches:?}"
            ));
        }
        seen.insert(w, batches[0]);
    }
    let expected_docs = seen.values().filter(|b| **b > 0).count() * N;
    if recs.len() != expected_docs {
        return Err(format!(
            "{col}: {} documents, expected {expected_docs}",
            recs.len()
        ));
    }
    Ok(seen)
}

#[test]
fn writers_and_readers() {
    let s = Server::start(&[]);
    let port = s.port;
    let acked: Arc<Vec<AtomicI64>> = Arc::new((0..WRITERS).map(|_| AtomicI64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS + READERS));

    // Open every connection first (from the test thread) so they all exist at once.
    let writer_conns: Vec<Client> = (0..WRITERS)
        .map(|w| Client::open(port, MASTER, Some(&format!("writer{w}"))))
        .collect();
    let reader_conns: Vec<Client> = (0..READERS)
        .map(|r| Client::open(port, MASTER, Some(&format!("reader{r}"))))
        .collect();

    let mut writers = Vec::new();
    for (w, mut c) in writer_conns.into_iter().enumerate() {
        let acked = Arc::clone(&acked);
        let start = Arc::clone(&start);
        writers.push(thread::spawn(move || -> Result<i64, String> {
            start.wait();
            let t0 = Instant::now();
            let mut b = 0;
            while b < MAX_BATCHES && t0.elapsed() < RUN_FOR {
                b += 1;
                let resp = c.call("ins", batch(w, b));
                if resp != json!({}) {
                    return Err(format!("writer {w} batch {b}: {resp}"));
                }
                acked[w].store(b, Ordering::SeqCst);
            }
            Ok(b)
        }));
    }

    let mut readers = Vec::new();
    for (r, mut c) in reader_conns.into_iter().enumerate() {
        let acked = Arc::clone(&acked);
        let done = Arc::clone(&done);
        let start = Arc::clone(&start);
        readers.push(thread::spawn(move || -> Result<usize, String> {
            start.wait();
            let mut last: BTreeMap<(String, usize), i64> = BTreeMap::new();
            let mut queries = 0usize;
            let mut k = r;
            let deadline = Instant::now() + RUN_FOR + Duration::from_secs(20);
            while !done.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    return Err("reader ran past its deadline".into());
                }
                k += 1;
                let (col, writers): (String, Vec<usize>) = if k % 2 == 0 {
                    ("shared".into(), (0..WRITERS).collect())
                } else {
                    let g = k / 2 % GROUPS;
                    (format!("group{g}"), (0..WRITERS).filter(|w| w % GROUPS == g).collect())
                };
                // Writes acknowledged before this request is sent must be visible to it.
                let floor: Vec<i64> = writers.iter().map(|&w| acked[w].load(Ordering::SeqCst)).collect();
                let v = c.ok("qry", json!({"col": col, "ts": i64::MAX}));
                let seen = check_snapshot(&col, &writers, &v)?;
                for (j, &w) in writers.iter().enumerate() {
                    let b = seen[&w];
                    if b < floor[j] {
                        return Err(format!("{col}: writer {w} batch {} was acknowledged before the query but the query saw batch {b}", floor[j]));
                    }
                    let prev = last.entry((col.clone(), w)).or_insert(0);
                    if b < *prev {
                        return Err(format!("{col}: writer {w} went back from batch {prev} to {b}"));
                    }
                    *prev = b;
                }
                // Now and then, one document's whole history: consecutive batches 1..=b.
                if k % 5 == 0 {
                    let w = writers[k % writers.len()];
                    let v = c.ok("qdoc", json!({"col": col, "doc": doc(w, k % N), "to": i64::MAX}));
                    let ts: Vec<i64> = v["records"].as_array().unwrap().iter().map(|x| x["ts"].as_i64().unwrap()).collect();
                    if ts != (1..=ts.len() as i64).collect::<Vec<_>>() {
                        return Err(format!("{col}/{}: history with gaps: {ts:?}", doc(w, k % N)));
                    }
                }
                queries += 1;
            }
            Ok(queries)
        }));
    }

    let mut failures = Vec::new();
    let mut batches = vec![0i64; WRITERS];
    for (w, h) in writers.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(b)) => batches[w] = b,
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("writer {w} panicked")),
        }
    }
    done.store(true, Ordering::SeqCst);
    let mut total_queries = 0;
    for (r, h) in readers.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(q)) => total_queries += q,
            Ok(Err(e)) => failures.push(format!("reader {r}: {e}")),
            Err(_) => failures.push(format!("reader {r} panicked")),
        }
    }
    assert!(
        failures.is_empty(),
        "concurrency failures:\n{}",
        failures.join("\n")
    );
    assert!(
        total_queries >= READERS,
        "readers made only {total_queries} queries"
    );
    assert!(
        batches.iter().all(|b| *b > 0),
        "some writer acknowledged nothing: {batches:?}"
    );

    // Every acknowledged record is present, exactly once per (doc, ts), with its data.
    let mut m = s.master();
    for (w, &last) in batches.iter().enumerate() {
        for col in ["shared".to_string(), group_col(w)] {
            for i in 0..N {
                let v = m.ok(
                    "qdoc",
                    json!({"col": col, "doc": doc(w, i), "to": i64::MAX}),
                );
                let want: Vec<Value> = (1..=last)
                    .map(|b| json!({"ts": b, "data": format!("w{w}:b{b}")}))
                    .collect();
                assert_eq!(v, json!({"records": want}), "{col}/{}", doc(w, i));
            }
        }
    }
    let mut want_cols: Vec<String> = (0..GROUPS).map(|g| format!("group{g}")).collect();
    want_cols.push("shared".into());
    assert_eq!(crate::common::cols(&mut m), want_cols);
    eprintln!(
        "concurrency: {} batches acknowledged ({} records), {total_queries} reader queries",
        batches.iter().sum::<i64>(),
        batches.iter().sum::<i64>() * 2 * N as i64
    );
}

#[test]
fn concurrent_deletes_and_inserts_keep_the_collection_invariant() {
    // One connection repeatedly fills and empties a collection (so it is created and removed over
    // and over) while others insert into it; no acknowledged insert may be lost to a concurrent
    // removal (§3, ARCHITECTURE.md "Concurrency rules").
    let s = Server::start(&[]);
    let port = s.port;
    let stop = Arc::new(AtomicBool::new(false));
    let churner = {
        let stop = Arc::clone(&stop);
        let mut c = Client::open(port, MASTER, Some("churn"));
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                c.ok(
                    "ins",
                    json!([{"col": "hot", "doc": "tmp", "ts": 1, "data": "x"}]),
                );
                c.ok("drec", json!({"col": "hot", "doc": "tmp", "ts": 1}));
            }
            n
        })
    };
    let mut inserters = Vec::new();
    for w in 0..4 {
        let mut c = Client::open(port, MASTER, Some("ins"));
        inserters.push(thread::spawn(move || {
            let t0 = Instant::now();
            let mut b = 0i64;
            while t0.elapsed() < Duration::from_millis(1500) && b < 2000 {
                b += 1;
                c.ok(
                    "ins",
                    json!([{"col": "hot", "doc": format!("keep{w}"), "ts": b, "data": "k"}]),
                );
            }
            b
        }));
    }
    let counts: Vec<i64> = inserters.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    let cycles = churner.join().unwrap();
    assert!(cycles > 0);
    let mut m = s.master();
    for (w, n) in counts.iter().enumerate() {
        let v = m.ok(
            "qdoc",
            json!({"col": "hot", "doc": format!("keep{w}"), "to": i64::MAX}),
        );
        assert_eq!(
            v["records"].as_array().unwrap().len() as i64,
            *n,
            "keep{w}: acknowledged inserts lost"
        );
    }
    assert_eq!(crate::common::cols(&mut m), vec!["hot"]);
    assert_eq!(
        m.ok("qdoc", json!({"col": "hot", "doc": "tmp", "to": 10})),
        json!({"records": []})
    );
}

#[test]
fn snapshot_check_detects_torn_batches() {
    // The checker itself must be able to fail.
    let rec = |w: usize, b: i64| json!({"ts": b, "data": format!("w{w}:b{b}")});
    let mut full = serde_json::Map::new();
    for w in [0, 1] {
        for i in 0..N {
            full.insert(doc(w, i), rec(w, 3));
        }
    }
    let ok = json!({ "records": Value::Object(full.clone()) });
    assert_eq!(
        check_snapshot("c", &[0, 1, 2], &ok).unwrap(),
        BTreeMap::from([(0, 3), (1, 3), (2, 0)])
    );
    // One document of writer 1 still at the previous batch.
    let mut torn = full.clone();
    torn.insert(doc(1, N - 1), rec(1, 2));
    let err = check_snapshot("c", &[0, 1], &json!({ "records": Value::Object(torn) })).unwrap_err();
    assert!(err.contains("half-applied batch of writer 1"), "{err}");
    // One document missing.
    let mut missing = full.clone();
    missing.remove(&doc(0, 0));
    assert!(check_snapshot("c", &[0, 1], &json!({ "records": Value::Object(missing) })).is_err());
    // Data that does not belong to its timestamp.
    let mut wrong = full.clone();
    wrong.insert(doc(0, 1), json!({"ts": 3, "data": "w0:b2"}));
    assert!(check_snapshot("c", &[0, 1], &json!({ "records": Value::Object(wrong) })).is_err());
    // A document nobody should have written.
    let mut extra = full;
    extra.insert("intruder".into(), rec(9, 1));
    assert!(check_snapshot("c", &[0, 1], &json!({ "records": Value::Object(extra) })).is_err());
}
