//! A replica's first start (`--replica-of LOCATION --data DIR` on an empty or absent folder):
//! the setup is whole or nothing, and no other server can use the folder meanwhile. The setup
//! is held part way by a real fault in the `file://` store: one object of the newest restore
//! point removed (the restore fails), or replaced by a named pipe, whose read blocks until the
//! test writes the object's bytes into it (the restore waits there, with the files before it
//! written).

use crate::backup::{names_in, records, three_collections_backed_up, Bucket, WAIT};
use crate::common::{refused_start, wait_until, Server, TempDir};
use std::path::{Path, PathBuf};

/// `--replica-of` with the bucket, as the other replica tests start it.
fn replica_args(bucket: &Bucket) -> Vec<String> {
    [
        "--replica-of",
        &bucket.location(),
        "--poll-interval",
        "100ms",
    ]
    .map(String::from)
    .to_vec()
}

/// Starts a replica on `dir` expecting it to refuse to start; its stderr.
fn refused_replica(bucket: &Bucket, dir: &Path) -> String {
    let args = replica_args(bucket);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_start(dir, &args)
}

/// The key of the last file of the newest restore point (the restore has written the files
/// before it when it reaches it) and that object's path in the bucket.
fn last_object(bucket: &Bucket) -> (String, PathBuf) {
    let files = three_collections_backed_up(bucket);
    let key = files.last().unwrap()["key"].as_str().unwrap().to_string();
    let path = bucket.path().join(&key);
    (key, path)
}

/// Replaces the object at `path` by a named pipe; returns its bytes.
fn pipe_in_place_of(path: &Path) -> Vec<u8> {
    let body = std::fs::read(path).unwrap();
    std::fs::remove_file(path).unwrap();
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    body
}

/// Gives the blocked reader of the pipe at `path` its bytes, then puts the object back.
fn feed_and_restore(path: &Path, body: &[u8]) {
    std::fs::write(path, body).unwrap();
    put_back(path, body);
}

/// Puts the object at `path` back as a file, in place of the pipe.
fn put_back(path: &Path, body: &[u8]) {
    let temp = path.with_extension("put-back");
    std::fs::write(&temp, body).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// The data files a setup under way has written so far, in `data/` or in a staging folder
/// beside it (the lock file aside).
fn setup_files(parent: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for name in names_in(parent) {
        if name == "data" || name.starts_with(".data.replica-") {
            let dir = parent.join(&name);
            found.extend(
                names_in(&dir)
                    .into_iter()
                    .filter(|n| n != "LOCK" && n != "replica.json")
                    .map(|n| format!("{name}/{n}")),
            );
        }
    }
    found
}

fn assert_serves_the_three_collections(server: &Server) {
    let mut c = server.master();
    for col in ["a", "b", "c"] {
        let n = records(&mut c, col, "t")["records"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(n, 10, "collection {col}");
    }
}

/// A second server on the folder of a replica being set up used to write into it too (another
/// replica) or recover and serve the half-restored files (a primary). The folder's lock is now
/// taken before the setup: both are refused, during the setup and after, and the folder is left
/// alone.
#[test]
fn a_second_server_on_a_replica_folder_is_refused_during_its_setup_and_after() {
    let bucket = Bucket::new();
    let (_, object) = last_object(&bucket);
    let body = pipe_in_place_of(&object);
    let target = TempDir::new();
    let in_use = format!(
        "{} is in use by another fluxiondb process",
        target.data().display()
    );

    let (loc, data) = (bucket.location(), target.data().display().to_string());
    let first = std::thread::spawn(move || {
        Server::start(&[
            "--replica-of",
            &loc,
            "--poll-interval",
            "100ms",
            "--data",
            &data,
        ])
    });
    assert!(
        wait_until(WAIT, || setup_files(target.parent())
            .iter()
            .any(|n| n.contains("snap-"))),
        "the setup wrote no snapshot"
    );
    let before = (names_in(target.parent()), setup_files(target.parent()));

    // During the setup: another replica, and a primary.
    let err = refused_replica(&bucket, target.data());
    assert!(err.contains(&in_use), "{err}");
    let err = refused_start(target.data(), &[]);
    assert!(err.contains(&in_use), "{err}");
    assert_eq!(
        (names_in(target.parent()), setup_files(target.parent())),
        before
    );

    // The setup completes; once it runs, the same.
    feed_and_restore(&object, &body);
    let first = first.join().unwrap();
    assert_serves_the_three_collections(&first);
    let err = refused_replica(&bucket, target.data());
    assert!(err.contains(&in_use), "{err}");
    let err = refused_start(target.data(), &[]);
    assert!(err.contains(&in_use), "{err}");
    assert_serves_the_three_collections(&first);
    assert_eq!(names_in(target.parent()), ["data"]);
}
