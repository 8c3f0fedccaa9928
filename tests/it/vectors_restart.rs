//! Replays the `restart_cases` of tests/vectors/protocol.json (tests/vectors/README.md): servers
//! started with `--data DIR --fsync always`, killed (SIGKILL) or stopped (SIGTERM) and restarted on
//! the same folder.

use crate::common::runner;

#[test]
fn persistence_vectors() {
    let vectors = runner::load_vectors();
    let master = vectors["master_key"]
        .as_str()
        .expect("master_key")
        .to_string();
    let cases = runner::cases(&vectors, "restart_cases");
    runner::run_all(cases, 2, &master);
}
