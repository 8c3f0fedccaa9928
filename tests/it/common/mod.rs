//! Shared harness of the end-to-end tests: start the real `fluxiondb` binary on an ephemeral
//! port (optionally with a temporary data folder) and talk to it with a real WebSocket client.
//!
//! Every test starts its own server, so tests are parallel-safe.
#![allow(dead_code, unused_imports)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// The master key every test server is started with.
pub const MASTER: &str = "master-key";
/// How long a client waits for a frame before giving up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client waits for an answer that is slow by design (a test of what it says, not of
/// how fast): ample for a loaded 2-core machine running the suite in parallel.
pub const SLOW_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the harness waits for the server's `listening` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

mod client;
mod fixture;
mod in_process;
mod server;

pub use client::*;
pub use fixture::*;
pub use in_process::*;
pub use server::*;
pub mod matcher;
pub mod runner;
pub mod seaweedfs;
