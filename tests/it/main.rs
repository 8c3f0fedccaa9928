//! The end-to-end suite: one test binary, one module per family of behaviour. Every test starts
//! its own server on an ephemeral port (see `common`), so tests run in parallel.

// A failed unwrap is a failed test here; Cargo.toml's [lints] deny both in the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod answer_cache;
mod answer_cache_keys;
mod backup;
mod backup_fencing;
mod backup_fencing_s3;
mod backup_replica;
mod backup_replica_live;
mod backup_replica_reload;
mod backup_replica_s3;
mod backup_replica_setup;
mod backup_replica_tls;
mod backup_s3;
mod cli;
mod common;
mod concurrency;
mod connections;
mod corruption;
mod crash;
mod decoder_fuzz;
mod deletes;
mod doc_cache;
mod docker;
mod docs;
mod errors;
mod hostile;
mod http;
mod import;
mod ins_batches;
mod keys_permissions;
mod kv;
mod last_value;
mod lifecycle;
mod limits;
mod memory;
mod mixed;
mod model;
mod model_racing;
mod objstore_s3;
mod persistence;
mod readpath;
mod records;
mod rendered_blocks;
mod retention;
mod seams;
mod snapshot_compat;
mod storage;
mod subscriptions;
mod subscriptions_fanout;
mod subscriptions_filters;
mod subscriptions_resume;
mod vectors;
mod vectors_restart;
