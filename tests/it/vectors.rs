//! Replays every case of tests/vectors/protocol.json (`cases`, format in tests/vectors/README.md)
//! against a fresh server per case, over a small pool of threads. All failures are reported
//! together.
//!
//! Environment: `FLUXIONDB_VECTORS` (path of the vectors file), `FLUXIONDB_VECTOR_FILTER`
//! (only cases whose name contains this text), `FLUXIONDB_VECTOR_THREADS` (default 4).

use crate::common::runner;

fn threads() -> usize {
    std::env::var("FLUXIONDB_VECTOR_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

#[test]
fn protocol_vectors() {
    let vectors = runner::load_vectors();
    let master = vectors["master_key"]
        .as_str()
        .expect("master_key")
        .to_string();
    let cases = runner::cases(&vectors, "cases");
    runner::run_all(cases, threads(), &master);
}

#[test]
fn vectors_file_is_complete() {
    // Guard against a truncated or wrong file: the README promises 183 cases and 7 restart cases,
    // each with a unique name and at least one step.
    let vectors = runner::load_vectors();
    let cases = vectors["cases"].as_array().expect("cases");
    let restart = vectors["restart_cases"].as_array().expect("restart_cases");
    assert!(cases.len() >= 183, "only {} cases", cases.len());
    assert!(restart.len() >= 7, "only {} restart cases", restart.len());
    let mut names = std::collections::HashSet::new();
    for c in cases.iter().chain(restart) {
        let name = c["name"].as_str().expect("case name");
        assert!(names.insert(name), "duplicate case name {name}");
        assert!(
            !c["steps"].as_array().expect("steps").is_empty(),
            "{name} has no steps"
        );
    }
}
