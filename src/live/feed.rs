//! One collection's live feed: its apply sequence number, a bounded history of its recent
//! writes, and its subscribers with how far each has been served.
//!
//! Writers call [`Feed::publish`] under the collection's write lock, after the change is logged
//! and applied: that only numbers the write and appends it to the feed's list of arrivals,
//! under a lock of its own that nothing else holds for longer than it takes to swap that list
//! for an empty one, whatever the number of subscribers (a writer that waited there would hold
//! up every other writer of the collection). The arrivals join the history when a delivery
//! round (or anything else that reads the history) next takes the feed's state. Pushes are
//! made from the history by [`Feed::flush`], outside the collection's lock, once the log is
//! durable up to a write's position; positions grow with apply order, so what leaves is
//! always a prefix of what each subscriber is owed and per-collection order holds. In
//! memory-only mode positions are 0 and pushes leave at once.
//!
//! The history keeps the writes some subscriber has not been served yet (up to a hard bound,
//! past which such a subscriber is too slow) and, beyond those, the most recent writes up to
//! [`HISTORY_WRITES`] / [`HISTORY_BYTES`] for `after_seq` resumes.

mod hand;
mod plan;

use super::budget::Charge;
use super::change::Change;
use super::encode;
use super::filter::Filter;
use super::hub::{Shared, HISTORY_BUDGET, RESUME_WINDOW};
use super::Sink;
use crate::persist::Lsn;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Writes the history keeps at most for resuming, per collection.
pub const HISTORY_WRITES: usize = 10_000;
/// Bytes of changes the history keeps at most for resuming, per collection (roughly counted).
pub const HISTORY_BYTES: usize = 16 << 20;
/// How many times those bounds the history may grow to while a subscriber waits to be
/// served; past it that subscriber's writes are dropped and its subscription ends.
pub(super) const LAG_FACTOR: usize = 4;
/// Durable writes the subscribers may be owed while a delivery runs before writers wait for
/// it: past this the server's own delivery (not a slow subscriber, whose pushes queue at its
/// connection) is the bottleneck, and writers that ran on would only grow the history until
/// their subscribers were dropped. Several rounds' worth (a round of single-record writes
/// holds some 700 of them): at one round's worth, writers stopped and started in step with the
/// deliverer and left a core idle while it worked.
const MAX_LAG: u64 = 4096;
/// Bytes of changes (roughly counted) owed before writers wait, likewise.
const MAX_LAG_BYTES: u64 = 16 << 20;

/// How long one thread delivers before a writer that comes by takes over (see [`Feed::flush`]).
/// A deliverer is a writer's session thread, whose own connection is not served while it
/// delivers: under a steady stream of writes, rounds never come up empty, and without a turn
/// one connection would deliver for everyone for as long as the stream lasts.
const TURN: Duration = Duration::from_millis(1);

/// Bytes a delivery round may encode at most, roughly: its writes' bytes times the groups of
/// equal filters they are encoded for. A round takes fewer writes past it, and a round of one
/// write past it is encoded and handed over one group at a time (see [`Feed::deliver`]).
/// Without it, subscriptions with many different filters that each select every record
/// made one large write cost its size once per filter, all held at once.
const ENCODE_BUDGET: usize = 32 << 20;

/// Bytes of changes (roughly counted) owed at most for a writer to hand them over before its
/// own acknowledgements leave (see [`Feed::flush_if_small`]).
pub const EAGER_BYTES: u64 = 32 << 10;

pub const TOO_SLOW: &str = "subscriber too slow";
pub const RESUME_LOST: &str = "resume point lost";

/// One subscription as its feed holds it.
pub struct Subscriber {
    conn: u64,
    id: Arc<str>,
    /// `id` as it appears inside a JSON string.
    id_text: Arc<[u8]>,
    sink: Arc<dyn Sink>,
    filter: Arc<Filter>,
    /// Its filter's place in [`State::groups`].
    group: usize,
    /// The sequence number of the next write it is owed.
    next: u64,
    /// Frames owed before the writes (a `since` backlog), each with the log position it waits
    /// for.
    pre: VecDeque<(Lsn, Vec<u8>)>,
    /// Its filter's bytes, counted against its connection's and the server's limits until the
    /// feed lets go of it, however the subscription ends.
    _charge: Option<Charge>,
}

impl Subscriber {
    pub fn new(conn: u64, id: String, sink: Arc<dyn Sink>, filter: Filter) -> Box<Self> {
        Box::new(Subscriber {
            conn,
            id_text: encode::sub_text(&id).into(),
            id: id.into(),
            sink,
            filter: Arc::new(filter),
            group: 0,
            next: 0,
            pre: VecDeque::new(),
            _charge: None,
        })
    }

    /// The same, its filter's bytes counted by `charge` for as long as it lives.
    pub fn charged(mut self: Box<Self>, charge: Charge) -> Box<Self> {
        self._charge = Some(charge);
        self
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
    /// Nowhere: a `since` backlog past the connection's send-buffer limit ends the
    /// subscription at once, as a subscriber too slow would (`subend`).
    BacklogTooLarge,
}

/// How a registration went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// The sequence number the subscription starts from.
    pub seq: u64,
    /// The log position its first pushes wait for (0: none).
    pub wait: Lsn,
}

/// One published write.
pub(super) struct Entry {
    pub seq: u64,
    pub lsn: Lsn,
    pub change: Change,
    pub bytes: usize,
    /// The bytes of every change published before this one, this one included.
    total: u64,
}

/// Subscriptions that select the same records (filters made from the same texts): a write is
/// encoded once per group.
struct Group {
    filter: Arc<Filter>,
    users: usize,
}

/// Writes published since the state last took them (see the module notes).
struct Arrivals {
    /// The sequence number of the last write published.
    seq: u64,
    /// The bytes of every change published.
    published: u64,
    entries: Vec<Entry>,
}

struct State {
    /// The sequence number of the last write taken into the history.
    seq: u64,
    history: VecDeque<Arc<Entry>>,
    history_bytes: usize,
    /// An empty list, swapped with [`Arrivals::entries`] when they are taken.
    spare: Vec<Entry>,
    subs: Vec<Subscriber>,
    groups: Vec<Group>,
    /// The lowest `next` of any subscriber (as of the last change to the subscribers): the
    /// history keeps writes from there on, within its hard bound.
    floor: u64,
    /// The highest log position known durable (0 in memory-only mode).
    durable: Lsn,
    /// A thread is handing pushes over (see [`Feed::flush`]).
    delivering: bool,
    /// Counts the delivering threads' turns.
    turns: u64,
    /// When the delivering thread began its turn.
    turn_began: Instant,
    /// A writer waits to take over from the delivering thread, whose turn is over (one at a
    /// time: the others leave their pushes as usual).
    handover: bool,
}

impl State {
    /// Moves the writes published since the last call into the history.
    fn take_arrivals(&mut self, arrivals: &Mutex<Arrivals>, shared: &Shared) {
        {
            let mut a = arrivals.lock();
            if a.entries.is_empty() {
                return;
            }
            std::mem::swap(&mut a.entries, &mut self.spare);
        }
        let mut taken = 0;
        for e in self.spare.drain(..) {
            self.seq = e.seq;
            taken += e.bytes;
            self.history.push_back(Arc::new(e));
        }
        self.history_bytes += taken;
        shared.history_grew(taken);
        self.trim(shared);
    }

    /// Lets go of the oldest writes past the bounds: those every subscriber was served once the
    /// feed's own bound or the hub's budget is passed (the budget, for a feed with
    /// subscribers, only once no feed is without: those are dropped first, see `hub`), any
    /// past the hard bound.
    fn trim(&mut self, shared: &Shared) {
        let budget_applies = self.subs.is_empty() || shared.budget_binds_used_feeds();
        while let Some(front) = self.history.front() {
            let over = self.history.len() > HISTORY_WRITES
                || self.history_bytes > HISTORY_BYTES
                || budget_applies && shared.history_over_budget();
            let far_over = self.history.len() > LAG_FACTOR * HISTORY_WRITES
                || self.history_bytes > LAG_FACTOR * HISTORY_BYTES;
            if !(far_over || over && front.seq < self.floor) {
                break;
            }
            self.history_bytes -= front.bytes;
            shared.history_shrank(front.bytes);
            self.history.pop_front();
        }
    }

    /// The group of subscriptions selecting what `filter` selects, joined.
    fn join_group(&mut self, filter: &Arc<Filter>) -> (usize, Arc<Filter>) {
        if let Some(i) = self
            .groups
            .iter()
            .position(|g| g.users > 0 && g.filter.same_texts(filter))
        {
            self.groups[i].users += 1;
            return (i, self.groups[i].filter.clone());
        }
        let group = Group {
            filter: filter.clone(),
            users: 1,
        };
        match self.groups.iter().position(|g| g.users == 0) {
            Some(i) => {
                self.groups[i] = group;
                (i, filter.clone())
            }
            None => {
                self.groups.push(group);
                (self.groups.len() - 1, filter.clone())
            }
        }
    }

    /// Removes the subscribers `gone` selects.
    fn remove(&mut self, gone: impl Fn(&Subscriber) -> bool) -> usize {
        let mut removed = 0;
        let groups = &mut self.groups;
        self.subs.retain(|s| {
            if gone(s) {
                groups[s.group].users -= 1;
                removed += 1;
                false
            } else {
                true
            }
        });
        if self.subs.is_empty() {
            self.groups.clear();
        }
        removed
    }
}

pub struct Feed {
    col: String,
    /// The send-buffer limit a subscriber's connection may hold in pushes.
    limit: usize,
    /// Locked after `state` when both are.
    arrivals: Mutex<Arrivals>,
    state: Mutex<State>,
    /// Signalled after every delivery round.
    delivered: Condvar,
    /// [`TURN`] (shorter in tests).
    turn_length: Duration,
    /// [`ENCODE_BUDGET`] (smaller in tests).
    encode_budget: usize,
    /// What it shares with its hub (see `hub`).
    shared: Arc<Shared>,
    /// Itself, for the hub's queue of unused feeds (dangling for a feed outside a hub).
    me: Weak<Feed>,
    /// When it lost its last subscriber (the hub's [`Shared::now_ms`]); 0 while it has one.
    unused_since: AtomicU64,
}

impl Feed {
    /// A feed whose first write will be number `base + 1`, on its own (outside a hub).
    pub fn new(col: &str, base: u64, limit: usize) -> Self {
        Feed::with(
            col,
            base,
            limit,
            Arc::new(Shared::new(HISTORY_BUDGET, RESUME_WINDOW)),
            Weak::new(),
        )
    }

    /// A feed of a hub's, counted and queued as unused (it has no subscriber yet).
    pub(super) fn in_hub(col: &str, base: u64, limit: usize, shared: Arc<Shared>) -> Arc<Self> {
        let feed = Arc::new_cyclic(|me| Feed::with(col, base, limit, shared, me.clone()));
        let st = feed.state.lock();
        feed.note_if_unused(&st);
        drop(st);
        feed
    }

    fn with(col: &str, base: u64, limit: usize, shared: Arc<Shared>, me: Weak<Feed>) -> Self {
        Feed {
            col: col.to_owned(),
            limit,
            arrivals: Mutex::new(Arrivals {
                seq: base,
                published: 0,
                entries: Vec::new(),
            }),
            state: Mutex::new(State {
                seq: base,
                history: VecDeque::new(),
                history_bytes: 0,
                spare: Vec::new(),
                subs: Vec::new(),
                groups: Vec::new(),
                floor: u64::MAX,
                durable: 0,
                delivering: false,
                turns: 0,
                turn_began: Instant::now(),
                handover: false,
            }),
            delivered: Condvar::new(),
            turn_length: TURN,
            encode_budget: ENCODE_BUDGET,
            shared,
            me,
            unused_since: AtomicU64::new(0),
        }
    }

    /// When it lost its last subscriber (see [`Feed::unused_since`]); 0 while it has one.
    pub(super) fn unused_since_ms(&self) -> u64 {
        self.unused_since.load(Ordering::Relaxed)
    }

    /// Lets the hub drop it: true (with the last sequence number it gave) when it has been
    /// without subscribers since `since`, as the hub's queue says; it then no longer counts as
    /// unused.
    pub(super) fn retire_if_unused_since(&self, since: u64) -> Option<u64> {
        let st = self.state.lock();
        if !st.subs.is_empty() || self.unused_since.load(Ordering::Relaxed) != since {
            return None;
        }
        self.unused_since.store(0, Ordering::Relaxed);
        self.shared.no_longer_unused();
        let seq = self.arrivals.lock().seq;
        drop(st);
        Some(seq)
    }

    /// After subscribers left (or at creation): a feed left without any is counted and queued
    /// as unused, with the time. Under its state lock.
    fn note_if_unused(&self, st: &State) {
        if st.subs.is_empty() && self.unused_since.load(Ordering::Relaxed) == 0 {
            let now = self.shared.now_ms();
            self.unused_since.store(now, Ordering::Relaxed);
            self.shared.became_unused(self.me.clone(), now);
        }
    }

    /// Whether a thread delivers, and whether a writer waits to take over from it.
    #[cfg(test)]
    pub(super) fn turn_state(&self) -> (bool, bool) {
        let st = self.state.lock();
        (st.delivering, st.handover)
    }

    /// Writes in the history.
    #[cfg(test)]
    pub(super) fn history_len(&self) -> usize {
        self.state.lock().history.len()
    }

    /// The same feed with another encoding budget.
    #[cfg(test)]
    pub(super) fn with_encode_budget(mut self, bytes: usize) -> Self {
        self.encode_budget = bytes;
        self
    }

    /// The same feed with another delivery turn.
    #[cfg(test)]
    pub(super) fn with_turn(mut self, turn: Duration) -> Self {
        self.turn_length = turn;
        self
    }

    pub fn col(&self) -> &str {
        &self.col
    }

    /// The bytes of pushes a subscriber's connection may hold waiting (its send-buffer limit).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The sequence number of the last write published.
    pub fn seq(&self) -> u64 {
        self.arrivals.lock().seq
    }

    /// Records one applied write (logged at `lsn`; 0 in memory). Call under the collection's
    /// write lock; its pushes leave with the next [`Feed::flush`] that finds it durable.
    pub fn publish(&self, lsn: Lsn, change: Change) {
        let bytes = change.bytes();
        let mut a = self.arrivals.lock();
        a.seq += 1;
        a.published += bytes as u64;
        let (seq, total) = (a.seq, a.published);
        a.entries.push(Entry {
            seq,
            lsn,
            change,
            bytes,
            total,
        });
    }

    /// Hands every subscriber the pushes whose writes are durable up to `durable` (0 in
    /// memory-only mode). Called by the writer's session once its own answer may leave, outside
    /// the collection's lock. One thread delivers at a time, outside the feed's lock: each
    /// round encodes a write once per group of equal filters and hands each connection all it
    /// is owed in one push. A thread that finds another delivering leaves its pushes to it (the
    /// deliverer goes round again until nothing is owed), so pushes that pile up meanwhile
    /// leave together. It waits only while more than [`MAX_LAG`] writes (or
    /// [`MAX_LAG_BYTES`]) are owed, so writers go no faster than the server delivers, or to
    /// take over from a deliverer whose [`TURN`] is over, which stops after its round (so
    /// every writer's connection is served, however long the stream of writes). A subscriber
    /// that does not read never holds a round up: its connection refuses pushes past its limit
    /// and the subscription ends.
    pub fn flush(&self, durable: Lsn) {
        self.flush_taking_turns(durable, true);
    }

    /// [`Feed::flush`]; `may_take_over`: whether this caller may wait for a turn (not one whose
    /// own answers have not left yet).
    fn flush_taking_turns(&self, durable: Lsn, may_take_over: bool) {
        let mut st = self.state.lock();
        st.durable = st.durable.max(durable);
        st.take_arrivals(&self.arrivals, &self.shared);
        // The turn this thread waits to take over at the end of.
        let mut taking_over: Option<u64> = None;
        while st.delivering {
            if taking_over.is_some_and(|turn| turn != st.turns) {
                // Another thread took over first and delivers now.
                taking_over = None;
            }
            if taking_over.is_none()
                && may_take_over
                && !st.handover
                && st.turn_began.elapsed() >= self.turn_length
            {
                st.handover = true;
                taking_over = Some(st.turns);
            }
            if taking_over.is_none() && !st.lagging() {
                return;
            }
            self.delivered.wait(&mut st);
            st.take_arrivals(&self.arrivals, &self.shared);
        }
        st.delivering = true;
        st.handover = false;
        st.turns += 1;
        st.turn_began = Instant::now();
        loop {
            st.take_arrivals(&self.arrivals, &self.shared);
            let round = st.plan(self.encode_budget);
            if !round.lost.is_empty() {
                self.note_if_unused(&st);
            }
            if round.work.is_empty() && round.lost.is_empty() {
                self.end_turn(&mut st);
                return;
            }
            drop(st);
            // A panic while a round is handed over (a bug) must not leave `delivering` set
            // for good: every later push of the collection would wait for a deliverer that
            // is gone, and writers held back by the lag with them.
            let handed = std::panic::catch_unwind(AssertUnwindSafe(|| self.deliver(round)));
            st = self.state.lock();
            if let Err(panic) = handed {
                self.end_turn(&mut st);
                drop(st);
                std::panic::resume_unwind(panic);
            }
            if st.handover {
                // A writer waits to go on from here (it set the flag before waiting, and
                // leaves that wait only once this turn is over).
                self.end_turn(&mut st);
                return;
            }
            self.delivered.notify_all();
        }
    }

    /// The delivering thread stops; the threads waiting (to take over, or held back by the
    /// lag) look again.
    fn end_turn(&self, st: &mut State) {
        st.delivering = false;
        st.handover = false;
        self.delivered.notify_all();
    }

    /// [`Feed::flush`] when the durable changes owed come to at most `max` bytes; false (and
    /// nothing handed over) when they are more. A writer hands small deliveries over before
    /// its acknowledgements leave, so that its subscribers see a write no later than it does,
    /// and large ones after, so that its next request is sent while they are delivered.
    pub fn flush_if_small(&self, durable: Lsn, max: u64) -> bool {
        {
            let mut st = self.state.lock();
            st.durable = st.durable.max(durable);
            st.take_arrivals(&self.arrivals, &self.shared);
            if st.owed_bytes() > max {
                return false;
            }
        }
        self.flush_taking_turns(durable, false);
        true
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
        st.take_arrivals(&self.arrivals, &self.shared);
        if unchanged_since.is_some_and(|s| s != st.seq) {
            return Err(sub);
        }
        let seq = st.seq;
        let mut wait = 0;
        sub.next = seq + 1;
        match start {
            Start::Live => {}
            Start::BacklogTooLarge => {
                self.end_slow(sub.conn, &sub.id, &*sub.sink);
                return Ok(Registered { seq, wait: 0 });
            }
            Start::Backlog(frames, lsn) => {
                sub.pre.extend(frames.into_iter().map(|f| (lsn, f)));
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
                sub.next = after + 1;
                wait = st
                    .history
                    .back()
                    .filter(|e| e.seq > after)
                    .map_or(0, |e| e.lsn);
            }
        }
        let (group, filter) = st.join_group(&sub.filter);
        sub.group = group;
        sub.filter = filter;
        st.floor = st.floor.min(sub.next);
        st.subs.push(*sub);
        if self.unused_since.swap(0, Ordering::Relaxed) != 0 {
            self.shared.no_longer_unused();
        }
        drop(guard);
        self.flush_taking_turns(0, false);
        Ok(Registered { seq, wait })
    }

    /// Whether connection `conn` holds subscription `id` here.
    pub fn has(&self, conn: u64, id: &str) -> bool {
        self.state
            .lock()
            .subs
            .iter()
            .any(|s| s.conn == conn && &*s.id == id)
    }

    /// Ends a subscription; false when it had already ended.
    pub fn remove(&self, conn: u64, id: &str) -> bool {
        let mut st = self.state.lock();
        let removed = st.remove(|s| s.conn == conn && &*s.id == id) > 0;
        if removed {
            self.note_if_unused(&st);
        }
        removed
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.shared
            .history_shrank(self.state.get_mut().history_bytes);
    }
}
