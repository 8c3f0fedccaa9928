//! The bucket's layout: object keys, the manifest and restore points (JSON), and the checks a
//! reader makes on every object. Keys are relative to the location's prefix:
//!
//! - `manifest/<version>.json`: the [`Manifest`] (generation, history, how far the log is
//!   uploaded, the current key file), one object per change (see [`super::manifests`]);
//! - `wal/<seq>-<gen>-<first_ms>-<last_ms>-<size>-<crc>.log`: one closed log segment (v2) as
//!   the primary of generation `gen` wrote it, with the write times of its first and last
//!   entries;
//! - `points/<first_segment>-<gen>-<time_ms>.json`: a [`Point`] (restore point);
//! - `files/<name>-<size>-<crc>.bin`: a snapshot, key file or retention file, by content, so
//!   a file unchanged since the last restore point is uploaded once.
//!
//! Numbers are lower-case hex of fixed width, except times (decimal milliseconds since the
//! Unix epoch); `crc` is the CRC-32 of the content (unpacked), checked by every reader.
//!
//! Format 2 (the manifest's `format`) may store segments and snapshots compressed, as
//! [`super::packing`] describes; readers unpack any object that starts with its magic, so the
//! format-1 objects of an older primary in the same bucket still read. The key file is never
//! packed.

use serde::{Deserialize, Serialize};

/// One generation: the primary that wrote segments `from_segment` up to `end_segment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Era {
    pub generation: u64,
    pub from_segment: u64,
    /// Set when a newer generation took over: segments from here on are not this one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_segment: Option<u64>,
}

/// An uploaded file of a restore point (or the current key file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Its name in a data folder.
    pub name: String,
    pub key: String,
    pub size: u64,
    pub crc: u32,
}

/// The bucket format this version writes (and the newest it reads).
pub const FORMAT: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Bumped by each promotion; only the primary of this generation writes the manifest.
    pub generation: u64,
    /// A random name of the data folder whose server is that primary (it keeps it in
    /// `backup.json`), so a restarted primary knows the bucket is still its own.
    #[serde(default)]
    pub owner: String,
    pub history: Vec<Era>,
    /// Every segment below this one (in the history's ranges) is uploaded.
    pub next_segment: u64,
    /// The key file as of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<FileRef>,
    /// Every write the primary acknowledged before this time (its clock, ms) is in the
    /// segments below `next_segment`: the moment its last round closed the log (a round that
    /// could not close it leaves the time as it was). Rewritten every round, so it is also the
    /// primary's heartbeat; a replica's lag counts from it.
    pub updated_ms: i64,
}

impl Manifest {
    pub fn new(first_segment: u64, owner: String) -> Manifest {
        Manifest {
            format: FORMAT,
            generation: 1,
            owner,
            history: vec![Era {
                generation: 1,
                from_segment: first_segment,
                end_segment: None,
            }],
            next_segment: first_segment,
            keys: None,
            updated_ms: crate::persist::now_ms(),
        }
    }

    /// Whether `other` names the same primary: the same generation and data folder.
    pub fn same_primary(&self, other: &Manifest) -> bool {
        self.generation == other.generation && self.owner == other.owner
    }

    /// The uploaded segments from `from` on, in order, with their generations.
    pub fn segments_from(&self, from: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for era in &self.history {
            let end = era.end_segment.unwrap_or(self.next_segment);
            for seq in era.from_segment.max(from)..end.min(self.next_segment) {
                out.push((seq, era.generation));
            }
        }
        out
    }
}

/// A restore point: snapshots (and keys, retention) that, with the segments from
/// `first_segment` on, rebuild the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub generation: u64,
    pub first_segment: u64,
    /// When the checkpoint ended: the snapshots hold no write made later.
    pub time_ms: i64,
    pub files: Vec<FileRef>,
    /// The log segment being written when the point was uploaded: the checkpoint ended in it or
    /// in an earlier one. Its snapshots were copied while writes went on, so they are a state
    /// that existed only once the log is replayed over them to where the copying ended: the
    /// point can be restored once every segment up to this one is in the manifest
    /// ([`Point::whole_in`]). Points uploaded before this was recorded: none (they are taken
    /// as earlier versions took them, see [`Point::whole_in`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_segment: Option<u64>,
}

impl Point {
    /// Whether `m` lists every segment the point needs to be a state that existed: those of
    /// its generation up to [`Point::last_segment`]. A point uploaded in a round whose manifest
    /// was never written (the primary died in between), or whose generation was deposed
    /// before its copying ended, is not. A point that does not record it (uploaded by an
    /// earlier version) counts as whole once the log reaches its first segment, as earlier
    /// versions took it: their clean stop uploads a last point whose first segment is empty
    /// and never uploaded.
    pub fn whole_in(&self, m: &Manifest) -> bool {
        let last = self
            .last_segment
            .unwrap_or(self.first_segment.saturating_sub(1));
        last < m.next_segment
            && m.history.iter().any(|e| {
                e.generation == self.generation
                    && self.first_segment >= e.from_segment
                    && e.end_segment.is_none_or(|end| last < end)
            })
    }
}

/// A fresh owner name: unpredictable enough that two servers never draw the same.
pub fn new_owner() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

pub fn point_key(first_segment: u64, generation: u64, time_ms: i64) -> String {
    format!("points/{first_segment:016x}-{generation:08x}-{time_ms}.json")
}

/// `(first_segment, generation, time_ms)` of a restore point's key.
pub fn parse_point_key(key: &str) -> Option<(u64, u64, i64)> {
    let rest = key.strip_prefix("points/")?.strip_suffix(".json")?;
    let mut parts = rest.split('-');
    let seq = u64::from_str_radix(parts.next()?, 16).ok()?;
    let generation = u64::from_str_radix(parts.next()?, 16).ok()?;
    let time = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((seq, generation, time))
}

/// A segment object's name fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentKey {
    pub seq: u64,
    pub generation: u64,
    /// Write times of its first and last entries (0 for an empty segment).
    pub first_ms: i64,
    pub last_ms: i64,
    pub size: u64,
    pub crc: u32,
}

impl SegmentKey {
    pub fn key(&self) -> String {
        format!(
            "{}{}-{}-{:x}-{:08x}.log",
            segment_prefix(self.seq, self.generation),
            self.first_ms,
            self.last_ms,
            self.size,
            self.crc
        )
    }

    pub fn parse(key: &str) -> Option<SegmentKey> {
        let rest = key.strip_prefix("wal/")?.strip_suffix(".log")?;
        let mut parts = rest.split('-');
        let seq = u64::from_str_radix(parts.next()?, 16).ok()?;
        let generation = u64::from_str_radix(parts.next()?, 16).ok()?;
        let first_ms = parts.next()?.parse().ok()?;
        let last_ms = parts.next()?.parse().ok()?;
        let size = u64::from_str_radix(parts.next()?, 16).ok()?;
        let crc = u32::from_str_radix(parts.next()?, 16).ok()?;
        parts.next().is_none().then_some(SegmentKey {
            seq,
            generation,
            first_ms,
            last_ms,
            size,
            crc,
        })
    }
}

/// The prefix every object of segment `seq` from generation `generation` starts with.
pub fn segment_prefix(seq: u64, generation: u64) -> String {
    format!("wal/{seq:016x}-{generation:08x}-")
}

/// The key of a data-folder file by content.
pub fn file_key(name: &str, size: u64, crc: u32) -> String {
    let stem = name.strip_suffix(".bin").unwrap_or(name);
    format!("files/{stem}-{size:x}-{crc:08x}.bin")
}

/// Checks an object's bytes against the size and checksum its reference gives; the error says
/// how they differ.
pub fn verify(_key: &str, body: &[u8], size: u64, crc: u32) -> Result<(), String> {
    if body.len() as u64 != size {
        return Err(format!("{} bytes where {size} were uploaded", body.len()));
    }
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_valid_object_keys() {
        let s = SegmentKey {
            seq: 12,
            generation: 2,
            first_ms: 1_700_000_000_000,
            last_ms: 1_700_000_000_999,
            size: 4096,
            crc: 0xdead_beef,
        };
        assert_eq!(SegmentKey::parse(&s.key()), Some(s.clone()));
        assert!(crate::objstore::valid_key(&s.key()));
        let p = point_key(7, 1, 123);
        assert_eq!(parse_point_key(&p), Some((7, 1, 123)));
        assert!(crate::objstore::valid_key(&file_key(
            "snap-0000000000000001.bin",
            9,
            1
        )));
    }

    /// Generation 1 wrote segments 3 to 7, generation 2 from 9 on; 11 is next.
    fn two_eras() -> Manifest {
        let mut m = Manifest::new(3, "x".into());
        m.history[0].end_segment = Some(8);
        m.history.push(Era {
            generation: 2,
            from_segment: 9,
            end_segment: None,
        });
        m.next_segment = 11;
        m
    }

    #[test]
    fn history_gives_each_segment_one_owner() {
        let m = two_eras();
        assert_eq!(m.segments_from(6), vec![(6, 1), (7, 1), (9, 2), (10, 2)]);
    }

    #[test]
    fn a_point_is_whole_once_its_generation_uploaded_its_last_segment() {
        let m = two_eras();
        let point = |generation, first_segment, last_segment| Point {
            generation,
            first_segment,
            time_ms: 0,
            files: Vec::new(),
            last_segment,
        };
        assert!(point(2, 9, Some(10)).whole_in(&m));
        // Its last segment not uploaded yet.
        assert!(!point(2, 10, Some(11)).whole_in(&m));
        // Copying ended after its generation was deposed.
        assert!(point(1, 7, Some(7)).whole_in(&m));
        assert!(!point(1, 7, Some(8)).whole_in(&m));
        // Older points: whole once the log reaches their first segment.
        assert!(point(2, 11, None).whole_in(&m));
        assert!(!point(2, 12, None).whole_in(&m));
        assert!(point(1, 8, None).whole_in(&m));
        assert!(!point(3, 9, Some(9)).whole_in(&m));
    }
}
