//! The export's document files, created in order on a thread of their own a few documents
//! ahead of the connections that fill them. Creating a file can take far longer than writing
//! a page to it (on a journal-less ext4 every create scans the recently deleted inodes of its
//! group, under the folder's lock), so the workers no longer stop their pipelines for it.

use super::archive::doc_file_name;
use super::Error;
use parking_lot::Mutex;
use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};

/// Files created but not yet taken (a bound on the open files and the work done ahead).
const AHEAD: usize = 8;

/// A created file: the index of its document in the list, and the file.
pub type Opened = Result<(usize, File), Error>;

/// Where the workers take their next document's file.
pub struct FilesAhead {
    rx: Mutex<Option<Receiver<Opened>>>,
}

impl FilesAhead {
    /// The next document and its file, in list order; `None` once every document was taken
    /// (or a create failed and its error was taken).
    pub fn next(&self) -> Option<Opened> {
        self.rx.lock().as_ref()?.recv().ok()
    }
}

/// Runs `work` while the files of `docs` in `dir` are created ahead of it. The creating thread
/// stops at the first error (handed out in order like a file) or when `work` returns.
pub fn with_files_ahead<R>(dir: &Path, docs: &[String], work: impl FnOnce(&FilesAhead) -> R) -> R {
    let (tx, rx) = sync_channel(AHEAD);
    let files = FilesAhead {
        rx: Mutex::new(Some(rx)),
    };
    std::thread::scope(|s| {
        s.spawn(move || {
            for (i, doc) in docs.iter().enumerate() {
                let path = dir.join(doc_file_name(doc));
                let opened = File::create(&path).map_err(|e| Error::io("cannot create", &path, e));
                let failed = opened.is_err();
                // A send fails once the receiver is gone: the work is over.
                if tx.send(opened.map(|f| (i, f))).is_err() || failed {
                    break;
                }
            }
        });
        let result = work(&files);
        // Files created ahead of a failed export are closed; a create waiting to be taken
        // is released.
        files.rx.lock().take();
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fluxiondb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn files_come_in_order_and_stop_at_the_first_error() {
        let dir = temp_dir("files-ahead");
        // A folder where the file of "b" should go: that create fails.
        std::fs::create_dir(dir.join("b.jsonl")).unwrap();
        let docs: Vec<String> = ["a", "b", "c"].iter().map(|d| d.to_string()).collect();
        let taken: Vec<Result<usize, String>> = with_files_ahead(&dir, &docs, |files| {
            std::iter::from_fn(|| files.next())
                .map(|o| o.map(|(i, _)| i).map_err(|e| e.to_string()))
                .collect()
        });
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0], Ok(0));
        let err = taken[1].clone().unwrap_err();
        assert!(
            err.starts_with("cannot create ") && err.contains("b.jsonl"),
            "{err}"
        );
        assert!(dir.join("a.jsonl").is_file() && !dir.join("c.jsonl").exists());

        // Work that stops early releases the creating thread (more documents than AHEAD).
        let many: Vec<String> = (0..AHEAD * 4).map(|i| format!("d{i}")).collect();
        let first = with_files_ahead(&dir, &many, |files| files.next().map(|o| o.is_ok()));
        assert_eq!(first, Some(true));
        let created = std::fs::read_dir(&dir).unwrap().count();
        assert!(created < many.len(), "{created} files created ahead");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
