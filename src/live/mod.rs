//! Live subscriptions: writes pushed to the connections that asked for them (`sub`).
//!
//! The [`Hub`] holds one [`Feed`] per subscribed collection name (created by the first `sub`
//! on it, kept for a while after its last subscriber left so that a reconnecting client can
//! resume from its history; see `hub`). Writers publish into it through `ops::Log` under the collection's write lock;
//! pushes reach connections through a [`Sink`] (the server's push seam). Nothing here knows
//! about sockets or the store.

pub mod budget;
mod change;
mod deliver;
pub mod encode;
mod feed;
#[cfg(test)]
mod feed_tests;
mod filter;
mod hub;
mod subscriptions;

pub use change::{Change, Rec};
pub use feed::{Feed, Registered, Start, Subscriber};
pub use filter::Filter;
pub use hub::Hub;
pub use subscriptions::Subscriptions;

use std::fmt;

/// The `subend` text when the subscriber's API key is revoked.
pub const KEY_REVOKED: &str = "API key revoked";

/// Why a push was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkError {
    /// The connection already holds its send-buffer limit.
    Full,
    /// The connection is closing or closed.
    Closed,
}

/// Where a subscription's pushes go: one connection.
pub trait Sink: Send + Sync {
    /// Appends the header of one frame whose text is `len` bytes long; the text follows it.
    fn header(&self, out: &mut Vec<u8>, len: usize);
    /// Hands over the bytes of `pieces`, in order, at once: whole frames, each a
    /// [`Sink::header`] and its text (a frame may span pieces); refused past `limit` bytes
    /// waiting.
    fn push(&self, pieces: &[&[u8]], limit: usize) -> Result<(), SinkError>;
    /// The last push of a subscription (`subend`): taken whatever is waiting.
    fn push_last(&self, text: &[u8]);
}

/// A `sub` or `unsub` that was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveError {
    TooMany(usize),
    Unknown,
    /// The collection was created and removed again on every try.
    Busy,
    /// The connection is closing.
    Closing,
    /// The connection's subscription filters would hold this many MiB (rounded up), past its
    /// limit of that many (see `budget`).
    ConnectionFilters(usize, usize),
    /// The server's subscription filters would hold this many MiB, past its limit of that many.
    ServerFilters(usize, usize),
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::TooMany(n) => {
                write!(f, "too many subscriptions: at most {n} per connection")
            }
            LiveError::Unknown => f.write_str("unknown subscription"),
            LiveError::Busy => {
                f.write_str("subscription not started: the collection kept changing; try again")
            }
            LiveError::Closing => f.write_str("connection closing"),
            LiveError::ConnectionFilters(would, limit) => write!(
                f,
                "subscription filters too large: this connection's would hold {would} MiB of its {limit} MiB"
            ),
            LiveError::ServerFilters(would, limit) => write!(
                f,
                "subscription filters too large: the server's would hold {would} MiB of its {limit} MiB"
            ),
        }
    }
}

/// A sink for unit tests that takes every push and keeps nothing.
#[cfg(test)]
pub(crate) struct Drain;

#[cfg(test)]
impl Sink for Drain {
    fn header(&self, _out: &mut Vec<u8>, _len: usize) {}
    fn push(&self, _pieces: &[&[u8]], _limit: usize) -> Result<(), SinkError> {
        Ok(())
    }
    fn push_last(&self, _text: &[u8]) {}
}
