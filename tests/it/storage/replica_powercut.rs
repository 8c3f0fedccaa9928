//! A replica's `replica.json` never runs ahead of its durable log: a primary (the binary) backs
//! up to a `file://` bucket while a writer inserts records into it; a replica runs in this
//! process over the page-cache model with `--fsync never` (its log is fsynced only when it
//! saves its state), and the power is cut at the k-th operation on `replica.json` — inside or
//! between the follower's state saves. After power-on, the segment `replica.json` names as the
//! next to apply is read, and a plain server recovers the replica's folder: every record the
//! primary acknowledged before the newest write of a segment below that one must be there
//! (the follower will never fetch those segments again). Without the log fsync before the
//! state file is saved (`Follower::save_state`), a cut after a save loses applied entries the
//! state file counts.

use super::{config, master, start};
use crate::backup::{now_ms, primary, Bucket, WAIT};
use crate::common::{in_process_config, wait_until, Client, MASTER};
use fluxiondb::storage::{Backend, OpenMode, PageCache, PowerCut};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const REPLICA: &str = "/srv/fluxiondb/replica";

/// Operations on `replica.json` when the replica starts: two reads of it (the setup's and the
/// follower's), an open and two reads each. Cuts from the next one on fall in the follower.
const AT_START: u64 = 6;
/// One state save: open, write, fsync of `replica.json.tmp`, the rename to `replica.json`.
const PER_SAVE: u64 = 4;

#[test]
fn a_replicas_state_never_runs_ahead_of_its_durable_log_after_a_power_cut() {
    let bucket = Bucket::new();
    let p = primary(&bucket, &[]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    // Nothing written yet: the replica starts from the segment the manifest names next, with
    // an empty store (what a first setup would have loaded).
    let first = bucket.manifest().unwrap()["next_segment"].as_u64().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // (ts, acknowledged at ms)
    let acked = Arc::new(Mutex::new(Vec::<(i64, i64)>::new()));
    let writer = {
        let (stop, acked, port) = (stop.clone(), acked.clone(), p.port);
        thread::spawn(move || {
            let mut c = Client::open(port, MASTER, None);
            let mut ts = 0;
            while !stop.load(Ordering::Relaxed) {
                ts += 1;
                let rec = json!([{"col":"c","doc":"d","ts":ts,"data":format!("v{ts}")}]);
                c.ok("ins", rec);
                acked.lock().unwrap().push((ts, now_ms()));
                thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let location = bucket.location();
    let mut trials = 0;
    for k in AT_START + 1..=AT_START + 3 * PER_SAVE {
        let disk = PageCache::new();
        let dir = Path::new(REPLICA);
        disk.mkdirs(dir, true);
        let state = disk
            .open(&dir.join("replica.json"), OpenMode::Truncate)
            .unwrap();
        state
            .write_all(json!({"next_segment": first}).to_string().as_bytes())
            .unwrap();
        state.sync_all().unwrap();
        drop(state);
        disk.arm(PowerCut::at(k, k * 7919).named("replica.json"));
        let flags = [
            "--data",
            REPLICA,
            "--replica-of",
            &location,
            "--poll-interval",
            "20ms",
            "--fsync",
            "never",
            "--flush-interval",
            "3600",
        ];
        let replica = start(in_process_config(&flags), Arc::new(disk.clone()));
        assert!(disk.wait_cut(WAIT), "k {k}: the replica never got that far");
        replica.shutdown();
        replica.join();
        disk.power_on();

        let saved: Value =
            serde_json::from_slice(&disk.read(&dir.join("replica.json")).unwrap()).unwrap();
        let next = saved["next_segment"].as_u64().unwrap();
        let counted = bucket.newest_write_below(next);
        let server = start(config(dir, "always"), Arc::new(disk.clone()));
        let mut c = master(&server);
        let v = c.ok("qdoc", json!({"col":"c","doc":"d","to":1_000_000_000}));
        let held: BTreeSet<i64> = v["records"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["ts"].as_i64().unwrap())
            .collect();
        let missing: Vec<i64> = acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(ts, at)| *at < counted && !held.contains(ts))
            .map(|(ts, _)| *ts)
            .collect();
        assert!(
            missing.is_empty(),
            "cut at replica.json operation {k}: replica.json says segment {next} is next (segments from {first} applied, the newest write in them at {counted}), but the replica's log lost records {missing:?} (it holds {} records)\n  {}",
            held.len(),
            disk.cut_report()
        );
        server.shutdown();
        server.join();
        if next > first {
            trials += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        trials >= 2 * PER_SAVE as usize,
        "only {trials} cuts fell after a state save"
    );
}
