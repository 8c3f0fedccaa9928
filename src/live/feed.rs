//! One collection's live feed: its apply sequence number, a bounded history of its recent
//! writes, and its subscribers with the pushes each is owed.
//!
//! Writers call [`Feed::publish`] under the collection's write lock, after the change is logged
//! and applied, so sequence numbers, history and every subscriber's queue follow apply order.
//! A push waits in its subscriber's queue, tagged with the log position of its write, until
//! that position is durable ([`Feed::flush`]); log positions grow with apply order, so what
//! leaves is always a prefix of the queue and per-collection order holds. In memory-only mode
//! positions are 0 and pushes leave at once.

use super::change::Change;
use super::encode;
use super::filter::Filter;
use super::{Sink, SinkError};
use crate::persist::Lsn;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// Writes the history keeps at most, per collection.
pub const HISTORY_WRITES: usize = 10_000;
/// Bytes of changes the history keeps at most, per collection (roughly counted).
pub const HISTORY_BYTES: usize = 16 << 20;

pub const TOO_SLOW: &str = "subscriber too slow";
pub const RESUME_LOST: &str = "resume point lost";

/// One subscription as its feed holds it.
pub struct Subscriber {
    conn: u64,
    id: String,
    sink: Arc<dyn Sink>,
    filter: Filter,
    /// Pushes not yet handed to the connection, with the log position each waits for.
    pending: VecDeque<(Lsn, Vec<u8>)>,
}

impl Subscriber {
    pub fn new(conn: u64, id: String, sink: Arc<dyn Sink>, filter: Filter) -> Box<Self> {
        Box::new(Subscriber {
            conn,
            id,
            sink,
            filter,
            pending: VecDeque::new(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

/// Where a new subscription starts.
pub enum Start {
    /// With the next write.
    Live,
    /// After these frames (read from the store while writers were held off), which leave once
    /// the log is durable up to the given position.
    Backlog(Vec<Vec<u8>>, Lsn),
    /// With the writes after this sequence number, replayed from the history.
    After(i64),
}

/// How a registration went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The sequence number the subscription starts from.
    pub seq: u64,
    /// The log position its first pushes wait for (0: none).
    pub wait: Lsn,
}

struct Entry {
    seq: u64,
    lsn: Lsn,
    change: Change,
    bytes: usize,
}

struct State {
    /// The sequence number of the last write published.
    seq: u64,
    history: VecDeque<Entry>,
    history_bytes: usize,
    subs: Vec<Subscriber>,
    /// The highest log position known durable (0 in memory-only mode).
    durable: Lsn,
    /// A thread is handing pushes over (see [`Feed::flush`]).
    delivering: bool,
}

pub struct Feed {
    col: String,
    /// The send-buffer limit a subscriber's connection may hold in pushes.
    limit: usize,
    state: Mutex<State>,
}

impl Feed {
    /// A feed whose first write will be number `base + 1`.
    pub fn new(col: &str, base: u64, limit: usize) -> Self {
        Feed {
            col: col.to_owned(),
            limit,
            state: Mutex::new(State {
                seq: base,
                history: VecDeque::new(),
                history_bytes: 0,
                subs: Vec::new(),
                durable: 0,
                delivering: false,
            }),
        }
    }

    pub fn col(&self) -> &str {
        &self.col
    }

    /// The sequence number of the last write published.
    pub fn seq(&self) -> u64 {
        self.state.lock().seq
    }

    /// Records one applied write (logged at `lsn`; 0 in memory) and queues its pushes. Call
    /// under the collection's write lock.
    pub fn publish(&self, lsn: Lsn, change: Change) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        st.seq += 1;
        let seq = st.seq;
        // Subscriptions that select everything share one encoding of the write.
        let mut whole: Option<Vec<Vec<u8>>> = None;
        for sub in &mut st.subs {
            let pending = &mut sub.pending;
            if sub.filter.is_everything() {
                let frames = whole.get_or_insert_with(|| {
                    let mut frames = Vec::new();
                    encode::change("", &self.col, seq, &change, &sub.filter, |f| frames.push(f));
                    frames
                });
                pending.extend(frames.iter().map(|f| (lsn, encode::with_sub(f, &sub.id))));
                continue;
            }
            encode::change(&sub.id, &self.col, seq, &change, &sub.filter, |frame| {
                pending.push_back((lsn, frame))
            });
        }
        let bytes = change.bytes();
        st.history.push_back(Entry {
            seq,
            lsn,
            change,
            bytes,
        });
        st.history_bytes += bytes;
        while st.history.len() > HISTORY_WRITES || st.history_bytes > HISTORY_BYTES {
            match st.history.pop_front() {
                Some(old) => st.history_bytes -= old.bytes,
                None => break,
            }
        }
    }

    /// Hands every subscriber the pushes whose writes are durable up to `durable` (0 in
    /// memory-only mode). Called by the writer's session once its own answer may leave, outside
    /// the collection's lock. One thread delivers at a time, outside the feed's lock, each
    /// subscriber's waiting pushes in one hand-over; a thread that finds another delivering
    /// leaves its pushes to it, so writers never wait for subscribers' sockets in turn.
    pub fn flush(&self, durable: Lsn) {
        let mut st = self.state.lock();
        st.durable = st.durable.max(durable);
        if st.delivering {
            return;
        }
        st.delivering = true;
        loop {
            let upto = st.durable;
            let mut batches = Vec::new();
            for sub in &mut st.subs {
                let n = sub
                    .pending
                    .iter()
                    .take_while(|(lsn, _)| *lsn <= upto)
                    .count();
                if n > 0 {
                    let frames: Vec<Vec<u8>> = sub.pending.drain(..n).map(|(_, f)| f).collect();
                    batches.push((sub.conn, sub.id.clone(), sub.sink.clone(), frames));
                }
            }
            if batches.is_empty() {
                st.delivering = false;
                return;
            }
            drop(st);
            let mut failed = Vec::new();
            for (conn, id, sink, frames) in batches {
                match sink.push(&frames, self.limit) {
                    Ok(()) => {}
                    Err(SinkError::Full) => {
                        log::warn!(
                            "connection {conn}: subscription {id} on {:?} ended: {TOO_SLOW}",
                            self.col
                        );
                        sink.push_last(&encode::subend(&id, TOO_SLOW));
                        failed.push((conn, id));
                    }
                    Err(SinkError::Closed) => failed.push((conn, id)),
                }
            }
            st = self.state.lock();
            if !failed.is_empty() {
                st.subs
                    .retain(|s| !failed.iter().any(|(c, i)| s.conn == *c && s.id == *i));
            }
        }
    }

    /// Adds a subscriber starting at `start`. With `unchanged_since`, only if no write was
    /// published after that sequence number (else the subscriber comes back). A resume point
    /// the history no longer holds ends the subscription at once (`subend`).
    pub fn register(
        &self,
        mut sub: Box<Subscriber>,
        start: Start,
        unchanged_since: Option<u64>,
    ) -> Result<Registered, Box<Subscriber>> {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if unchanged_since.is_some_and(|s| s != st.seq) {
            return Err(sub);
        }
        let seq = st.seq;
        let mut wait = 0;
        match start {
            Start::Live => {}
            Start::Backlog(frames, lsn) => {
                sub.pending.extend(frames.into_iter().map(|f| (lsn, f)));
                wait = lsn;
            }
            Start::After(after) => {
                let oldest = st.history.front().map_or(seq + 1, |e| e.seq);
                let after = u64::try_from(after)
                    .ok()
                    .filter(|&a| a <= seq && a + 1 >= oldest);
                let Some(after) = after else {
                    sub.sink.push_last(&encode::subend(&sub.id, RESUME_LOST));
                    return Ok(Registered { seq, wait: 0 });
                };
                for e in st.history.iter().filter(|e| e.seq > after) {
                    let pending = &mut sub.pending;
                    encode::change(&sub.id, &self.col, e.seq, &e.change, &sub.filter, |f| {
                        pending.push_back((e.lsn, f))
                    });
                    wait = wait.max(e.lsn);
                }
            }
        }
        st.subs.push(*sub);
        drop(guard);
        self.flush(0);
        Ok(Registered { seq, wait })
    }

    /// Whether connection `conn` holds subscription `id` here.
    pub fn has(&self, conn: u64, id: &str) -> bool {
        self.state
            .lock()
            .subs
            .iter()
            .any(|s| s.conn == conn && s.id == id)
    }

    /// Ends a subscription; false when it had already ended.
    pub fn remove(&self, conn: u64, id: &str) -> bool {
        let mut st = self.state.lock();
        let before = st.subs.len();
        st.subs.retain(|s| !(s.conn == conn && s.id == id));
        st.subs.len() != before
    }
}
