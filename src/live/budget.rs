//! What subscriptions' filters may hold: their texts, and their patterns' programs and match
//! caches ([`Filter::bytes`](super::Filter::bytes)). A filter is kept for its subscription's
//! life, and a `sub` of about 100 bytes can make one of several MiB (three short patterns
//! compiling to nearly 1 MiB each), so a client could otherwise fill the server's memory with
//! them through a readonly key. Each connection's filters may hold at most
//! [`CONNECTION_BYTES`], and all the server's at most [`server_limit`] of `--max-memory`; a `sub`
//! past either is refused and changes nothing.
//!
//! A subscription's [`Charge`] is held by its `Subscriber`, so it is given back however the
//! subscription ends (`unsub`, its connection closing, too slow, its key revoked, its feed
//! dropped): whenever the feed lets go of the subscriber.

use super::LiveError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes one connection's subscription filters may hold at most.
pub const CONNECTION_BYTES: usize = 32 << 20;
/// The server-wide limit is never set below this (with `--max-memory` under 128 MiB).
pub const SERVER_MIN_BYTES: usize = 16 << 20;

/// The server-wide limit for a `--max-memory` of `max_memory` bytes: an eighth of it, at least
/// [`SERVER_MIN_BYTES`]; none when there is no memory limit (0).
pub fn server_limit(max_memory: usize) -> Option<usize> {
    (max_memory > 0).then(|| (max_memory / 8).max(SERVER_MIN_BYTES))
}

/// Bytes held by the filters of one connection, or of the whole server, against a limit.
#[derive(Default)]
pub struct Held {
    bytes: AtomicUsize,
    /// `None`: no limit.
    limit: Option<usize>,
}

impl Held {
    pub fn new(limit: Option<usize>) -> Self {
        Held {
            bytes: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Bytes that may still be added (`usize::MAX` without a limit).
    pub fn room(&self) -> usize {
        self.limit
            .map_or(usize::MAX, |limit| limit.saturating_sub(self.bytes()))
    }

    /// Adds `bytes` unless that passes the limit; else the bytes it would hold, and the limit.
    fn take(&self, bytes: usize) -> Result<(), (usize, usize)> {
        let Some(limit) = self.limit else {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
            return Ok(());
        };
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(bytes).filter(|&n| n <= limit)
            })
            .map(drop)
            .map_err(|held| (held.saturating_add(bytes), limit))
    }

    fn give_back(&self, bytes: usize) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One subscription's filter bytes, counted against its connection and the server until it is
/// dropped.
pub struct Charge {
    conn: Arc<Held>,
    server: Arc<Held>,
    bytes: usize,
}

impl Charge {
    /// Counts `bytes` against `conn` and `server`, or says which limit it would pass.
    pub fn take(conn: &Arc<Held>, server: &Arc<Held>, bytes: usize) -> Result<Charge, LiveError> {
        conn.take(bytes)
            .map_err(|(would, limit)| LiveError::ConnectionFilters(mib_up(would), limit >> 20))?;
        if let Err((would, limit)) = server.take(bytes) {
            conn.give_back(bytes);
            return Err(LiveError::ServerFilters(mib_up(would), limit >> 20));
        }
        Ok(Charge {
            conn: conn.clone(),
            server: server.clone(),
            bytes,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.conn.give_back(self.bytes);
        self.server.give_back(self.bytes);
    }
}

/// Bytes in MiB, rounded up: a figure past a limit never reads as the limit itself.
fn mib_up(bytes: usize) -> usize {
    bytes.div_ceil(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_limit_follows_the_memory_limit() {
        assert_eq!(server_limit(0), None);
        assert_eq!(server_limit(1 << 20), Some(16 << 20));
        assert_eq!(server_limit(128 << 20), Some(16 << 20));
        assert_eq!(server_limit(1 << 30), Some(128 << 20));
        assert_eq!(server_limit(usize::MAX), Some(usize::MAX / 8));
    }

    #[test]
    fn charges_are_refused_past_either_limit_and_given_back_when_dropped() {
        let server = Arc::new(Held::new(Some(16 << 20)));
        let (a, b) = (
            Arc::new(Held::new(Some(CONNECTION_BYTES))),
            Arc::new(Held::new(Some(CONNECTION_BYTES))),
        );
        let first = Charge::take(&a, &server, 10 << 20).unwrap();
        assert_eq!(
            Charge::take(&b, &server, (6 << 20) + 1).err(),
            Some(LiveError::ServerFilters(17, 16))
        );
        assert_eq!(
            (a.bytes(), b.bytes(), server.bytes()),
            (10 << 20, 0, 10 << 20)
        );
        let second = Charge::take(&b, &server, 6 << 20).unwrap();
        assert_eq!(server.bytes(), 16 << 20);
        drop(first);
        assert_eq!((a.bytes(), server.bytes()), (0, 6 << 20));
        // The connection's limit is checked first.
        let unlimited = Arc::new(Held::new(None));
        assert_eq!(
            Charge::take(&b, &unlimited, (26 << 20) + 1).err(),
            Some(LiveError::ConnectionFilters(33, 32))
        );
        let third = Charge::take(&b, &unlimited, 26 << 20).unwrap();
        assert_eq!((b.bytes(), unlimited.bytes()), (32 << 20, 26 << 20));
        drop((second, third));
        assert_eq!((b.bytes(), server.bytes(), unlimited.bytes()), (0, 0, 0));
    }
}
