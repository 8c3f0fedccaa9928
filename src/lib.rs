//! FluxionDB: an in-memory time-series database served over WebSockets.
//!
//! Data flows in one direction through five layers, each in its own module:
//! [`server`] (sockets, threads, the socket-free dispatcher) → [`protocol`] (decode / encode) →
//! [`auth`] (scope check) → [`ops`] (one function per message, declared in the message table
//! [`ops::messages`]) → [`store`] (collections, series, key/value).

pub mod auth;
pub mod cli;
pub mod config;
pub mod healthcheck;
pub mod launch;
pub mod live;
pub mod metrics;
pub mod objstore;
pub mod ops;
pub mod persist;
pub mod protocol;
pub mod server;
pub mod storage;
pub mod store;
pub mod text;
