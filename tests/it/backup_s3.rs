//! Continuous backup and restore over a real S3-compatible store (SeaweedFS): the binary backs
//! up to `s3://…` with its settings from the AWS variables, the machine is lost (`kill -9` and
//! its data folder gone), and `fluxiondb restore` rebuilds the data from the bucket.
//!
//! Ignored by a plain `cargo test` (it needs the `weed` binary): `make test-s3` runs it.

use crate::common::seaweedfs::SeaweedFs;
use crate::common::{bare_command, wait_until, Server, TempDir};
use fluxiondb::objstore::ObjectStore;
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
    let dir = data.data().display().to_string();
    let mut primary = s3.server(&[
        "--data",
        &dir,
        "--backup",
        &location,
        "--backup-interval",
        "100ms",
        "-f",
        "1",
    ]);
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
    let mut restore = bare_command()
        .args(["restore", "--from", &location, "--data", &target_dir])
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
    assert!(
        status.is_some_and(|s| s.success()),
        "restore failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

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
