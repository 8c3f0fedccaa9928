//! Damaged data folders (issue 3): a torn log tail is dropped with a warning; a damaged snapshot,
//! key file or log entry stops start-up naming the file; `--repair` loads what is intact and moves
//! the damaged file aside.

use crate::common::{refused_start, Server};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};

fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}

/// The timestamps of document `d` of collection `s`, oldest first.
fn stamps(server: &Server) -> Vec<i64> {
    let got = server
        .master()
        .ok("qdoc", json!({"col":"s","doc":"d","to":100}));
    got["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ts"].as_i64().unwrap())
        .collect()
}

fn flip_byte(path: &Path, at_from_end: usize) {
    let mut bytes = fs::read(path).unwrap();
    let i = bytes.len() - at_from_end;
    bytes[i] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

/// A server with two collections in snapshots (clean shutdown), stopped.
fn two_snapshotted_collections() -> Server {
    let mut server = Server::with_data_dir_args(&["--fsync", "always"]);
    let mut c = server.master();
    c.ok("ins", json!([{"col":"a","doc":"d","ts":1,"data":"a-data"}]));
    c.ok("ins", json!([{"col":"b","doc":"d","ts":1,"data":"b-data"}]));
    c.ok(
        "keys",
        json!({"action":"add","key":"ro-key","scope":"readonly"}),
    );
    server.sigterm();
    server
}

#[test]
fn a_torn_log_tail_is_dropped_with_a_warning() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always", "-f", "3600"]);
    let mut c = server.master();
    for ts in 1..=5 {
        c.ok(
            "ins",
            json!([{"col":"s","doc":"d","ts":ts,"data":format!("v{ts}")}]),
        );
    }
    server.kill9();
    let dir = server.data_dir().unwrap().to_path_buf();
    let wal = files_with_prefix(&dir, "wal-")
        .pop()
        .expect("a log segment");
    let len = fs::metadata(&wal).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    server.start_again();
    let ts = stamps(&server);
    assert_eq!(ts, vec![1, 2, 3, 4], "only the torn last entry may be lost");
    assert!(
        server
            .stderr_tail()
            .contains("dropping an incomplete entry"),
        "no warning: {}",
        server.stderr_tail()
    );
    // The trimmed log is healthy from now on: a further restart is clean.
    server.restart();
    assert_eq!(stamps(&server).len(), 4);
}

#[test]
fn a_damaged_snapshot_stops_startup_and_repair_loads_the_rest() {
    let mut server = two_snapshotted_collections();
    let dir = server.data_dir().unwrap().to_path_buf();
    let snaps = files_with_prefix(&dir, "snap-");
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    flip_byte(&snaps[0], 3);
    let err = refused_start(&dir, &[]);
    let name = snaps[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name), "the message must name {name}: {err}");
    assert!(
        err.contains("--repair"),
        "the message should point at --repair: {err}"
    );
    // --repair: loads the intact collection and the keys, moves the damaged file aside.
    server.start_again_with(&["--repair"]);
    let mut c = server.master();
    let cols = c.ok("cols", json!({}));
    assert_eq!(
        cols["collections"].as_array().map(Vec::len),
        Some(1),
        "{cols}"
    );
    server.open("ro-key", None).ok("cols", json!({}));
    assert!(dir.join(format!("{name}.corrupt")).exists());
}

#[test]
fn a_damaged_log_entry_in_the_middle_stops_startup() {
    let mut server = Server::with_data_dir_args(&["--fsync", "always", "-f", "3600"]);
    let mut c = server.master();
    for ts in 1..=3 {
        c.ok(
            "ins",
            json!([{"col":"s","doc":"d","ts":ts,"data":"x".repeat(100)}]),
        );
    }
    server.kill9();
    let dir = server.data_dir().unwrap().to_path_buf();
    let wal = files_with_prefix(&dir, "wal-").pop().unwrap();
    let len = fs::metadata(&wal).unwrap().len() as usize;
    flip_byte(&wal, len / 2);
    let err = refused_start(&dir, &[]);
    assert!(
        err.contains(&*wal.file_name().unwrap().to_string_lossy()),
        "{err}"
    );
    server.start_again_with(&["--repair"]);
    // The damaged entry's length is intact: `--repair` skips just that entry.
    let ts = stamps(&server);
    assert_eq!(
        ts,
        [1, 3],
        "the entries before and after the damaged one load: {ts:?}"
    );
}

#[test]
fn a_damaged_key_file_stops_startup() {
    let server = two_snapshotted_collections();
    let dir = server.data_dir().unwrap().to_path_buf();
    flip_byte(&dir.join("keys.bin"), 1);
    let err = refused_start(&dir, &[]);
    assert!(err.contains("keys.bin"), "{err}");
}
