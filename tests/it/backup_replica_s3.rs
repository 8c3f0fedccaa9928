//! A replica's live side on a real S3-compatible store (SeaweedFS): the writes it copies are
//! pushed to its subscribers, and a key the primary removes closes the replica's connection
//! that uses it (`tests/it/backup_replica_live.rs` proves the details on a `file://` store).
//!
//! Ignored by a plain `cargo test` (it needs the `weed` binary): `make test-s3` runs it.

use crate::backup::metric;
use crate::backup_s3::{now_ms, uploaded_until};
use crate::common::seaweedfs::SeaweedFs;
use crate::common::{wait_until, Client, TempDir};
use crate::subscriptions::{push, sub};
use fluxiondb::backup_manifests;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn key_works(port: u16, key: &str) -> bool {
    Client::connect(port, &format!("/?api-key={key}")).is_ok_and(
        |mut c| matches!(c.next_frame(), crate::common::Frame::Text(t) if t.contains("ready")),
    )
}

#[test]
#[ignore = "needs SeaweedFS: run with `make test-s3`"]
fn a_replica_on_s3_pushes_what_it_applies_and_closes_revoked_keys() {
    let s3 = SeaweedFs::start();
    let location = s3.location("live").to_string();
    let store = s3.store("live");
    let (pdir, rdir) = (TempDir::new(), TempDir::new());
    let (pd, rd) = (
        pdir.data().display().to_string(),
        rdir.data().display().to_string(),
    );
    let interval = ["--backup-interval", "100ms", "-f", "1"];
    let p = s3.server(&[&["--data", &pd, "--backup", &location], &interval[..]].concat());
    assert!(
        wait_until(WAIT, || backup_manifests::newest(&store)
            .is_ok_and(|m| m.is_some())),
        "the backup never started\n{}",
        p.stderr_tail()
    );
    let mut pc = p.master();
    pc.ok(
        "keys",
        json!({"action":"add","key":"temp","scope":"readonly"}),
    );
    pc.ok("ins", json!([{"col":"m","doc":"t","ts":1,"data":"v1"}]));
    let written = now_ms();
    pc.ok("sval", json!({"col":"m","key":"k","value":"v"}));
    assert!(wait_until(WAIT, || uploaded_until(&store) >= written));

    let r = s3.server(
        &[
            &[
                "--data",
                &rd,
                "--replica-of",
                &location,
                "--poll-interval",
                "100ms",
            ],
            &interval[..],
        ]
        .concat(),
    );
    assert!(
        wait_until(WAIT, || key_works(r.port, "temp")),
        "{}",
        r.stderr_tail()
    );
    let mut s = r.open("temp", None);
    s.set_read_timeout(WAIT);
    let (_, seq) = sub(&mut s, json!({"col":"m","since":0}));
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":"s1","col":"m","seq":seq,"records":[{"doc":"t","ts":1,"data":"v1"}]})
    );
    pc.ok("ins", json!([{"col":"m","doc":"t","ts":2,"data":"v2"}]));
    pc.ok("drec", json!({"col":"m","doc":"t","ts":1}));
    assert_eq!(
        push(&mut s),
        json!({"type":"rec","sub":"s1","col":"m","seq":seq + 1,"records":[{"doc":"t","ts":2,"data":"v2"}]})
    );
    assert_eq!(
        push(&mut s),
        json!({"type":"del","sub":"s1","col":"m","seq":seq + 2,"doc":"t","from":1,"to":1})
    );

    pc.ok("keys", json!({"action":"remove","key":"temp"}));
    assert_eq!(
        push(&mut s),
        json!({"type":"subend","sub":"s1","error":"API key revoked"})
    );
    assert_eq!(s.recv_close(), (1008, "API key revoked".to_string()));
    assert_eq!(metric(r.port, "fluxiondb_replica_reloads_total"), Some(0.0));
}
