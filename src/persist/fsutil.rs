//! File-system steps built on the storage backend: folders whose names are durable, atomic
//! replacement, directory fsync, quarantine of damaged files, the folder lock.

use super::error::Error;
use crate::storage::{Backend, File, Lock, Op, OpenMode};
use std::io;
use std::path::{Path, PathBuf};

/// fsyncs a directory so that names created, renamed or removed in it are durable.
pub fn sync_dir(fs: &dyn Backend, dir: &Path) -> Result<(), Error> {
    fs.sync_dir(dir).map_err(Error::io(Op::SyncDir, dir))
}

/// The folder a path is in (`.` for a bare relative name; the root is its own).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        Some(_) => Path::new("."),
        None => path,
    }
}

/// Creates `dir` and any missing parents, and makes every name on the way durable: every
/// folder above `dir` is fsynced, up to the root, whether the server created the folders or
/// found them (an install script's `mkdir -p` just before may not have synced them). Without
/// this a power cut soon after the first start can take the whole folder, and everything
/// acknowledged in it, away (issue 18).
pub fn create_dir_durable(fs: &dyn Backend, dir: &Path) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut at = dir;
    loop {
        if fs.exists(at).map_err(Error::io(Op::Stat, at))? {
            break;
        }
        missing.push(at);
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    for created in missing.iter().rev() {
        match fs.create_dir(created) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(Op::CreateDir, *created)(e)),
        }
    }
    let mut at = dir;
    while at != parent(at) {
        at = parent(at);
        match fs.sync_dir(at) {
            Ok(()) => {}
            // A folder this user may not read (a volume mounted under a root-owned path):
            // whoever made the names in it is the one who could sync them.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => log::warn!(
                "cannot fsync {} to make the data folder's name durable: {e}",
                at.display()
            ),
            Err(e) => return Err(Error::io(Op::SyncDir, at)(e)),
        }
    }
    Ok(())
}

/// Replaces `dir/name` atomically: temp file → `fill` → fsync → rename → directory fsync.
pub fn write_atomic(
    fs: &dyn Backend,
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&dyn File) -> io::Result<()>,
) -> Result<(), Error> {
    let tmp = dir.join(format!("{name}.tmp"));
    let written = fs
        .open(&tmp, OpenMode::Truncate)
        .map_err(Error::io(Op::Open, &tmp))
        .and_then(|f| {
            fill(&*f).map_err(Error::io(Op::Write, &tmp))?;
            f.sync_all().map_err(Error::io(Op::Fsync, &tmp))
        });
    if let Err(e) = written {
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    let target = dir.join(name);
    fs.rename(&tmp, &target)
        .map_err(Error::io(Op::Rename, &target))?;
    sync_dir(fs, dir)
}

/// Moves a damaged file aside (`<name>.corrupt`) so an operator can inspect it.
pub fn quarantine(fs: &dyn Backend, path: &Path) -> Result<PathBuf, Error> {
    let target = unused_name(fs, path, ".corrupt")?;
    fs.rename(path, &target)
        .map_err(Error::io(Op::Rename, &target))?;
    sync_dir(fs, parent(path))?;
    Ok(target)
}

/// `path` with `suffix`, or, when a file of that name exists (an earlier repair's copy), with
/// `suffix` and the first free number after it: no repair replaces what an earlier one kept.
pub fn unused_name(fs: &dyn Backend, path: &Path, suffix: &str) -> Result<PathBuf, Error> {
    let mut n = 1u32;
    loop {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if n > 1 {
            name.push(format!(".{n}"));
        }
        let candidate = PathBuf::from(name);
        if !fs
            .exists(&candidate)
            .map_err(Error::io(Op::Stat, &candidate))?
        {
            return Ok(candidate);
        }
        n += 1;
    }
}

/// The exclusive lock on the data folder, held for the life of the journal.
pub fn lock(fs: &dyn Backend, dir: &Path) -> Result<Box<dyn Lock>, Error> {
    fs.lock(dir).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_owned())
        } else {
            Error::io(Op::Lock, dir)(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::PageCache;

    #[test]
    fn folders_created_or_found_survive_a_power_cut() {
        let fs = PageCache::new();
        fs.mkdirs(Path::new("/srv"), true);
        // Created, two levels deep.
        create_dir_durable(&fs, Path::new("/srv/a/data")).unwrap();
        // Found, made just before without a sync.
        fs.mkdirs(Path::new("/srv/b/data"), false);
        create_dir_durable(&fs, Path::new("/srv/b/data")).unwrap();
        // Made without a sync and never opened: lost, as the model says.
        fs.mkdirs(Path::new("/srv/c"), false);
        fs.cut_now(7);
        fs.power_on();
        assert_eq!(fs.list(Path::new("/srv")), vec!["a", "b"]);
        assert_eq!(fs.list(Path::new("/srv/a")), vec!["data"]);
        assert_eq!(fs.list(Path::new("/srv/b")), vec!["data"]);
    }

    #[test]
    fn a_second_quarantine_of_a_name_keeps_the_first_copy() {
        let fs = PageCache::new();
        let dir = Path::new("/data");
        fs.mkdirs(dir, true);
        let file = dir.join("snap-1.bin");
        for body in [b"first".as_slice(), b"second"] {
            let f = fs.open(&file, OpenMode::Truncate).unwrap();
            f.write_all(body).unwrap();
            quarantine(&fs, &file).unwrap();
        }
        assert_eq!(
            fs.list(dir),
            vec!["snap-1.bin.corrupt", "snap-1.bin.corrupt.2"]
        );
        assert_eq!(fs.read(&dir.join("snap-1.bin.corrupt")).unwrap(), b"first");
        assert_eq!(
            fs.read(&dir.join("snap-1.bin.corrupt.2")).unwrap(),
            b"second"
        );
    }
}
