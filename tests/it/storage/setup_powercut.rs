//! A folder built from the bucket under a power cut: a replica's first setup and
//! `fluxiondb restore`, on the page-cache model, cut at every operation. A primary (the binary)
//! writes a `file://` bucket holding a restore point and segments after it; the data folder is
//! on the model, the bucket on the real disk.
//!
//! - A replica's first setup (`--replica-of`, started in-process; into an absent folder, an
//!   empty one and an empty mount point, filled from inside): after power-on the folder is
//!   either not a replica's copy yet (no `replica.json`; absent, or holding nothing but its
//!   `LOCK`) or a whole copy; the next start succeeds either way (redoing the setup from scratch,
//!   or restarting from the copy) and serves every record the bucket holds, and no staging
//!   folder is left beside it.
//! - `fluxiondb restore` (the library function the binary calls), into an absent folder and into
//!   an empty one, or into a mount point: after power-on the target is as it was (absent, or empty with its
//!   permissions), or whole: a server started on it serves every record, and it has the
//!   permissions of the folder it replaced. A restore that returned is durable: the power cut
//!   right after it leaves the target whole.

use super::{config, master, start};
use crate::backup::{now_ms, primary_without_checkpoints, Bucket};
use crate::common::{in_process_config, Client};
use fluxiondb::storage::{Backend, PageCache, PowerCut};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PARENT: &str = "/srv/fluxiondb";

/// Records by (collection, document): their timestamps, in order.
type Held = BTreeMap<(String, String), Vec<i64>>;

fn insert(c: &mut Client, col: &str, from: i64, n: i64) {
    let recs: Vec<Value> = (from..from + n)
        .map(|ts| json!({"col": col, "doc": "d", "ts": ts, "data": format!("v{ts}")}))
        .collect();
    c.ok("ins", Value::Array(recs));
}

/// A bucket whose newest restore point holds collections `a` and `b` and whose segments after
/// it hold more of `a` and all of `c`; what a whole copy of it serves.
fn backed_up() -> (Bucket, Held) {
    let bucket = Bucket::new();
    let mut server = primary_without_checkpoints(&bucket);
    let mut c = server.master();
    insert(&mut c, "a", 1, 40);
    insert(&mut c, "b", 1, 30);
    drop(c);
    // A clean stop uploads a restore point of the final state.
    assert!(server.sigterm().success());
    let points = bucket.objects("points");
    server.start_again();
    let mut c = server.master();
    let since = now_ms();
    insert(&mut c, "a", 41, 20);
    insert(&mut c, "c", 1, 25);
    bucket.wait_uploaded(since, &server);
    // Killed: no restore point of these; they are only in segments after the point.
    server.kill9();
    assert_eq!(bucket.objects("points"), points);
    let mut expected = Held::new();
    for (col, n) in [("a", 60), ("b", 30), ("c", 25)] {
        expected.insert((col.into(), "d".into()), (1..=n).collect());
    }
    (bucket, expected)
}

/// What a server on the folder serves.
fn held(c: &mut Client) -> Held {
    let mut out = Held::new();
    for col in ["a", "b", "c"] {
        let v = c.ok("qdoc", json!({"col": col, "doc": "d", "to": 1_000_000}));
        let ts: Vec<i64> = v["records"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["ts"].as_i64().unwrap())
            .collect();
        if !ts.is_empty() {
            out.insert((col.into(), "d".into()), ts);
        }
    }
    out
}

fn replica_config(dir: &Path, bucket: &Bucket) -> fluxiondb::Config {
    let (d, loc) = (dir.to_str().unwrap(), bucket.location());
    let flags = [
        "--data",
        d,
        "--replica-of",
        &loc,
        "--poll-interval",
        "50ms",
        "--flush-interval",
        "3600",
    ];
    in_process_config(&flags)
}

/// What the folder to fill is before: absent, an empty folder (0750), or an empty mount point
/// (0750; filled from inside, its entries moved up one by one).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Absent,
    Empty,
    Mount,
}

/// A model disk with `PARENT` durable and `dir` as `target` says.
fn disk(dir: &Path, target: Target) -> PageCache {
    let disk = PageCache::new();
    disk.mkdirs(Path::new(PARENT), true);
    if target != Target::Absent {
        disk.mkdirs(dir, true);
        disk.set_permissions(dir, 0o750).unwrap();
        disk.sync_dir(dir).unwrap();
    }
    if target == Target::Mount {
        disk.mount(dir);
    }
    disk
}

#[test]
fn a_replicas_first_setup_cut_at_any_operation_is_redone_or_whole() {
    let (bucket, expected) = backed_up();
    let dir = PathBuf::from(PARENT).join("replica");
    for target in [Target::Absent, Target::Empty, Target::Mount] {
        let (mut redone, mut whole) = (0, 0);
        for k in 1.. {
            let disk = disk(&dir, target);
            disk.arm(PowerCut::at(k, k * 7919));
            let started = fluxiondb::start(replica_config(&dir, &bucket), Arc::new(disk.clone()));
            // Past the setup and the recovery when the server started before the cut fell.
            disk.disarm();
            let cut = disk.is_cut();
            match started {
                Ok(running) => {
                    running.shutdown();
                    running.join();
                }
                Err(e) => assert!(
                    cut,
                    "k {k} ({target:?}): the start failed without a power cut: {e}"
                ),
            }
            if !cut {
                assert!(
                    redone > 0 && whole > 0,
                    "{redone} cuts left no copy, {whole} a whole one: not both outcomes"
                );
                eprintln!("replica setup ({target:?}): {k} trials, {redone} redone, {whole} whole");
                break;
            }
            disk.power_on();

            let report = disk.cut_report();
            let names = disk.list(&dir);
            let copy = names.iter().any(|n| n == "replica.json");
            if copy {
                whole += 1;
            } else {
                // Its lock file, and a staging folder inside it that the next start removes.
                assert!(
                    names.iter().all(|n| n == "LOCK" || n.starts_with(".replica-")),
                    "k {k} ({target:?}): no replica.json, but the folder holds {names:?}: the next start would refuse it\n  {report}"
                );
                redone += 1;
            }
            let server = fluxiondb::start(replica_config(&dir, &bucket), Arc::new(disk.clone()))
                .unwrap_or_else(|e| {
                    panic!(
                        "k {k} ({target:?}, copy: {copy}): the next start failed: {e}\n  {report}"
                    )
                });
            let got = held(&mut master(&server));
            assert_eq!(
                got, expected,
                "k {k} ({target:?}, copy: {copy}): the replica does not serve every record\n  {report}"
            );
            server.shutdown();
            server.join();
            assert_eq!(
                disk.list(Path::new(PARENT)),
                ["replica"],
                "k {k} ({target:?}): a staging folder is left beside the replica\n  {report}"
            );
        }
    }
}

#[test]
fn a_restore_cut_at_any_operation_leaves_the_target_as_it_was_or_whole() {
    restore_cut_at_any_operation(&[Target::Absent, Target::Empty]);
}

/// KNOWN DEFECT, not fixed yet: into a mount point (or the working directory) the restore is
/// written in `TARGET/.restore-PID` and its entries moved up one by one. The staging folder's
/// name is durable from the moment the staged folder is loaded (its lock's `create_dir_durable`
/// fsyncs the target), so a power cut before the last move (as a `kill -9` at any point) leaves
/// the target holding `.restore-PID`, with or without some entries moved up: a server started
/// there serves no records (or some), without a word, and `fluxiondb restore` refuses the
/// folder as not empty. Fails with `the target holds [".restore-PID"] but not every record`.
#[test]
fn a_restore_into_a_mount_point_cut_at_any_operation_leaves_it_as_it_was_or_whole() {
    restore_cut_at_any_operation(&[Target::Mount]);
}

fn restore_cut_at_any_operation(targets: &[Target]) {
    let (bucket, expected) = backed_up();
    let target = PathBuf::from(PARENT).join("restored");
    let args = fluxiondb::restore::Args {
        from: bucket.location(),
        data: target.clone(),
        at: None,
    };
    for &before_restore in targets {
        let exists = before_restore != Target::Absent;
        let (mut before, mut whole, mut unfinished) = (0, 0, 0);
        for k in 1.. {
            let disk = disk(&target, before_restore);
            disk.arm(PowerCut::at(k, k * 7919));
            let restored = fluxiondb::restore::restore(Arc::new(disk.clone()), &args);
            disk.disarm();
            let cut = disk.is_cut();
            if let Err(e) = &restored {
                assert!(
                    cut,
                    "k {k} ({before_restore:?}): the restore failed without a power cut: {e}"
                );
            }
            if !cut {
                // A restore that said it was done is durable: the power fails right after.
                disk.cut_now(k * 7919);
            }
            disk.power_on();

            let report = disk.cut_report();
            let present = disk.exists(&target).unwrap();
            let names = disk.list(&target);
            if names.is_empty() {
                assert!(
                    cut,
                    "k {k} ({before_restore:?}): the restore succeeded, but after a power cut the target is empty\n  {report}"
                );
                assert_eq!(
                    present,
                    exists,
                    "k {k} ({before_restore:?}): the target was {}, and is {} now\n  {report}",
                    if exists { "an empty folder" } else { "absent" },
                    if present { "an empty folder" } else { "absent" }
                );
                if exists {
                    assert_eq!(
                        disk.metadata(&target).unwrap().mode,
                        0o750,
                        "k {k} ({before_restore:?})"
                    );
                }
                before += 1;
            } else {
                if names.iter().any(|n| n.starts_with(".restore-")) {
                    // Cut while moving its files up into a mount point: the folder holds part
                    // of a copy. A server refuses it, and the same restore run again clears it
                    // and restores it whole.
                    let refused =
                        fluxiondb::start(config(&target, "always"), Arc::new(disk.clone()));
                    let e = refused.err().map(|e| e.to_string()).unwrap_or_default();
                    assert!(
                        e.contains("the staging folder of an unfinished `fluxiondb restore`"),
                        "k {k} ({before_restore:?}): a server started on {names:?}: {e}\n  {report}"
                    );
                    let again = fluxiondb::restore::restore(Arc::new(disk.clone()), &args)
                        .unwrap_or_else(|e| panic!("k {k}: the restore run again: {e}"));
                    assert!(
                        again.starts_with("an unfinished earlier restore was removed first; "),
                        "{again}"
                    );
                    unfinished += 1;
                }
                let names = disk.list(&target);
                let server = start(config(&target, "always"), Arc::new(disk.clone()));
                let got = held(&mut master(&server));
                server.shutdown();
                server.join();
                assert_eq!(
                    got, expected,
                    "k {k} ({before_restore:?}): the target holds {names:?} but not every record\n  {report}"
                );
                let mode = disk.metadata(&target).unwrap().mode;
                let wanted = if exists { 0o750 } else { 0o700 };
                assert_eq!(
                    mode, wanted,
                    "k {k} ({before_restore:?}): the target's permissions\n  {report}"
                );
                whole += 1;
            }
            if !cut {
                assert!(
                    before > 0 && whole > 0,
                    "{before} cuts left the target as it was, {whole} whole: not both outcomes"
                );
                eprintln!(
                    "restore ({before_restore:?}): {k} trials, {before} as before, {whole} whole ({unfinished} of them after a second run over an unfinished one)"
                );
                break;
            }
        }
    }
}
