//! The export's document files, created in order on a thread of their own up to `AHEAD`
//! documents ahead of the connections that fill them. Creating a file can take far longer than
//! writing a page to it (on a journal-less ext4 every create scans the recently deleted inodes
//! of its group, under the folder's lock), so the workers no longer stop their pipelines for it.

use super::archive::{doc_file_name, Unstorable};
use super::durable::{self, Pending};
use super::Error;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

/// Files created but not yet taken (a bound on the open files and the work done ahead).
const AHEAD: usize = 64;
/// The creating thread, once it has filled the queue, sleeps until no more than this many
/// files are left in it, then creates the rest in one go: one wake-up per `AHEAD - REFILL`
/// files instead of one per file, which on a busy machine kept the workers waiting for it.
const REFILL: usize = AHEAD / 2;

/// A document's turn: its file, or why it cannot have one. An error (other than a name too
/// long) ends the work.
pub type Opened = Result<Taken, Error>;

/// What a worker takes for the document at this index in the list.
pub enum Taken {
    /// The created file, and its temporary name (removed unless the file is committed under
    /// its own).
    File(usize, File, Pending),
    /// The document's file name is too long for the file system: it is left out.
    LeftOut(usize, Unstorable),
}

/// Where the workers take their next document's file.
pub struct FilesAhead {
    state: Mutex<State>,
    /// Signalled when a file is queued or the creating thread stops.
    ready: Condvar,
    /// Signalled when the queue runs low or the work is over.
    room: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Opened>,
    /// The creating thread is done (every file created, or it queued an error).
    created_all: bool,
    /// The work is over: create nothing more.
    closed: bool,
}

impl FilesAhead {
    /// The next document and its file, in list order; `None` once every document was taken
    /// (or a create failed and its error was taken).
    pub fn next(&self) -> Option<Opened> {
        let mut state = self.state.lock();
        loop {
            if let Some(opened) = state.queue.pop_front() {
                if state.queue.len() == REFILL {
                    self.room.notify_one();
                }
                return Some(opened);
            }
            if state.created_all || state.closed {
                return None;
            }
            self.ready.wait(&mut state);
        }
    }

    /// The creating thread's loop: files of `docs` in `dir`, in order, until all are created,
    /// one fails, or the work is over.
    fn create(&self, dir: &Path, docs: &[String]) {
        let name_max = durable::name_max(dir);
        for (i, doc) in docs.iter().enumerate() {
            {
                let mut state = self.state.lock();
                if state.queue.len() >= AHEAD {
                    while state.queue.len() > REFILL && !state.closed {
                        self.room.wait(&mut state);
                    }
                }
                if state.closed {
                    return;
                }
            }
            let opened = open(dir, doc, name_max, i);
            let failed = opened.is_err();
            let mut state = self.state.lock();
            state.queue.push_back(opened);
            state.created_all = failed || i + 1 == docs.len();
            let last = state.created_all;
            drop(state);
            if last {
                // Every waiting worker is to learn that nothing more comes.
                self.ready.notify_all();
            } else {
                self.ready.notify_one();
            }
            if failed {
                return;
            }
        }
        self.finish();
    }

    /// Marks the creating thread done (also when there was nothing to create).
    fn finish(&self) {
        self.state.lock().created_all = true;
        self.ready.notify_all();
    }

    /// Ends the work: the creating thread stops, files created ahead are closed and removed.
    fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.queue.clear();
        drop(state);
        self.room.notify_all();
        self.ready.notify_all();
    }
}

/// The file of document `doc` (index `i`) in `dir`, unless its name is over `name_max` bytes
/// or the file system refuses it as too long.
fn open(dir: &Path, doc: &str, name_max: usize, i: usize) -> Opened {
    let name = doc_file_name(doc);
    if name.len() > name_max {
        let bytes = name.len();
        return Ok(Taken::LeftOut(
            i,
            Unstorable::NameOver {
                bytes,
                max: name_max,
            },
        ));
    }
    match Pending::create(dir.join(name)) {
        Ok((pending, file)) => Ok(Taken::File(i, file, pending)),
        Err(e) if e.name_too_long() => Ok(Taken::LeftOut(i, Unstorable::Refused)),
        Err(e) => Err(e),
    }
}

/// Runs `work` while the files of `docs` in `dir` are created ahead of it. The creating thread
/// stops at the first error (handed out in order like a file) or when `work` returns.
pub fn with_files_ahead<R>(dir: &Path, docs: &[String], work: impl FnOnce(&FilesAhead) -> R) -> R {
    let files = FilesAhead {
        state: Mutex::new(State::default()),
        ready: Condvar::new(),
        room: Condvar::new(),
    };
    std::thread::scope(|s| {
        s.spawn(|| files.create(dir, docs));
        let result = work(&files);
        // Files created ahead of a failed export are closed and removed; the creating thread,
        // if still at work, stops.
        files.close();
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

    /// What a worker took, as a test can compare it: the index, or why it was left out.
    fn taken(o: Opened) -> Result<(usize, Option<Unstorable>), String> {
        match o {
            Ok(Taken::File(i, _, _)) => Ok((i, None)),
            Ok(Taken::LeftOut(i, why)) => Ok((i, Some(why))),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn files_come_in_order_and_stop_at_the_first_error() {
        let dir = temp_dir("files-ahead");
        // A name whose file name is over the file system's limit is handed out as left out,
        // in its turn, and the others go on; one of 255 bytes with `.jsonl` gets its file (its
        // temporary name is short).
        let docs: Vec<String> = ["a".to_string(), "x".repeat(300), "y".repeat(249)].into();
        let got: Vec<_> = with_files_ahead(&dir, &docs, |files| {
            std::iter::from_fn(|| files.next()).map(taken).collect()
        });
        let max = durable::name_max(&dir);
        assert_eq!(
            got,
            vec![
                Ok((0, None)),
                Ok((1, Some(Unstorable::NameOver { bytes: 306, max }))),
                Ok((2, None)),
            ]
        );
        // Files taken and never committed are gone (their temporary names with them).
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

        // A create that fails otherwise (no such folder) ends the work: nothing after it.
        let docs: Vec<String> = ["a", "b", "c"].iter().map(|d| d.to_string()).collect();
        let got: Vec<_> = with_files_ahead(&dir.join("missing"), &docs, |files| {
            std::iter::from_fn(|| files.next()).map(taken).collect()
        });
        assert_eq!(got.len(), 1);
        let err = got[0].clone().unwrap_err();
        assert!(
            err.starts_with("cannot create ") && err.contains(".tmp-"),
            "{err}"
        );

        // Two workers taking files at once, more than AHEAD of them: each file once, every
        // file, and each worker's in order.
        let docs: Vec<String> = (0..AHEAD * 3 + 5).map(|i| format!("w{i}")).collect();
        let shares: Vec<Vec<usize>> = with_files_ahead(&dir, &docs, |files| {
            std::thread::scope(|s| {
                let worker = || {
                    std::iter::from_fn(|| files.next())
                        .map(|o| taken(o).unwrap().0)
                        .collect::<Vec<usize>>()
                };
                let a = s.spawn(worker);
                let b = s.spawn(worker);
                vec![a.join().unwrap(), b.join().unwrap()]
            })
        });
        for mine in &shares {
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        }
        let mut all: Vec<usize> = shares.concat();
        all.sort_unstable();
        assert_eq!(all, (0..docs.len()).collect::<Vec<_>>());

        // Work that stops early releases the creating thread (more documents than AHEAD), and
        // the files it created ahead are removed.
        let many: Vec<String> = (0..AHEAD * 4).map(|i| format!("d{i}")).collect();
        let first = with_files_ahead(&dir, &many, |files| files.next().map(taken));
        assert_eq!(first, Some(Ok((0, None))));
        let created = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(created, 0, "{created} files created ahead are left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
