//! Readers of a collection while single-record appends keep coming (the mixed shape of issue
//! 17): every `qry` answer is one point of the apply order, however the server read it (quietly,
//! through each document's lock, or again under the collection's write lock; see
//! `store/doc.rs`).
//!
//! Each writer connection appends to its own documents `w<w>-d0 … d<N-1>` in turn, one record
//! per `ins`, its `k`-th append (from 0) going to document `k % N` at ts `k / N + 1`. One
//! connection's requests are applied in the order sent, so at any point of the apply order a
//! writer has made some first `L` of its appends, and its documents show ts
//! `ceil((L - i) / N)` for document `i`: never increasing with `i`, the first at most one ahead
//! of the last. An answer that mixed two points (an append seen, an earlier one of the same
//! writer not) breaks that shape.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use crate::common::{Client, Server, MASTER};
use serde_json::{json, Value};

const WRITERS: usize = 3;
const READERS: usize = 3;
/// Documents per writer.
const N: usize = 24;
/// Appends per writer.
const APPENDS: u64 = 6000;

fn doc(w: usize, i: usize) -> String {
    format!("w{w}-d{i}")
}

/// A record's data: JSON text naming where it belongs, so that a record read from the wrong
/// place shows.
fn data(w: usize, i: usize, ts: i64) -> String {
    format!("{{\"w\":{w},\"i\":{i},\"ts\":{ts}}}")
}

/// How many of writer `w`'s appends an answer shows (`L` above), or why it is no point of the
/// apply order. Data carries the ts, so a record read from the wrong place shows too.
fn appends_seen(w: usize, v: &Value) -> Result<u64, String> {
    let recs = v["records"]
        .as_object()
        .ok_or_else(|| format!("no records object: {v}"))?;
    let mut ts = Vec::with_capacity(N);
    for i in 0..N {
        let t = match recs.get(&doc(w, i)) {
            None => 0,
            Some(r) => {
                let t = r["ts"].as_i64().ok_or_else(|| format!("bad record {r}"))?;
                if r["data"] != json!(data(w, i, t)) {
                    return Err(format!("{}: data {} at ts {t}", doc(w, i), r["data"]));
                }
                t
            }
        };
        ts.push(t);
    }
    let first = ts[0];
    let torn = ts.windows(2).any(|p| p[1] > p[0]) || ts[N - 1] + 1 < first;
    if torn {
        return Err(format!(
            "writer {w}: documents show ts {ts:?}, no point of its appends"
        ));
    }
    Ok(ts.iter().map(|&t| t as u64).sum())
}

#[test]
fn every_qry_answer_is_one_point_of_the_appends() {
    let s = Server::start(&["--answer-cache-mib", "0"]);
    let port = s.port;
    // Every document exists before the appends start, so that each append takes the path of
    // an append to an existing document (the collection's read lock).
    let mut m = s.master();
    for w in 0..WRITERS {
        let first: Vec<Value> = (0..N)
            .map(|i| json!({"col": "c", "doc": doc(w, i), "ts": 1, "data": data(w, i, 1)}))
            .collect();
        assert_eq!(m.call("ins", Value::Array(first)), json!({}));
    }
    let acked: Arc<Vec<AtomicU64>> =
        Arc::new((0..WRITERS).map(|_| AtomicU64::new(N as u64)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS + READERS));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut c = Client::open(port, MASTER, Some(&format!("writer{w}")));
            let (acked, start) = (Arc::clone(&acked), Arc::clone(&start));
            thread::spawn(move || -> Result<(), String> {
                start.wait();
                for k in N as u64..APPENDS {
                    let (i, ts) = ((k % N as u64) as usize, (k / N as u64 + 1) as i64);
                    let rec =
                        json!([{"col": "c", "doc": doc(w, i), "ts": ts, "data": data(w, i, ts)}]);
                    let resp = c.call("ins", rec);
                    if resp != json!({}) {
                        return Err(format!("writer {w} append {k}: {resp}"));
                    }
                    acked[w].store(k + 1, Ordering::SeqCst);
                }
                Ok(())
            })
        })
        .collect();

    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let mut c = Client::open(port, MASTER, Some(&format!("reader{r}")));
            let (acked, done, start) = (Arc::clone(&acked), Arc::clone(&done), Arc::clone(&start));
            thread::spawn(move || -> Result<usize, String> {
                start.wait();
                let mut last = [0u64; WRITERS];
                let mut answers = 0;
                loop {
                    // Read before the flag: the last answer is taken after every append.
                    let finished = done.load(Ordering::SeqCst);
                    let floor: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
                    let v = c.ok("qry", json!({"col": "c", "ts": i64::MAX}));
                    answers += 1;
                    for w in 0..WRITERS {
                        let seen = appends_seen(w, &v).map_err(|e| format!("reader {r}: {e}"))?;
                        if seen < floor[w] {
                            return Err(format!(
                                "reader {r}: writer {w}: {} appends acknowledged before the query, {seen} seen",
                                floor[w]
                            ));
                        }
                        if seen < last[w] {
                            return Err(format!("reader {r}: writer {w} went back from {} to {seen}", last[w]));
                        }
                        last[w] = seen;
                    }
                    if finished {
                        return Ok(answers);
                    }
                }
            })
        })
        .collect();

    let mut failures = Vec::new();
    for (w, h) in writers.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("writer {w} panicked")),
        }
    }
    done.store(true, Ordering::SeqCst);
    let mut answers = 0;
    for (r, h) in readers.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(n)) => answers += n,
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("reader {r} panicked")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(answers > READERS, "readers answered only {answers} times");
    // The last answers saw every append.
    let v = m.ok("qry", json!({"col": "c", "ts": i64::MAX}));
    for w in 0..WRITERS {
        assert_eq!(appends_seen(w, &v), Ok(APPENDS));
    }
}

/// The check above fails on an answer that is no point of a writer's appends.
#[test]
fn the_point_check_detects_torn_answers() {
    let answer = |ts: &[i64]| {
        let recs: serde_json::Map<String, Value> = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| (doc(0, i), json!({"ts": t, "data": data(0, i, t)})))
            .collect();
        json!({ "records": recs })
    };
    let mut ts = vec![3; N];
    assert_eq!(appends_seen(0, &answer(&ts)), Ok(3 * N as u64));
    ts[0] = 4;
    ts[1] = 4;
    assert_eq!(appends_seen(0, &answer(&ts)), Ok(3 * N as u64 + 2));
    ts[5] = 4;
    assert!(
        appends_seen(0, &answer(&ts)).is_err(),
        "a later append seen without an earlier one"
    );
    let mut ts = vec![3; N];
    ts[0] = 5;
    assert!(appends_seen(0, &answer(&ts)).is_err(), "two appends ahead");
    let mut ts = vec![3; N];
    ts[N - 1] = 2;
    ts[0] = 4;
    assert!(appends_seen(0, &answer(&ts)).is_err(), "two rounds apart");
}
