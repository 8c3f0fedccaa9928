//! Crash tests (issue 3): writers run against a persistent server that is killed with SIGKILL at
//! seeded random moments — some of them while a snapshot is being written — and restarted on the
//! same folder. Every acknowledged insert, delete and key/value change must hold afterwards.
//!
//! Each writer owns its documents and keys and keeps one request in flight, so for every point
//! the expected value is the one its last acknowledged request left, or — when the request in
//! flight at the kill touched it — possibly that request's.

use crate::common::{Client, Frame, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Seeded, so a failing trial can be replayed by its seed.
use fastrand::Rng;

/// A point of the data: a record `(doc, ts)` or a key/value key. `None` = absent.
type Points = BTreeMap<(String, i64), Option<String>>;

#[derive(Default)]
struct Outcome {
    /// The state after every acknowledged request.
    acked: Points,
    /// Points the unacknowledged request in flight at the kill would have set.
    in_flight: Points,
}

/// One writer: random inserts, record deletes, range deletes, kv sets and removes on its own
/// documents (`w<n>-<k>`) and keys, until the connection dies.
fn writer(port: u16, w: usize, trial: usize, seed: u64, stop: Arc<AtomicBool>) -> Outcome {
    let mut rng = Rng::with_seed(seed);
    let mut out = Outcome::default();
    let Ok(mut c) = Client::connect(port, "/?api-key=master-key") else {
        return out;
    };
    if !matches!(c.next_frame(), Frame::Text(_)) {
        return out;
    }
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let doc = format!("w{w}-{}", rng.u64(..4));
        let ts = 1 + rng.u64(..40) as i64;
        let mut effect: Points = BTreeMap::new();
        let (ty, data) = match rng.u64(..10) {
            0..=4 => {
                let batch = 1 + rng.u64(..5);
                let recs: Vec<Value> = (0..batch)
                    .map(|i| {
                        let t = ts + i as i64;
                        let v = format!("{trial}:{w}:{n}:{i}");
                        effect.insert((doc.clone(), t), Some(v.clone()));
                        json!({"col":"crash","doc":doc,"ts":t,"data":v})
                    })
                    .collect();
                ("ins", Value::Array(recs))
            }
            5 => {
                effect.insert((doc.clone(), ts), None);
                ("drec", json!({"col":"crash","doc":doc,"ts":ts}))
            }
            6 => {
                let to = ts + rng.u64(..6) as i64;
                for t in ts..=to {
                    effect.insert((doc.clone(), t), None);
                }
                (
                    "drrng",
                    json!({"col":"crash","doc":doc,"fromTs":ts,"toTs":to}),
                )
            }
            7 | 8 => {
                let key = format!("kv:w{w}-{}", rng.u64(..4));
                let v = format!("{trial}:{w}:{n}");
                effect.insert((key.clone(), 0), Some(v.clone()));
                ("sval", json!({"col":"crash","key":key,"value":v}))
            }
            _ => {
                let key = format!("kv:w{w}-{}", rng.u64(..4));
                effect.insert((key.clone(), 0), None);
                ("rval", json!({"col":"crash","key":key}))
            }
        };
        let frame = json!({"id": n.to_string(), "type": ty, "data": data.to_string()}).to_string();
        if c.try_send_text(&frame).is_err() {
            out.in_flight = effect;
            return out;
        }
        match c.next_frame() {
            Frame::Text(t) => {
                let v: Value = serde_json::from_str(&t).expect("json answer");
                assert!(v.get("error").is_none(), "request failed: {frame} -> {t}");
                out.acked.extend(effect);
            }
            _ => {
                out.in_flight = effect;
                return out;
            }
        }
    }
    out
}

/// Reads the whole state of collection `crash` as points.
fn read_state(c: &mut Client, writers: usize) -> Points {
    let mut points = Points::new();
    for w in 0..writers {
        for k in 0..4 {
            let doc = format!("w{w}-{k}");
            let got = c.ok("qdoc", json!({"col":"crash","doc":doc,"to":1000}));
            for r in got["records"].as_array().expect("records") {
                points.insert(
                    (doc.clone(), r["ts"].as_i64().expect("ts")),
                    Some(r["data"].as_str().expect("data").to_string()),
                );
            }
        }
    }
    let values = c.ok("gvals", json!({"col":"crash"}));
    for (k, v) in values["values"].as_object().expect("values") {
        points.insert((k.clone(), 0), Some(v.as_str().expect("value").to_string()));
    }
    points
}

/// Checks every point against `before` (the state verified after the previous trial) updated by
/// this trial's acknowledged requests, allowing the in-flight request either way.
fn check(seed: u64, trial: usize, before: &Points, outcomes: &[Outcome], actual: &Points) {
    let mut all_points: Vec<&(String, i64)> = actual.keys().chain(before.keys()).collect();
    for o in outcomes {
        all_points.extend(o.acked.keys());
        all_points.extend(o.in_flight.keys());
    }
    all_points.sort();
    all_points.dedup();
    for p in all_points {
        let got = actual.get(p).cloned().flatten();
        let acked = match outcomes.iter().find_map(|o| o.acked.get(p)) {
            Some(v) => v.clone(),
            None => before.get(p).cloned().flatten(),
        };
        let maybe = outcomes.iter().find_map(|o| o.in_flight.get(p)).cloned();
        let ok = got == acked || maybe.as_ref().is_some_and(|m| *m == got);
        assert!(ok, "seed {seed} trial {trial}: point {p:?} is {got:?}, acknowledged {acked:?}, in flight {maybe:?}");
    }
}

/// Runs writers, kills the server (after a random delay, or as soon as a snapshot is being
/// written), restarts it, and checks every acknowledged change. Returns the acknowledged count.
fn trial(
    server: &mut Server,
    seed: u64,
    trial: usize,
    during_snapshot: bool,
    state: &mut Points,
) -> (usize, bool) {
    const WRITERS: usize = 3;
    let mut rng = Rng::with_seed(seed ^ (trial as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (port, stop, s) = (server.port, stop.clone(), rng.u64(..));
            thread::spawn(move || writer(port, w, trial, s, stop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_millis(100 + rng.u64(..400));
    let dir = server.data_dir().expect("data dir").to_path_buf();
    let mut hit_snapshot = false;
    loop {
        let now = Instant::now();
        if during_snapshot {
            let writing = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
                })
                .unwrap_or(false);
            if writing || now > deadline + Duration::from_secs(3) {
                hit_snapshot = writing;
                break;
            }
            thread::sleep(Duration::from_micros(200));
        } else if now >= deadline {
            break;
        } else {
            thread::sleep(deadline - now);
        }
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<Outcome> = handles
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect();
    server.start_again();
    let actual = read_state(&mut server.master(), WRITERS);
    check(seed, trial, state, &outcomes, &actual);
    *state = actual;
    (outcomes.iter().map(|o| o.acked.len()).sum(), hit_snapshot)
}

fn run_trials(policy: &str, seed: u64, trials: usize, during_snapshot: bool) {
    let mut server = Server::with_data_dir_args(&["--fsync", policy, "-f", "1"]);
    // Ballast so that snapshots take a moment and kills land inside them.
    let mut c = server.master();
    for b in 0..20 {
        let recs: Vec<Value> = (0..500).map(|i| json!({"col":"crash","doc":format!("ballast-{b}"),"ts":i + 1,"data":"x".repeat(64)})).collect();
        c.ok("ins", Value::Array(recs));
    }
    drop(c);
    let mut acked = 0;
    let mut in_snapshot = 0;
    let mut state = Points::new();
    for t in 0..trials {
        let (n, hit) = trial(&mut server, seed, t, during_snapshot, &mut state);
        acked += n;
        in_snapshot += hit as usize;
    }
    assert!(acked > 0, "no request was acknowledged in {trials} trials");
    if during_snapshot {
        assert!(
            in_snapshot > 0,
            "no kill landed while a snapshot was being written"
        );
    }
    let mut c = server.master();
    let ballast = c.ok("qdoc", json!({"col":"crash","doc":"ballast-19","to":1000}));
    assert_eq!(
        ballast["records"].as_array().map(Vec::len),
        Some(500),
        "ballast lost"
    );
}

#[test]
fn kill9_at_random_moments_loses_nothing_acknowledged_fsync_always() {
    run_trials("always", 0x5EED_0001, 6, false);
}

#[test]
fn kill9_at_random_moments_loses_nothing_acknowledged_fsync_everysec() {
    run_trials("everysec", 0x5EED_0002, 6, false);
}

#[test]
fn kill9_at_random_moments_loses_nothing_acknowledged_fsync_never() {
    run_trials("never", 0x5EED_0003, 6, false);
}

#[test]
fn kill9_during_a_snapshot_loses_nothing_acknowledged() {
    run_trials("everysec", 0x5EED_0004, 5, true);
}
