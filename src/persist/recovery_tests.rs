//! Start-up over log segments that a full disk, a crash or damage left behind: through the
//! failure injector ([`Faulty`]) over the page-cache model ([`PageCache`]), so that what
//! survives a power cut after the recovery is what the recovery made durable.

use super::codec::WalOp;
use super::recovery::{open, Recovered};
use super::test_disk::disk;
use super::wal::{segment_name, FsyncPolicy};
use crate::storage::{Fault, Faulty, Op, PageCache};
use std::path::Path;
use std::sync::Arc;

fn ins(ts: i64) -> WalOp<'static> {
    WalOp::Insert {
        col: "c",
        records: vec![("d", ts, "x")],
    }
}

/// The timestamps of document `d` of collection `c` among `0..100`.
fn stamps(rec: &Recovered) -> Vec<i64> {
    let Some(c) = rec.store.get("c") else {
        return Vec::new();
    };
    let c = c.read();
    (0..100).filter(|&ts| c.has_record("d", ts)).collect()
}

fn segments(fs: &PageCache, dir: &Path) -> Vec<String> {
    fs.list(dir)
        .into_iter()
        .filter(|n| n.starts_with("wal-"))
        .collect()
}

/// Cuts the power (keeping only what is durable) and turns it back on.
fn power_cut(fs: &PageCache, seed: u64) {
    fs.cut_now(seed);
    fs.power_on();
}

/// A checkpoint on a full disk cannot write the new segment's header; the next log write is cut
/// short by the full disk too (entry 1 was acknowledged, entry 2 was not). Returns the disk and
/// the data folder.
fn full_disk_at_a_checkpoint(rotation_fault: Fault) -> (Arc<PageCache>, std::path::PathBuf) {
    let (pc, dir) = disk();
    let faulty = Arc::new(Faulty::new(pc.clone()));
    let rec = open(faulty.clone(), &dir, FsyncPolicy::EverySec, false).unwrap();
    let j = &rec.journal;
    let lsn = j.log(&ins(1)).unwrap();
    j.wait(lsn).unwrap();
    faulty.arm(rotation_fault);
    assert!(j.checkpoint(&rec.store).is_err(), "the checkpoint rotated");
    faulty.arm(
        Fault::on(&[Op::Write])
            .named("wal-")
            .errno(libc::ENOSPC)
            .torn()
            .sticky(),
    );
    let lsn = j.log(&ins(2)).unwrap();
    assert_eq!(j.wait(lsn).unwrap_err().os_error(), Some(libc::ENOSPC));
    drop(rec);
    faulty.disarm();
    (pc, dir)
}

/// The audit's scenario: the segment the failed rotation started is removed again, so the
/// torn entry is the last segment's tail, and start-up trims it, keeping every acknowledged
/// entry.
#[test]
fn a_segment_a_full_disk_kept_from_starting_is_removed_and_start_up_succeeds() {
    let (pc, dir) = full_disk_at_a_checkpoint(
        Fault::on(&[Op::Write])
            .named("wal-")
            .errno(libc::ENOSPC)
            .sticky(),
    );
    assert_eq!(
        segments(&pc, &dir),
        [segment_name(1)],
        "the segment the failed rotation started was left behind"
    );
    let rec = open(pc.clone(), &dir, FsyncPolicy::EverySec, false).unwrap();
    assert_eq!(stamps(&rec), [1]);
    drop(rec);
    power_cut(&pc, 1);
    let rec = open(pc.clone(), &dir, FsyncPolicy::EverySec, false).unwrap();
    assert_eq!(stamps(&rec), [1]);
}
