//! Failure injection: wraps a backend and fails chosen operations.

use super::{Backend, DirEntry, File, Lock, Metadata, Op, OpenMode};
use parking_lot::Mutex;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which operations fail, and how.
#[derive(Debug, Clone)]
pub struct Fault {
    ops: Vec<Op>,
    name_contains: Option<String>,
    nth: u64,
    errno: i32,
    sticky: bool,
    torn: bool,
    panics: bool,
}

impl Fault {
    /// Fails the first operation of one of these kinds (refine with the other methods).
    pub fn on(ops: &[Op]) -> Fault {
        Fault {
            ops: ops.to_vec(),
            name_contains: None,
            nth: 1,
            errno: libc::EIO,
            sticky: false,
            torn: false,
            panics: false,
        }
    }
    /// Only operations on a path whose file name contains `s` count.
    pub fn named(mut self, s: &str) -> Fault {
        self.name_contains = Some(s.to_owned());
        self
    }
    /// The `n`-th matching operation (1-based) fails.
    pub fn nth(mut self, n: u64) -> Fault {
        self.nth = n.max(1);
        self
    }
    /// The error it fails with (`libc::ENOSPC`, `libc::EIO`, …; EIO by default).
    pub fn errno(mut self, errno: i32) -> Fault {
        self.errno = errno;
        self
    }
    /// Every later matching operation fails too (a full disk stays full).
    pub fn sticky(mut self) -> Fault {
        self.sticky = true;
        self
    }
    /// A failing write first writes half its bytes (a write cut off mid-way).
    pub fn torn(mut self) -> Fault {
        self.torn = true;
        self
    }

    /// The failing operation panics instead of returning an error (a backend with a bug):
    /// what a caller leaves behind when a call into the seam never returns.
    pub fn panics(mut self) -> Fault {
        self.panics = true;
        self
    }

    fn matches(&self, op: Op, path: &Path) -> bool {
        self.ops.contains(&op)
            && self.name_contains.as_deref().is_none_or(|s| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(s))
            })
    }
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    seen: u64,
    failed: Vec<(Op, PathBuf)>,
}

enum Verdict {
    Pass,
    Fail(io::Error),
    Torn(io::Error),
}

/// A backend that passes every operation to `inner` except those its armed [`Fault`] picks.
pub struct Faulty {
    inner: Arc<dyn Backend>,
    state: Arc<Mutex<State>>,
}

impl Faulty {
    pub fn new(inner: Arc<dyn Backend>) -> Faulty {
        Faulty {
            inner,
            state: Arc::default(),
        }
    }

    /// Arms a fault (replacing any other); its count starts now.
    pub fn arm(&self, fault: Fault) {
        let mut st = self.state.lock();
        st.fault = Some(fault);
        st.seen = 0;
    }

    /// Lets every operation through again (the disk is healthy).
    pub fn disarm(&self) {
        self.state.lock().fault = None;
    }

    /// Every operation that was made to fail so far.
    pub fn failures(&self) -> Vec<(Op, PathBuf)> {
        self.state.lock().failed.clone()
    }
}

fn check(state: &Mutex<State>, op: Op, path: &Path) -> Verdict {
    let mut st = state.lock();
    let Some(fault) = &st.fault else {
        return Verdict::Pass;
    };
    if !fault.matches(op, path) {
        return Verdict::Pass;
    }
    let fault = fault.clone();
    st.seen += 1;
    if st.seen < fault.nth || (st.seen > fault.nth && !fault.sticky) {
        return Verdict::Pass;
    }
    st.failed.push((op, path.to_owned()));
    if fault.panics {
        drop(st);
        panic!("injected panic: {} of {}", op.name(), path.display());
    }
    let e = io::Error::from_raw_os_error(fault.errno);
    if fault.torn && op == Op::Write {
        Verdict::Torn(e)
    } else {
        Verdict::Fail(e)
    }
}

fn gate(state: &Mutex<State>, op: Op, path: &Path) -> io::Result<()> {
    match check(state, op, path) {
        Verdict::Pass => Ok(()),
        Verdict::Fail(e) | Verdict::Torn(e) => Err(e),
    }
}

struct FaultyFile {
    inner: Box<dyn File>,
    path: PathBuf,
    state: Arc<Mutex<State>>,
}

impl File for FaultyFile {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        gate(&self.state, Op::Read, &self.path)?;
        self.inner.read(buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match check(&self.state, Op::Write, &self.path) {
            Verdict::Pass => self.inner.write(buf),
            Verdict::Fail(e) => Err(e),
            Verdict::Torn(e) => {
                let _ = self.inner.write_all(&buf[..buf.len() / 2]);
                Err(e)
            }
        }
    }
    fn seek(&self, pos: u64) -> io::Result<()> {
        self.inner.seek(pos)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        gate(&self.state, Op::Truncate, &self.path)?;
        self.inner.set_len(len)
    }
    fn sync_all(&self) -> io::Result<()> {
        gate(&self.state, Op::Fsync, &self.path)?;
        self.inner.sync_all()
    }
    fn sync_data(&self) -> io::Result<()> {
        gate(&self.state, Op::Fdatasync, &self.path)?;
        self.inner.sync_data()
    }
}

impl Backend for Faulty {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>> {
        gate(&self.state, Op::Open, path)?;
        Ok(Box::new(FaultyFile {
            inner: self.inner.open(path, mode)?,
            path: path.to_owned(),
            state: self.state.clone(),
        }))
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        gate(&self.state, Op::Stat, path)?;
        self.inner.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        gate(&self.state, Op::Rename, to)?;
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        gate(&self.state, Op::Remove, path)?;
        self.inner.remove_file(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        gate(&self.state, Op::Link, to)?;
        self.inner.hard_link(from, to)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        gate(&self.state, Op::RemoveDir, path)?;
        self.inner.remove_dir(path)
    }
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        gate(&self.state, Op::CreateDir, path)?;
        self.inner.create_dir(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        gate(&self.state, Op::ReadDir, path)?;
        self.inner.read_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        gate(&self.state, Op::SyncDir, path)?;
        self.inner.sync_dir(path)
    }
    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Lock>> {
        gate(&self.state, Op::Lock, dir)?;
        self.inner.lock(dir)
    }
    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        gate(&self.state, Op::Stat, path)?;
        self.inner.metadata(path)
    }
    fn set_permissions(&self, path: &Path, mode: u32) -> io::Result<()> {
        gate(&self.state, Op::SetPermissions, path)?;
        self.inner.set_permissions(path, mode)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        gate(&self.state, Op::Stat, path)?;
        self.inner.canonicalize(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::PageCache;

    #[test]
    fn links_and_folder_removals_fail_when_picked() {
        let disk = PageCache::new();
        disk.mkdirs(Path::new("/d/p"), true);
        let fs = Faulty::new(Arc::new(disk.clone()));
        fs.open(Path::new("/d/a"), OpenMode::Truncate).unwrap();
        fs.arm(Fault::on(&[Op::Link]).errno(libc::ENOSPC));
        let e = fs
            .hard_link(Path::new("/d/a"), Path::new("/d/p/a"))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        fs.hard_link(Path::new("/d/a"), Path::new("/d/p/a"))
            .unwrap();
        // The second removal (the folder, after its file) fails: the file is gone, the folder
        // stays.
        fs.arm(Fault::on(&[Op::Remove, Op::RemoveDir]).nth(2));
        assert!(fs.remove_dir_all(Path::new("/d/p")).is_err());
        assert_eq!(disk.list(Path::new("/d/p")), Vec::<String>::new());
        assert_eq!(
            fs.failures(),
            vec![
                (Op::Link, PathBuf::from("/d/p/a")),
                (Op::RemoveDir, PathBuf::from("/d/p"))
            ]
        );
        fs.disarm();
        fs.remove_dir(Path::new("/d/p")).unwrap();
        assert_eq!(disk.list(Path::new("/d")), vec!["a".to_owned()]);
    }
}
