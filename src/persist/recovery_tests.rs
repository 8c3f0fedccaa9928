//! Start-up over log segments that a full disk, a crash or damage left behind: through the
//! failure injector ([`Faulty`]) over the page-cache model ([`PageCache`]), so that what
//! survives a power cut after the recovery is what the recovery made durable.

use super::codec::WalOp;
use super::error::{Damage, Error};
use super::recovery::{open, Recovered};
use super::test_disk::{disk, overwrite};
use super::wal::{segment_name, FsyncPolicy, Wal, HEADER, SEGMENT_MAGIC, TIME};
use super::wal_read::read_segment;
use crate::storage::{Backend, Fault, Faulty, Op, OpenMode, PageCache};
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

/// When the half-made segment cannot be removed either, it holds no entries (nothing, part of
/// the header, or the header and zeros): the torn entry before it is a crash tail. Start-up trims
/// it, removes the empty segment, and both stay done across a power cut.
#[test]
fn a_torn_tail_before_segments_without_entries_is_trimmed() {
    for left in ["nothing", "part of the header", "the header and zeros"] {
        let mut fault = Fault::on(&[Op::Write, Op::Remove])
            .named("wal-")
            .errno(libc::ENOSPC)
            .sticky();
        if left == "part of the header" {
            fault = fault.torn();
        }
        let (pc, dir) = full_disk_at_a_checkpoint(fault);
        assert_eq!(segments(&pc, &dir), [segment_name(1), segment_name(2)]);
        let second = dir.join(segment_name(2));
        let expected: &[u8] = match left {
            "part of the header" => &SEGMENT_MAGIC[..4],
            "the header and zeros" => {
                let mut bytes = SEGMENT_MAGIC.to_vec();
                bytes.resize(10_000, 0);
                overwrite(&pc, &second, &bytes);
                &[]
            }
            _ => &[],
        };
        if left != "the header and zeros" {
            assert_eq!(pc.read(&second).unwrap(), expected, "{left}");
        }
        let rec = open(pc.clone(), &dir, FsyncPolicy::EverySec, false)
            .unwrap_or_else(|e| panic!("{left}: start-up refused: {e}"));
        assert_eq!(stamps(&rec), [1], "{left}");
        assert_eq!(segments(&pc, &dir), [segment_name(1), segment_name(3)]);
        drop(rec);
        power_cut(&pc, 3);
        assert_eq!(segments(&pc, &dir), [segment_name(1), segment_name(3)]);
        let rec = open(pc.clone(), &dir, FsyncPolicy::EverySec, false).unwrap();
        assert_eq!(stamps(&rec), [1], "{left}");
    }
}

/// Writes entries `1..=n` to segment 1 and `n+1..=2n` to segment 2.
fn two_segments(fs: &Arc<PageCache>, dir: &Path, n: i64) {
    let wal = Wal::create(fs.clone(), dir, 1, FsyncPolicy::Always).unwrap();
    for ts in 1..=2 * n {
        let lsn = wal.append(&ins(ts)).unwrap();
        wal.wait(lsn).unwrap();
        if ts == n {
            assert_eq!(wal.rotate().unwrap(), 2);
        }
    }
}

/// A torn entry followed by a segment that holds entries, or part of one, is damage: start-up
/// refuses (`--repair` loads what is intact).
#[test]
fn a_torn_entry_before_a_segment_with_entries_still_refuses() {
    for later in ["entries", "part of an entry", "a damaged header"] {
        let (fs, dir) = disk();
        two_segments(&fs, &dir, 3);
        let first = dir.join(segment_name(1));
        let bytes = fs.read(&first).unwrap();
        overwrite(&fs, &first, &bytes[..bytes.len() - 3]);
        let second = dir.join(segment_name(2));
        let bytes = fs.read(&second).unwrap();
        match later {
            "part of an entry" => overwrite(&fs, &second, &bytes[..SEGMENT_MAGIC.len() + 5]),
            "a damaged header" => overwrite(&fs, &second, b"FLXWAX02"),
            _ => {}
        }
        match open(fs.clone(), &dir, FsyncPolicy::Always, false) {
            Err(Error::Corrupt {
                path,
                damage: Damage::TornBeforeLast { .. },
            }) => assert_eq!(path, first, "{later}"),
            Err(e) => panic!("{later}: {e}"),
            Ok(_) => panic!("{later}: started over a torn entry before {later}"),
        }
        let rec = open(fs.clone(), &dir, FsyncPolicy::Always, true).unwrap();
        let expected: &[i64] = match later {
            "entries" => &[1, 2, 4, 5, 6],
            _ => &[1, 2],
        };
        assert_eq!(stamps(&rec), expected, "{later}");
    }
}

/// Writes entries `1..=n` to segment 1; returns where each starts and the segment's bytes.
fn one_segment(fs: &Arc<PageCache>, dir: &Path, n: i64) -> (Vec<usize>, Vec<u8>) {
    let wal = Wal::create(fs.clone(), dir, 1, FsyncPolicy::Always).unwrap();
    for ts in 1..=n {
        let lsn = wal.append(&ins(ts)).unwrap();
        wal.wait(lsn).unwrap();
    }
    let path = dir.join(segment_name(1));
    let mut at = Vec::new();
    read_segment(&**fs, &path, |e| {
        at.push(e.offset as usize);
        Ok(())
    })
    .unwrap();
    assert_eq!(at.len(), n as usize);
    (at, fs.read(&path).unwrap())
}

/// Replaces a file's bytes with `bytes`, durably (the damage is on the disk).
fn damage_durably(fs: &PageCache, path: &Path, bytes: &[u8]) {
    overwrite(fs, path, bytes);
    fs.open(path, OpenMode::Write).unwrap().sync_all().unwrap();
}

/// An entry whose length is intact but whose bytes fail their checksum, in the middle of a
/// segment: start-up refuses; `--repair` skips just that entry, replays every entry before and
/// after it, says how many it skipped, keeps the damaged segment as `*.corrupt`, and what it
/// loaded survives a power cut and starts without `--repair`.
#[test]
fn repair_skips_an_entry_whose_bytes_fail_their_checksum_and_replays_the_rest() {
    for (damaged, kept) in [(&[3][..], &[1, 2, 4, 5, 6][..]), (&[2, 5], &[1, 3, 4, 6])] {
        let (fs, dir) = disk();
        let (at, mut bytes) = one_segment(&fs, &dir, 6);
        for &ts in damaged {
            bytes[at[ts - 1] + HEADER + TIME + 2] ^= 0x55;
        }
        damage_durably(&fs, &dir.join(segment_name(1)), &bytes);
        match open(fs.clone(), &dir, FsyncPolicy::Always, false) {
            Err(Error::Corrupt {
                damage: Damage::EntryChecksum { offset },
                ..
            }) => assert_eq!(offset as usize, at[damaged[0] - 1]),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("started over a damaged entry without --repair"),
        }
        let rec = open(fs.clone(), &dir, FsyncPolicy::Always, true).unwrap();
        assert_eq!(stamps(&rec), kept, "damaged {damaged:?}");
        assert_eq!(rec.report.skipped_entries, damaged.len());
        assert_eq!(rec.report.dropped_bytes, 0);
        let corrupt = dir.join(format!("{}.corrupt", segment_name(1)));
        assert_eq!(rec.report.repaired_files, std::slice::from_ref(&corrupt));
        assert_eq!(
            fs.read(&corrupt).unwrap(),
            bytes,
            "the damaged segment is kept"
        );
        drop(rec);
        power_cut(&fs, 5);
        let rec = open(fs.clone(), &dir, FsyncPolicy::Always, false).unwrap();
        assert_eq!(stamps(&rec), kept, "after a power cut, damaged {damaged:?}");
        assert_eq!(fs.read(&corrupt).unwrap(), bytes);
    }
}

/// The intact entries `--repair` loads from a damaged segment are only in memory until its
/// checkpoint saves them: a checkpoint that fails (a full disk) stops start-up and leaves the
/// segment in place, so that the next `--repair` loads them again; moved aside first, they would
/// have been in no file.
#[test]
fn a_repair_whose_snapshot_fails_keeps_the_damaged_segment_for_the_next_try() {
    let (fs, dir) = disk();
    let (at, mut bytes) = one_segment(&fs, &dir, 6);
    bytes[at[2] + HEADER + TIME + 2] ^= 0x55;
    damage_durably(&fs, &dir.join(segment_name(1)), &bytes);
    let faulty = Arc::new(Faulty::new(fs.clone()));
    faulty.arm(
        Fault::on(&[Op::Write])
            .named("snap-")
            .errno(libc::ENOSPC)
            .sticky(),
    );
    match open(faulty.clone(), &dir, FsyncPolicy::Always, true) {
        Err(Error::RepairUnsaved { failed: 1 }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started with the repaired entries saved nowhere"),
    }
    assert_eq!(
        fs.read(&dir.join(segment_name(1))).unwrap(),
        bytes,
        "the damaged segment stays for the next try"
    );
    power_cut(&fs, 3);
    faulty.disarm();
    let rec = open(faulty, &dir, FsyncPolicy::Always, true).unwrap();
    assert_eq!(stamps(&rec), [1, 2, 4, 5, 6]);
    drop(rec);
    power_cut(&fs, 4);
    let rec = open(fs.clone(), &dir, FsyncPolicy::Always, false).unwrap();
    assert_eq!(stamps(&rec), [1, 2, 4, 5, 6], "after a power cut");
}

/// A damaged length leaves no way to find the next entry: `--repair` replays the entries
/// before it and reports how many bytes after the damage it dropped.
#[test]
fn repair_stops_at_a_damaged_length_and_reports_the_bytes_dropped() {
    let (fs, dir) = disk();
    let (at, mut bytes) = one_segment(&fs, &dir, 6);
    bytes[at[2] + 1] ^= 0x55;
    damage_durably(&fs, &dir.join(segment_name(1)), &bytes);
    assert!(matches!(
        open(fs.clone(), &dir, FsyncPolicy::Always, false),
        Err(Error::Corrupt {
            damage: Damage::EntryHeader { .. },
            ..
        })
    ));
    let rec = open(fs.clone(), &dir, FsyncPolicy::Always, true).unwrap();
    assert_eq!(stamps(&rec), [1, 2]);
    assert_eq!(rec.report.skipped_entries, 0);
    assert_eq!(rec.report.dropped_bytes, (bytes.len() - at[2]) as u64);
    let corrupt = dir.join(format!("{}.corrupt", segment_name(1)));
    assert_eq!(fs.read(&corrupt).unwrap(), bytes);
}

/// The last entry of the log with all its bytes but a failing checksum is not a crash tail.
/// Under `--fsync always` it was fdatasynced before it was acknowledged: start-up refuses and
/// leaves the segment as it is; `--repair` drops it. Under `everysec` (a power cut can tear a
/// whole-length append there) it is dropped at start-up. Either way its bytes are kept as
/// `<segment>.<offset>.corrupt`, durably.
#[test]
fn a_whole_last_entry_failing_its_checksum_is_kept_and_refused_under_always() {
    for (policy, repair) in [
        (FsyncPolicy::Always, true),
        (FsyncPolicy::EverySec, false),
        (FsyncPolicy::Never, false),
    ] {
        let (fs, dir) = disk();
        let (at, mut bytes) = one_segment(&fs, &dir, 3);
        let n = bytes.len();
        bytes[n - 1] ^= 0x55;
        let path = dir.join(segment_name(1));
        damage_durably(&fs, &path, &bytes);
        if policy == FsyncPolicy::Always {
            match open(fs.clone(), &dir, policy, false) {
                Err(Error::Corrupt {
                    path: p,
                    damage: Damage::EntryChecksum { offset },
                }) => assert!(p == path && offset as usize == at[2]),
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("dropped an fsynced entry without --repair"),
            }
            assert_eq!(
                fs.read(&path).unwrap(),
                bytes,
                "the refusal changed the segment"
            );
        }
        let rec = open(fs.clone(), &dir, policy, repair).unwrap();
        assert_eq!(stamps(&rec), [1, 2], "{policy:?}");
        let copy = dir.join(format!("{}.{}.corrupt", segment_name(1), at[2]));
        assert_eq!(rec.report.repaired_files.contains(&copy), repair);
        drop(rec);
        power_cut(&fs, 9);
        assert_eq!(fs.read(&copy).unwrap(), &bytes[at[2]..], "{policy:?}");
        let rec = open(fs.clone(), &dir, policy, false).unwrap();
        assert_eq!(stamps(&rec), [1, 2], "{policy:?}");
    }
}

/// An entry cut short is the crash tail under every policy, `always` included: trimmed, no copy.
#[test]
fn an_entry_cut_short_is_trimmed_under_always() {
    let (fs, dir) = disk();
    let (_, bytes) = one_segment(&fs, &dir, 3);
    damage_durably(&fs, &dir.join(segment_name(1)), &bytes[..bytes.len() - 3]);
    let rec = open(fs.clone(), &dir, FsyncPolicy::Always, false).unwrap();
    assert_eq!(stamps(&rec), [1, 2]);
    assert!(!fs.list(&dir).iter().any(|n| n.ends_with(".corrupt")));
}
