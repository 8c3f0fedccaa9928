//! The operating system's file system.

use super::{Backend, DirEntry, EntryKind, File, Lock, Metadata, OpenMode};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Every file the server writes is private to its user.
const FILE_MODE: u32 = 0o600;

/// `std::fs` and `libc`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealFile(fs::File);

impl File for RealFile {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.0).write(buf)
    }
    fn seek(&self, pos: u64) -> io::Result<()> {
        (&self.0).seek(SeekFrom::Start(pos)).map(|_| ())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

fn kind_of(t: fs::FileType) -> EntryKind {
    if t.is_dir() {
        EntryKind::Dir
    } else if t.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

/// The flock on `LOCK`, released when the file is closed.
struct FileLock(#[allow(dead_code)] fs::File);

impl Lock for FileLock {}

impl Backend for RealFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::Append => o.create(true).append(true).mode(FILE_MODE),
            OpenMode::Truncate => o.create(true).write(true).truncate(true).mode(FILE_MODE),
            OpenMode::Write => o.write(true),
        };
        Ok(Box::new(RealFile(o.open(path)?)))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            out.push(DirEntry {
                name: entry.file_name(),
                kind: kind_of(entry.file_type()?),
            });
        }
        Ok(out)
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let m = fs::metadata(path)?;
        Ok(Metadata {
            kind: kind_of(m.file_type()),
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode() & 0o7777,
            modified: m.modified().ok(),
        })
    }

    fn set_permissions(&self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        fs::canonicalize(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        fs::File::open(path)?.sync_all()
    }

    fn lock(&self, dir: &Path) -> io::Result<Box<dyn Lock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(FILE_MODE)
            .open(dir.join(super::LOCK_FILE))?;
        // SAFETY: flock on an fd we own; non-blocking exclusive lock.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another fluxiondb process", dir.display()),
                )
            } else {
                e
            });
        }
        Ok(Box::new(FileLock(file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_and_folder_removal_on_the_real_file_system() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let fs = RealFs;
        fs.create_dir(&d.join("p")).unwrap();
        fs.create_dir(&d.join("p/q")).unwrap();
        fs.open(&d.join("a"), OpenMode::Truncate)
            .unwrap()
            .write_all(b"one")
            .unwrap();
        fs.hard_link(&d.join("a"), &d.join("p/a")).unwrap();
        fs.hard_link(&d.join("a"), &d.join("p/q/a")).unwrap();
        assert_eq!(fs.read(&d.join("p/q/a")).unwrap(), b"one");
        assert_eq!(fs.file_size(&d.join("p/a")).unwrap(), 3);
        let e = fs.hard_link(&d.join("a"), &d.join("p/a")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(fs.remove_dir(&d.join("p")).is_err());
        fs.remove_dir_all(&d.join("p")).unwrap();
        assert!(!fs.exists(&d.join("p")).unwrap());
        assert_eq!(fs.read(&d.join("a")).unwrap(), b"one");
        fs.create_dir(&d.join("e")).unwrap();
        fs.remove_dir(&d.join("e")).unwrap();
        assert!(!fs.exists(&d.join("e")).unwrap());
    }

    #[test]
    fn metadata_permissions_and_real_paths_on_the_real_file_system() {
        let tmp = tempfile::tempdir().unwrap();
        let d = fs_canon(tmp.path());
        let fs = RealFs;
        fs.create_dir(&d.join("p")).unwrap();
        fs.open(&d.join("a"), OpenMode::Truncate).unwrap();
        fs.hard_link(&d.join("a"), &d.join("p/b")).unwrap();
        let (a, b) = (
            fs.metadata(&d.join("a")).unwrap(),
            fs.metadata(&d.join("p/b")).unwrap(),
        );
        assert_eq!((a.kind, a.mode), (EntryKind::File, 0o600));
        assert_eq!((a.dev, a.ino), (b.dev, b.ino));
        assert_eq!(fs.metadata(&d.join("p")).unwrap().kind, EntryKind::Dir);
        fs.set_permissions(&d.join("p"), 0o750).unwrap();
        assert_eq!(fs.metadata(&d.join("p")).unwrap().mode, 0o750);
        assert_eq!(fs.canonicalize(&d.join("p/../a")).unwrap(), d.join("a"));
        std::os::unix::fs::symlink(d.join("p"), d.join("l")).unwrap();
        assert_eq!(fs.canonicalize(&d.join("l")).unwrap(), d.join("p"));
        let e = fs.metadata(&d.join("none")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    fn fs_canon(p: &Path) -> PathBuf {
        fs::canonicalize(p).unwrap()
    }
}
