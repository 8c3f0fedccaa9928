//! A model disk for the unit tests of this module: a folder on a [`PageCache`], and rewriting a
//! file whole (to tear or damage it).

use crate::storage::{Backend, OpenMode, PageCache};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A model disk with the folder `/data` made durable.
pub fn disk() -> (Arc<PageCache>, PathBuf) {
    let fs = Arc::new(PageCache::new());
    let dir = PathBuf::from("/data");
    fs.mkdirs(&dir, true);
    (fs, dir)
}

/// Replaces the content of `path` with `bytes`.
pub fn overwrite(fs: &PageCache, path: &Path, bytes: &[u8]) {
    fs.open(path, OpenMode::Truncate)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}
