//! A data folder built from the bucket is written under a staging name and moved into place
//! only once whole, so its final name only ever shows a complete folder: `fluxiondb restore`
//! and a replica's first start both build theirs this way.
//!
//! The staging folder is `PARENT/.NAME.TAG-PID`, beside the target, and one rename moves it
//! over the target (absent, or an empty folder, whose permissions it takes). When the target
//! cannot be renamed over (a mount point, `/`) or should not be (the working directory), it is
//! `TARGET/.TAG-PID` inside it instead, and its entries are moved up one by one.
//!
//! Every file operation goes through the storage [`Backend`] the caller gives (the data
//! folder's: the operating system for `fluxiondb restore`, the server's backend for a replica),
//! so the power-loss model reaches the staging too. One thing stays outside it: the working
//! directory (`std::env::current_dir`), which is the process's, not the file system's; it is
//! only compared with the target's real path (on another backend than the operating system it
//! names nothing there, and no target is taken for it).

use crate::persist;
use crate::storage::Backend;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    Local(PathBuf, io::Error),
    /// The folder the target is created in could not be made (or made durable).
    Folder(persist::Error),
    /// The target's path names no folder to create (`..`, say).
    NotAFolder(PathBuf),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Local(path, e) => write!(f, "{}: {e}", path.display()),
            Error::Folder(e) => write!(f, "{e}"),
            Error::NotAFolder(path) => {
                write!(f, "{} does not name a folder to create", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// The folder a path is in (`.` for a bare relative name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a folder, so the names created, renamed or removed in it are durable.
fn sync_dir(fs: &dyn Backend, dir: &Path) -> Result<(), Error> {
    fs.sync_dir(dir)
        .map_err(|e| Error::Local(dir.to_owned(), e))
}

/// The error of an operation on `path`.
fn local(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |e| Error::Local(path.to_owned(), e)
}

/// The staging folder's name without its process id: `.NAME.TAG-` beside the target.
fn beside_prefix(name: &OsStr, tag: &str) -> OsString {
    let mut staged = OsString::from(".");
    staged.push(name);
    staged.push(format!(".{tag}-"));
    staged
}

/// The staging folder of a target named `name` in `parent`: `parent/.NAME.TAG-PID`.
fn beside(parent: &Path, name: &OsStr, tag: &str) -> PathBuf {
    let mut staged = beside_prefix(name, tag);
    staged.push(std::process::id().to_string());
    parent.join(staged)
}

/// Where a folder is written before it is complete, and how it then takes the target's place.
/// One that is dropped before [`Staging::commit`] removes what it wrote.
pub struct Staging<'a> {
    /// The file system both folders are on.
    fs: &'a dyn Backend,
    /// The folder being written.
    dir: PathBuf,
    /// The data folder it becomes.
    target: PathBuf,
    /// `dir` is beside the target (same parent, so one rename moves it into place); otherwise
    /// it is inside the target and its entries are moved up one by one.
    beside: bool,
    committed: bool,
    /// What it is (`restore`, `replica`), for its name and the warning when it cannot be
    /// removed.
    tag: &'static str,
    /// Who writes it (`fluxiondb restore`), for that warning when no logger is set up.
    who: &'static str,
}

impl<'a> Staging<'a> {
    /// A new, empty staging folder `.NAME.TAG-PID` for `target` on `fs` (which the caller
    /// checked is empty or absent, or holds only what [`Staging::commit_replacing`] will
    /// replace).
    pub fn create(
        fs: &'a dyn Backend,
        target: &Path,
        tag: &'static str,
        who: &'static str,
    ) -> Result<Staging<'a>, Error> {
        let staging = |dir, target, beside| Staging {
            fs,
            dir,
            target,
            beside,
            committed: false,
            tag,
            who,
        };
        let staging = if fs.exists(target).map_err(local(target))? {
            // An existing folder: renamed over when it is an ordinary folder (its permissions
            // carried over); filled from inside when it is a mount point, `/` or the working
            // directory. A symbolic link is followed: the folder it names is the target.
            let real = fs.canonicalize(target).map_err(local(target))?;
            let meta = fs.metadata(&real).map_err(local(&real))?;
            // The working directory stays the folder the caller is in (not replaced by another).
            let cwd = std::env::current_dir()
                .ok()
                .and_then(|d| fs.canonicalize(&d).ok());
            let beside_dir = match (real.parent(), real.file_name()) {
                (Some(parent), Some(name)) if cwd.as_deref() != Some(real.as_path()) => {
                    let parent_meta = fs.metadata(parent).map_err(local(parent))?;
                    (parent_meta.dev == meta.dev).then(|| beside(parent, name, tag))
                }
                _ => None,
            };
            match beside_dir {
                Some(dir) => {
                    let s = staging(dir, real, true);
                    s.make()?;
                    fs.set_permissions(&s.dir, meta.mode)
                        .map_err(local(&s.dir))?;
                    s
                }
                None => {
                    let s = staging(
                        real.join(format!(".{tag}-{}", std::process::id())),
                        real,
                        false,
                    );
                    s.make()?;
                    s
                }
            }
        } else {
            let parent = parent_of(target);
            persist::create_dir_durable(fs, parent).map_err(Error::Folder)?;
            let Some(name) = target.file_name() else {
                return Err(Error::NotAFolder(target.to_owned()));
            };
            let s = staging(beside(parent, name, tag), target.to_owned(), true);
            s.make()?;
            s
        };
        Ok(staging)
    }

    fn make(&self) -> Result<(), Error> {
        self.fs.create_dir(&self.dir).map_err(local(&self.dir))
    }

    /// The folder to write into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether it is beside the target (moved into place by one rename), not inside it.
    pub fn is_beside(&self) -> bool {
        self.beside
    }

    /// Moves the complete folder into place (its files already synced): one rename, then the
    /// parent's fsync; or, inside a mount point, a rename per entry, then the target's fsync.
    pub fn commit(self) -> Result<(), Error> {
        self.commit_replacing(&[], None)
    }

    /// [`Staging::commit`], where the target may hold the files `replaced` (removed just before
    /// the rename when beside it, so that it is empty; left alone when filled from inside),
    /// and where, filled from inside, the entry `last` is moved up after every other one.
    pub fn commit_replacing(mut self, replaced: &[&str], last: Option<&str>) -> Result<(), Error> {
        let fs = self.fs;
        sync_dir(fs, &self.dir)?;
        if self.beside {
            for name in replaced {
                let path = self.target.join(name);
                match fs.remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Local(path, e)),
                }
            }
            // Over an empty folder (a directory can only replace an empty one): a folder that
            // something wrote into since the check is not replaced (`ENOTEMPTY`).
            fs.rename(&self.dir, &self.target)
                .map_err(local(&self.target))?;
            self.committed = true;
            sync_dir(fs, parent_of(&self.target))?;
        } else {
            let mut entries = fs.read_dir(&self.dir).map_err(local(&self.dir))?;
            entries.sort_by_key(|e| last.is_some_and(|l| e.name.as_os_str() == OsStr::new(l)));
            for (i, entry) in entries.iter().enumerate() {
                let (from, to) = (self.dir.join(&entry.name), self.target.join(&entry.name));
                if let Err(e) = fs.rename(&from, &to) {
                    // The target is left as it was: what was moved up is removed.
                    for moved in &entries[..i] {
                        let path = self.target.join(&moved.name);
                        if let Err(e) = fs.remove_entry(&path, moved.kind) {
                            log::warn!("cannot remove {}: {e}", path.display());
                        }
                    }
                    return Err(Error::Local(to, e));
                }
            }
            fs.remove_dir(&self.dir).map_err(local(&self.dir))?;
            self.committed = true;
            sync_dir(fs, &self.target)?;
        }
        Ok(())
    }
}

impl Drop for Staging<'_> {
    /// A folder that did not complete leaves nothing behind.
    fn drop(&mut self) {
        if !self.committed {
            if let Err(e) = self.fs.remove_dir_all(&self.dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    let (dir, tag) = (self.dir.display(), self.tag);
                    if log::log_enabled!(log::Level::Warn) {
                        log::warn!("cannot remove the unfinished {tag} {dir}: {e}");
                    } else {
                        eprintln!(
                            "{}: cannot remove the unfinished {tag} {dir}: {e}",
                            self.who
                        );
                    }
                }
            }
        }
    }
}

/// Staging folders an earlier process left for a target (killed before it could remove them).
#[derive(Debug, Default)]
pub struct Leftovers {
    /// `.NAME.TAG-*` beside it.
    pub beside: Vec<PathBuf>,
    /// `.TAG-*` inside it (the moving up of whose entries may have begun).
    pub inside: Vec<PathBuf>,
}

/// The staging folders tagged `tag` that earlier processes left for `target` (a folder on `fs`,
/// or where one would be). Call only while holding the target's lock, which every process writing one
/// holds while it exists, so that none of them is in use.
pub fn leftovers(fs: &dyn Backend, target: &Path, tag: &str) -> Result<Leftovers, Error> {
    let scan = |dir: &Path, prefix: &OsStr| -> Result<Vec<PathBuf>, Error> {
        let entries = match fs.read_dir(dir) {
            Ok(entries) => entries,
            // A parent this user may not list (a volume mounted under a root-owned path).
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(Vec::new()),
            Err(e) => return Err(Error::Local(dir.to_owned(), e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let pid = entry
                .name
                .as_encoded_bytes()
                .strip_prefix(prefix.as_encoded_bytes())
                .filter(|rest| !rest.is_empty() && rest.iter().all(u8::is_ascii_digit));
            if pid.is_some() {
                found.push(dir.join(&entry.name));
            }
        }
        Ok(found)
    };
    // An absent target can still have staging folders beside it (a build into it was cut).
    let (real, exists) = match fs.canonicalize(target) {
        Ok(real) => (real, true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = parent_of(target);
            let Some(name) = target.file_name() else {
                return Ok(Leftovers::default());
            };
            match fs.canonicalize(parent) {
                Ok(parent) => (parent.join(name), false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Leftovers::default()),
                Err(e) => return Err(Error::Local(parent.to_owned(), e)),
            }
        }
        Err(e) => return Err(Error::Local(target.to_owned(), e)),
    };
    let beside = match (real.parent(), real.file_name()) {
        (Some(parent), Some(name)) => scan(parent, &beside_prefix(name, tag))?,
        _ => Vec::new(),
    };
    let inside = if exists {
        scan(&real, OsStr::new(&format!(".{tag}-")))?
    } else {
        Vec::new()
    };
    Ok(Leftovers { beside, inside })
}

/// Removes everything in `dir` but the names in `keep`, durably: what a build stopped while
/// moving its entries up into `dir` left there (filled from inside; `dir` held nothing but
/// `keep` when that build began, so all of it is the build's).
pub fn clear_inside(fs: &dyn Backend, dir: &Path, keep: &[&str]) -> Result<(), Error> {
    for entry in fs.read_dir(dir).map_err(local(dir))? {
        if keep.iter().any(|k| entry.name == OsStr::new(k)) {
            continue;
        }
        let path = dir.join(&entry.name);
        fs.remove_entry(&path, entry.kind).map_err(local(&path))?;
    }
    sync_dir(fs, dir)
}

/// The process that named a staging folder (`….TAG-PID`), when it is still running and is not
/// this one. Process state, not the file system's: read from `/proc`, whatever the backend.
pub fn running_writer(staging: &Path) -> Option<u32> {
    let name = staging.file_name()?.to_str()?;
    let pid: u32 = name.rsplit_once('-')?.1.parse().ok()?;
    let alive = pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists();
    alive.then_some(pid)
}
