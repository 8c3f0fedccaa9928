//! The page-cache model's own tests: what a power cut keeps of files, names, links and folders.

use super::*;

fn disk() -> (PageCache, PathBuf) {
    let fs = PageCache::new();
    let dir = PathBuf::from("/d");
    fs.mkdirs(&dir, true);
    (fs, dir)
}

/// Writes `path` with `body`, fsynced; its name durable when `named`.
fn put(fs: &PageCache, path: &Path, body: &[u8], named: bool) {
    let f = fs.open(path, OpenMode::Truncate).unwrap();
    f.write_all(body).unwrap();
    f.sync_all().unwrap();
    if named {
        fs.sync_dir(path.parent().unwrap()).unwrap();
    }
}

fn power_cycle(fs: &PageCache) {
    fs.cut_now(7);
    fs.power_on();
}

#[test]
fn a_hard_link_is_the_same_file_under_a_second_name() {
    let (fs, d) = disk();
    put(&fs, &d.join("a"), b"one", true);
    fs.hard_link(&d.join("a"), &d.join("b")).unwrap();
    assert_eq!(fs.read(&d.join("b")).unwrap(), b"one");
    // Written through one name, read through the other.
    let f = fs.open(&d.join("b"), OpenMode::Append).unwrap();
    f.write_all(b"+two").unwrap();
    assert_eq!(fs.read(&d.join("a")).unwrap(), b"one+two");
    // Taken: no link over an existing name; no link of a folder.
    let e = fs.hard_link(&d.join("a"), &d.join("b")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    fs.create_dir(&d.join("sub")).unwrap();
    let e = fs.hard_link(&d.join("sub"), &d.join("c")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    let e = fs.hard_link(&d.join("none"), &d.join("c")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn a_hard_link_is_durable_only_once_its_folder_is_fsynced() {
    let (fs, d) = disk();
    put(&fs, &d.join("a"), b"one", true);
    fs.hard_link(&d.join("a"), &d.join("b")).unwrap();
    power_cycle(&fs);
    assert!(!fs.exists(&d.join("b")).unwrap());
    assert_eq!(fs.read(&d.join("a")).unwrap(), b"one");

    fs.hard_link(&d.join("a"), &d.join("b")).unwrap();
    fs.sync_dir(&d).unwrap();
    power_cycle(&fs);
    assert_eq!(fs.read(&d.join("b")).unwrap(), b"one");
}

#[test]
fn a_durable_link_keeps_the_file_when_its_first_name_goes() {
    let (fs, d) = disk();
    fs.create_dir(&d.join("p")).unwrap();
    fs.sync_dir(&d).unwrap();
    put(&fs, &d.join("a"), b"old", true);
    fs.hard_link(&d.join("a"), &d.join("p/a")).unwrap();
    fs.sync_dir(&d.join("p")).unwrap();
    // The first name replaced by a new file, as a checkpoint replaces a snapshot.
    put(&fs, &d.join("a.tmp"), b"new", false);
    fs.rename(&d.join("a.tmp"), &d.join("a")).unwrap();
    fs.sync_dir(&d).unwrap();
    power_cycle(&fs);
    assert_eq!(fs.read(&d.join("a")).unwrap(), b"new");
    assert_eq!(fs.read(&d.join("p/a")).unwrap(), b"old");
}

#[test]
fn bytes_a_link_shares_are_kept_as_the_file_keeps_them() {
    let (fs, d) = disk();
    put(&fs, &d.join("a"), b"synced", true);
    fs.hard_link(&d.join("a"), &d.join("b")).unwrap();
    fs.sync_dir(&d).unwrap();
    let f = fs.open(&d.join("a"), OpenMode::Append).unwrap();
    f.write_all(b" and not").unwrap();
    power_cycle(&fs);
    // Whatever of the unsynced tail survived, both names read the same file.
    let (a, b) = (
        fs.read(&d.join("a")).unwrap(),
        fs.read(&d.join("b")).unwrap(),
    );
    assert_eq!(a, b);
    assert!(a.starts_with(b"synced"));
}

#[test]
fn a_removed_folder_stays_gone_only_once_its_parent_is_fsynced() {
    let (fs, d) = disk();
    fs.create_dir(&d.join("p")).unwrap();
    put(&fs, &d.join("p/f"), b"x", true);
    fs.sync_dir(&d).unwrap();
    let e = fs.remove_dir(&d.join("p")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
    let e = fs.remove_dir(&d.join("p/f")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));

    fs.remove_dir_all(&d.join("p")).unwrap();
    assert!(!fs.exists(&d.join("p")).unwrap());
    power_cycle(&fs);
    assert_eq!(fs.read(&d.join("p/f")).unwrap(), b"x");

    fs.remove_dir_all(&d.join("p")).unwrap();
    fs.sync_dir(&d).unwrap();
    power_cycle(&fs);
    assert!(!fs.exists(&d.join("p")).unwrap());
    let e = fs.remove_dir_all(&d.join("p")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_folder_is_renamed_over_an_empty_one_only() {
    let (fs, d) = disk();
    fs.create_dir(&d.join("target")).unwrap();
    fs.create_dir(&d.join("staged")).unwrap();
    put(&fs, &d.join("staged/f"), b"x", true);
    put(&fs, &d.join("file"), b"y", false);
    fs.sync_dir(&d).unwrap();
    let e = fs.rename(&d.join("file"), &d.join("target")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
    let e = fs.rename(&d.join("staged"), &d.join("file")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR));
    let e = fs.rename(&d.join("target"), &d.join("staged")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
    fs.rename(&d.join("staged"), &d.join("target")).unwrap();
    assert_eq!(fs.read(&d.join("target/f")).unwrap(), b"x");
    // Not durable until the parent is fsynced: the empty folder comes back.
    power_cycle(&fs);
    assert!(fs.list(&d.join("target")).is_empty());
    assert_eq!(fs.read(&d.join("staged/f")).unwrap(), b"x");
    fs.rename(&d.join("staged"), &d.join("target")).unwrap();
    fs.sync_dir(&d).unwrap();
    power_cycle(&fs);
    assert_eq!(fs.read(&d.join("target/f")).unwrap(), b"x");
    assert!(!fs.exists(&d.join("staged")).unwrap());
}

#[test]
fn permissions_are_durable_once_fsynced_and_metadata_names_the_file() {
    let (fs, d) = disk();
    fs.create_dir(&d.join("p")).unwrap();
    put(&fs, &d.join("a"), b"one", true);
    fs.sync_dir(&d).unwrap();
    let (p, a) = (
        fs.metadata(&d.join("p")).unwrap(),
        fs.metadata(&d.join("a")).unwrap(),
    );
    assert_eq!((p.kind, p.mode), (EntryKind::Dir, 0o700));
    assert_eq!((a.kind, a.mode), (EntryKind::File, 0o600));
    fs.hard_link(&d.join("a"), &d.join("b")).unwrap();
    let b = fs.metadata(&d.join("b")).unwrap();
    assert_eq!((b.dev, b.ino), (a.dev, a.ino));
    assert_ne!(p.ino, a.ino);
    let e = fs.metadata(&d.join("none")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);

    fs.set_permissions(&d.join("p"), 0o750).unwrap();
    fs.set_permissions(&d.join("a"), 0o640).unwrap();
    assert_eq!(fs.metadata(&d.join("p")).unwrap().mode, 0o750);
    power_cycle(&fs);
    assert_eq!(fs.metadata(&d.join("p")).unwrap().mode, 0o700);
    assert_eq!(fs.metadata(&d.join("a")).unwrap().mode, 0o600);
    fs.set_permissions(&d.join("p"), 0o750).unwrap();
    fs.sync_dir(&d.join("p")).unwrap();
    fs.set_permissions(&d.join("a"), 0o640).unwrap();
    fs.open(&d.join("a"), OpenMode::Read)
        .unwrap()
        .sync_all()
        .unwrap();
    power_cycle(&fs);
    assert_eq!(fs.metadata(&d.join("p")).unwrap().mode, 0o750);
    assert_eq!(fs.metadata(&d.join("a")).unwrap().mode, 0o640);
}

#[test]
fn the_real_path_of_a_model_path() {
    let (fs, d) = disk();
    fs.create_dir(&d.join("p")).unwrap();
    assert_eq!(
        fs.canonicalize(Path::new("/d/./p")).unwrap(),
        PathBuf::from("/d/p")
    );
    assert_eq!(fs.canonicalize(Path::new("/")).unwrap(), PathBuf::from("/"));
    let e = fs.canonicalize(&d.join("none")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_mounted_folder_is_a_device_of_its_own() {
    let (fs, d) = disk();
    fs.create_dir(&d.join("m")).unwrap();
    fs.create_dir(&d.join("m/sub")).unwrap();
    fs.create_dir(&d.join("e")).unwrap();
    put(&fs, &d.join("a"), b"x", true);
    put(&fs, &d.join("m/b"), b"y", true);
    fs.mount(&d.join("m"));
    let dev = |p: &str| fs.metadata(&d.join(p)).unwrap().dev;
    assert_eq!(dev("a"), dev("e"));
    assert_ne!(dev("m"), dev("e"));
    assert_eq!(dev("m"), dev("m/sub"));
    assert_eq!(dev("m"), dev("m/b"));
    let err = |r: io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(
        err(fs.rename(&d.join("a"), &d.join("m/a"))),
        Some(libc::EXDEV)
    );
    assert_eq!(
        err(fs.hard_link(&d.join("m/b"), &d.join("b"))),
        Some(libc::EXDEV)
    );
    assert_eq!(
        err(fs.rename(&d.join("e"), &d.join("m"))),
        Some(libc::EBUSY)
    );
    assert_eq!(
        err(fs.rename(&d.join("m"), &d.join("n"))),
        Some(libc::EBUSY)
    );
    fs.remove_file(&d.join("m/b")).unwrap();
    fs.remove_dir(&d.join("m/sub")).unwrap();
    assert_eq!(err(fs.remove_dir(&d.join("m"))), Some(libc::EBUSY));
    // Within the device, as anywhere.
    put(&fs, &d.join("m/c"), b"z", true);
    fs.rename(&d.join("m/c"), &d.join("m/d")).unwrap();
    power_cycle(&fs);
    assert_ne!(dev("m"), dev("e"));
}

#[test]
fn the_modification_time_moves_with_writes_and_truncation_only() {
    let (fs, d) = disk();
    let path = d.join("seg");
    let before = std::time::SystemTime::now();
    put(&fs, &path, b"one", true);
    let written = fs.metadata(&path).unwrap().modified.unwrap();
    assert!(written >= before);
    let f = fs.open(&path, OpenMode::Read).unwrap();
    f.read(&mut [0; 3]).unwrap();
    assert_eq!(fs.metadata(&path).unwrap().modified, Some(written));
    // Time moves on before the next write, whatever the clock's resolution.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::SystemTime::now() <= written && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let f = fs.open(&path, OpenMode::Append).unwrap();
    f.write_all(b"two").unwrap();
    let appended = fs.metadata(&path).unwrap().modified.unwrap();
    assert!(appended > written);
    assert!(fs.metadata(&d).unwrap().modified.is_some());
}
