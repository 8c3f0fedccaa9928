//! The disk stops taking writes while clients talk to the server (issue 12): the failure
//! injector wraps the real file system and fails the n-th matching operation with ENOSPC or
//! EIO. The README's promise: the server refuses further writes with `storage unavailable: the
//! server cannot persist writes`, drops connections whose acknowledgements could not be made
//! durable, and nothing it acknowledged is lost once it restarts on a healthy disk.

use super::{config, master, start};
use crate::common::{wait_until, Client, Frame, TempDir};
use fluxiondb::storage::{self, Fault, Faulty, Op};
use fluxiondb::{Config, Running};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const UNAVAILABLE: &str = "storage unavailable: the server cannot persist writes";

/// Held by the tests whose in-process servers count backup failures: the counters are the
/// process's, so a test that reads them must not overlap another that moves them.
static BACKUP_COUNTERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Rig {
    tmp: TempDir,
    faulty: Arc<Faulty>,
    server: Option<Running>,
}

impl Rig {
    fn new(fsync: &str, tune: impl FnOnce(&mut Config)) -> Rig {
        let tmp = TempDir::new();
        let faulty = Arc::new(Faulty::new(storage::real()));
        let mut cfg = config(tmp.data(), fsync);
        tune(&mut cfg);
        let server = start(cfg, faulty.clone());
        Rig {
            tmp,
            faulty,
            server: Some(server),
        }
    }

    fn server(&self) -> &Running {
        self.server.as_ref().expect("running")
    }

    fn master(&self) -> Client {
        master(self.server())
    }

    /// Stops the failing server and starts a new one on the same folder, on a healthy disk.
    fn restart_healthy(&mut self) -> Client {
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.join();
        }
        let server = start(config(self.tmp.data(), "always"), storage::real());
        let c = master(&server);
        self.server = Some(server);
        c
    }

    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.tmp.data())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.join();
        }
    }
}

fn ins(ts: i64) -> Value {
    json!([{"col":"s","doc":"a","ts":ts,"data":format!("v{ts}")}])
}

/// The timestamps of document `a`.
fn stamps(c: &mut Client) -> Vec<i64> {
    let v = c.ok("qdoc", json!({"col":"s","doc":"a","to":1_000_000}));
    v["records"]
        .as_array()
        .map(|rs| rs.iter().map(|r| r["ts"].as_i64().unwrap()).collect())
        .unwrap_or_default()
}

fn wal_paths(failures: &[(Op, PathBuf)]) -> bool {
    failures.iter().all(|(_, p)| {
        Path::new(p)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("wal-"))
    })
}

/// The request in flight gets no answer: its connection is dropped.
fn expect_dropped(c: &mut Client, ts: i64) {
    c.send_text(&json!({"id":"lost","type":"ins","data":ins(ts).to_string()}).to_string());
    match c.next_frame() {
        Frame::Dropped(_) => {}
        other => panic!(
            "expected the connection to be dropped unacknowledged, got {}",
            other.describe()
        ),
    }
}

#[test]
fn disk_full_mid_log_write_refuses_writes_and_loses_nothing_acknowledged() {
    let mut rig = Rig::new("always", |_| {});
    let mut c = rig.master();
    for ts in 1..=5 {
        c.ok("ins", ins(ts));
    }
    // The next log write stops half-way: ENOSPC.
    rig.faulty.arm(
        Fault::on(&[Op::Write])
            .named("wal-")
            .errno(libc::ENOSPC)
            .torn()
            .sticky(),
    );
    expect_dropped(&mut c, 6);
    let failures = rig.faulty.failures();
    assert!(!failures.is_empty() && wal_paths(&failures), "{failures:?}");

    // Every later write is refused with the documented text; reads go on.
    let mut other = rig.master();
    assert_eq!(other.err("ins", ins(7)), UNAVAILABLE);
    assert_eq!(
        other.err("sval", json!({"col":"s","key":"k","value":"v"})),
        UNAVAILABLE
    );
    assert_eq!(
        other.err("drec", json!({"col":"s","doc":"a","ts":1})),
        UNAVAILABLE
    );
    assert_eq!(other.err("dcol", json!({"col":"s"})), UNAVAILABLE);
    assert!(stamps(&mut other).starts_with(&[1, 2, 3, 4, 5]));
    // Deletes that remove nothing are not logged, so they are still answered.
    other.ok("drec", json!({"col":"s","doc":"a","ts":999}));

    // On a healthy disk: every acknowledged insert, and the half-written one dropped.
    let mut c = rig.restart_healthy();
    assert_eq!(stamps(&mut c), vec![1, 2, 3, 4, 5]);
    c.ok("ins", ins(8));
    assert_eq!(stamps(&mut c), vec![1, 2, 3, 4, 5, 8]);
}

#[test]
fn fsync_failure_under_always_drops_the_waiting_writers() {
    let mut rig = Rig::new("always", |_| {});
    let mut c = rig.master();
    for ts in 1..=5 {
        c.ok("ins", ins(ts));
    }
    rig.faulty.arm(
        Fault::on(&[Op::Fdatasync, Op::Fsync])
            .named("wal-")
            .errno(libc::EIO),
    );
    expect_dropped(&mut c, 6);
    let mut other = rig.master();
    assert_eq!(other.err("ins", ins(7)), UNAVAILABLE);
    assert_eq!(
        other.err("sval", json!({"col":"s","key":"k","value":"v"})),
        UNAVAILABLE
    );
    let mut c = rig.restart_healthy();
    // Written to the file but never acknowledged: may be there or not.
    let got = stamps(&mut c);
    assert!(
        got == [1, 2, 3, 4, 5] || got == [1, 2, 3, 4, 5, 6],
        "{got:?}"
    );
}

#[test]
fn background_fsync_failure_under_everysec_refuses_later_writes() {
    let mut rig = Rig::new("everysec", |_| {});
    let mut c = rig.master();
    for ts in 1..=5 {
        c.ok("ins", ins(ts));
    }
    rig.faulty
        .arm(Fault::on(&[Op::Fdatasync]).named("wal-").errno(libc::EIO));
    // Acknowledged as soon as the OS has the bytes; the background fsync then fails and the
    // log refuses what follows.
    let mut acked = vec![1, 2, 3, 4, 5];
    let mut ts = 6;
    let refused = wait_until(Duration::from_secs(10), || {
        let v = c.call("ins", ins(ts));
        match v.get("error") {
            None => acked.push(ts),
            Some(e) => assert_eq!(e, UNAVAILABLE),
        }
        ts += 1;
        v.get("error").is_some()
    });
    assert!(refused, "the failed fsync never refused a write");
    let failures = rig.faulty.failures();
    assert!(
        failures.iter().all(|(op, _)| *op == Op::Fdatasync),
        "{failures:?}"
    );
    let mut c = rig.restart_healthy();
    assert_eq!(stamps(&mut c), acked);
}

#[test]
fn a_new_log_segment_that_cannot_be_created_fails_the_checkpoint_not_the_writes() {
    let mut rig = Rig::new("always", |c| c.flush_interval = Duration::from_millis(100));
    let mut c = rig.master();
    rig.faulty.arm(
        Fault::on(&[Op::Open])
            .named("wal-")
            .errno(libc::ENOSPC)
            .sticky(),
    );
    let mut ts = 0;
    let tried = wait_until(Duration::from_secs(10), || {
        ts += 1;
        assert_eq!(
            c.call("ins", ins(ts)),
            json!({}),
            "a write during failed rotations"
        );
        !rig.faulty.failures().is_empty()
    });
    assert!(tried, "no checkpoint tried to rotate the log");
    for _ in 0..20 {
        ts += 1;
        c.ok("ins", ins(ts));
    }
    assert!(
        !rig.files().iter().any(|f| f.starts_with("snap-")),
        "a checkpoint that could not rotate wrote snapshots: {:?}",
        rig.files()
    );
    // The disk recovers: the next checkpoint succeeds.
    rig.faulty.disarm();
    assert!(
        wait_until(Duration::from_secs(10), || rig
            .files()
            .iter()
            .any(|f| f.starts_with("snap-"))),
        "no checkpoint after the disk recovered: {:?}",
        rig.files()
    );
    let mut c = rig.restart_healthy();
    assert_eq!(stamps(&mut c), (1..=ts).collect::<Vec<_>>());
}

#[test]
fn fsync_failure_at_rotation_fails_the_log() {
    // Under `never` only a rotation fsyncs the log.
    let mut rig = Rig::new("never", |c| c.flush_interval = Duration::from_millis(100));
    let mut c = rig.master();
    for ts in 1..=5 {
        c.ok("ins", ins(ts));
    }
    rig.faulty.arm(
        Fault::on(&[Op::Fdatasync])
            .named("wal-")
            .errno(libc::EIO)
            .sticky(),
    );
    let mut acked = vec![1, 2, 3, 4, 5];
    let mut ts = 5;
    let refused = wait_until(Duration::from_secs(10), || {
        ts += 1;
        let v = c.call("ins", ins(ts));
        match v.get("error") {
            None => acked.push(ts),
            Some(e) => assert_eq!(e, UNAVAILABLE),
        }
        v.get("error").is_some()
    });
    assert!(refused, "a failed rotation did not fail the log");
    assert_eq!(
        c.err("sval", json!({"col":"s","key":"k","value":"v"})),
        UNAVAILABLE
    );
    let mut c = rig.restart_healthy();
    assert_eq!(stamps(&mut c), acked);
}

#[test]
fn a_snapshot_that_cannot_be_written_keeps_the_log() {
    let mut rig = Rig::new("always", |c| c.flush_interval = Duration::from_millis(100));
    let mut c = rig.master();
    rig.faulty.arm(
        Fault::on(&[Op::Write])
            .named("snap-")
            .errno(libc::ENOSPC)
            .sticky(),
    );
    let mut ts = 0;
    let tried = wait_until(Duration::from_secs(10), || {
        ts += 1;
        c.ok("ins", ins(ts));
        !rig.faulty.failures().is_empty()
    });
    assert!(tried, "no checkpoint tried to write a snapshot");
    for _ in 0..10 {
        ts += 1;
        c.ok("ins", ins(ts));
    }
    let files = rig.files();
    assert!(
        !files.iter().any(|f| f.starts_with("snap-")),
        "no snapshot (nor its temp file) is left: {files:?}"
    );
    let mut c = rig.restart_healthy();
    assert_eq!(stamps(&mut c), (1..=ts).collect::<Vec<_>>());
}

#[test]
fn a_key_file_that_cannot_be_replaced_is_refused() {
    let mut rig = Rig::new("always", |_| {});
    let mut c = rig.master();
    c.ok(
        "keys",
        json!({"action":"add","key":"kept","scope":"readonly"}),
    );
    rig.faulty
        .arm(Fault::on(&[Op::Rename]).named("keys.bin").errno(libc::EIO));
    assert_eq!(
        c.err(
            "keys",
            json!({"action":"add","key":"refused","scope":"readonly"})
        ),
        UNAVAILABLE
    );
    // The refused change did not happen, in this process either.
    let listed = c.ok("keys", json!({"action":"list"}));
    assert!(
        !listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key"] == "refused"),
        "{listed}"
    );
    // The disk recovers: the next change is saved, whole.
    c.ok(
        "keys",
        json!({"action":"add","key":"later","scope":"readonly"}),
    );
    let files = rig.files();
    assert!(!files.iter().any(|f| f.ends_with(".tmp")), "{files:?}");
    let mut c = rig.restart_healthy();
    let listed = c.ok("keys", json!({"action":"list"}));
    let keys: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"kept") && keys.contains(&"later") && !keys.contains(&"refused"),
        "{keys:?}"
    );
}

#[test]
fn a_key_removal_that_cannot_be_saved_is_undone() {
    let rig = Rig::new("always", |_| {});
    let mut c = rig.master();
    c.ok(
        "keys",
        json!({"action":"add","key":"stays","scope":"readonly"}),
    );
    rig.faulty
        .arm(Fault::on(&[Op::Rename]).named("keys.bin").errno(libc::EIO));
    assert_eq!(
        c.err("keys", json!({"action":"remove","key":"stays"})),
        UNAVAILABLE
    );
    let listed = c.ok("keys", json!({"action":"list"}));
    assert!(
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key"] == "stays" && k["scope"] == "readonly"),
        "{listed}"
    );
}

/// A storage backend that panics (a bug) in the middle of a log write: the log fails as for an
/// I/O error. Before, the writer's flag stayed set and every later write waited for good.
#[test]
fn a_log_write_that_panics_fails_the_log_instead_of_hanging_every_writer() {
    let mut rig = Rig::new("always", |_| {});
    let mut c = rig.master();
    for ts in 1..=5 {
        c.ok("ins", ins(ts));
    }
    rig.faulty
        .arm(Fault::on(&[Op::Write]).named("wal-").panics());
    expect_dropped(&mut c, 6);
    assert_eq!(rig.faulty.failures().len(), 1);
    let mut other = rig.master();
    assert_eq!(other.err("ins", ins(7)), UNAVAILABLE);
    assert_eq!(
        other.err("sval", json!({"col":"s","key":"k","value":"v"})),
        UNAVAILABLE
    );
    assert_eq!(stamps(&mut other), vec![1, 2, 3, 4, 5, 6]);
    let mut c = rig.restart_healthy();
    assert_eq!(stamps(&mut c), vec![1, 2, 3, 4, 5]);
}

/// A checkpoint that panics (a bug) while writing a snapshot: the next one writes that
/// collection again, though nothing changed since (before, its changed mark was lost, and the
/// checkpoint thread with it).
#[test]
fn a_checkpoint_that_panics_is_run_again_and_saves_what_it_had_not() {
    let mut rig = Rig::new("always", |c| c.flush_interval = Duration::from_millis(100));
    rig.faulty
        .arm(Fault::on(&[Op::Write]).named("snap-").panics());
    let mut c = rig.master();
    for ts in 1..=5 {
        c.ok("ins", ins(ts));
    }
    assert!(
        wait_until(Duration::from_secs(10), || !rig
            .faulty
            .failures()
            .is_empty()),
        "no checkpoint tried to write a snapshot"
    );
    let saved = |files: &[String]| {
        files
            .iter()
            .any(|f| f.starts_with("snap-") && !f.ends_with(".tmp"))
    };
    assert!(
        wait_until(Duration::from_secs(10), || saved(&rig.files())),
        "no later checkpoint saved the collection: {:?}",
        rig.files()
    );
    assert_eq!(rig.faulty.failures().len(), 1);
    let mut c = rig.restart_healthy();
    assert_eq!(stamps(&mut c), vec![1, 2, 3, 4, 5]);
}

/// A seed import whose snapshots cannot be written is not marked done: the imported data is in
/// no log, so start-up fails with the reason, and the next start imports it again.
#[test]
fn a_seed_import_whose_snapshot_cannot_be_written_is_not_marked_done() {
    let tmp = TempDir::new();
    let seed = TempDir::new();
    let doc = seed.data().join("sensors").join("dev-1");
    std::fs::create_dir_all(&doc).unwrap();
    std::fs::write(doc.join("1000.json"), r#"[{"ts":100,"data":"a"}]"#).unwrap();
    let with_seed = || {
        let mut cfg = config(tmp.data(), "always");
        cfg.import_seed = Some(seed.data().to_owned());
        cfg
    };
    let faulty = Arc::new(Faulty::new(storage::real()));
    faulty.arm(
        Fault::on(&[Op::Write])
            .named("snap-")
            .errno(libc::ENOSPC)
            .sticky(),
    );
    let refused = match fluxiondb::start(with_seed(), faulty.clone()) {
        Ok(_) => panic!("the import was taken for done over a full disk"),
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("could not be written") && refused.contains("runs again"),
        "{refused}"
    );
    assert!(!faulty.failures().is_empty());
    let server = start(with_seed(), storage::real());
    let mut c = master(&server);
    assert_eq!(
        c.ok("qdoc", json!({"col":"sensors","doc":"dev-1","to":1000})),
        json!({"records": [{"ts": 100, "data": "a"}]})
    );
    server.shutdown();
    server.join();
}

/// The backup closes the log segment it uploads next; a segment that cannot be closed (a new
/// one cannot be created) keeps every later write on the machine, so the round is a failed
/// one (`fluxiondb_backup_failures_total`), not one that passes for caught up. Writes go on.
#[test]
fn a_log_segment_the_backup_cannot_close_fails_the_backup_round() {
    use crate::backup::metric;
    let _counters = BACKUP_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let BackedUp {
        server,
        faulty,
        _tmp,
        _bucket,
    } = BackedUp::start("50ms", Duration::from_secs(3600));
    let mut c = master(&server);
    c.ok("ins", ins(1));
    let failures = || metric(server.port(), "fluxiondb_backup_failures_total").unwrap_or(0.0);
    let before = failures();
    faulty.arm(
        Fault::on(&[Op::Open])
            .named("wal-")
            .errno(libc::EMFILE)
            .sticky(),
    );
    let mut ts = 1;
    let failed = wait_until(Duration::from_secs(20), || {
        ts += 1;
        c.ok("ins", ins(ts));
        failures() > before && !faulty.failures().is_empty()
    });
    assert!(
        failed,
        "rounds that could not close the segment passed for caught up"
    );
    faulty.disarm();
    server.shutdown();
    server.join();
}

/// A primary in this process over the fault injector, its log fsynced always, backing up to a
/// `file://` bucket every `interval` and checkpointing every `flush`.
struct BackedUp {
    server: Running,
    faulty: Arc<Faulty>,
    _tmp: TempDir,
    _bucket: crate::backup::Bucket,
}

impl BackedUp {
    fn start(interval: &str, flush: Duration) -> BackedUp {
        let tmp = TempDir::new();
        let bucket = crate::backup::Bucket::new();
        let data = tmp.data().to_str().expect("UTF-8 path").to_owned();
        let location = bucket.location();
        let flags = [
            "--data",
            &data,
            "--fsync",
            "always",
            "--backup",
            &location,
            "--backup-interval",
            interval,
        ];
        let mut cfg = crate::common::in_process_config(&flags);
        cfg.flush_interval = flush;
        let faulty = Arc::new(Faulty::new(storage::real()));
        let server = start(cfg, faulty.clone());
        BackedUp {
            server,
            faulty,
            _tmp: tmp,
            _bucket: bucket,
        }
    }
}

/// A primary (the binary) backing up to a `file://` bucket, with one record (ts 1) uploaded,
/// and a replica of it in this process over the fault injector, which has applied it.
struct ReplicaRig {
    _bucket: crate::backup::Bucket,
    _primary: crate::common::Server,
    /// The primary's master connection.
    pc: Client,
    _folder: TempDir,
    faulty: Arc<Faulty>,
    replica: Running,
    /// The replica's master connection.
    rc: Client,
}

impl ReplicaRig {
    fn new() -> ReplicaRig {
        use crate::backup::{now_ms, primary, Bucket, WAIT};
        let bucket = Bucket::new();
        let p = primary(&bucket, &[]);
        assert!(wait_until(WAIT, || bucket.manifest().is_some()));
        let mut pc = p.master();
        pc.ok("ins", ins(1));
        bucket.wait_uploaded(now_ms() - 60_000, &p);
        let folder = TempDir::new();
        let data = folder.data().to_str().expect("UTF-8 path").to_owned();
        let location = bucket.location();
        let flags = [
            "--data",
            &data,
            "--replica-of",
            &location,
            "--poll-interval",
            "50ms",
            "--backup-interval",
            "50ms",
        ];
        let faulty = Arc::new(Faulty::new(storage::real()));
        let replica = start(crate::common::in_process_config(&flags), faulty.clone());
        let mut rc = master(&replica);
        assert!(wait_until(WAIT, || stamps(&mut rc) == [1]));
        ReplicaRig {
            _bucket: bucket,
            _primary: p,
            pc,
            _folder: folder,
            faulty,
            replica,
            rc,
        }
    }
}

/// A replica takes its primary's API keys only once it has saved them: while the key file
/// cannot be replaced, a key added on the primary is not taken (and is not later uploaded as
/// stale by a promotion); once the disk recovers, the next poll takes it.
#[test]
fn a_replica_takes_the_primarys_keys_only_once_it_has_saved_them() {
    use crate::backup_replica::key_works;
    let _counters = BACKUP_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let ReplicaRig {
        _bucket,
        _primary,
        mut pc,
        _folder,
        faulty,
        replica,
        rc: _,
    } = ReplicaRig::new();
    faulty.arm(
        Fault::on(&[Op::Rename])
            .named("keys.bin")
            .errno(libc::EIO)
            .sticky(),
    );
    pc.ok(
        "keys",
        json!({"action":"add","key":"added","scope":"readonly"}),
    );
    assert!(
        wait_until(Duration::from_secs(30), || !faulty.failures().is_empty()),
        "the replica never tried to save the primary's new keys"
    );
    assert!(
        !key_works(replica.port(), "added"),
        "a key taken in memory while its file could not be saved"
    );
    faulty.disarm();
    assert!(
        wait_until(Duration::from_secs(30), || key_works(
            replica.port(),
            "added"
        )),
        "the key was not taken once the disk recovered"
    );
    replica.shutdown();
    replica.join();
}

/// A closed log segment damaged on the local disk before the backup uploaded it is not
/// uploaded (its checksum in the bucket would vouch for the damage, and a replica would apply
/// it up to the damage and skip the rest): the round fails instead.
#[test]
fn a_closed_segment_damaged_before_its_upload_is_not_uploaded() {
    use crate::backup::WAIT;
    let _counters = BACKUP_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    // Checkpoints close segments often; the backup's first round runs at start, the next
    // only when the server stops.
    let BackedUp {
        server,
        _tmp: tmp,
        _bucket: bucket,
        ..
    } = BackedUp::start("1h", Duration::from_millis(50));
    assert!(wait_until(WAIT, || bucket.manifest().is_some()));
    let mut c = master(&server);
    for ts in 1..=5 {
        c.ok("ins", ins(ts));
    }
    let segments = || {
        let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(tmp.data())
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?.to_owned();
                Some((u64::from_str_radix(&hex, 16).ok()?, e.path()))
            })
            .collect();
        found.sort();
        found
    };
    // The segment the inserts went to, once a checkpoint has closed it.
    let mut closed = None;
    assert!(wait_until(WAIT, || {
        let segs = segments();
        closed = segs
            .iter()
            .rev()
            .skip(1)
            .find(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.len() > 100))
            .cloned();
        closed.is_some()
    }));
    let (seq, path) = closed.expect("a closed segment");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[30] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    server.shutdown();
    server.join();
    let prefix = format!("{seq:016x}-");
    let uploaded = bucket.objects("wal");
    assert!(
        !uploaded.iter().any(|k| k.starts_with(&prefix)),
        "the damaged segment {seq:016x} was uploaded: {uploaded:?}"
    );
}

/// A promotion that fails before the bucket names the replica (here: its first log segment
/// as a primary cannot be created) leaves a replica that goes on following its primary, and that a second request
/// promotes. Before, the follower thread ended with the failure: the replica stopped
/// following for good, and a second request did nothing.
#[test]
fn a_failed_promotion_leaves_a_replica_that_follows_and_can_be_promoted_again() {
    use crate::backup::WAIT;
    let _counters = BACKUP_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let ReplicaRig {
        _bucket,
        _primary,
        mut pc,
        _folder,
        faulty,
        replica,
        mut rc,
    } = ReplicaRig::new();
    // The new primary's first log segment cannot be created: the promotion stops before the
    // bucket.
    faulty.arm(
        Fault::on(&[Op::Open])
            .named("wal-")
            .errno(libc::EMFILE)
            .sticky(),
    );
    replica.promote();
    assert!(wait_until(WAIT, || !faulty.failures().is_empty()));
    pc.ok("ins", ins(2));
    assert!(
        wait_until(WAIT, || stamps(&mut rc) == [1, 2]),
        "the replica stopped following after a failed promotion"
    );
    faulty.disarm();
    replica.promote();
    let mut ts = 2;
    assert!(
        wait_until(WAIT, || {
            ts += 1;
            rc.call("ins", ins(ts)).get("error").is_none()
        }),
        "a second promotion request did not promote"
    );
    replica.shutdown();
    replica.join();
}

/// A round that cannot close the log segment still writes the manifest (the heartbeat), but
/// it does not move the manifest's `updated_ms` on: every write acknowledged before that time
/// must be in the uploaded segments, and the writes since are not (a replica's lag counts from
/// it; it read about 0 while the primary's writes stayed on its machine).
#[test]
fn a_round_that_cannot_close_the_log_leaves_the_manifests_time() {
    let _counters = BACKUP_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let BackedUp {
        server,
        faulty,
        _tmp,
        _bucket,
    } = BackedUp::start("50ms", Duration::from_secs(3600));
    let mut c = master(&server);
    c.ok("ins", ins(1));
    let newest = || _bucket.objects("manifest").pop();
    let first = newest();
    assert!(wait_until(Duration::from_secs(20), || newest() != first));
    // The segment a rotation would start next: one past the newest in the data folder.
    let writing = std::fs::read_dir(_tmp.data())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?.to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .max()
        .unwrap();
    faulty.arm(
        Fault::on(&[Op::Open])
            .named(&format!("wal-{:016x}", writing + 1))
            .errno(libc::EMFILE)
            .sticky(),
    );
    let mut ts = 1;
    assert!(wait_until(Duration::from_secs(20), || {
        ts += 1;
        c.ok("ins", ins(ts));
        !faulty.failures().is_empty()
    }));
    let manifest = || _bucket.manifest().expect("a manifest");
    let stamp = manifest()["updated_ms"].clone();
    let version = newest();
    assert!(
        wait_until(Duration::from_secs(20), || {
            ts += 1;
            c.ok("ins", ins(ts));
            newest() != version
        }),
        "no heartbeat while the log could not be closed"
    );
    assert_eq!(manifest()["updated_ms"], stamp);
    faulty.disarm();
    server.shutdown();
    server.join();
}
