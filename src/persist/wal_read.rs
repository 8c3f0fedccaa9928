//! Reading the write-ahead log back: finding segments, and walking the entries of one (on
//! disk or in memory) in both segment versions, v1 (bare entries) and v2 ([`SEGMENT_MAGIC`],
//! then entries that start with their write time). The format itself is described in
//! [`super::wal`], which writes it.

use super::codec::crc32;
use super::error::{Damage, Error};
use super::wal::{segment_seq, HEADER, SEGMENT_MAGIC, TIME};
use crate::storage::{Backend, Io, Op, OpenMode};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest entry accepted when reading (a 1 GiB message cannot make a larger one).
const MAX_ENTRY: usize = 2 << 30;

/// Segment files in `dir`, oldest first.
pub fn list_segments(fs: &dyn Backend, dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let mut out = Vec::new();
    for entry in fs.read_dir(dir).map_err(Error::io(Op::ReadDir, dir))? {
        if let Some(seq) = entry.name.to_str().and_then(segment_seq) {
            out.push((seq, dir.join(&entry.name)));
        }
    }
    out.sort();
    Ok(out)
}

/// How reading a segment ended.
#[derive(Debug)]
pub enum SegmentEnd {
    /// Every byte was a valid entry.
    Clean,
    /// The segment ends in an incomplete entry (cut short, or zeros where its length should
    /// be) starting at this offset: a crash during an append.
    TornTail(u64),
    /// The segment's last entry, starting at this offset, has every byte its length gives it
    /// but fails its checksum: damage, or an append torn by a power cut on a file system that
    /// made the file longer before writing all of its bytes.
    BadLastEntry(u64),
    /// A damaged entry is followed by more data.
    Corrupt(Damage),
}

impl SegmentEnd {
    /// What is wrong with a segment that did not read clean (`None`: it did).
    pub fn damage(&self) -> Option<String> {
        match self {
            SegmentEnd::Clean => None,
            SegmentEnd::TornTail(at) => Some(format!("an incomplete entry at byte {at}")),
            SegmentEnd::BadLastEntry(at) => {
                Some(format!("a last entry failing its checksum at byte {at}"))
            }
            SegmentEnd::Corrupt(d) => Some(format!("a damaged entry followed by more ({d})")),
        }
    }
}

/// One entry as read back: when it was written (`None` in a v1 segment) and its encoded op.
pub struct Entry<'a> {
    pub time_ms: Option<i64>,
    pub op: &'a [u8],
    /// Where the entry starts in its segment.
    pub offset: u64,
}

/// What reading does at an entry whose length is intact (it passes its own checksum) but whose
/// bytes fail theirs, with more data after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadEntry {
    /// Stop there: the segment ends [`SegmentEnd::Corrupt`].
    Stop,
    /// Pass over it to the next entry, which the intact length locates (`--repair`), and note
    /// where it was in [`Walked::skipped`].
    Skip,
}

/// How reading a whole segment went.
#[derive(Debug)]
pub struct Walked {
    pub end: SegmentEnd,
    /// Where the entries passed over under [`BadEntry::Skip`] start.
    pub skipped: Vec<u64>,
    /// The segment's size in bytes.
    pub size: u64,
}

/// Reads every valid entry of a segment, in order, handing each to `apply`.
#[cfg(test)]
pub fn read_segment(
    fs: &dyn Backend,
    path: &Path,
    apply: impl FnMut(&Entry<'_>) -> Result<(), Damage>,
) -> Result<SegmentEnd, Error> {
    Ok(walk_segment(fs, path, BadEntry::Stop, apply)?.end)
}

/// Like [`read_segment`], doing `bad` at an entry whose bytes fail their checksum.
pub fn walk_segment(
    fs: &dyn Backend,
    path: &Path,
    bad: BadEntry,
    apply: impl FnMut(&Entry<'_>) -> Result<(), Damage>,
) -> Result<Walked, Error> {
    let file = fs
        .open(path, OpenMode::Read)
        .map_err(Error::io(Op::Open, path))?;
    let size = file.size().map_err(Error::io(Op::Stat, path))?;
    let reader = io::BufReader::with_capacity(1 << 20, Io(&*file));
    let mut skipped = Vec::new();
    let end =
        read_entries(reader, size, bad, &mut skipped, apply).map_err(Error::io(Op::Read, path))?;
    Ok(Walked { end, skipped, size })
}

/// Reads the entries of a segment held in memory (one downloaded from object storage).
pub fn read_segment_bytes(
    bytes: &[u8],
    apply: impl FnMut(&Entry<'_>) -> Result<(), Damage>,
) -> SegmentEnd {
    let size = bytes.len() as u64;
    match read_entries(bytes, size, BadEntry::Stop, &mut Vec::new(), apply) {
        Ok(end) => end,
        // Reading a slice cannot fail.
        Err(_) => SegmentEnd::TornTail(0),
    }
}

/// Whether a segment holds no entry, not even part of one: it is empty, holds the v2 header or
/// part of it, or the header followed by zeros only (blocks a crash left allocated). A segment
/// a failed rotation started looks like this.
pub fn holds_no_entries(fs: &dyn Backend, path: &Path) -> Result<bool, Error> {
    let file = fs
        .open(path, OpenMode::Read)
        .map_err(Error::io(Op::Open, path))?;
    let mut reader = io::BufReader::with_capacity(1 << 16, Io(&*file));
    let mut head = [0u8; 8];
    let got = read_full(&mut reader, &mut head).map_err(Error::io(Op::Read, path))?;
    if got < head.len() {
        return Ok(SEGMENT_MAGIC.starts_with(&head[..got]));
    }
    if head != *SEGMENT_MAGIC {
        return Ok(false);
    }
    rest_is_zero(&mut reader).map_err(Error::io(Op::Read, path))
}

/// How many leading bytes of a segment (held in memory) to keep so that it ends with its last
/// entry written at or before `time_ms`: a point-in-time restore cuts the log there. Entries of
/// a v1 segment carry no time and are all kept.
pub fn prefix_until(bytes: &[u8], time_ms: i64) -> usize {
    let mut cut = None;
    let end = read_segment_bytes(bytes, |e| match e.time_ms {
        Some(t) if t > time_ms => {
            cut = Some(e.offset as usize);
            Err(Damage::TooShort)
        }
        _ => Ok(()),
    });
    match (cut, end) {
        (Some(at), _) => at,
        (None, SegmentEnd::TornTail(at) | SegmentEnd::BadLastEntry(at)) => at as usize,
        _ => bytes.len(),
    }
}

/// The entries of a segment of `size` bytes read from `reader`.
fn read_entries(
    mut reader: impl Read,
    size: u64,
    bad: BadEntry,
    skipped: &mut Vec<u64>,
    mut apply: impl FnMut(&Entry<'_>) -> Result<(), Damage>,
) -> io::Result<SegmentEnd> {
    let mut head = [0u8; 8];
    let got = read_full(&mut reader, &mut head)?;
    if got == 0 {
        return Ok(SegmentEnd::Clean);
    }
    let timed = head == *SEGMENT_MAGIC;
    if !timed && got as u64 == size && SEGMENT_MAGIC.starts_with(&head[..got]) {
        // The header itself was torn by a crash: the segment holds nothing.
        return Ok(SegmentEnd::TornTail(0));
    }
    let prefix: &[u8] = if timed { &[] } else { &head[..got] };
    let mut reader = prefix.chain(reader);
    let mut offset = if timed { SEGMENT_MAGIC.len() as u64 } else { 0 };
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; HEADER];
        let got = read_full(&mut reader, &mut header)?;
        if got == 0 {
            return Ok(SegmentEnd::Clean);
        }
        if got < HEADER {
            return Ok(SegmentEnd::TornTail(offset));
        }
        let len_bytes = [header[0], header[1], header[2], header[3]];
        let len_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let len = u32::from_le_bytes(len_bytes) as usize;
        if crc32(&len_bytes) != len_crc {
            // Zeros to the end are pre-allocated blocks a crash left behind; anything else is
            // damage.
            let zeros = header.iter().all(|&b| b == 0) && rest_is_zero(&mut reader)?;
            return Ok(if zeros {
                SegmentEnd::TornTail(offset)
            } else {
                SegmentEnd::Corrupt(Damage::EntryHeader { offset })
            });
        }
        let end = offset + (HEADER + len) as u64;
        if end > size {
            return Ok(SegmentEnd::TornTail(offset));
        }
        if len > MAX_ENTRY {
            return Ok(SegmentEnd::Corrupt(Damage::EntryTooLarge { offset }));
        }
        payload.resize(len, 0);
        if read_full(&mut reader, &mut payload)? < len {
            return Ok(SegmentEnd::TornTail(offset));
        }
        if crc32(&payload) != crc {
            if end == size {
                return Ok(SegmentEnd::BadLastEntry(offset));
            }
            if bad == BadEntry::Stop {
                return Ok(SegmentEnd::Corrupt(Damage::EntryChecksum { offset }));
            }
            // The length passed its own checksum: the next entry starts right after this one.
            skipped.push(offset);
            offset = end;
            continue;
        }
        let entry = if timed {
            if len < TIME {
                return Ok(SegmentEnd::Corrupt(Damage::EntryHeader { offset }));
            }
            let mut time = [0u8; TIME];
            time.copy_from_slice(&payload[..TIME]);
            Entry {
                time_ms: Some(i64::from_le_bytes(time)),
                op: &payload[TIME..],
                offset,
            }
        } else {
            Entry {
                time_ms: None,
                op: &payload,
                offset,
            }
        };
        if let Err(why) = apply(&entry) {
            return Ok(SegmentEnd::Corrupt(Damage::Entry {
                offset,
                why: Box::new(why),
            }));
        }
        offset = end;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn rest_is_zero(r: &mut impl Read) -> io::Result<bool> {
    let mut buf = [0u8; 8192];
    loop {
        let n = read_full(r, &mut buf)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        if n < buf.len() {
            return Ok(true);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::persist::codec::{self, WalOp};
    use crate::persist::test_disk::{disk, overwrite};
    use crate::persist::wal::{segment_name, FsyncPolicy, Wal};
    use crate::storage::PageCache;

    pub(in crate::persist) fn entries(fs: &PageCache, path: &Path) -> (Vec<String>, SegmentEnd) {
        let mut seen = Vec::new();
        let end = read_segment(fs, path, |e| {
            match codec::borrow_decode::<WalOp>(e.op) {
                Ok(WalOp::DeleteDoc { doc, .. }) => seen.push(doc.to_string()),
                other => panic!("unexpected entry {other:?}"),
            }
            Ok(())
        })
        .unwrap();
        (seen, end)
    }

    #[test]
    fn torn_tail_and_corruption() {
        let (fs, dir) = disk();
        let wal = Wal::create(fs.clone(), &dir, 7, FsyncPolicy::Never).unwrap();
        for doc in ["a", "b", "c"] {
            let lsn = wal.append(&WalOp::DeleteDoc { col: "c", doc }).unwrap();
            wal.wait(lsn).unwrap();
        }
        let path = dir.join(segment_name(7));
        let bytes = fs.read(&path).unwrap();
        assert_eq!(&bytes[..8], SEGMENT_MAGIC);
        let magic = SEGMENT_MAGIC.len();
        let entry = (bytes.len() - magic) / 3;
        // Cut mid-entry: the first two survive.
        overwrite(&fs, &path, &bytes[..bytes.len() - 3]);
        let (seen, end) = entries(&fs, &path);
        assert_eq!(seen, ["a", "b"]);
        assert!(matches!(end, SegmentEnd::TornTail(o) if o == (magic + 2 * entry) as u64));
        // A zeroed tail (pre-allocated blocks) is torn too.
        let mut zeroed = bytes.clone();
        zeroed.extend_from_slice(&[0; 100]);
        overwrite(&fs, &path, &zeroed);
        assert!(
            matches!(entries(&fs, &path).1, SegmentEnd::TornTail(o) if o == bytes.len() as u64)
        );
        // A flipped byte in the middle entry (payload or length) is corruption.
        for at in [magic + entry + HEADER + TIME + 2, magic + entry + 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0xff;
            overwrite(&fs, &path, &flipped);
            let (seen, end) = entries(&fs, &path);
            assert_eq!(seen, ["a"]);
            assert!(
                matches!(end, SegmentEnd::Corrupt(Damage::EntryChecksum { offset } | Damage::EntryHeader { offset }) if offset == (magic + entry) as u64),
                "{end:?}"
            );
        }
        // A flipped byte in the last entry, whole as its length gives it, is told apart from a
        // torn tail.
        let mut last = bytes.clone();
        let n = last.len();
        last[n - 1] ^= 0xff;
        overwrite(&fs, &path, &last);
        assert!(
            matches!(entries(&fs, &path).1, SegmentEnd::BadLastEntry(o) if o == (magic + 2 * entry) as u64)
        );
        // A torn header is an empty segment.
        overwrite(&fs, &path, &bytes[..3]);
        assert!(matches!(entries(&fs, &path), (seen, SegmentEnd::TornTail(0)) if seen.is_empty()));
    }

    #[test]
    fn prefix_until_cuts_after_the_last_entry_at_or_before_the_time() {
        let (fs, dir) = disk();
        let wal = Wal::create(fs.clone(), &dir, 1, FsyncPolicy::Never).unwrap();
        for (doc, t) in [("a", 10), ("b", 20), ("c", 30)] {
            let lsn = wal
                .append_at(&WalOp::DeleteDoc { col: "c", doc }, t)
                .unwrap();
            wal.wait(lsn).unwrap();
        }
        let bytes = fs.read(&dir.join(segment_name(1))).unwrap();
        let kept = |t| {
            let mut seen = Vec::new();
            read_segment_bytes(&bytes[..prefix_until(&bytes, t)], |e| {
                seen.push(e.time_ms.unwrap_or(-1));
                Ok(())
            });
            seen
        };
        assert_eq!(kept(5), Vec::<i64>::new());
        assert_eq!(kept(20), [10, 20]);
        assert_eq!(kept(29), [10, 20]);
        assert_eq!(kept(30), [10, 20, 30]);
        assert_eq!(prefix_until(&bytes, 5), SEGMENT_MAGIC.len());
        assert_eq!(prefix_until(&bytes, 99), bytes.len());
        // A v1 segment has no times: nothing is cut.
        let v1 = &bytes[SEGMENT_MAGIC.len()..];
        assert_eq!(prefix_until(v1, 0), v1.len());
    }
}
