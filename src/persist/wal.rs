//! The write-ahead log: numbered segment files of framed entries
//! `[len u32][crc32(len) u32][crc32(bytes) u32][bytes]` (the length has its own checksum, so a
//! damaged length is told apart from a crash mid-append).
//! Appends go to an in-memory buffer (in the order of the collection locks they are made
//! under); the first request that needs its bytes durable writes the whole buffer for
//! everyone waiting (group commit), fsyncing first under the `always` policy.

use super::codec::{self, crc32, WalOp};
use super::fsutil;
use parking_lot::{Condvar, Mutex};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// When the log is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before every acknowledgement (group-committed).
    Always,
    /// At least once a second, by a background thread.
    EverySec,
    /// Only at checkpoints and shutdown; the OS decides otherwise.
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "never" => Ok(FsyncPolicy::Never),
            _ => Err(format!(
                "invalid fsync policy {s:?} (always, everysec or never)"
            )),
        }
    }
}

/// A position in the log: bytes appended since the server started.
pub type Lsn = u64;

const HEADER: usize = 12;
/// The largest entry accepted when reading (a 1 GiB message cannot make a larger one).
const MAX_ENTRY: usize = 2 << 30;

pub fn segment_name(seq: u64) -> String {
    format!("wal-{seq:016x}.log")
}

/// The sequence number of a segment file name.
pub fn segment_seq(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

struct State {
    buf: Vec<u8>,
    appended: Lsn,
    written: Lsn,
    synced: Lsn,
    writing: bool,
    file: Arc<File>,
    segment: u64,
    failed: Option<String>,
}

pub struct Wal {
    dir: PathBuf,
    policy: FsyncPolicy,
    state: Mutex<State>,
    cv: Condvar,
}

/// Marks the log failed (it refuses every later write and wait) and returns the message.
fn fail(st: &mut State, what: &str, e: &io::Error) -> String {
    let msg = format!("write-ahead log {what} failed: {e}");
    log::error!("{msg}; refusing further writes");
    crate::metrics::storage_failed();
    st.failed = Some(msg.clone());
    msg
}

/// The log refuses further writes after a write or fsync failed.
#[derive(Debug, Clone)]
pub struct WalFailed(pub String);

impl Wal {
    /// Starts a new segment `seq` in `dir`.
    pub fn create(dir: &Path, seq: u64, policy: FsyncPolicy) -> io::Result<Wal> {
        let file = fsutil::open_append(&dir.join(segment_name(seq)))?;
        fsutil::sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_owned(),
            policy,
            state: Mutex::new(State {
                buf: Vec::with_capacity(64 * 1024),
                appended: 0,
                written: 0,
                synced: 0,
                writing: false,
                file: Arc::new(file),
                segment: seq,
                failed: None,
            }),
            cv: Condvar::new(),
        })
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// Appends one entry; returns the position to wait for before acknowledging it.
    pub fn append(&self, op: &WalOp<'_>) -> Result<Lsn, WalFailed> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|cell| {
            let mut frame = cell.borrow_mut();
            frame.clear();
            frame.extend_from_slice(&[0; HEADER]);
            codec::encode_into(op, &mut frame).map_err(|e| WalFailed(e.to_string()))?;
            let len = ((frame.len() - HEADER) as u32).to_le_bytes();
            let crc = crc32(&frame[HEADER..]);
            frame[..4].copy_from_slice(&len);
            frame[4..8].copy_from_slice(&crc32(&len).to_le_bytes());
            frame[8..12].copy_from_slice(&crc.to_le_bytes());
            let mut st = self.state.lock();
            if let Some(e) = &st.failed {
                return Err(WalFailed(e.clone()));
            }
            st.buf.extend_from_slice(&frame);
            st.appended += frame.len() as u64;
            if frame.capacity() > 1 << 20 {
                *frame = Vec::new();
            }
            Ok(st.appended)
        })
    }

    /// Returns once everything up to `lsn` is in the OS (and on disk under `always`).
    pub fn wait(&self, lsn: Lsn) -> Result<(), WalFailed> {
        let mut st = self.state.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(WalFailed(e.clone()));
            }
            let done = if self.policy == FsyncPolicy::Always {
                st.synced
            } else {
                st.written
            };
            if done >= lsn {
                return Ok(());
            }
            if st.writing {
                self.cv.wait(&mut st);
                continue;
            }
            st.writing = true;
            let mut data = std::mem::take(&mut st.buf);
            let end = st.appended;
            let file = st.file.clone();
            drop(st);
            let mut result = (&*file).write_all(&data);
            if result.is_ok() && self.policy == FsyncPolicy::Always {
                result = crate::metrics::fsync(|| file.sync_data());
            }
            st = self.state.lock();
            st.writing = false;
            match result {
                Ok(()) => {
                    crate::metrics::wal_written(data.len());
                    st.written = end;
                    if self.policy == FsyncPolicy::Always {
                        st.synced = end;
                    }
                    if st.buf.is_empty() && data.capacity() <= 4 << 20 {
                        data.clear();
                        st.buf = data;
                    }
                }
                Err(e) => {
                    fail(&mut st, "write", &e);
                }
            }
            self.cv.notify_all();
        }
    }

    /// Writes and fsyncs everything appended so far.
    pub fn sync_all(&self) -> Result<(), WalFailed> {
        let lsn = self.state.lock().appended;
        self.wait(lsn)?;
        let (file, written) = {
            let st = self.state.lock();
            (st.file.clone(), st.written)
        };
        match crate::metrics::fsync(|| file.sync_data()) {
            Ok(()) => {
                let mut st = self.state.lock();
                st.synced = st.synced.max(written);
                Ok(())
            }
            Err(e) => Err(WalFailed(fail(&mut self.state.lock(), "fsync", &e))),
        }
    }

    /// Closes the current segment (written and fsynced) and starts the next; returns the new
    /// segment's number. Everything appended before the call is in older segments.
    pub fn rotate(&self) -> io::Result<u64> {
        let mut st = self.state.lock();
        while st.writing {
            self.cv.wait(&mut st);
        }
        if let Some(e) = &st.failed {
            return Err(io::Error::other(e.clone()));
        }
        // What the buffer holds was appended, maybe acknowledged to nobody yet but waited for:
        // if it cannot be written, the log fails like any other write (it is not retried, and
        // later waits do not pass over it).
        let data = std::mem::take(&mut st.buf);
        let end = st.appended;
        if let Err(e) = (&*st.file)
            .write_all(&data)
            .and_then(|()| crate::metrics::fsync(|| st.file.sync_data()))
        {
            let msg = fail(&mut st, "write", &e);
            self.cv.notify_all();
            return Err(io::Error::other(msg));
        }
        crate::metrics::wal_written(data.len());
        st.written = end;
        st.synced = end;
        self.cv.notify_all();
        let next = st.segment + 1;
        let file = fsutil::open_append(&self.dir.join(segment_name(next)))?;
        fsutil::sync_dir(&self.dir)?;
        st.file = Arc::new(file);
        st.segment = next;
        Ok(next)
    }

    /// Deletes every segment numbered below `seq`.
    pub fn remove_before(&self, seq: u64) -> io::Result<()> {
        for (s, path) in list_segments(&self.dir)? {
            if s < seq {
                fs::remove_file(&path)?;
            }
        }
        fsutil::sync_dir(&self.dir)
    }

    /// The `everysec` background fsync: runs until `stop` returns true.
    pub fn sync_every_second(&self, stop: impl Fn(Duration) -> bool) {
        while !stop(Duration::from_secs(1)) {
            let (file, written, synced) = {
                let st = self.state.lock();
                (st.file.clone(), st.written, st.synced)
            };
            if written > synced {
                if let Err(e) = crate::metrics::fsync(|| file.sync_data()) {
                    fail(&mut self.state.lock(), "fsync", &e);
                    self.cv.notify_all();
                    return;
                }
                let mut st = self.state.lock();
                st.synced = st.synced.max(written);
            }
        }
    }
}

/// Segment files in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(segment_seq) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// How reading a segment ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte was a valid entry.
    Clean,
    /// The segment ends in an incomplete or unchecked entry starting at this offset.
    TornTail(u64),
    /// A damaged entry at this offset is followed by more data.
    Corrupt(u64, String),
}

/// Reads every valid entry of a segment, in order, handing each payload to `apply`.
pub fn read_segment(
    path: &Path,
    mut apply: impl FnMut(&[u8]) -> Result<(), String>,
) -> io::Result<SegmentEnd> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut reader = io::BufReader::with_capacity(1 << 20, file);
    let mut offset = 0u64;
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
            return Ok(
                if header.iter().all(|&b| b == 0) && rest_is_zero(&mut reader)? {
                    SegmentEnd::TornTail(offset)
                } else {
                    SegmentEnd::Corrupt(offset, "damaged entry header".into())
                },
            );
        }
        let end = offset + (HEADER + len) as u64;
        if end > size {
            return Ok(SegmentEnd::TornTail(offset));
        }
        if len > MAX_ENTRY {
            return Ok(SegmentEnd::Corrupt(offset, "entry too large".into()));
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload)?;
        if crc32(&payload) != crc {
            return Ok(if end == size {
                SegmentEnd::TornTail(offset)
            } else {
                SegmentEnd::Corrupt(offset, "checksum mismatch".into())
            });
        }
        if let Err(e) = apply(&payload) {
            return Ok(SegmentEnd::Corrupt(offset, e));
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
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fluxiondb-wal-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(path: &Path) -> (Vec<String>, SegmentEnd) {
        let mut seen = Vec::new();
        let end = read_segment(path, |p| {
            match codec::borrow_decode::<WalOp>(p) {
                Ok(WalOp::DeleteDoc { doc, .. }) => seen.push(doc.to_string()),
                other => return Err(format!("{other:?}")),
            }
            Ok(())
        })
        .unwrap();
        (seen, end)
    }

    #[test]
    fn append_wait_rotate_and_read_back() {
        let dir = temp_dir("basic");
        let wal = Wal::create(&dir, 1, FsyncPolicy::Always).unwrap();
        let lsn = wal
            .append(&WalOp::DeleteDoc { col: "c", doc: "a" })
            .unwrap();
        wal.wait(lsn).unwrap();
        assert_eq!(wal.rotate().unwrap(), 2);
        let lsn = wal
            .append(&WalOp::DeleteDoc { col: "c", doc: "b" })
            .unwrap();
        wal.wait(lsn).unwrap();
        let segs = list_segments(&dir).unwrap();
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            entries(&segs[0].1),
            (vec!["a".to_string()], SegmentEnd::Clean)
        );
        assert_eq!(
            entries(&segs[1].1),
            (vec!["b".to_string()], SegmentEnd::Clean)
        );
        wal.remove_before(2).unwrap();
        assert_eq!(list_segments(&dir).unwrap().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_tail_and_corruption() {
        let dir = temp_dir("torn");
        let wal = Wal::create(&dir, 7, FsyncPolicy::Never).unwrap();
        for doc in ["a", "b", "c"] {
            let lsn = wal.append(&WalOp::DeleteDoc { col: "c", doc }).unwrap();
            wal.wait(lsn).unwrap();
        }
        let path = dir.join(segment_name(7));
        let bytes = fs::read(&path).unwrap();
        let entry = bytes.len() / 3;
        // Cut mid-entry: the first two survive.
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(
            entries(&path),
            (
                vec!["a".into(), "b".into()],
                SegmentEnd::TornTail(2 * entry as u64)
            )
        );
        // A zeroed tail (pre-allocated blocks) is torn too.
        let mut zeroed = bytes.clone();
        zeroed.extend_from_slice(&[0; 100]);
        fs::write(&path, &zeroed).unwrap();
        assert_eq!(entries(&path).1, SegmentEnd::TornTail(bytes.len() as u64));
        // A flipped byte in the middle entry (payload or length) is corruption.
        for at in [entry + HEADER + 2, entry + 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0xff;
            fs::write(&path, &flipped).unwrap();
            assert!(
                matches!(entries(&path), (v, SegmentEnd::Corrupt(o, _)) if v == vec!["a".to_string()] && o == entry as u64)
            );
        }
        // A flipped byte in the last entry is a torn tail.
        let mut last = bytes.clone();
        let n = last.len();
        last[n - 1] ^= 0xff;
        fs::write(&path, &last).unwrap();
        assert_eq!(entries(&path).1, SegmentEnd::TornTail(2 * entry as u64));
        fs::remove_dir_all(&dir).unwrap();
    }
}
