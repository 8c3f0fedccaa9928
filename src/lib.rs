//! FluxionDB: an in-memory time-series database served over WebSockets.
//!
//! Data flows in one direction through five layers, each in its own module:
//! `server` (sockets, threads, the socket-free dispatcher) → `protocol` (decode / encode) →
//! `auth` (scope check) → `ops` (one function per message, declared in the message table
//! `ops::messages`) → `store` (collections, series, key/value). docs/architecture.md describes
//! them.
//!
//! The modules are private to the crate; what a program embedding the server (the `fluxiondb`
//! binary, the end-to-end tests, the decoder fuzzer) may use is re-exported below, and nothing
//! else is a promise.

mod auth;
mod backup;
mod cli;
mod clipped;
mod config;
mod healthcheck;
mod launch;
mod live;
mod metrics;
// The object-storage seam for backups and replicas: public like `storage`, since other
// implementations plug into it.
pub mod objstore;
mod ops;
mod panics;
mod persist;
mod protocol;
mod server;
mod short_copy;
pub mod storage;
mod store;
mod text;
mod ws_header;

// Configuration and start-up.
pub use config::{Args, Command, CommandLine, Config};
pub use launch::{start, Running};
pub use metrics::configure as configure_metrics;
pub use server::{bind, Boot, LocalSession, Server};

// The other commands of the binary.
pub use cli::restore::run as run_restore;
pub use cli::run as run_client;
pub use healthcheck::run as run_healthcheck;

/// `fluxiondb restore` on a chosen storage backend (the binary runs it on `storage::real()`):
/// what the power-loss trials of a restore call.
pub mod restore {
    pub use crate::cli::restore::{restore, Args, Error};
}

/// The manifest's versions in a backup bucket (the commit every manifest change goes through).
pub mod backup_manifests {
    pub use crate::backup::manifests::{commit, key, newest, parse_key, prune, Commit, Version};
}

/// Process signals for a program that serves until SIGTERM or SIGINT (SIGUSR1 promotes a read
/// replica).
pub mod signals {
    pub use crate::server::signals::{block, wait, PROMOTE};
}

/// The request decoder, for the fuzzer: the message table, the envelope, the payload
/// declarations and the pattern matcher.
pub mod wire {
    pub use crate::ops::{decode, MsgType, Request};
    pub use crate::protocol::spec::{Check, Kind, Member, Shape, Spec, Value};
    pub use crate::protocol::{envelope, pattern, PayloadError};
}
