//! The backup's files in the data folder under power cuts (the page-cache model) and failing
//! disks (the fault injector), through the real functions of `local.rs`.
//!
//! - a state file (`backup.json`, `replica.json`) written with a cut at every operation holds the
//!   old value or the new one after power-on, never nothing (when it held a value) or a torn one;
//!   and a write that returned is durable;
//! - a run of checkpoint stagings, an upload's removal and a restaging, cut at every operation:
//!   after power-on (and the start's `clean_staging`) every point `staged` lists holds exactly
//!   the files it was staged with, each with its content at the time;
//! - a removal of a staged point (after its upload, or before restaging the same name) that
//!   fails half-way leaves no point `staged` lists with files missing.

use super::local::{self, PrimaryState, ReplicaState, STAGED};
use crate::storage::{Backend, Fault, Faulty, Op, OpenMode, PageCache, PowerCut};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DATA: &str = "/srv/data";

/// A model disk with the data folder made durable.
fn disk() -> (PageCache, PathBuf) {
    let disk = PageCache::new();
    let data = PathBuf::from(DATA);
    disk.mkdirs(&data, true);
    (disk, data)
}

/// Replaces `dir/name` durably and atomically, as a checkpoint writes a snapshot.
fn put(fs: &dyn Backend, dir: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let temp = dir.join(format!("{name}.tmp"));
    let f = fs.open(&temp, OpenMode::Truncate)?;
    f.write_all(body.as_bytes())?;
    f.sync_all()?;
    fs.rename(&temp, &dir.join(name))?;
    fs.sync_dir(dir)
}

/// The value the state file `name` holds (its `next_segment` or `generation`).
fn state_value(fs: &dyn Backend, dir: &Path, name: &str) -> Option<u64> {
    match name {
        local::REPLICA_STATE => local::read_state::<ReplicaState>(fs, dir, name)
            .unwrap_or_else(|e| panic!("{name} unreadable: {e}"))
            .map(|s| s.next_segment),
        _ => local::read_state::<PrimaryState>(fs, dir, name)
            .unwrap_or_else(|e| panic!("{name} unreadable: {e}"))
            .map(|s| s.generation),
    }
}

fn write_value(fs: &dyn Backend, dir: &Path, name: &str, v: u64) -> std::io::Result<()> {
    match name {
        local::REPLICA_STATE => local::write_state(
            fs,
            dir,
            name,
            &ReplicaState {
                next_segment: v,
                ..Default::default()
            },
        ),
        _ => local::write_state(
            fs,
            dir,
            name,
            &PrimaryState {
                generation: v,
                owner: format!("owner-{v}"),
            },
        ),
    }
}

#[test]
fn a_state_file_cut_at_any_operation_holds_the_old_value_or_the_new() {
    for name in [local::REPLICA_STATE, local::PRIMARY_STATE] {
        for old in [None, Some(1)] {
            let mut cuts = 0;
            for k in 1.. {
                let (disk, data) = disk();
                if let Some(v) = old {
                    write_value(&disk, &data, name, v).unwrap();
                }
                disk.arm(PowerCut::at(k, k * 7919));
                let written = write_value(&disk, &data, name, 2);
                if !disk.is_cut() {
                    // Every operation done: what returned Ok is durable.
                    written.unwrap();
                    disk.cut_now(k);
                    disk.power_on();
                    assert_eq!(state_value(&disk, &data, name), Some(2), "{name}");
                    break;
                }
                cuts += 1;
                assert!(
                    written.is_err(),
                    "{name}: a write through a cut returned Ok"
                );
                disk.power_on();
                let got = state_value(&disk, &data, name);
                assert!(
                    got == old || got == Some(2),
                    "{name} (old {old:?}) cut at operation {k}: holds {got:?}\n  {}",
                    disk.cut_report()
                );
                // Whatever the cut left (a temporary file), the next write goes through.
                write_value(&disk, &data, name, 3).unwrap();
                disk.cut_now(k);
                disk.power_on();
                assert_eq!(state_value(&disk, &data, name), Some(3), "{name}, k {k}");
            }
            // open, write, fsync, rename, folder fsync.
            assert!(cuts >= 5, "{name}: only {cuts} operations were cut");
        }
    }
}

#[test]
fn a_state_file_removal_cut_at_any_operation_leaves_it_whole_or_gone() {
    for k in 1..=2 {
        let (disk, data) = disk();
        write_value(&disk, &data, local::REPLICA_STATE, 4).unwrap();
        disk.arm(PowerCut::at(k, k));
        assert!(local::remove_state(&disk, &data, local::REPLICA_STATE).is_err());
        disk.power_on();
        let got = state_value(&disk, &data, local::REPLICA_STATE);
        assert!(got.is_none() || got == Some(4), "k {k}: {got:?}");
    }
    let (disk, data) = disk();
    write_value(&disk, &data, local::REPLICA_STATE, 4).unwrap();
    local::remove_state(&disk, &data, local::REPLICA_STATE).unwrap();
    disk.cut_now(1);
    disk.power_on();
    assert_eq!(state_value(&disk, &data, local::REPLICA_STATE), None);
}

/// A point's files and their contents, by the point's folder name.
type Points = BTreeMap<String, BTreeMap<String, String>>;

/// What `staged` lists, with each point's files and contents.
fn listed(fs: &dyn Backend, data: &Path) -> Points {
    let mut out = Points::new();
    for point in local::staged(fs, data).unwrap() {
        let name = point
            .dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut files = BTreeMap::new();
        for file in local::staged_files(fs, &point).unwrap() {
            let body = fs.read(&point.dir.join(&file)).unwrap();
            files.insert(file, String::from_utf8(body).unwrap());
        }
        out.insert(name, files);
    }
    out
}

fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(n, b)| (n.to_string(), b.to_string()))
        .collect()
}

/// What checkpoints and an upload do to `backup-points/`, in order; each staged point is
/// recorded in `versions` (every version a name was staged with).
fn checkpoints_and_an_upload(
    fs: &dyn Backend,
    data: &Path,
    versions: &mut BTreeMap<String, Vec<BTreeMap<String, String>>>,
) -> std::io::Result<()> {
    let mut stage = |first: u64, time: i64, list: &[(&str, &str)]| {
        let names: Vec<String> = list.iter().map(|(n, _)| n.to_string()).collect();
        versions
            .entry(format!("{first:016x}-{time}"))
            .or_default()
            .push(files(list));
        local::stage(fs, data, first, time, &names)
    };
    // The first point: `backup-points/` is created.
    stage(
        3,
        100,
        &[
            ("snap-a.bin", "a1"),
            ("snap-b.bin", "b1"),
            ("keys.bin", "k1"),
        ],
    )?;
    // The next checkpoint rewrites one snapshot and removes another (its collection dropped).
    put(fs, data, "snap-a.bin", "a2")?;
    fs.remove_file(&data.join("snap-b.bin"))?;
    fs.sync_dir(data)?;
    stage(5, 200, &[("snap-a.bin", "a2"), ("keys.bin", "k1")])?;
    // The uploader has uploaded the first point.
    let first = local::staged(fs, data)?
        .into_iter()
        .find(|p| p.first_segment == 3)
        .ok_or_else(|| std::io::Error::other("the first point is not listed"))?;
    local::remove_staged(fs, &first)?;
    // A checkpoint in the same millisecond restages the same name.
    put(fs, data, "snap-c.bin", "c1")?;
    stage(
        5,
        200,
        &[
            ("snap-a.bin", "a2"),
            ("snap-c.bin", "c1"),
            ("keys.bin", "k1"),
        ],
    )?;
    put(fs, data, "keys.bin", "k2")?;
    stage(
        7,
        300,
        &[
            ("snap-a.bin", "a2"),
            ("snap-c.bin", "c1"),
            ("keys.bin", "k2"),
        ],
    )
}

#[test]
fn staged_points_cut_at_any_operation_are_whole_or_not_listed() {
    let mut cuts = 0;
    for k in 1.. {
        let (disk, data) = disk();
        for (name, body) in [
            ("snap-a.bin", "a1"),
            ("snap-b.bin", "b1"),
            ("keys.bin", "k1"),
        ] {
            put(&disk, &data, name, body).unwrap();
        }
        let mut versions = BTreeMap::new();
        disk.arm(PowerCut::at(k, k));
        let done = checkpoints_and_an_upload(&disk, &data, &mut versions);
        let cut = disk.is_cut();
        if !cut {
            done.unwrap();
            disk.cut_now(k);
        }
        disk.power_on();
        // The start of a primary: half-staged points go.
        local::clean_staging(&disk, &data).unwrap();
        let points = listed(&disk, &data);
        for (name, held) in &points {
            let staged = versions
                .get(name)
                .unwrap_or_else(|| panic!("cut at {k}: {name} listed, never staged: {points:?}"));
            assert!(
                staged.contains(held),
                "cut at operation {k}: point {name} holds {held:?}, staged as {staged:?}\n  {}",
                disk.cut_report()
            );
        }
        let hidden: Vec<String> = disk
            .list(&data.join(STAGED))
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "cut at {k}: left {hidden:?}");
        if !cut {
            // Every operation done and returned: the last two points are durable.
            assert_eq!(
                points.keys().collect::<Vec<_>>(),
                ["0000000000000005-200", "0000000000000007-300"],
                "{points:?}"
            );
            break;
        }
        cuts += 1;
        // Staging goes on after the cut.
        local::stage(&disk, &data, 9, 400, &["keys.bin".to_owned()]).unwrap();
        let after = listed(&disk, &data);
        assert!(after.contains_key("0000000000000009-400"), "cut at {k}");
    }
    assert!(cuts > 30, "only {cuts} operations were cut");
}

/// The fault injector over the model: a staged point of three files, and the fault armed.
fn point_with_a_failing_removal(fault: Fault) -> (Arc<Faulty>, PathBuf) {
    let (disk, data) = disk();
    let fs = Arc::new(Faulty::new(Arc::new(disk)));
    for (name, body) in [
        ("snap-a.bin", "a1"),
        ("snap-b.bin", "b1"),
        ("keys.bin", "k1"),
    ] {
        put(&*fs, &data, name, body).unwrap();
    }
    let names = ["snap-a.bin", "snap-b.bin", "keys.bin"].map(String::from);
    local::stage(&*fs, &data, 3, 100, &names).unwrap();
    fs.arm(fault);
    (fs, data)
}

/// Every point listed holds all three files of [`point_with_a_failing_removal`].
fn assert_whole_or_unlisted(fs: &dyn Backend, data: &Path, what: &str) {
    let whole = files(&[
        ("snap-a.bin", "a1"),
        ("snap-b.bin", "b1"),
        ("keys.bin", "k1"),
    ]);
    for (name, held) in listed(fs, data) {
        assert_eq!(
            held, whole,
            "{what}: point {name} is listed with files missing"
        );
    }
}

#[test]
fn an_uploaded_point_whose_removal_fails_half_way_is_not_listed_with_files_missing() {
    // The second file removal fails (EIO): one file is gone already.
    let (fs, data) = point_with_a_failing_removal(Fault::on(&[Op::Remove]).nth(2));
    let point = local::staged(&*fs, &data).unwrap().remove(0);
    assert!(local::remove_staged(&*fs, &point).is_err());
    fs.disarm();
    // The uploader's next round lists the points again, and would upload one missing a file
    // over the whole one already in the bucket (same key).
    assert_whole_or_unlisted(&*fs, &data, "after a failed removal");
}

#[test]
fn a_restaged_point_whose_old_version_cannot_be_removed_is_not_listed_with_files_missing() {
    let (fs, data) = point_with_a_failing_removal(Fault::on(&[Op::Remove]).named("snap-b"));
    let names = ["snap-a.bin", "snap-b.bin", "keys.bin"].map(String::from);
    assert!(local::stage(&*fs, &data, 3, 100, &names).is_err());
    fs.disarm();
    assert_whole_or_unlisted(&*fs, &data, "after a failed restaging");
}
