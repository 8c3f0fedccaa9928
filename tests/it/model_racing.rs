//! Readers racing writers on one collection (issue 17). Appends to existing documents run with
//! the collection only read-locked, each document locked alone, while a `qry` reads many
//! documents at once; every answer must still be one point of the collection's apply order.
//!
//! The model is each writer's own sequence of steps: step `k` of writer `w` goes to its
//! document `k % DOCS` (every seventh as a two-record batch, whose first record is marked
//! `:a`). A view that shows step `m` of a writer must show, in each of its documents, the last
//! step at or before `m` that went there — never an older one (out of order) and never an `:a`
//! record as the newest (half a batch). Views of one reader never go back, and a step
//! acknowledged before a query was sent is in its answer. Run in memory and with `--data`
//! (where appends also take their place in the log).
//!
//! In the `under a top record` runs every document also holds a record at [`TOP`], newer than
//! every step, and readers ask for the latest record before it: each step is then an insert
//! among older records (also made with the collection only read-locked), which a view must
//! leave out just the same.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{Client, Server, MASTER};
use serde_json::{json, Value};

const WRITERS: usize = 4;
const READERS: usize = 3;
const DOCS: usize = 6;
/// Steps each writer keeps in flight.
const DEPTH: usize = 4;
const MAX_STEPS: i64 = 20_000;
const RUN_FOR: Duration = Duration::from_millis(2000);
const COL: &str = "race";
/// The timestamp of the record above every step (`under a top record` runs).
const TOP: i64 = 1 << 40;

fn doc(w: usize, j: usize) -> String {
    format!("w{w}-d{j}")
}

fn marker(w: usize, k: i64) -> String {
    format!("w{w}:{k}")
}

/// The `ins` payload of step `k` (>= 1) of writer `w`: its newest record at ts `2k + 1`.
fn step(w: usize, k: i64) -> Value {
    let d = doc(w, k as usize % DOCS);
    let last = json!({"col": COL, "doc": d, "ts": 2 * k + 1, "data": marker(w, k)});
    if k % 7 == 0 {
        let first =
            json!({"col": COL, "doc": d, "ts": 2 * k, "data": format!("{}:a", marker(w, k))});
        json!([first, last])
    } else {
        json!([last])
    }
}

/// The step a document of writer `w` shows in a view: its newest record's.
fn shown_step(w: usize, j: usize, rec: Option<&Value>) -> Result<i64, String> {
    let rec = rec.ok_or_else(|| format!("{} missing", doc(w, j)))?;
    let data = rec["data"]
        .as_str()
        .ok_or_else(|| format!("bad record {rec}"))?;
    let ts = rec["ts"]
        .as_i64()
        .ok_or_else(|| format!("bad record {rec}"))?;
    let k: i64 = data
        .strip_prefix(&format!("w{w}:"))
        .and_then(|rest| rest.parse().ok())
        .ok_or_else(|| format!("{}: half a batch or foreign data: {rec}", doc(w, j)))?;
    let want_ts = if k == 0 { 1 } else { 2 * k + 1 };
    if ts != want_ts || (k > 0 && k as usize % DOCS != j) {
        return Err(format!("{}: record {rec} does not belong there", doc(w, j)));
    }
    Ok(k)
}

/// Checks one `qry` answer over the documents of `writers`; returns the step each shows.
fn check_view(v: &Value, writers: &[usize]) -> Result<BTreeMap<usize, i64>, String> {
    let recs = v["records"]
        .as_object()
        .ok_or_else(|| format!("no records object: {v}"))?;
    if recs.len() != writers.len() * DOCS {
        return Err(format!(
            "{} documents, expected {}",
            recs.len(),
            writers.len() * DOCS
        ));
    }
    let mut seen = BTreeMap::new();
    for &w in writers {
        let steps = (0..DOCS)
            .map(|j| shown_step(w, j, recs.get(&doc(w, j))))
            .collect::<Result<Vec<i64>, String>>()?;
        let m = steps.iter().copied().max().unwrap_or(0);
        for (j, &k) in steps.iter().enumerate() {
            // The last step at or before m that went to document j (0: none yet).
            let back = (m as usize % DOCS + DOCS - j) % DOCS;
            let want = (m - back as i64).max(0);
            if k != want {
                return Err(format!(
                    "writer {w}: out of order: the view shows step {m} but {} shows step {k}, \
                     not {want} (steps {steps:?})",
                    doc(w, j)
                ));
            }
        }
        seen.insert(w, m);
    }
    Ok(seen)
}

/// `under_top`: every document also holds a record at [`TOP`] (see the module's comment).
fn race(s: &Server, under_top: bool) {
    let port = s.port;
    let mut setup = s.master();
    for w in 0..WRITERS {
        let mut recs: Vec<Value> = (0..DOCS)
            .map(|j| json!({"col": COL, "doc": doc(w, j), "ts": 1, "data": marker(w, 0)}))
            .collect();
        if under_top {
            recs.extend(
                (0..DOCS).map(|j| json!({"col": COL, "doc": doc(w, j), "ts": TOP, "data": "top"})),
            );
        }
        setup.ok("ins", Value::Array(recs));
    }
    // The latest record at or before `at` is the newest step's.
    let at = if under_top { TOP - 1 } else { i64::MAX };
    let acked: Arc<Vec<AtomicI64>> = Arc::new((0..WRITERS).map(|_| AtomicI64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WRITERS + READERS));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut c = Client::open(port, MASTER, Some(&format!("writer{w}")));
            let (acked, start) = (acked.clone(), start.clone());
            thread::spawn(move || -> Result<i64, String> {
                start.wait();
                let t0 = Instant::now();
                let (mut sent, mut answered) = (0i64, 0i64);
                while answered < sent || (sent < MAX_STEPS && t0.elapsed() < RUN_FOR) {
                    while sent < MAX_STEPS && sent - answered < DEPTH as i64 && t0.elapsed() < RUN_FOR {
                        sent += 1;
                        let frame = json!({"id": format!("s{sent}"), "type": "ins", "data": step(w, sent).to_string()});
                        c.send_text(&frame.to_string());
                    }
                    if answered == sent {
                        break;
                    }
                    let v = c.recv_json();
                    answered += 1;
                    if v != json!({"id": format!("s{answered}")}) {
                        return Err(format!("writer {w} step {answered}: {v}"));
                    }
                    acked[w].store(answered, Ordering::SeqCst);
                }
                Ok(answered)
            })
        })
        .collect();

    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let mut c = Client::open(port, MASTER, Some(&format!("reader{r}")));
            let (acked, done, start) = (acked.clone(), done.clone(), start.clone());
            thread::spawn(move || -> Result<usize, String> {
                start.wait();
                let mut last = [0i64; WRITERS];
                let deadline = Instant::now() + RUN_FOR + Duration::from_secs(30);
                let mut n = 0usize;
                while !done.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        return Err("reader ran past its deadline".into());
                    }
                    n += 1;
                    // Mostly the whole collection; now and then one writer's documents by pattern.
                    let (q, writers): (Value, Vec<usize>) = if n % 4 == 3 {
                        let w = n / 4 % WRITERS;
                        (json!({"col": COL, "ts": at, "doc": format!("/^w{w}-/")}), vec![w])
                    } else {
                        (json!({"col": COL, "ts": at}), (0..WRITERS).collect())
                    };
                    let floor: Vec<i64> = writers.iter().map(|&w| acked[w].load(Ordering::SeqCst)).collect();
                    let v = c.ok("qry", q);
                    let seen = check_view(&v, &writers).map_err(|e| format!("reader {r}: {e}"))?;
                    for (i, &w) in writers.iter().enumerate() {
                        let m = seen[&w];
                        if m < floor[i] {
                            return Err(format!("reader {r}: writer {w} step {} was acknowledged before the query, which shows step {m}", floor[i]));
                        }
                        if m < last[w] {
                            return Err(format!("reader {r}: writer {w} went back from step {} to {m}", last[w]));
                        }
                        last[w] = m;
                    }
                }
                Ok(n)
            })
        })
        .collect();

    let mut failures = Vec::new();
    let mut steps = vec![0i64; WRITERS];
    for (w, h) in writers.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(n)) => steps[w] = n,
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("writer {w} panicked")),
        }
    }
    done.store(true, Ordering::SeqCst);
    let mut queries = 0;
    for (r, h) in readers.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(n)) => queries += n,
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("reader {r} panicked")),
        }
    }
    assert!(
        failures.is_empty(),
        "racing failures:\n{}",
        failures.join("\n")
    );
    assert!(
        queries >= READERS && steps.iter().all(|&n| n > 0),
        "no race: {queries} queries, steps {steps:?}"
    );

    // Afterwards: every step's records, in order, in the document it went to.
    for (w, &n) in steps.iter().enumerate() {
        let v = setup.ok(
            "qry",
            json!({"col": COL, "ts": at, "doc": format!("/^w{w}-/")}),
        );
        assert_eq!(check_view(&v, &[w]).unwrap()[&w], n, "writer {w}");
        for j in 0..DOCS {
            let v = setup.ok(
                "qdoc",
                json!({"col": COL, "doc": doc(w, j), "to": i64::MAX}),
            );
            let mut want = vec![json!({"ts": 1, "data": marker(w, 0)})];
            for k in (1..=n).filter(|k| *k as usize % DOCS == j) {
                if k % 7 == 0 {
                    want.push(json!({"ts": 2 * k, "data": format!("{}:a", marker(w, k))}));
                }
                want.push(json!({"ts": 2 * k + 1, "data": marker(w, k)}));
            }
            if under_top {
                want.push(json!({"ts": TOP, "data": "top"}));
            }
            assert_eq!(v, json!({"records": want}), "{}", doc(w, j));
        }
    }
    eprintln!(
        "racing: {} steps, {queries} queries",
        steps.iter().sum::<i64>()
    );
}

#[test]
fn readers_racing_appends_see_one_point_of_the_apply_order() {
    race(&Server::start(&[]), false);
}

#[test]
fn readers_racing_inserts_under_a_top_record_see_one_point_of_the_apply_order() {
    race(&Server::start(&[]), true);
}

#[test]
fn readers_racing_logged_inserts_under_a_top_record_see_one_point_of_the_apply_order() {
    race(&Server::with_data_dir(), true);
}

#[test]
fn readers_racing_logged_appends_see_one_point_of_the_apply_order() {
    race(&Server::with_data_dir(), false);
}

#[test]
fn the_view_check_detects_torn_and_out_of_order_views() {
    // Writer 0 after step 8 (documents 0..5 hold steps 6, 7, 8, 3, 4, 5).
    let view = |steps: [i64; DOCS], last_half: bool| {
        let mut recs = serde_json::Map::new();
        for (j, &k) in steps.iter().enumerate() {
            let rec = if k == 0 {
                json!({"ts": 1, "data": marker(0, 0)})
            } else if last_half && j == 2 {
                json!({"ts": 2 * k, "data": format!("{}:a", marker(0, k))})
            } else {
                json!({"ts": 2 * k + 1, "data": marker(0, k)})
            };
            recs.insert(doc(0, j), rec);
        }
        json!({ "records": Value::Object(recs) })
    };
    assert_eq!(
        check_view(&view([6, 7, 8, 3, 4, 5], false), &[0]).unwrap()[&0],
        8
    );
    assert_eq!(
        check_view(&view([0, 1, 2, 0, 0, 0], false), &[0]).unwrap()[&0],
        2
    );
    // Step 8 is visible but step 5 (document 5) is not: out of order.
    let err = check_view(&view([6, 7, 8, 3, 4, 0], false), &[0]).unwrap_err();
    assert!(err.contains("out of order"), "{err}");
    // Half of a two-record batch as the newest record.
    let err = check_view(&view([6, 7, 14, 3, 4, 5], true), &[0]).unwrap_err();
    assert!(err.contains("half a batch"), "{err}");
    // A document missing.
    let mut missing = view([6, 7, 8, 3, 4, 5], false);
    missing["records"]
        .as_object_mut()
        .unwrap()
        .remove(&doc(0, 1));
    assert!(check_view(&missing, &[0]).is_err());
}
