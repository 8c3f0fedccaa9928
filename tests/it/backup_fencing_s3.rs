//! Fencing on a real S3-compatible store (SeaweedFS), whose `If-Match` is not atomic under
//! concurrent writers: every manifest change creates a new version with `If-None-Match: *`.
//! Racing writers of one version through the server's own commit function have exactly one
//! winner (the others get 412), and a replica promoted while the old primary still runs
//! takes the bucket over while the old primary fences itself.
//!
//! Ignored by a plain `cargo test` (it needs the `weed` binary): `make test-s3` runs it.

use crate::backup::metric;
use crate::backup_s3::{now_ms, uploaded_until};
use crate::common::seaweedfs::SeaweedFs;
use crate::common::{wait_until, Client, TempDir};
use fluxiondb::backup_manifests::{self, Commit};
use fluxiondb::objstore::ObjectStore;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Barrier;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const FENCED: &str = "fenced: a newer primary took over; writes go to it";

#[test]
#[ignore = "needs SeaweedFS: run with `make test-s3`"]
fn racing_manifest_commits_have_exactly_one_winner_and_the_rest_get_412() {
    const WRITERS: usize = 4;
    const ROUNDS: u64 = 40;
    let s3 = SeaweedFs::start();
    let store = s3.store("race");
    for version in 1..=ROUNDS {
        let barrier = Barrier::new(WRITERS);
        let outcomes: Vec<Commit> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..WRITERS)
                .map(|writer| {
                    let (store, barrier) = (&store, &barrier);
                    scope.spawn(move || {
                        let body = format!("{{\"writer\":{writer}}}");
                        barrier.wait();
                        backup_manifests::commit(store, version, body.as_bytes())
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| {
                    r.join()
                        .expect("a writer panicked")
                        .expect("the store answered")
                })
                .collect()
        });
        let winners: Vec<usize> = (0..WRITERS)
            .filter(|&w| outcomes[w] == Commit::Won)
            .collect();
        assert_eq!(winners.len(), 1, "version {version}: {outcomes:?}");
        assert_eq!(
            outcomes.iter().filter(|&&o| o == Commit::Taken).count(),
            WRITERS - 1,
            "version {version}: every loser must get the 412: {outcomes:?}"
        );
        let newest = backup_manifests::newest(&store)
            .expect("the store answered")
            .expect("a version exists");
        assert_eq!(newest.version, version);
        let body: Value = serde_json::from_slice(&newest.body).expect("JSON");
        assert_eq!(body, json!({"writer": winners[0]}), "version {version}");
        if version % 16 == 0 {
            backup_manifests::prune(&store, version).expect("pruned");
        }
    }
    // Pruning kept the newest 16; a writer stalled behind them learns it is superseded.
    let kept: Vec<u64> = store
        .list("manifest/")
        .expect("listed")
        .iter()
        .filter_map(|o| backup_manifests::parse_key(&o.key))
        .collect();
    assert_eq!(kept.first(), Some(&(ROUNDS / 16 * 16 - 15)));
    assert_eq!(kept.last(), Some(&ROUNDS));
    assert_eq!(
        backup_manifests::commit(&store, 1, b"{}").expect("the store answered"),
        Commit::Superseded(ROUNDS)
    );
}

fn count(c: &mut Client, doc: &str) -> usize {
    c.ok("qdoc", json!({"col": "m", "doc": doc, "to": 1_000_000}))["records"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Segment objects the primary of `generation` uploaded.
fn segments_of(store: &dyn ObjectStore, generation: u64) -> Vec<String> {
    let tag = format!("-{generation:08x}-");
    store
        .list("wal/")
        .expect("listed")
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.get(20..30).is_some_and(|s| s == tag))
        .collect()
}

#[test]
#[ignore = "needs SeaweedFS: run with `make test-s3`"]
fn a_replica_promoted_on_s3_fences_the_running_old_primary() {
    let s3 = SeaweedFs::start();
    let location = s3.location("fencing").to_string();
    let store = s3.store("fencing");
    let (old_dir, new_dir) = (TempDir::new(), TempDir::new());
    let (od, nd) = (
        old_dir.data().display().to_string(),
        new_dir.data().display().to_string(),
    );
    let interval = ["--backup-interval", "100ms", "-f", "1"];
    let old = s3.server(&[&["--data", &od, "--backup", &location], &interval[..]].concat());
    // Written once the bucket is set up, so the writes land in uploaded segments.
    assert!(
        wait_until(WAIT, || backup_manifests::newest(&store)
            .is_ok_and(|m| m.is_some())),
        "the backup never started\n{}",
        old.stderr_tail()
    );
    let mut oc = old.master();
    let recs: Vec<Value> = (1..=10)
        .map(|ts| json!({"col": "m", "doc": "t", "ts": ts, "data": format!("v{ts}")}))
        .collect();
    oc.ok("ins", Value::Array(recs));
    // A write after the clock is read, so the segment holding it ends at or after `written`.
    let written = now_ms();
    oc.ok("sval", json!({"col": "m", "key": "k", "value": "v"}));
    assert!(
        wait_until(WAIT, || uploaded_until(&store) >= written),
        "the writes never reached the bucket; objects {:?}\n{}",
        store.list(""),
        old.stderr_tail()
    );

    let replica_args = [
        &[
            "--data",
            &nd,
            "--replica-of",
            &location,
            "--poll-interval",
            "100ms",
        ],
        &interval[..],
    ]
    .concat();
    let new = s3.server(&replica_args);
    let mut nc = new.master();
    assert!(wait_until(WAIT, || count(&mut nc, "t") == 10));
    let pid = new.pid().expect("running").to_string();
    let signalled = Command::new("kill").args(["-USR1", &pid]).status();
    assert!(signalled.is_ok_and(|s| s.success()));
    assert!(
        wait_until(WAIT, || nc
            .call("ins", json!([{"col":"m","doc":"new","ts":1,"data":"x"}]))
            .get("error")
            .is_none()),
        "the promoted replica does not take writes: {}",
        new.stderr_tail()
    );
    let manifest = backup_manifests::newest(&store)
        .expect("the store answered")
        .expect("a manifest");
    let manifest: Value = serde_json::from_slice(&manifest.body).expect("JSON");
    assert_eq!(manifest["generation"], 2);

    // The old primary's next manifest version is taken (412): it fences itself.
    let mut ts = 1000;
    assert!(
        wait_until(WAIT, || {
            ts += 1;
            let answer = oc.call("ins", json!([{"col":"m","doc":"old","ts":ts,"data":"x"}]));
            answer.get("error") == Some(&json!(FENCED))
        }),
        "the old primary still takes writes: {}",
        old.stderr_tail()
    );
    assert!(
        wait_until(WAIT, || {
            let log = old.stderr_tail();
            log.contains("failed its precondition")
                && log.contains(
                    "was taken over by a promoted replica: the manifest names generation 2, \
                     this server wrote generation 1",
                )
        }),
        "{}",
        old.stderr_tail()
    );
    assert_eq!(metric(old.port, "fluxiondb_backup_fenced"), Some(1.0));
    let uploads = metric(old.port, "fluxiondb_backup_uploads_total");
    let old_segments = segments_of(&store, 1);

    // The new primary moves the bucket on; the old one uploads nothing more.
    let since = now_ms();
    nc.ok(
        "ins",
        json!([{"col":"m","doc":"new","ts":2,"data":"after"}]),
    );
    nc.ok("sval", json!({"col": "m", "key": "k", "value": "new"}));
    assert!(
        wait_until(WAIT, || uploaded_until(&store) >= since),
        "the new primary's write never reached the bucket\n{}",
        new.stderr_tail()
    );
    assert_eq!(metric(old.port, "fluxiondb_backup_uploads_total"), uploads);
    assert_eq!(segments_of(&store, 1), old_segments);
    assert_eq!(
        oc.err("ins", json!([{"col":"m","doc":"old","ts":1,"data":"x"}])),
        FENCED
    );
}
