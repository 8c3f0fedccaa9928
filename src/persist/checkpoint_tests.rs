//! A checkpoint copies a collection's documents without holding the collection's lock: a
//! write that needs that lock (several documents in one `ins`, a new document, a value) goes
//! on while a large collection is copied. Before, the whole copy (seconds for millions of
//! records) held the collection's read lock, and such writes waited for all of it.

use super::recovery::open;
use super::test_disk::disk;
use super::wal::FsyncPolicy;
use crate::store::Handles;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn a_write_that_needs_the_collections_lock_goes_on_while_a_checkpoint_copies_it() {
    let (fs, dir) = disk();
    let rec = open(fs, &dir, FsyncPolicy::Never, false).unwrap();
    let store = std::sync::Arc::new(rec.store);
    let mut handles = Handles::default();
    store.write_or_create(&mut handles, "c", |c| {
        c.insert("a", 1, "x").unwrap();
        c.insert("b", 1, "x").unwrap();
        c.set_dirty(true);
    });
    // The copy of document `b` waits while the test holds its lock: the checkpoint is then in
    // the middle of the collection's copy for as long as the test wants.
    let doc = store.get("c").unwrap().read().docs["b"].clone();
    let held = doc.exclusive();
    let journal = rec.journal;
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::scope(|s| {
        let checkpoint_store = store.clone();
        s.spawn(move || {
            let report = journal.checkpoint(&checkpoint_store);
            let _ = done_tx.send(report.map(|r| r.written));
        });
        // A write under the collection's write lock (a new document), from another thread.
        let (wrote_tx, wrote_rx) = mpsc::channel();
        let writer_store = store.clone();
        s.spawn(move || {
            let mut handles = Handles::default();
            writer_store.write_or_create(&mut handles, "c", |c| c.insert("new", 1, "y").unwrap());
            let _ = wrote_tx.send(());
        });
        let wrote = wrote_rx.recv_timeout(Duration::from_secs(20));
        assert!(
            done_rx.try_recv().is_err(),
            "the checkpoint finished while the test held a document's lock"
        );
        drop(held);
        assert!(
            wrote.is_ok(),
            "the write waited for the checkpoint's copy of the collection"
        );
        let written = done_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(written.unwrap(), 1);
    });
}
