//! The end-to-end suite: one test binary, one module per family of behaviour. Every test starts
//! its own server on an ephemeral port (see `common`), so tests run in parallel.

mod common;
mod concurrency;
mod connections;
mod corruption;
mod crash;
mod decoder_fuzz;
mod deletes;
mod errors;
mod hostile;
mod import;
mod keys_permissions;
mod kv;
mod lifecycle;
mod limits;
mod model;
mod persistence;
mod records;
mod seams;
mod vectors;
mod vectors_restart;
