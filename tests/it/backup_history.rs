//! The backup's history stays one history: a restore gives a state that existed, whatever
//! moment the primary died at, and a primary never adds to the bucket a history that forks
//! from the one it holds. Real servers (the binary), a real `file://` bucket.

use crate::backup::{
    expected, http_get, metric, now_ms, primary, primary_in, records, restore, serve, Bucket, WAIT,
};
use crate::backup_replica::{promote, replica_checkpointing};
use crate::common::{wait_until, TempDir};
use serde_json::{json, Value};
use std::path::Path;

fn insert(c: &mut crate::common::Client, from: i64, n: i64) {
    crate::backup::insert(c, "m", "t", from, n);
}

/// Inserts `rounds` batches of 10 records from `from` on, each waited for in a segment of its
/// own in the bucket.
fn insert_uploaded(c: &mut crate::common::Client, bucket: &Bucket, from: i64, rounds: i64) {
    for round in 0..rounds {
        let before = next_segment(bucket);
        insert(c, from + round * 10, 10);
        assert!(
            wait_until(WAIT, || next_segment(bucket) > before),
            "the bucket's log did not move on: {:?}",
            bucket.manifest()
        );
    }
}

/// The bucket's restore points, oldest first, as uploaded.
fn points(bucket: &Bucket) -> Vec<Value> {
    let mut out: Vec<Value> = bucket
        .objects("points")
        .iter()
        .filter_map(|name| {
            let bytes = std::fs::read(bucket.path().join("points").join(name)).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
        .collect();
    out.sort_by_key(|p| p["time_ms"].as_i64());
    out
}

fn next_segment(bucket: &Bucket) -> u64 {
    bucket
        .manifest()
        .and_then(|m| m["next_segment"].as_u64())
        .unwrap_or(0)
}

/// Waits until the bucket holds more than `count` restore points and the manifest lists every
/// segment the newest needs; returns that point.
fn wait_whole_point_past(bucket: &Bucket, count: usize) -> Value {
    let mut newest = Value::Null;
    let whole = wait_until(WAIT, || {
        let all = points(bucket);
        let Some(p) = all.last().filter(|_| all.len() > count) else {
            return false;
        };
        newest = p.clone();
        p["last_segment"]
            .as_u64()
            .is_some_and(|last| last < next_segment(bucket))
    });
    assert!(
        whole,
        "no whole restore point past {count}: {:?}, manifest {:?}",
        points(bucket),
        bucket.manifest()
    );
    newest
}

/// A primary that dies after uploading a restore point and before writing the manifest that
/// lists the segments the point needs: its snapshots were copied while writes went on, so
/// without those segments they are no state that ever existed (an audit restored states with
/// older acknowledged writes missing and newer ones present). The restore passes over that
/// point and takes the one before it, with the segments after it.
#[test]
fn a_point_whose_segments_the_manifest_does_not_list_is_passed_over() {
    let bucket = Bucket::new();
    let mut server = primary(&bucket, &[]);
    let mut c = server.master();
    insert(&mut c, 1, 10);
    let first = wait_whole_point_past(&bucket, 0);
    let count = points(&bucket).len();
    insert(&mut c, 11, 10);
    let second = wait_whole_point_past(&bucket, count);
    drop(c);
    server.kill9();

    // The bucket as that primary would have left it dying right after the upload of
    // `second`: the newest manifest without the segments from the point's last one on.
    let last = second["last_segment"].as_u64().unwrap();
    let manifest_dir = bucket.path().join("manifest");
    let newest = bucket.objects("manifest").pop().unwrap();
    let mut m = bucket.manifest().unwrap();
    m["next_segment"] = json!(last);
    std::fs::write(manifest_dir.join(newest), m.to_string()).unwrap();
    for name in bucket.objects("wal") {
        let seq = u64::from_str_radix(name.split('-').next().unwrap(), 16).unwrap();
        if seq >= last {
            std::fs::remove_file(bucket.path().join("wal").join(name)).unwrap();
        }
    }

    let target = TempDir::new();
    let (ok, out, err) = restore(&bucket, target.data(), None);
    assert!(ok, "restore failed: {err}");
    let from = first["first_segment"].as_u64().unwrap();
    assert!(
        out.contains(&format!("restore point of segment {from} (")),
        "the restore did not take the point before the unlisted one ({first} / {second}): {out}"
    );
    // A prefix of the writes: the first `ins` whole, the second whole or not at all (its
    // segment may be the point's last, which the manifest no longer lists).
    let got = records(&mut serve(target.data()).master(), "m", "t");
    assert!(
        got == expected(1, 11) || got == expected(1, 21),
        "not a state that existed: {got}"
    );
}

/// Copies the data folder `from` into the empty folder `to`, as a disk snapshot would keep it
/// (the server's lock file left out).
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (name, path) = (entry.file_name(), entry.path());
        if name == "LOCK" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir(to.join(&name)).unwrap();
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// A primary started again on an earlier copy of its own data folder (a VM or disk snapshot
/// put back): the bucket names it, so it used to resume, skip the writes that went into
/// segment numbers the bucket already had, and report itself caught up and ready while
/// everything it acknowledged stayed off the bucket (later ones forked the history). It is
/// now fenced at start, and the bucket keeps the history it had.
#[test]
fn a_primary_started_on_an_earlier_copy_of_its_folder_is_fenced() {
    let bucket = Bucket::new();
    let dir = TempDir::new();
    let mut server = primary_in(dir.data(), &bucket, "100ms");
    let mut c = server.master();
    insert(&mut c, 1, 10);
    bucket.wait_uploaded(now_ms() - 60_000, &server);
    drop(c);
    assert!(server.sigterm().success());
    let copy = TempDir::new();
    copy_tree(dir.data(), copy.data());

    // The original goes on, and the bucket's log moves past the copy's.
    let mut server = primary_in(dir.data(), &bucket, "100ms");
    let mut c = server.master();
    insert_uploaded(&mut c, &bucket, 11, 3);
    drop(c);
    assert!(server.sigterm().success());
    let version = bucket.objects("manifest").pop();

    let rolled_back = primary_in(copy.data(), &bucket, "100ms");
    assert!(
        wait_until(WAIT, || metric(rolled_back.port, "fluxiondb_backup_fenced")
            == Some(1.0)),
        "not fenced: {}",
        rolled_back.stderr_tail()
    );
    assert_eq!(
        http_get(rolled_back.port, "/readyz"),
        (
            503,
            format!(
                "fenced: the backup location {} holds a longer history than this data folder\n",
                bucket.location()
            )
        )
    );
    let mut rc = rolled_back.master();
    assert_eq!(
        rc.err("ins", json!([{"col":"m","doc":"t","ts":99,"data":"x"}])),
        "fenced: a newer primary took over; writes go to it"
    );
    assert_eq!(records(&mut rc, "m", "t"), expected(1, 11));
    let log = rolled_back.stderr_tail();
    for said in [
        "holds a longer history than this data folder: the bucket's log reaches segment",
        "put back to an earlier moment",
        &format!("fluxiondb restore --from {}", bucket.location()) as &str,
        "give it a new --backup location",
    ] {
        assert!(log.contains(said), "{said:?} is not in the log:\n{log}");
    }
    drop(rc);
    drop(rolled_back);

    // The bucket is as the original left it.
    assert_eq!(bucket.objects("manifest").pop(), version);
    let target = TempDir::new();
    let (ok, _, err) = restore(&bucket, target.data(), None);
    assert!(ok, "restore failed: {err}");
    assert_eq!(
        records(&mut serve(target.data()).master(), "m", "t"),
        expected(1, 41)
    );
}

/// A promoted replica restarted as the primary right after its promotion (`kill -9` before a
/// checkpoint removed the segments it logged as a replica) resumes, not taken for a folder put
/// back: the check compares only its own generation's segments with the bucket's.
#[test]
fn a_promoted_replica_restarted_at_once_resumes_as_the_primary() {
    let bucket = Bucket::new();
    let old = primary(&bucket, &[]);
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut oc = old.master();
    insert_uploaded(&mut oc, &bucket, 1, 3);
    drop(oc);
    drop(old);

    let dir = TempDir::new();
    // No checkpoint removes the segments it logs as a replica before the restart below.
    let mut r = replica_checkpointing(&bucket, dir.data(), "600");
    let mut rc = r.master();
    assert!(wait_until(WAIT, || records(&mut rc, "m", "t") == expected(1, 31)));
    promote(&r);
    assert!(
        wait_until(WAIT, || rc
            .call("ins", json!([{"col":"m","doc":"t","ts":31,"data":"v31"}]))
            .get("error")
            .is_none()),
        "the promoted replica does not take writes: {}",
        r.stderr_tail()
    );
    drop(rc);
    r.kill9();

    let again = primary_in(dir.data(), &bucket, "100ms");
    let uploads = || metric(again.port, "fluxiondb_backup_uploads_total").unwrap_or(0.0);
    let mut ac = again.master();
    insert(&mut ac, 32, 1);
    assert!(
        wait_until(WAIT, || uploads() > 0.0),
        "the restarted primary uploads nothing: {}",
        again.stderr_tail()
    );
    assert_eq!(metric(again.port, "fluxiondb_backup_fenced"), Some(0.0));
    assert_eq!(http_get(again.port, "/readyz"), (200, "ready\n".into()));
    assert_eq!(records(&mut ac, "m", "t"), expected(1, 33));
}
