//! Appends racing a checkpoint. Appends to an existing document only read-lock the
//! collection, so they go on while a checkpoint copies it; the collection's changed mark must
//! be cleared before the copy (an append made during it marks it again), or the next checkpoint
//! takes the collection for saved and removes the log segment that holds that append. Checked
//! over a real file system with checkpoints every millisecond under a stream of appends: once the
//! segment the last append went to has been removed, a restart must still hold every append.

use super::{config, master, start};
use crate::common::{wait_until, Client, TempDir};
use fluxiondb::storage;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DOCS: usize = 40;

/// The numbers of the log segments in `dir`.
fn segments(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .expect("data folder")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?.to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .collect()
}

fn count(c: &mut Client, doc: usize) -> usize {
    let v = c.ok(
        "qdoc",
        json!({"col":"c","doc":format!("d{doc}"),"from":0,"to":i64::MAX}),
    );
    v["records"].as_array().map_or(0, Vec::len)
}

#[test]
fn appends_made_while_a_checkpoint_copies_the_collection_stay_in_the_log_until_saved() {
    for trial in 0..3 {
        let tmp = TempDir::new();
        let mut cfg = config(tmp.data(), "everysec");
        cfg.flush_interval = Duration::from_millis(1);
        let server = start(cfg, storage::real());
        let mut c = master(&server);
        // Enough records that copying the collection takes a while.
        let mut acked = vec![0usize; DOCS];
        for (doc, n) in acked.iter_mut().enumerate() {
            let batch: Vec<Value> = (1..=500)
                .map(
                    |ts| json!({"col":"c","doc":format!("d{doc}"),"ts":ts,"data":format!("v{ts}")}),
                )
                .collect();
            c.ok("ins", Value::Array(batch));
            *n = 500;
        }
        // A stream of single appends to the document copied first, for a moment: while a
        // copy runs, an append is one it has passed already.
        let until = Instant::now() + Duration::from_millis(300);
        let mut i = 0;
        while Instant::now() < until && i < 100_000 {
            let doc = 0;
            let ts = acked[doc] + 1;
            c.ok(
                "ins",
                json!([{"col":"c","doc":format!("d{doc}"),"ts":ts,"data":"late"}]),
            );
            acked[doc] += 1;
            i += 1;
        }
        let last = segments(tmp.data())
            .into_iter()
            .max()
            .expect("a log segment");
        // One more write, into segment `last` or a later one: a segment that a rotation had
        // just started, and that took no write, would stay the current one for good. To
        // another collection: one more append to `c` would mark it changed again, and its next
        // snapshot would hide an append an earlier one missed.
        c.ok(
            "ins",
            json!([{"col":"other","doc":"d","ts":1,"data":"last"}]),
        );
        assert!(
            wait_until(Duration::from_secs(20), || segments(tmp.data())
                .iter()
                .all(|&s| s > last)),
            "trial {trial}: the checkpoints never moved past segment {last}"
        );
        drop(c);
        server.shutdown();
        server.join();
        let server = start(config(tmp.data(), "everysec"), storage::real());
        let mut c = master(&server);
        for (doc, &n) in acked.iter().enumerate() {
            assert_eq!(count(&mut c, doc), n, "trial {trial}: document d{doc}");
        }
        server.shutdown();
        server.join();
    }
}
