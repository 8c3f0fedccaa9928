//! One connection's subscriptions: their ids, the per-connection cap, the feeds its requests
//! wrote to (whose pushes leave once the request's log position is durable), and their end
//! when the connection ends.

use super::budget::{Charge, Held, CONNECTION_BYTES};
use super::encode;
use super::feed::Feed;
use super::{Hub, LiveError};
use crate::persist::Lsn;
use std::sync::Arc;

/// Subscriptions one connection may hold at once.
pub const MAX_PER_CONNECTION: usize = 256;

pub struct Subscriptions {
    conn: u64,
    next: u64,
    open: Vec<(String, Arc<Feed>)>,
    /// Feeds written to (or subscribed to) since the last [`Subscriptions::flush`].
    touched: Vec<Arc<Feed>>,
    /// What its subscriptions' filters hold, against [`CONNECTION_BYTES`].
    filters: Arc<Held>,
}

impl Subscriptions {
    pub fn new(conn: u64) -> Self {
        Subscriptions {
            conn,
            next: 0,
            open: Vec::new(),
            touched: Vec::new(),
            filters: Arc::new(Held::new(Some(CONNECTION_BYTES))),
        }
    }

    /// Counts a new subscription's filter of `bytes` against this connection's limit and the
    /// server's (`hub`'s), or refuses it, counting nothing.
    pub fn charge(&self, hub: &Hub, bytes: usize) -> Result<Charge, LiveError> {
        Charge::take(&self.filters, hub.filters(), bytes)
    }

    /// Bytes a new subscription's filter may still hold under both limits now (a filter that
    /// passes it is refused: its building can stop there).
    pub fn filter_room(&self, hub: &Hub) -> usize {
        self.filters.room().min(hub.filters().room())
    }

    /// Refuses a new subscription past the cap (ended ones no longer count).
    pub fn check_room(&mut self) -> Result<(), LiveError> {
        if self.open.len() >= MAX_PER_CONNECTION {
            let conn = self.conn;
            self.open.retain(|(id, feed)| feed.has(conn, id));
        }
        if self.open.len() >= MAX_PER_CONNECTION {
            return Err(LiveError::TooMany(MAX_PER_CONNECTION));
        }
        Ok(())
    }

    /// The next subscription id: `s1`, `s2`, …
    pub fn next_id(&mut self) -> String {
        self.next += 1;
        format!("s{}", self.next)
    }

    pub fn add(&mut self, id: String, feed: Arc<Feed>) {
        self.open.push((id, feed));
    }

    /// `unsub`.
    pub fn remove(&mut self, id: &str) -> Result<(), LiveError> {
        let i = self
            .open
            .iter()
            .position(|(s, _)| s == id)
            .ok_or(LiveError::Unknown)?;
        let (id, feed) = self.open.swap_remove(i);
        if feed.remove(self.conn, &id) {
            Ok(())
        } else {
            Err(LiveError::Unknown)
        }
    }

    /// Remembers feeds whose pushes wait for this connection's log position.
    pub fn touch(&mut self, feeds: impl IntoIterator<Item = Arc<Feed>>) {
        for feed in feeds {
            if !self.touched.iter().any(|f| Arc::ptr_eq(f, &feed)) {
                self.touched.push(feed);
            }
        }
    }

    /// The log is durable up to `durable`: the touched feeds' pushes up to there leave now
    /// where they are small (see [`Feed::flush_if_small`]); [`Subscriptions::flush`] hands over
    /// the rest.
    pub fn flush_small(&mut self, durable: Lsn) {
        self.touched
            .retain(|feed| !feed.flush_if_small(durable, super::feed::EAGER_BYTES));
    }

    /// The log is durable up to `durable`: the touched feeds' pushes up to there may leave.
    pub fn flush(&mut self, durable: Lsn) {
        for feed in self.touched.drain(..) {
            feed.flush(durable);
        }
    }

    /// Ends every subscription, giving the `subend` frame of each that was still running.
    pub fn end_all(&mut self, reason: &str, mut each: impl FnMut(Vec<u8>)) {
        for (id, feed) in self.open.drain(..) {
            if feed.remove(self.conn, &id) {
                each(encode::subend(&id, reason));
            }
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for (id, feed) in &self.open {
            feed.remove(self.conn, id);
        }
    }
}
