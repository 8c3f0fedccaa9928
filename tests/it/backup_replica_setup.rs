//! A replica's first start (`--replica-of LOCATION --data DIR` on an empty or absent folder):
//! the setup is whole or nothing, and no other server can use the folder meanwhile. The setup
//! is held part way by a real fault in the `file://` store: one object of the newest restore
//! point removed (the restore fails), or replaced by a named pipe, whose read blocks until the
//! test writes the object's bytes into it (the restore waits there, with the files before it
//! written).

use crate::backup::{names_in, records, three_collections_backed_up, Bucket, WAIT};
use crate::common::{bare_command, refused_start, wait_until, Server, TempDir, MASTER};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

fn start_replica(bucket: &Bucket, dir: &Path) -> Server {
    let d = dir.display().to_string();
    let mut args = replica_args(bucket);
    args.extend(["--data".to_string(), d]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

/// Starts a replica on `dir` expecting it to refuse to start; its stderr.
fn refused_replica(bucket: &Bucket, dir: &Path) -> String {
    let args = replica_args(bucket);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_start(dir, &args)
}

/// The command of a replica of `bucket` on `--data data`, run in `cwd`.
fn replica_command(bucket: &Bucket, cwd: &Path, data: &str) -> Command {
    let mut command = bare_command();
    command
        .args(["--secret-key", MASTER, "--port", "0", "--bind", "127.0.0.1"])
        .args(replica_args(bucket))
        .args(["--data", data])
        .current_dir(cwd);
    command
}

/// A replica process on `--data data`, in `cwd`, left to run (its setup may never finish).
fn spawn_replica(bucket: &Bucket, cwd: &Path, data: &str) -> Child {
    replica_command(bucket, cwd, data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
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

/// A first setup that failed part way used to leave the files it had written in the folder,
/// and every later start refused it (`holds data that is not a replica's copy`) until someone
/// emptied it by hand. It now leaves the folder as it was, and the next start sets up.
#[test]
fn a_failed_first_setup_leaves_the_folder_as_it_was_and_the_next_start_sets_up() {
    let bucket = Bucket::new();
    let (key, object) = last_object(&bucket);
    let aside = TempDir::new();
    let kept = aside.data().join("object");
    std::fs::rename(&object, &kept).unwrap();
    let missing = format!("loading the replica: object {key} is missing from the backup");

    // An existing empty folder stays empty; one to create is not created; nothing is left
    // beside them.
    let target = TempDir::new();
    let absent = target.parent().join("absent");
    for dir in [target.data(), absent.as_path()] {
        let err = refused_replica(&bucket, dir);
        assert!(err.contains(&missing), "{err}");
    }
    assert_eq!(names_in(target.data()), Vec::<String>::new());
    assert_eq!(names_in(target.parent()), ["data"]);

    // The working directory (filled from a staging folder inside it): it stays empty.
    let out = replica_command(&bucket, target.data(), ".")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without {key}: {err}");
    assert!(err.contains(&missing), "{err}");
    assert_eq!(names_in(target.data()), Vec::<String>::new());
    assert_eq!(names_in(target.parent()), ["data"]);

    // Put right, the next start sets the folder up and serves the data.
    std::fs::rename(&kept, &object).unwrap();
    let replica = start_replica(&bucket, target.data());
    assert_serves_the_three_collections(&replica);
    assert!(names_in(target.data()).contains(&"replica.json".to_string()));
    assert_eq!(names_in(target.parent()), ["data"]);
}

/// A first setup killed part way used to leave its files in the folder, refused by every later
/// start. Killed now, it leaves nothing in the folder but the lock file (its staging folder, a
/// killed process cannot remove, goes at the next start), and the next start sets up: beside
/// the folder, or inside it (the working directory).
#[test]
fn a_first_setup_killed_part_way_is_cleared_by_the_next_start() {
    let bucket = Bucket::new();
    let (_, object) = last_object(&bucket);
    for inside in [false, true] {
        let body = pipe_in_place_of(&object);
        let target = TempDir::new();
        let mut first = if inside {
            spawn_replica(&bucket, target.data(), ".")
        } else {
            spawn_replica(&bucket, target.parent(), "data")
        };
        let staged = |parent: &Path| -> Vec<String> {
            let mut found = setup_files(parent);
            for name in names_in(&parent.join("data")) {
                if name.starts_with(".replica-") {
                    found.extend(names_in(&parent.join("data").join(name)));
                }
            }
            found
        };
        let written = wait_until(WAIT, || {
            staged(target.parent()).iter().any(|n| n.contains("snap-"))
        });
        first.kill().unwrap();
        first.wait().unwrap();
        assert!(written, "the setup wrote no snapshot");
        // Nothing under the folder's name but the lock file and a staging folder.
        let left: Vec<String> = names_in(target.data())
            .into_iter()
            .filter(|n| n != "LOCK" && !n.starts_with(".replica-"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "inside: {inside}");

        put_back(&object, &body);
        let replica = start_replica(&bucket, target.data());
        assert_serves_the_three_collections(&replica);
        assert_eq!(names_in(target.parent()), ["data"], "inside: {inside}");
        assert!(
            !names_in(target.data())
                .iter()
                .any(|n| n.starts_with(".replica-")),
            "inside: {inside}: {:?}",
            names_in(target.data())
        );
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
