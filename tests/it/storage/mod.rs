//! The storage seam, end to end: the real server code started in-process over a chosen storage
//! backend (`fluxiondb::start`), clients over real sockets.
//!
//! - `faults`: the disk fails (full, I/O error) mid-write, on fsync, at rotation, on snapshot
//!   and key-file writes; the exact answers clients get, and nothing acknowledged lost after a
//!   restart on a healthy disk;
//! - `checkpoint_race`: appends made while a checkpoint copies their collection stay in the log
//!   until a snapshot holds them;
//! - `old_files`: a data folder written before the switch to `crc32fast` still loads;
//! - `replica_powercut`: a replica's `replica.json` never counts entries its log lost to a
//!   power cut;
//! - `setup_powercut`: a replica's first setup and `fluxiondb restore`, cut at every operation,
//!   leave the folder as it was (the setup redone at the next start) or whole.

mod checkpoint_race;
mod faults;
mod old_files;
mod powercut;
mod replica_powercut;
mod setup_powercut;

use crate::common::{in_process_config, Client, MASTER};
use fluxiondb::storage::Backend;
use fluxiondb::{Config, Running};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A server configuration for in-process tests: loopback, a free port, no log output, no
/// background checkpoint unless a test shortens `flush_interval`.
pub fn config(data: &Path, fsync: &str) -> Config {
    let data = data.to_str().expect("UTF-8 path");
    let flags = ["--data", data, "--fsync", fsync, "--flush-interval", "3600"];
    let mut config = in_process_config(&flags);
    config.fsync_interval = Duration::from_millis(50);
    config
}

/// Starts the real server in this process over `backend`.
pub fn start(config: Config, backend: Arc<dyn Backend>) -> Running {
    fluxiondb::start(config, backend).unwrap_or_else(|e| panic!("server did not start: {e}"))
}

/// A master connection.
pub fn master(server: &Running) -> Client {
    Client::open(server.port(), MASTER, None)
}
