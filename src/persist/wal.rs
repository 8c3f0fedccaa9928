//! The write-ahead log: numbered segment files of framed entries
//! `[len u32][crc32(len) u32][crc32(bytes) u32][bytes]` (the length has its own checksum, so a
//! damaged length is told apart from a crash mid-append).
//!
//! Two segment versions: v1 (no header; `bytes` is the encoded [`WalOp`]) and v2 (the
//! current one: the file starts with [`SEGMENT_MAGIC`], and `bytes` is the wall-clock time of
//! the write, milliseconds since the Unix epoch as an `i64` little endian, then the encoded
//! op). Both replay; only v2 is written. The time is what a point-in-time restore stops at.
//! Appends go to an in-memory buffer (in the order of the collection locks they are made
//! under); the first request that needs its bytes durable writes the whole buffer for
//! everyone waiting (group commit), fsyncing first under the `always` policy. Reading segments
//! back is [`super::wal_read`].
//!
//! The buffer has a lock of its own, which only appends and the taking of the buffer hold:
//! an append (made under a collection's apply-order lock) never waits for a request that is
//! checking or waiting for durability, so the apply-order lock's holder is not put to sleep
//! while every other writer of the collection queues behind it. A wait for bytes already
//! written returns without taking a lock.

use super::codec::{self, crc32, WalOp};
use super::error::Error;
use super::fsutil;
use super::wal_read::list_segments;
use crate::storage::{Backend, File, Op, OpenMode};
use parking_lot::{Condvar, Mutex};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// The bytes before an entry: its length, the length's checksum, the entry's checksum.
pub(super) const HEADER: usize = 12;
/// The first bytes of a v2 segment.
pub const SEGMENT_MAGIC: &[u8; 8] = b"FLXWAL02";
/// The time prefix of a v2 entry.
pub(super) const TIME: usize = 8;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

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

/// One log entry framed and checksummed, ready for [`Wal::append_encoded`].
#[derive(Debug)]
pub struct Framed {
    frame: Vec<u8>,
}

impl Framed {
    /// Frames `op` written at `time_ms` (milliseconds since the Unix epoch).
    pub fn encode(op: &WalOp<'_>, time_ms: i64) -> Result<Framed, Error> {
        let mut frame = Vec::with_capacity(HEADER + TIME + 64);
        frame.extend_from_slice(&[0; HEADER]);
        frame.extend_from_slice(&time_ms.to_le_bytes());
        codec::encode_into(op, &mut frame).map_err(Error::Encode)?;
        let len = ((frame.len() - HEADER) as u32).to_le_bytes();
        let crc = crc32(&frame[HEADER..]);
        frame[..4].copy_from_slice(&len);
        frame[4..8].copy_from_slice(&crc32(&len).to_le_bytes());
        frame[8..12].copy_from_slice(&crc.to_le_bytes());
        Ok(Framed { frame })
    }
}

/// What appends write: the bytes appended and not yet taken by a writer.
struct Appended {
    buf: Vec<u8>,
    /// The position after the last entry appended.
    end: Lsn,
    /// The first write or fsync failure (as in [`State`]): appends are refused after it.
    failed: Option<Arc<Error>>,
    /// Set by [`Wal::close`]: appends are refused after it.
    closed: bool,
}

struct State {
    /// The buffer the next writer swaps in for the appended bytes (kept to reuse its memory).
    spare: Vec<u8>,
    written: Lsn,
    synced: Lsn,
    writing: bool,
    file: Arc<dyn File>,
    segment: u64,
    /// The position where the current segment started (it holds entries once the log moved on).
    segment_start: Lsn,
    /// The first write or fsync failure; the log refuses everything after it.
    failed: Option<Arc<Error>>,
}

/// The answer to a write made after [`Wal::close`].
pub const CLOSED: &str = "server shutting down";

pub struct Wal {
    fs: Arc<dyn Backend>,
    dir: PathBuf,
    policy: FsyncPolicy,
    /// Taken after `state` when both are held.
    appended: Mutex<Appended>,
    state: Mutex<State>,
    cv: Condvar,
    /// What the policy counts as durable (`written`, or `synced` under `always`), published
    /// under `state` for waits that find their bytes already there.
    durable: AtomicU64,
    /// Set with `State::failed`.
    failed: AtomicBool,
}

/// Every write of log bytes. A panic in the storage backend fails the log like an I/O error
/// would: unwinding past [`Wal::wait`] would leave its writer flag set for good (every later
/// write waiting for a writer that is gone) and the bytes it took unwritten.
fn write_log(file: &dyn File, data: &[u8]) -> io::Result<()> {
    crate::panics::as_io_error("the log write", || file.write_all(data))?;
    crate::metrics::wal_written(data.len());
    Ok(())
}

/// Every fdatasync of the log (a panic in it fails the log, as in [`write_log`]).
fn sync_log(file: &dyn File) -> io::Result<()> {
    crate::metrics::fsync(|| crate::panics::as_io_error("the log fdatasync", || file.sync_data()))
}

impl Wal {
    /// Starts a new segment `seq` in `dir`.
    pub fn create(
        fs: Arc<dyn Backend>,
        dir: &Path,
        seq: u64,
        policy: FsyncPolicy,
    ) -> Result<Wal, Error> {
        let file = open_segment(&*fs, dir, seq)?;
        Ok(Wal {
            fs,
            dir: dir.to_owned(),
            policy,
            appended: Mutex::new(Appended {
                buf: Vec::with_capacity(64 * 1024),
                end: 0,
                failed: None,
                closed: false,
            }),
            state: Mutex::new(State {
                spare: Vec::with_capacity(64 * 1024),
                written: 0,
                synced: 0,
                writing: false,
                file,
                segment: seq,
                segment_start: 0,
                failed: None,
            }),
            cv: Condvar::new(),
            durable: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        })
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// Appends one entry written now; returns the position to wait for before acknowledging it.
    pub fn append(&self, op: &WalOp<'_>) -> Result<Lsn, Error> {
        self.append_at(op, now_ms())
    }

    /// Appends one entry with the given write time (a replica keeps the primary's).
    pub fn append_at(&self, op: &WalOp<'_>, time_ms: i64) -> Result<Lsn, Error> {
        self.append_encoded(&Framed::encode(op, time_ms)?)
    }

    /// Appends an entry encoded beforehand: the only part of logging that takes the log's lock,
    /// so that a caller that must log in a fixed order (a collection's apply order) holds its
    /// own lock across the append alone, not across the encoding and checksums.
    pub fn append_encoded(&self, entry: &Framed) -> Result<Lsn, Error> {
        let mut a = self.appended.lock();
        if let Some(first) = &a.failed {
            return Err(Error::LogFailed(first.clone()));
        }
        if a.closed {
            return Err(Error::Refused(CLOSED));
        }
        a.buf.extend_from_slice(&entry.frame);
        a.end += entry.frame.len() as u64;
        Ok(a.end)
    }

    /// Refuses every later append (the server's shutdown, before its last sync): a session
    /// still at work then could otherwise log and acknowledge a write after that sync, and
    /// under `everysec` nothing would fsync it before the process ends.
    pub fn close(&self) {
        self.appended.lock().closed = true;
    }

    /// Marks the log failed (it refuses every later append, write and wait) and returns the
    /// error.
    fn fail(&self, st: &mut State, e: Error) -> Error {
        log::error!("write-ahead log: {e}; refusing further writes");
        crate::metrics::storage_failed();
        let first = Arc::new(e);
        st.failed = Some(first.clone());
        self.appended.lock().failed = Some(first.clone());
        self.failed.store(true, Ordering::Release);
        Error::LogFailed(first)
    }

    /// Publishes what is durable after `written` or `synced` changed.
    fn publish(&self, st: &State) {
        let durable = match self.policy {
            FsyncPolicy::Always => st.synced,
            _ => st.written,
        };
        self.durable.store(durable, Ordering::Release);
    }

    /// Takes the appended bytes (for a writer that holds `state`), leaving `spare` emptied in
    /// their place; returns them and the position after them.
    fn take_appended(&self, mut spare: Vec<u8>) -> (Vec<u8>, Lsn) {
        spare.clear();
        let mut a = self.appended.lock();
        std::mem::swap(&mut a.buf, &mut spare);
        (spare, a.end)
    }

    /// The path of segment `seq`.
    fn segment_path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment_name(seq))
    }

    /// The position after everything appended so far.
    pub fn appended(&self) -> Lsn {
        self.appended.lock().end
    }

    /// Returns once everything up to `lsn` is in the OS (and on disk under `always`).
    pub fn wait(&self, lsn: Lsn) -> Result<(), Error> {
        if !self.failed.load(Ordering::Acquire) && self.durable.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let mut st = self.state.lock();
        loop {
            if let Some(first) = &st.failed {
                return Err(Error::LogFailed(first.clone()));
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
            let (data, end) = self.take_appended(std::mem::take(&mut st.spare));
            let (file, segment) = (st.file.clone(), st.segment);
            drop(st);
            let mut result = write_log(&*file, &data).map_err(|e| (Op::Write, e));
            if result.is_ok() && self.policy == FsyncPolicy::Always {
                result = sync_log(&*file).map_err(|e| (Op::Fdatasync, e));
            }
            st = self.state.lock();
            st.writing = false;
            match result {
                Ok(()) => {
                    st.written = end;
                    if self.policy == FsyncPolicy::Always {
                        st.synced = end;
                    }
                    self.publish(&st);
                    if data.capacity() <= 4 << 20 {
                        st.spare = data;
                    }
                }
                Err((op, e)) => {
                    let path = self.segment_path(segment);
                    self.fail(&mut st, Error::io(op, path)(e));
                }
            }
            self.cv.notify_all();
        }
    }

    /// fdatasyncs what was written to the current segment; a failure fails the log.
    fn sync_written(&self) -> Result<(), Error> {
        let (file, written, segment) = {
            let st = self.state.lock();
            if let Some(first) = &st.failed {
                return Err(Error::LogFailed(first.clone()));
            }
            (st.file.clone(), st.written, st.segment)
        };
        match sync_log(&*file) {
            Ok(()) => {
                let mut st = self.state.lock();
                if st.segment == segment {
                    st.synced = st.synced.max(written);
                    self.publish(&st);
                }
                Ok(())
            }
            Err(e) => {
                let mut st = self.state.lock();
                let path = self.segment_path(segment);
                let err = self.fail(&mut st, Error::io(Op::Fdatasync, path)(e));
                self.cv.notify_all();
                Err(err)
            }
        }
    }

    /// Writes and fsyncs everything appended so far.
    pub fn sync_all(&self) -> Result<(), Error> {
        let lsn = self.appended();
        self.wait(lsn)?;
        self.sync_written()
    }

    /// The number of the segment being written.
    pub fn current_segment(&self) -> u64 {
        self.state.lock().segment
    }

    /// Whether the current segment holds any entry.
    pub fn segment_has_entries(&self) -> bool {
        let st = self.state.lock();
        self.appended.lock().end > st.segment_start
    }

    /// Closes the current segment (written and fsynced) and starts the next; returns the new
    /// segment's number. Everything appended before the call is in older segments. A segment
    /// nothing was appended to stays current, and its number is returned.
    pub fn rotate(&self) -> Result<u64, Error> {
        self.rotate_to(0)
    }

    /// Like [`Wal::rotate`], numbering the new segment at least `at_least` (a promoted replica
    /// continues the numbering of the history it took over).
    pub fn rotate_to(&self, at_least: u64) -> Result<u64, Error> {
        let mut st = self.state.lock();
        while st.writing {
            self.cv.wait(&mut st);
        }
        if let Some(first) = &st.failed {
            return Err(Error::LogFailed(first.clone()));
        }
        // Nothing was appended to the current segment: it stays current (an idle server would
        // otherwise start, and a backup upload, an empty segment at every checkpoint).
        if self.appended() == st.segment_start && at_least <= st.segment {
            return Ok(st.segment);
        }
        // What the buffer holds was appended, maybe acknowledged to nobody yet but waited for:
        // if it cannot be written, the log fails like any other write (it is not retried, and
        // later waits do not pass over it). Entries appended after this take go to the next
        // segment: no writer takes the buffer before that is the current one.
        let (data, end) = self.take_appended(Vec::new());
        let path = self.segment_path(st.segment);
        let done = write_log(&*st.file, &data)
            .map_err(Error::io(Op::Write, &path))
            .and_then(|()| sync_log(&*st.file).map_err(Error::io(Op::Fdatasync, &path)));
        if let Err(e) = done {
            let err = self.fail(&mut st, e);
            self.cv.notify_all();
            return Err(err);
        }
        st.written = end;
        st.synced = end;
        self.publish(&st);
        self.cv.notify_all();
        let next = (st.segment + 1).max(at_least);
        // A segment that cannot be started leaves the log on the current one (fsynced, so
        // nothing is lost) and is removed again by `open_segment`; the next checkpoint tries
        // again.
        st.file = open_segment(&*self.fs, &self.dir, next)?;
        st.segment = next;
        st.segment_start = end;
        Ok(next)
    }

    /// Deletes every segment numbered below `seq`.
    pub fn remove_before(&self, seq: u64) -> Result<(), Error> {
        for (s, path) in list_segments(&*self.fs, &self.dir)? {
            if s < seq {
                self.fs
                    .remove_file(&path)
                    .map_err(Error::io(Op::Remove, &path))?;
            }
        }
        fsutil::sync_dir(&*self.fs, &self.dir)
    }

    /// The `everysec` background fsync, once per `interval`: runs until `stop` returns true
    /// or an fsync fails (which fails the log).
    pub fn sync_every(&self, interval: Duration, stop: impl Fn(Duration) -> bool) {
        while !stop(interval) {
            let (written, synced) = {
                let st = self.state.lock();
                (st.written, st.synced)
            };
            if written > synced && self.sync_written().is_err() {
                return;
            }
        }
    }
}

/// Creates segment `seq` (v2: its header, then appending) and makes its name durable. The
/// header reaches the disk with the first fsync of the segment; a crash before leaves a torn
/// header, which replay treats like an empty segment.
///
/// A segment this call found empty and could not finish (a full disk failing the header's
/// write, a folder fsync failing) is removed again, its removal made durable: left behind, it
/// would sit after the segment the log goes on writing, and a crash tail of that one would no
/// longer be at the end of the log. A failure of that cleanup is logged; the error returned is
/// the one that stopped the segment.
fn open_segment(fs: &dyn Backend, dir: &Path, seq: u64) -> Result<Arc<dyn File>, Error> {
    let path = dir.join(segment_name(seq));
    let file = fs
        .open(&path, OpenMode::Append)
        .map_err(Error::io(Op::Open, &path))?;
    let mut fresh = false;
    let started = file
        .size()
        .map_err(Error::io(Op::Stat, &path))
        .and_then(|size| {
            fresh = size == 0;
            if fresh {
                file.write_all(SEGMENT_MAGIC)
                    .map_err(Error::io(Op::Write, &path))?;
            }
            fsutil::sync_dir(fs, dir)
        });
    match started {
        Ok(()) => Ok(Arc::from(file)),
        Err(e) => {
            drop(file);
            if fresh {
                remove_unstarted(fs, dir, &path);
            }
            Err(e)
        }
    }
}

/// Removes a segment [`open_segment`] could not start, and fsyncs the folder; failures are
/// logged (the caller returns the error that stopped the segment).
fn remove_unstarted(fs: &dyn Backend, dir: &Path, path: &Path) {
    let removed = fs
        .remove_file(path)
        .map_err(Error::io(Op::Remove, path))
        .and_then(|()| fsutil::sync_dir(fs, dir));
    if let Err(e) = removed {
        log::error!(
            "removing the log segment {} that could not be started failed: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::test_disk::disk;
    use crate::persist::wal_read::tests::entries;
    use crate::persist::wal_read::{list_segments, read_segment_bytes, SegmentEnd};

    #[test]
    fn append_wait_rotate_and_read_back() {
        let (fs, dir) = disk();
        let wal = Wal::create(fs.clone(), &dir, 1, FsyncPolicy::Always).unwrap();
        let lsn = wal
            .append(&WalOp::DeleteDoc { col: "c", doc: "a" })
            .unwrap();
        wal.wait(lsn).unwrap();
        assert_eq!(wal.rotate().unwrap(), 2);
        let lsn = wal
            .append(&WalOp::DeleteDoc { col: "c", doc: "b" })
            .unwrap();
        wal.wait(lsn).unwrap();
        let segs = list_segments(&*fs, &dir).unwrap();
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2]);
        let (seen, end) = entries(&fs, &segs[0].1);
        assert!(seen == ["a"] && matches!(end, SegmentEnd::Clean));
        let (seen, end) = entries(&fs, &segs[1].1);
        assert!(seen == ["b"] && matches!(end, SegmentEnd::Clean));
        wal.remove_before(2).unwrap();
        assert_eq!(list_segments(&*fs, &dir).unwrap().len(), 1);
    }

    #[test]
    fn entries_carry_their_write_time_and_rotate_to_jumps() {
        let (fs, dir) = disk();
        let wal = Wal::create(fs.clone(), &dir, 1, FsyncPolicy::Never).unwrap();
        assert!(!wal.segment_has_entries());
        let lsn = wal
            .append_at(&WalOp::DeleteDoc { col: "c", doc: "a" }, 1234)
            .unwrap();
        wal.wait(lsn).unwrap();
        assert!(wal.segment_has_entries());
        assert_eq!(wal.rotate_to(10).unwrap(), 10);
        assert!(!wal.segment_has_entries());
        let bytes = fs.read(&dir.join(segment_name(1))).unwrap();
        let mut times = Vec::new();
        let end = read_segment_bytes(&bytes, |e| {
            times.push(e.time_ms);
            Ok(())
        });
        assert!(matches!(end, SegmentEnd::Clean));
        assert_eq!(times, [Some(1234)]);
    }

    #[test]
    fn an_empty_segment_stays_current_at_rotation() {
        let (fs, dir) = disk();
        let wal = Wal::create(fs.clone(), &dir, 1, FsyncPolicy::Never).unwrap();
        assert_eq!(wal.rotate().unwrap(), 1);
        assert_eq!(wal.rotate().unwrap(), 1);
        assert!(!fs.exists(&dir.join(segment_name(2))).unwrap());
        let lsn = wal
            .append(&WalOp::DeleteDoc { col: "c", doc: "a" })
            .unwrap();
        wal.wait(lsn).unwrap();
        assert_eq!(wal.rotate().unwrap(), 2);
        assert_eq!(wal.rotate().unwrap(), 2);
        // A promoted replica's numbering still moves an empty segment on.
        assert_eq!(wal.rotate_to(9).unwrap(), 9);
    }

    /// The shutdown's last sync covers every append: one made after it is refused.
    #[test]
    fn a_closed_log_refuses_appends_and_its_last_sync_holds_the_ones_before() {
        let (fs, dir) = disk();
        let wal = Wal::create(fs.clone(), &dir, 1, FsyncPolicy::EverySec).unwrap();
        wal.append(&WalOp::DeleteDoc { col: "c", doc: "a" })
            .unwrap();
        wal.close();
        let late = wal.append(&WalOp::DeleteDoc { col: "c", doc: "b" });
        assert!(matches!(late, Err(Error::Refused(CLOSED))), "{late:?}");
        wal.sync_all().unwrap();
        let (seen, end) = entries(&fs, &dir.join(segment_name(1)));
        assert!(
            seen == ["a"] && matches!(end, SegmentEnd::Clean),
            "{seen:?}"
        );
    }

    /// Writers appending and waiting on several threads while checkpoints rotate: every
    /// entry is written exactly once, each thread's in its order, and a wait returns only once
    /// its entry is in a segment file.
    #[test]
    fn appends_waits_and_rotations_on_many_threads_write_every_entry_once() {
        let (fs, dir) = disk();
        let wal = Arc::new(Wal::create(fs.clone(), &dir, 1, FsyncPolicy::Never).unwrap());
        let done = Arc::new(AtomicBool::new(false));
        let rotator = {
            let (wal, done) = (wal.clone(), done.clone());
            std::thread::spawn(move || {
                let mut rotations = 0;
                while !done.load(Ordering::Acquire) && rotations < 1000 {
                    wal.rotate().unwrap();
                    rotations += 1;
                    std::thread::yield_now();
                }
            })
        };
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (wal, fs, dir) = (wal.clone(), fs.clone(), dir.clone());
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let doc = format!("{t}-{i}");
                        let lsn = wal
                            .append(&WalOp::DeleteDoc {
                                col: "c",
                                doc: &doc,
                            })
                            .unwrap();
                        wal.wait(lsn).unwrap();
                        if i % 50 == 0 {
                            let written = list_segments(&*fs, &dir)
                                .unwrap()
                                .iter()
                                .any(|(_, path)| entries(&fs, path).0.contains(&doc));
                            assert!(written, "{doc} was waited for but is in no segment");
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        rotator.join().unwrap();
        let mut seen = Vec::new();
        for (_, path) in list_segments(&*fs, &dir).unwrap() {
            let (docs, end) = entries(&fs, &path);
            assert!(matches!(end, SegmentEnd::Clean));
            seen.extend(docs);
        }
        assert_eq!(seen.len(), 1200, "entries lost or written twice");
        for t in 0..4 {
            let mine: Vec<_> = seen
                .iter()
                .filter(|d| d.starts_with(&format!("{t}-")))
                .collect();
            let expected: Vec<_> = (0..300).map(|i| format!("{t}-{i}")).collect();
            assert!(
                mine.into_iter().eq(expected.iter()),
                "thread {t} out of order"
            );
        }
    }

    #[test]
    fn a_failed_write_fails_the_log_with_the_os_error() {
        use crate::storage::{Fault, Faulty};
        let (fs, dir) = disk();
        let faulty = Arc::new(Faulty::new(fs));
        let wal = Wal::create(faulty.clone(), &dir, 1, FsyncPolicy::Always).unwrap();
        faulty.arm(Fault::on(&[Op::Fdatasync]).errno(libc::EIO));
        let lsn = wal
            .append(&WalOp::DeleteDoc { col: "c", doc: "a" })
            .unwrap();
        let err = wal.wait(lsn).unwrap_err();
        assert!(
            matches!(&err, Error::LogFailed(first) if matches!(&**first, Error::Io { op: Op::Fdatasync, .. })),
            "{err:?}"
        );
        assert_eq!(err.os_error(), Some(libc::EIO));
        faulty.disarm();
        assert!(matches!(
            wal.append(&WalOp::DeleteDoc { col: "c", doc: "b" }),
            Err(Error::LogFailed(_))
        ));
        assert!(matches!(wal.rotate(), Err(Error::LogFailed(_))));
    }
}
