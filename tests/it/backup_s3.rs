//! Continuous backup and restore over a real S3-compatible store (SeaweedFS): the binary backs
//! up to `s3://…` with its settings from the AWS variables, the machine is lost (`kill -9` and
//! its data folder gone), and `fluxiondb restore` rebuilds the data from the bucket.
//!
//! Ignored by a plain `cargo test` (it needs the `weed` binary): `make test-s3` runs it.

use crate::common::seaweedfs::SeaweedFs;
use crate::common::{bare_command, wait_until, Server, TempDir};
use fluxiondb::objstore::{Condition, ObjectStore};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The newest write time of the segments the manifest counts as uploaded (the segment key is
/// `wal/<seq hex>-<generation>-<first ms>-<last ms>-<size>-<crc>.log`).
pub fn uploaded_until(store: &dyn ObjectStore) -> i64 {
    let Ok(Some(manifest)) = fluxiondb::backup_manifests::newest(store) else {
        return 0;
    };
    let manifest: Value = serde_json::from_slice(&manifest.body).unwrap_or_default();
    let next = manifest["next_segment"].as_u64().unwrap_or(0);
    store
        .list("wal/")
        .unwrap_or_default()
        .iter()
        .filter_map(|o| {
            let name = o.key.strip_prefix("wal/")?.strip_suffix(".log")?;
            let parts: Vec<&str> = name.split('-').collect();
            let seq = u64::from_str_radix(parts.first()?, 16).ok()?;
            let last: i64 = parts.get(3)?.parse().ok()?;
            (seq < next).then_some(last)
        })
        .max()
        .unwrap_or(0)
}

pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(since.unwrap().as_millis()).unwrap()
}

#[test]
#[ignore = "needs SeaweedFS: run with `make test-s3`"]
fn a_primary_lost_with_its_disk_is_restored_from_s3() {
    let s3 = SeaweedFs::start();
    let location = s3.location("primary").to_string();
    let data = TempDir::new();
    let mut primary = backed_up(&s3, &location, &data);
    let mut c = primary.master();
    let records: Vec<Value> = (1..=500)
        .map(|ts| json!({"col": "m", "doc": "d", "ts": ts, "data": format!("v{ts}")}))
        .collect();
    c.ok("ins", Value::Array(records));
    let written = now_ms();
    c.ok("sval", json!({"col": "m", "key": "k", "value": "kept"}));

    let store = s3.store("primary");
    assert!(
        wait_until(WAIT, || uploaded_until(&store) >= written),
        "the writes never reached the bucket; objects {:?}\n{}",
        store.list(""),
        primary.stderr_tail()
    );
    // The machine is lost: the process and its disk.
    primary.kill9();
    drop(data);

    let target = TempDir::new();
    let target_dir = target.data().display().to_string();
    let (ok, out, err) = restore_from(&s3, &location, &target_dir, None);
    assert!(ok, "restore failed: {out}{err}");

    let restored = Server::start(&["--data", &target_dir]);
    let mut r = restored.master();
    let got = r.ok("qdoc", json!({"col": "m", "doc": "d", "to": 1_000_000}));
    let expected: Vec<Value> = (1..=500)
        .map(|ts| json!({"ts": ts, "data": format!("v{ts}")}))
        .collect();
    assert_eq!(got, json!({ "records": expected }));
    assert_eq!(
        r.ok("gval", json!({"col": "m", "key": "k"})),
        json!({"value": "kept"})
    );
}

/// A primary with its data in `data`, backed up to `location` every 100 ms, checkpointing every
/// second.
fn backed_up(s3: &SeaweedFs, location: &str, data: &TempDir) -> Server {
    let dir = data.data().display().to_string();
    s3.server(&[
        "--data",
        &dir,
        "--backup",
        location,
        "--backup-interval",
        "100ms",
        "-f",
        "1",
    ])
}

/// Runs `fluxiondb restore --from location --data dir [--at at]` with the store's settings;
/// whether it succeeded, its stdout and its stderr.
fn restore_from(
    s3: &SeaweedFs,
    location: &str,
    dir: &str,
    at: Option<&str>,
) -> (bool, String, String) {
    let mut args = vec!["restore", "--from", location, "--data", dir];
    if let Some(at) = at {
        args.extend(["--at", at]);
    }
    let mut restore = bare_command()
        .args(&args)
        .envs(s3.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until(WAIT, || {
        status = restore.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = restore.kill();
    }
    let output = restore.wait_with_output().unwrap();
    (
        status.is_some_and(|s| s.success()),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn batch(from: i64, to: i64) -> Value {
    Value::Array(
        (from..=to)
            .map(|ts| json!({"col": "m", "doc": "d", "ts": ts, "data": format!("v{ts}")}))
            .collect(),
    )
}

fn records(from: i64, to: i64) -> Value {
    let list: Vec<Value> = (from..=to)
        .map(|ts| json!({"ts": ts, "data": format!("v{ts}")}))
        .collect();
    json!({ "records": list })
}

/// Waits until the clock has passed `ms`.
fn pass(ms: i64) {
    assert!(wait_until(WAIT, || now_ms() > ms));
}

#[test]
#[ignore = "needs SeaweedFS: run with `make test-s3`"]
fn a_store_restarted_under_writers_catches_up_and_restores_to_a_point_in_time() {
    let mut s3 = SeaweedFs::start();
    let location = s3.location("pitr").to_string();
    let data = TempDir::new();
    let mut primary = backed_up(&s3, &location, &data);
    // Point-in-time history starts at the backup's first restore point.
    let store = s3.store("pitr");
    assert!(wait_until(WAIT, || matches!(
        fluxiondb::backup_manifests::newest(&store),
        Ok(Some(_))
    )));
    let mut c = primary.master();
    c.ok("ins", batch(1, 200));
    let cut = now_ms() + 1;
    pass(cut + 2);
    c.ok("ins", batch(201, 400));
    // The store goes away while writes go on: they are still acknowledged.
    s3.stop();
    for from in (401..=600).step_by(50) {
        c.ok("ins", batch(from, from + 49));
    }
    // One write more, logged after `written`: the segment holding it ends at or after it.
    let written = now_ms();
    pass(written);
    c.ok("sval", json!({"col": "m", "key": "k", "value": "last"}));
    s3.restart();
    assert!(
        wait_until(WAIT, || uploaded_until(&store) >= written),
        "the backlog never reached the bucket after the store came back\n{}",
        primary.stderr_tail()
    );
    primary.kill9();
    drop(data);

    // Everything acknowledged, and, with --at, only what was written up to that time.
    let all = TempDir::new();
    let all_dir = all.data().display().to_string();
    let (ok, out, err) = restore_from(&s3, &location, &all_dir, None);
    assert!(ok, "restore failed: {out}{err}");
    let at = TempDir::new();
    let at_dir = at.data().display().to_string();
    let when = format!("{}.{:03}", cut / 1000, cut % 1000);
    let (ok, out, err) = restore_from(&s3, &location, &at_dir, Some(&when));
    assert!(ok, "restore --at {when} failed: {out}{err}");
    for (dir, last) in [(&all_dir, 600), (&at_dir, 200)] {
        let restored = Server::start(&["--data", dir]);
        let got = restored
            .master()
            .ok("qdoc", json!({"col": "m", "doc": "d", "to": 1_000_000}));
        assert_eq!(got, records(1, last), "restored into {dir}");
    }

    // A damaged object in the bucket stops a restore, naming it.
    for listed in store.list("files/").unwrap() {
        let mut body = store.get(&listed.key).unwrap().unwrap().body;
        let middle = body.len() / 2;
        body[middle] ^= 0x55;
        store.put(&listed.key, &body, &Condition::Always).unwrap();
    }
    let damaged = TempDir::new();
    let damaged_dir = damaged.data().display().to_string();
    let (ok, _, err) = restore_from(&s3, &location, &damaged_dir, None);
    assert!(!ok, "a damaged object was restored");
    assert!(
        err.starts_with("fluxiondb restore: object files/") && err.contains(" is damaged: "),
        "{err}"
    );
}
