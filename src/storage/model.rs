//! A page-cache model of a disk, in memory, for power-loss trials.
//!
//! The rules (those of a Linux file system under a power cut, as LazyFS models them):
//! - bytes written to a file are durable once the file is fsynced or fdatasynced;
//! - a name created, renamed, hard-linked or removed in a folder (files and folders alike) is
//!   durable once that folder is fsynced; a hard link is one more name of the same file (its
//!   bytes, durable or not, are shared by all its names);
//! - a file's or folder's permission bits (`set_permissions`) are durable once it is fsynced
//!   (a file by fsync, not fdatasync); a new one's are those it was created with (0600 for a
//!   file, 0700 for a folder);
//! - no symbolic links; a folder can be renamed over an empty one (`ENOTEMPTY` over one that is
//!   not), as on Linux; everything is on one device, but for folders a test mounts
//!   ([`PageCache::mount`]): such a folder and what is below it are on a device of their own,
//!   a rename or hard link across devices fails with `EXDEV` and one of the mounted folder
//!   itself with `EBUSY`;
//! - a power cut keeps only what is durable: every folder gets back its durable names, every
//!   file its durable bytes — plus, when the cut's seed says so, a prefix of the bytes appended
//!   after its last fsync (the page cache had written some of them back), which makes torn
//!   appends happen as they do on a disk.
//!
//! The cut falls at the k-th backend operation counted from when a [`PowerCut`] is armed (or
//! at once with [`PageCache::cut_now`]); from then on every operation fails with EIO until
//! [`PageCache::power_on`], and files opened before it stay dead.

use super::{Backend, DirEntry, EntryKind, File, Lock, Metadata, Op, OpenMode};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

type Ino = u64;
const ROOT: Ino = 0;
const RECENT: usize = 24;

#[derive(Clone, Default)]
struct Node {
    dir: bool,
    /// Files: the bytes as read now; folders: unused.
    data: Vec<u8>,
    /// Files: the bytes a power cut keeps.
    synced: Vec<u8>,
    /// Folders: the names as listed now.
    entries: BTreeMap<OsString, Ino>,
    /// Folders: the names a power cut keeps.
    synced_entries: BTreeMap<OsString, Ino>,
    /// The permission bits now.
    mode: u32,
    /// The permission bits a power cut keeps.
    synced_mode: u32,
    /// When its content last changed (a power cut keeps the time of the change it keeps or not:
    /// nothing reads it for durability).
    modified: Option<SystemTime>,
}

/// When the power fails: at the `k`-th operation (1-based) counted from arming, counting only
/// operations on paths whose file name contains `named` when it is set.
#[derive(Debug, Clone)]
pub struct PowerCut {
    pub k: u64,
    pub named: Option<String>,
    /// Picks, per file, how much of its unsynced appended tail survives.
    pub seed: u64,
}

impl PowerCut {
    pub fn at(k: u64, seed: u64) -> PowerCut {
        PowerCut {
            k: k.max(1),
            named: None,
            seed,
        }
    }
    pub fn named(mut self, s: &str) -> PowerCut {
        self.named = Some(s.to_owned());
        self
    }
}

struct Fs {
    nodes: HashMap<Ino, Node>,
    next: Ino,
    /// Bumped by every power cut: handles of an earlier generation are dead.
    generation: u64,
    dead: bool,
    cut: Option<PowerCut>,
    counted: u64,
    ops: u64,
    locks: HashSet<Ino>,
    /// Folders that are mount points (the root of a device of their own).
    mounts: HashSet<Ino>,
    recent: VecDeque<String>,
    /// What the last cut did, for a failing trial's message.
    cut_report: Vec<String>,
    /// When the last cut fell.
    cut_time: Option<std::time::Instant>,
    /// When a file was last fsynced or fdatasynced.
    last_sync: Option<std::time::Instant>,
    /// Every successful file fsync or fdatasync: when, and which file.
    syncs: Vec<(std::time::Instant, std::path::PathBuf)>,
}

/// The model. Cheap to share: clones see the same disk.
#[derive(Clone)]
pub struct PageCache {
    fs: Arc<Mutex<Fs>>,
    cv: Arc<Condvar>,
}

impl Default for PageCache {
    fn default() -> Self {
        Self::new()
    }
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn errno(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

fn next_rand(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

impl Fs {
    /// Counts one operation; fails it (and every later one) once the power is cut.
    fn op(&mut self, op: Op, path: &Path, cv: &Condvar) -> io::Result<()> {
        if self.dead {
            return Err(eio());
        }
        self.ops += 1;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent
            .push_back(format!("#{} {} {}", self.ops, op.name(), path.display()));
        if let Some(cut) = &self.cut {
            let counts = cut.named.as_deref().is_none_or(|s| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(s))
            });
            if counts {
                self.counted += 1;
                if self.counted >= cut.k {
                    let seed = cut.seed;
                    self.power_cut(seed);
                    cv.notify_all();
                    return Err(eio());
                }
            }
        }
        Ok(())
    }

    fn power_cut(&mut self, seed: u64) {
        self.cut_time = Some(std::time::Instant::now());
        self.dead = true;
        self.cut = None;
        self.generation += 1;
        self.locks.clear();
        let mut rng = seed | 1;
        let since_sync = self.last_sync.map_or("never".into(), |t| {
            format!("{} ms before", t.elapsed().as_millis())
        });
        let mut report = vec![format!(
            "power cut at operation #{}; last file sync {since_sync} (last operations: {})",
            self.ops,
            self.recent.iter().cloned().collect::<Vec<_>>().join("; ")
        )];
        // Keep what is reachable through durable names, with its durable content.
        let mut kept = HashMap::new();
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            // A file with several durable names (hard links) is one file: kept once.
            if kept.contains_key(&ino) {
                continue;
            }
            let Some(node) = self.nodes.get(&ino) else {
                continue;
            };
            let mut node = node.clone();
            if node.dir {
                if node.entries != node.synced_entries {
                    report.push(format!(
                        "folder #{ino}: {} names now, {} durable",
                        node.entries.len(),
                        node.synced_entries.len()
                    ));
                }
                node.entries = node.synced_entries.clone();
                node.mode = node.synced_mode;
                stack.extend(node.entries.values().copied());
            } else {
                let mut data = node.synced.clone();
                if node.data.len() > data.len() && node.data.starts_with(&data) {
                    let extra = node.data.len() - data.len();
                    let keep = match next_rand(&mut rng) % 3 {
                        0 => 0,
                        1 => extra,
                        _ => (next_rand(&mut rng) % (extra as u64 + 1)) as usize,
                    };
                    data.extend_from_slice(&node.data[data.len()..data.len() + keep]);
                }
                if data != node.data {
                    report.push(format!(
                        "file #{ino}: {} bytes now, {} kept",
                        node.data.len(),
                        data.len()
                    ));
                }
                node.data = data.clone();
                node.synced = data;
                node.mode = node.synced_mode;
            }
            kept.insert(ino, node);
        }
        self.nodes = kept;
        self.cut_report = report;
    }

    /// The folder and the last name of `path`.
    fn parent_of(&self, path: &Path) -> io::Result<(Ino, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| errno(libc::EINVAL))?
            .to_owned();
        let parent = path.parent().ok_or_else(|| errno(libc::EINVAL))?;
        let ino = self.lookup(parent)?;
        if !self.nodes[&ino].dir {
            return Err(errno(libc::ENOTDIR));
        }
        Ok((ino, name))
    }

    /// The device `path` is on: 1, or the mount point's number plus 2 below a mount point.
    fn dev_of(&self, path: &Path) -> io::Result<u64> {
        let mut dev = 1;
        let mut ino = ROOT;
        for c in path.components() {
            if let Component::Normal(name) = c {
                let node = self.nodes.get(&ino).ok_or_else(eio)?;
                ino = *node.entries.get(name).ok_or_else(|| errno(libc::ENOENT))?;
                if self.mounts.contains(&ino) {
                    dev = ino + 2;
                }
            }
        }
        Ok(dev)
    }

    /// Fails a rename or link of `from` into the folder of `to` that crosses devices, or that
    /// moves a mount point or replaces one.
    fn same_device(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (src, dst) = (self.lookup(from)?, self.lookup(to).ok());
        if self.mounts.contains(&src) || dst.is_some_and(|d| self.mounts.contains(&d)) {
            return Err(errno(libc::EBUSY));
        }
        let to_parent = to.parent().ok_or_else(|| errno(libc::EINVAL))?;
        if self.dev_of(from)? != self.dev_of(to_parent)? {
            return Err(errno(libc::EXDEV));
        }
        Ok(())
    }

    fn lookup(&self, path: &Path) -> io::Result<Ino> {
        let mut ino = ROOT;
        for c in path.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(name) => {
                    let node = &self.nodes[&ino];
                    if !node.dir {
                        return Err(errno(libc::ENOTDIR));
                    }
                    ino = *node.entries.get(name).ok_or_else(|| errno(libc::ENOENT))?;
                }
                _ => return Err(errno(libc::EINVAL)),
            }
        }
        Ok(ino)
    }

    fn add(&mut self, parent: Ino, name: OsString, dir: bool) -> Ino {
        let ino = self.next;
        self.next += 1;
        let mode = if dir { 0o700 } else { 0o600 };
        self.nodes.insert(
            ino,
            Node {
                dir,
                mode,
                synced_mode: mode,
                modified: Some(SystemTime::now()),
                ..Node::default()
            },
        );
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.entries.insert(name, ino);
        }
        ino
    }
}

impl PageCache {
    /// An empty disk: only `/`, durable.
    pub fn new() -> PageCache {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                dir: true,
                mode: 0o755,
                synced_mode: 0o755,
                ..Node::default()
            },
        );
        PageCache {
            fs: Arc::new(Mutex::new(Fs {
                nodes,
                next: 1,
                generation: 0,
                dead: false,
                cut: None,
                counted: 0,
                ops: 0,
                locks: HashSet::new(),
                mounts: HashSet::new(),
                recent: VecDeque::new(),
                cut_report: Vec::new(),
                cut_time: None,
                last_sync: None,
                syncs: Vec::new(),
            })),
            cv: Arc::new(Condvar::new()),
        }
    }

    /// Creates the folders of `path` (set-up, not counted); `durable` makes their names
    /// durable, as a folder made long ago is.
    pub fn mkdirs(&self, path: &Path, durable: bool) {
        let mut fs = self.fs.lock();
        let mut ino = ROOT;
        for c in path.components() {
            let Component::Normal(name) = c else { continue };
            let next = match fs.nodes[&ino].entries.get(name) {
                Some(&i) => i,
                None => fs.add(ino, name.to_owned(), true),
            };
            if durable {
                if let Some(p) = fs.nodes.get_mut(&ino) {
                    p.synced_entries.insert(name.to_owned(), next);
                }
            }
            ino = next;
        }
    }

    /// Makes the existing folder `path` a mount point (set-up, not counted): it and what is
    /// below it are on a device of their own. A power cut keeps it mounted.
    pub fn mount(&self, path: &Path) {
        let mut fs = self.fs.lock();
        if let Ok(ino) = fs.lookup(path) {
            fs.mounts.insert(ino);
        }
    }

    /// Arms a power cut.
    pub fn arm(&self, cut: PowerCut) {
        let mut fs = self.fs.lock();
        fs.counted = 0;
        fs.cut = Some(cut);
    }

    /// Cuts the power now.
    pub fn cut_now(&self, seed: u64) {
        let mut fs = self.fs.lock();
        if !fs.dead {
            fs.power_cut(seed);
            self.cv.notify_all();
        }
    }

    /// Whether the power is off.
    pub fn is_cut(&self) -> bool {
        self.fs.lock().dead
    }

    /// Waits up to `timeout` for an armed cut to fall; true when the power is off.
    pub fn wait_cut(&self, timeout: std::time::Duration) -> bool {
        let mut fs = self.fs.lock();
        if !fs.dead {
            self.cv.wait_for(&mut fs, timeout);
        }
        fs.dead
    }

    /// Disarms any pending cut.
    pub fn disarm(&self) {
        self.fs.lock().cut = None;
    }

    /// Turns the power back on over what survived.
    pub fn power_on(&self) {
        let mut fs = self.fs.lock();
        fs.dead = false;
        fs.cut = None;
    }

    /// When the last power cut fell.
    pub fn cut_time(&self) -> Option<std::time::Instant> {
        self.fs.lock().cut_time
    }

    /// Every file fsync or fdatasync so far: when, and of which file.
    pub fn syncs(&self) -> Vec<(std::time::Instant, std::path::PathBuf)> {
        self.fs.lock().syncs.clone()
    }

    /// Backend operations so far.
    pub fn ops(&self) -> u64 {
        self.fs.lock().ops
    }

    /// The last operations before the cut and what the cut dropped.
    pub fn cut_report(&self) -> String {
        self.fs.lock().cut_report.join("\n  ")
    }

    /// The names in a folder now (for tests; not counted).
    pub fn list(&self, path: &Path) -> Vec<String> {
        let fs = self.fs.lock();
        fs.lookup(path)
            .ok()
            .and_then(|i| fs.nodes.get(&i))
            .map(|n| {
                n.entries
                    .keys()
                    .map(|k| k.to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct ModelFile {
    fs: Arc<Mutex<Fs>>,
    cv: Arc<Condvar>,
    ino: Ino,
    generation: u64,
    pos: Mutex<u64>,
    mode: OpenMode,
    path: std::path::PathBuf,
}

impl ModelFile {
    fn with<R>(
        &self,
        op: Op,
        f: impl FnOnce(&mut Node, &mut u64) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut fs = self.fs.lock();
        if fs.generation != self.generation {
            return Err(eio());
        }
        fs.op(op, &self.path, &self.cv)?;
        if matches!(op, Op::Fsync | Op::Fdatasync) {
            let now = std::time::Instant::now();
            fs.last_sync = Some(now);
            fs.syncs.push((now, self.path.clone()));
        }
        let node = fs.nodes.get_mut(&self.ino).ok_or_else(eio)?;
        f(node, &mut self.pos.lock())
    }
}

impl File for ModelFile {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(Op::Read, |n, pos| {
            let start = (*pos as usize).min(n.data.len());
            let k = buf.len().min(n.data.len() - start);
            buf[..k].copy_from_slice(&n.data[start..start + k]);
            *pos += k as u64;
            Ok(k)
        })
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if self.mode == OpenMode::Read {
            return Err(errno(libc::EBADF));
        }
        let append = self.mode == OpenMode::Append;
        self.with(Op::Write, |n, pos| {
            let at = if append { n.data.len() } else { *pos as usize };
            if n.data.len() < at + buf.len() {
                n.data.resize(at + buf.len(), 0);
            }
            n.data[at..at + buf.len()].copy_from_slice(buf);
            n.modified = Some(SystemTime::now());
            *pos = (at + buf.len()) as u64;
            Ok(buf.len())
        })
    }
    fn seek(&self, pos: u64) -> io::Result<()> {
        *self.pos.lock() = pos;
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        let fs = self.fs.lock();
        if fs.generation != self.generation || fs.dead {
            return Err(eio());
        }
        Ok(fs.nodes.get(&self.ino).map_or(0, |n| n.data.len() as u64))
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(Op::Truncate, |n, _| {
            n.data.resize(len as usize, 0);
            n.modified = Some(SystemTime::now());
            Ok(())
        })
    }
    fn sync_all(&self) -> io::Result<()> {
        self.with(Op::Fsync, |n, _| {
            n.synced = n.data.clone();
            n.synced_mode = n.mode;
            Ok(())
        })
    }
    fn sync_data(&self) -> io::Result<()> {
        self.with(Op::Fdatasync, |n, _| {
            n.synced = n.data.clone();
            Ok(())
        })
    }
}

struct ModelLock {
    fs: Arc<Mutex<Fs>>,
    ino: Ino,
    generation: u64,
}

impl Lock for ModelLock {}

impl Drop for ModelLock {
    fn drop(&mut self) {
        let mut fs = self.fs.lock();
        if fs.generation == self.generation {
            fs.locks.remove(&self.ino);
        }
    }
}

impl PageCache {
    fn begin(&self, op: Op, path: &Path) -> io::Result<parking_lot::MutexGuard<'_, Fs>> {
        let mut fs = self.fs.lock();
        fs.op(op, path, &self.cv)?;
        Ok(fs)
    }
}

impl Backend for PageCache {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>> {
        let mut fs = self.begin(Op::Open, path)?;
        let ino = match fs.lookup(path) {
            Ok(ino) => {
                if fs.nodes[&ino].dir {
                    return Err(errno(libc::EISDIR));
                }
                if mode == OpenMode::Truncate {
                    if let Some(n) = fs.nodes.get_mut(&ino) {
                        n.data.clear();
                        n.modified = Some(SystemTime::now());
                    }
                }
                ino
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && mode.creates() => {
                let (parent, name) = fs.parent_of(path)?;
                fs.add(parent, name, false)
            }
            Err(e) => return Err(e),
        };
        Ok(Box::new(ModelFile {
            fs: self.fs.clone(),
            cv: self.cv.clone(),
            ino,
            generation: fs.generation,
            pos: Mutex::new(0),
            mode,
            path: path.to_owned(),
        }))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let fs = self.begin(Op::Stat, path)?;
        match fs.lookup(path) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.begin(Op::Rename, to)?;
        let ino = fs.lookup(from)?;
        fs.same_device(from, to)?;
        let (src, src_name) = fs.parent_of(from)?;
        let (dst, dst_name) = fs.parent_of(to)?;
        if let Some(&old) = fs.nodes[&dst].entries.get(&dst_name) {
            let old = &fs.nodes[&old];
            match (fs.nodes[&ino].dir, old.dir) {
                (false, true) => return Err(errno(libc::EISDIR)),
                (true, false) => return Err(errno(libc::ENOTDIR)),
                (true, true) if !old.entries.is_empty() => return Err(errno(libc::ENOTEMPTY)),
                _ => {}
            }
        }
        if let Some(n) = fs.nodes.get_mut(&src) {
            n.entries.remove(&src_name);
        }
        if let Some(n) = fs.nodes.get_mut(&dst) {
            n.entries.insert(dst_name, ino);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.begin(Op::Remove, path)?;
        let ino = fs.lookup(path)?;
        if fs.nodes[&ino].dir {
            return Err(errno(libc::EISDIR));
        }
        let (parent, name) = fs.parent_of(path)?;
        if let Some(n) = fs.nodes.get_mut(&parent) {
            n.entries.remove(&name);
        }
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.begin(Op::Link, to)?;
        let ino = fs.lookup(from)?;
        fs.same_device(from, to)?;
        if fs.nodes[&ino].dir {
            return Err(errno(libc::EPERM));
        }
        let (dst, name) = fs.parent_of(to)?;
        if fs.nodes[&dst].entries.contains_key(&name) {
            return Err(errno(libc::EEXIST));
        }
        if let Some(n) = fs.nodes.get_mut(&dst) {
            n.entries.insert(name, ino);
        }
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.begin(Op::RemoveDir, path)?;
        let ino = fs.lookup(path)?;
        if fs.mounts.contains(&ino) {
            return Err(errno(libc::EBUSY));
        }
        let node = &fs.nodes[&ino];
        if !node.dir {
            return Err(errno(libc::ENOTDIR));
        }
        if !node.entries.is_empty() {
            return Err(errno(libc::ENOTEMPTY));
        }
        let (parent, name) = fs.parent_of(path)?;
        if let Some(n) = fs.nodes.get_mut(&parent) {
            n.entries.remove(&name);
        }
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.begin(Op::CreateDir, path)?;
        let (parent, name) = fs.parent_of(path)?;
        if fs.nodes[&parent].entries.contains_key(&name) {
            return Err(errno(libc::EEXIST));
        }
        fs.add(parent, name, true);
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let fs = self.begin(Op::ReadDir, path)?;
        let node = &fs.nodes[&fs.lookup(path)?];
        if !node.dir {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(node
            .entries
            .iter()
            .map(|(name, ino)| DirEntry {
                name: name.clone(),
                kind: if fs.nodes[ino].dir {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
            })
            .collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.begin(Op::SyncDir, path)?;
        let ino = fs.lookup(path)?;
        let node = fs.nodes.get_mut(&ino).ok_or_else(eio)?;
        if !node.dir {
            return Err(errno(libc::ENOTDIR));
        }
        node.synced_entries = node.entries.clone();
        node.synced_mode = node.mode;
        Ok(())
    }

    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Lock>> {
        let lock_path = dir.join(super::LOCK_FILE);
        let mut fs = self.begin(Op::Lock, dir)?;
        let ino = fs.lookup(dir)?;
        if fs.lookup(&lock_path).is_err() {
            let (parent, name) = fs.parent_of(&lock_path)?;
            fs.add(parent, name, false);
        }
        if !fs.locks.insert(ino) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another fluxiondb process", dir.display()),
            ));
        }
        Ok(Box::new(ModelLock {
            fs: self.fs.clone(),
            ino,
            generation: fs.generation,
        }))
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let fs = self.begin(Op::Stat, path)?;
        let ino = fs.lookup(path)?;
        let node = fs.nodes.get(&ino).ok_or_else(eio)?;
        Ok(Metadata {
            kind: if node.dir {
                EntryKind::Dir
            } else {
                EntryKind::File
            },
            dev: fs.dev_of(path)?,
            ino,
            mode: node.mode,
            modified: node.modified,
        })
    }

    fn set_permissions(&self, path: &Path, mode: u32) -> io::Result<()> {
        let mut fs = self.begin(Op::SetPermissions, path)?;
        let ino = fs.lookup(path)?;
        let node = fs.nodes.get_mut(&ino).ok_or_else(eio)?;
        node.mode = mode & 0o7777;
        Ok(())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let fs = self.begin(Op::Stat, path)?;
        fs.lookup(path)?;
        // No symbolic links; `lookup` refuses `..`; a relative path starts at `/`.
        let mut real = PathBuf::from("/");
        real.extend(path.components().filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        }));
        Ok(real)
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
