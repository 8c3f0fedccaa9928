//! The hub: every collection's live feed by name, and what bounds the feeds nobody reads.
//!
//! A feed is created by the first `sub` on its collection and keeps a history of recent writes
//! so that a client that lost its connection can resume (`after_seq`). A feed without
//! subscribers is kept for [`RESUME_WINDOW`] after its last one left, then dropped the next time
//! the hub looks (a feed is created, or a request wrote while the histories pass their
//! budget). Past [`MAX_UNUSED`] such feeds, the one unused longest goes first; and while all
//! feeds' histories together pass [`HISTORY_BUDGET`], feeds without subscribers go first, the
//! longest unused first, before any feed being written lets go of the history it keeps only
//! for resuming. A resume from a dropped feed is answered `resume point lost`, as for any
//! point the history no longer holds: a new feed numbers its writes from the current time in
//! microseconds, and above every dropped feed's numbers.

use super::budget::Held;
use super::feed::Feed;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a feed without subscribers keeps its history for a resume.
pub const RESUME_WINDOW: Duration = Duration::from_secs(60);
/// Feeds without subscribers kept at most (the longest unused is dropped first past it).
pub const MAX_UNUSED: usize = 256;
/// Bytes of changes (roughly counted) all feeds' histories hold before feeds without
/// subscribers are dropped and feeds being written keep only what they owe.
pub const HISTORY_BUDGET: usize = 256 << 20;
/// How often at most a request that wrote looks for feeds to drop while the histories pass
/// their budget.
const BUDGET_LOOK: Duration = Duration::from_millis(100);

/// What a hub's feeds share with it.
pub struct Shared {
    /// One entry each time a feed was left without subscribers (or created), in that order,
    /// with the time it was (its [`Feed::unused_since_ms`] then): an entry whose feed has had
    /// subscribers since is stale and skipped.
    unused: Mutex<VecDeque<(Weak<Feed>, u64)>>,
    /// Feeds without subscribers, exactly (changed under each feed's state lock).
    unused_feeds: AtomicUsize,
    /// Bytes of changes in every feed's history.
    history: AtomicUsize,
    /// [`HISTORY_BUDGET`] (smaller in tests).
    budget: usize,
    /// [`RESUME_WINDOW`] in milliseconds (shorter in tests).
    window_ms: u64,
    /// What [`Shared::now_ms`] counts from.
    epoch: Instant,
    /// The highest sequence number any dropped feed had given.
    dropped_seq: AtomicU64,
    /// When a request that wrote last looked for feeds to drop ([`Shared::now_ms`]; 0: never).
    looked_ms: AtomicU64,
    /// The last look dropped every feed without subscribers it could, and the histories still
    /// passed their budget: feeds being written then trim for it too.
    budget_blocked: AtomicBool,
}

impl Shared {
    pub fn new(budget: usize, window: Duration) -> Self {
        Shared {
            unused: Mutex::default(),
            unused_feeds: AtomicUsize::new(0),
            history: AtomicUsize::new(0),
            budget,
            window_ms: window.as_millis() as u64,
            epoch: Instant::now(),
            dropped_seq: AtomicU64::new(0),
            looked_ms: AtomicU64::new(0),
            budget_blocked: AtomicBool::new(false),
        }
    }

    /// Milliseconds since the hub started, at least 1 (0 stands for "in use" in a feed).
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    pub(super) fn history_grew(&self, bytes: usize) {
        self.history.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn history_shrank(&self, bytes: usize) {
        self.history.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether the feeds together keep more history than the budget.
    pub(super) fn history_over_budget(&self) -> bool {
        self.history.load(Ordering::Relaxed) > self.budget
    }

    /// A feed was left without subscribers (or created) at `since`: counted, and queued.
    /// Called under the feed's state lock.
    pub(super) fn became_unused(&self, feed: Weak<Feed>, since: u64) {
        self.unused_feeds.fetch_add(1, Ordering::Relaxed);
        self.unused.lock().push_back((feed, since));
    }

    /// A feed without subscribers got one, or was dropped. Called under its state lock.
    pub(super) fn no_longer_unused(&self) {
        self.unused_feeds.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether a feed with subscribers trims the history it keeps only for resuming when the
    /// histories pass their budget: only once no feed without subscribers is left to drop
    /// first (none is, or the last look could not drop enough).
    pub(super) fn budget_binds_used_feeds(&self) -> bool {
        self.unused_feeds.load(Ordering::Relaxed) == 0
            || self.budget_blocked.load(Ordering::Relaxed)
    }

    /// Whether a feed unused since `since_ms` is past the resume window.
    fn expired(&self, since_ms: u64) -> bool {
        self.now_ms().saturating_sub(since_ms) >= self.window_ms
    }

    /// Takes the queued feeds due for a look, with the time each was left unused: those past
    /// the window, the longest unused past [`MAX_UNUSED`], and every one while the histories
    /// pass their budget. Stale entries (their feed used since, or gone) are let go.
    fn due(&self) -> Vec<(Arc<Feed>, u64)> {
        let mut q = self.unused.lock();
        let mut excess = self
            .unused_feeds
            .load(Ordering::Relaxed)
            .saturating_sub(MAX_UNUSED);
        let over = self.history_over_budget();
        let mut due = Vec::new();
        while let Some((weak, since)) = q.front() {
            let since = *since;
            let Some(feed) = weak.upgrade().filter(|f| f.unused_since_ms() == since) else {
                q.pop_front();
                continue;
            };
            if !(over || excess > 0 || self.expired(since)) {
                break;
            }
            excess = excess.saturating_sub(1);
            q.pop_front();
            due.push((feed, since));
        }
        due
    }
}

/// Every feed, by collection name.
pub struct Hub {
    feeds: RwLock<HashMap<String, Arc<Feed>>>,
    /// Whether any feed exists: writers skip the map entirely until the first `sub`.
    any: AtomicBool,
    /// The send-buffer limit of a connection.
    limit: usize,
    shared: Arc<Shared>,
    /// What every subscription's filter holds, against the server-wide limit (see `budget`).
    filters: Arc<Held>,
}

impl Hub {
    pub fn new(limit: usize) -> Self {
        Hub::with_bounds(limit, HISTORY_BUDGET, RESUME_WINDOW)
    }

    /// A hub with another history budget and resume window (tests).
    pub fn with_bounds(limit: usize, budget: usize, window: Duration) -> Self {
        Hub {
            feeds: RwLock::default(),
            any: AtomicBool::new(false),
            limit,
            shared: Arc::new(Shared::new(budget, window)),
            filters: Arc::default(),
        }
    }

    /// The same hub, its subscriptions' filters holding at most `limit` bytes together
    /// (`None`: no limit; see `budget::server_limit`).
    pub fn with_filter_limit(mut self, limit: Option<usize>) -> Self {
        self.filters = Arc::new(Held::new(limit));
        self
    }

    /// What every subscription's filter holds, against the server-wide limit.
    pub fn filters(&self) -> &Arc<Held> {
        &self.filters
    }

    /// The feed of collection `col`, if it has one.
    #[inline]
    pub fn feed(&self, col: &str) -> Option<Arc<Feed>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        self.feeds.read().get(col).cloned()
    }

    /// The feed of `col`, created if needed (see the module notes for its numbering).
    pub fn feed_or_create(&self, col: &str) -> Arc<Feed> {
        if let Some(feed) = self.feed(col) {
            return feed;
        }
        let (feed, created) = {
            let mut feeds = self.feeds.write();
            match feeds.get(col) {
                Some(feed) => (feed.clone(), false),
                None => {
                    let base = now_micros().max(self.shared.dropped_seq.load(Ordering::Relaxed));
                    let feed = Feed::in_hub(col, base, self.limit, self.shared.clone());
                    feeds.insert(col.to_owned(), feed.clone());
                    (feed, true)
                }
            }
        };
        self.any.store(true, Ordering::Release);
        if created {
            self.sweep();
        }
        feed
    }

    /// After a request that wrote (outside every lock): while the histories pass their budget,
    /// feeds without subscribers are dropped, at most every [`BUDGET_LOOK`].
    pub fn after_writes(&self) {
        let s = &self.shared;
        if !s.history_over_budget() || s.unused_feeds.load(Ordering::Relaxed) == 0 {
            return;
        }
        let (now, last) = (s.now_ms(), s.looked_ms.load(Ordering::Relaxed));
        let every = BUDGET_LOOK.as_millis() as u64;
        if (last != 0 && now.saturating_sub(last) < every)
            || s.looked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.sweep();
    }

    /// Drops the queued feeds that are due and that nothing else holds: not a subscription,
    /// nor a `sub` or a write in progress (under the map's write lock nobody can take a new
    /// reference, so a feed held only by the map and by this look is not in use anywhere).
    /// Those held elsewhere go back to the queue.
    fn sweep(&self) {
        let due = self.shared.due();
        if due.is_empty() {
            self.shared
                .budget_blocked
                .store(self.shared.history_over_budget(), Ordering::Relaxed);
            return;
        }
        let mut back = Vec::new();
        {
            let mut feeds = self.feeds.write();
            for (feed, since) in due {
                let mapped = feeds.get(feed.col()).is_some_and(|f| Arc::ptr_eq(f, &feed));
                // The map's and this look's.
                if mapped && Arc::strong_count(&feed) == 2 {
                    if let Some(seq) = feed.retire_if_unused_since(since) {
                        feeds.remove(feed.col());
                        self.shared.dropped_seq.fetch_max(seq, Ordering::Relaxed);
                    }
                } else if mapped {
                    back.push((Arc::downgrade(&feed), since));
                }
            }
        }
        if !back.is_empty() {
            self.shared.unused.lock().extend(back);
        }
        // The feeds dropped have let go of their histories.
        self.shared
            .budget_blocked
            .store(self.shared.history_over_budget(), Ordering::Relaxed);
    }

    /// How many feeds exist.
    #[cfg(test)]
    fn feeds(&self) -> usize {
        self.feeds.read().len()
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::{Change, Drain, Filter, Rec, Start, Subscriber};

    fn subscribe(feed: &Feed, id: &str) {
        let sub = Subscriber::new(1, id.into(), Arc::new(Drain), Filter::new(None, None, None));
        assert!(feed.register(sub, Start::Live, None).is_ok());
    }

    fn create(hub: &Hub, names: std::ops::Range<usize>) {
        for i in names {
            hub.feed_or_create(&format!("f{i}"));
        }
    }

    #[test]
    fn past_the_cap_the_feed_unused_longest_goes_first_and_no_feed_in_use_does() {
        let hub = Hub::new(1 << 20);
        let kept = hub.feed_or_create("kept");
        subscribe(&kept, "s1");
        let held = hub.feed_or_create("held");
        create(&hub, 0..300);
        // The unused ones (the one a `sub` holds among them, put back in the queue each time
        // it is looked at) and the one with a subscriber.
        assert_eq!(hub.feeds(), MAX_UNUSED + 1);
        assert!(hub.feed("f0").is_none() && hub.feed("f44").is_none());
        assert!(hub.feed("f45").is_some() && hub.feed("f299").is_some());
        assert!(Arc::ptr_eq(&hub.feed("kept").expect("kept"), &kept));
        assert!(Arc::ptr_eq(&hub.feed("held").expect("held"), &held));
        // Its last subscriber gone, a feed joins the queue behind the others.
        assert!(kept.remove(1, "s1"));
        drop((kept, held));
        create(&hub, 300..301);
        assert!(hub.feed("kept").is_some());
        create(&hub, 301..600);
        assert!(hub.feed("kept").is_none() && hub.feed("held").is_none());
        assert_eq!(hub.feeds(), MAX_UNUSED);
    }

    #[test]
    fn an_unused_feed_stays_for_the_resume_window_and_goes_after_it() {
        let hub = Hub::with_bounds(1 << 20, HISTORY_BUDGET, Duration::from_secs(3600));
        create(&hub, 0..2);
        assert!(hub.feed("f0").is_some());
        let hub = Hub::with_bounds(1 << 20, HISTORY_BUDGET, Duration::ZERO);
        create(&hub, 0..2);
        assert!(hub.feed("f0").is_none());
        // The one just created is held by its `sub` while the others are looked at.
        assert!(hub.feed("f1").is_some());
        // A feed with a subscriber stays however long.
        let kept = hub.feed_or_create("kept");
        subscribe(&kept, "s1");
        drop(kept);
        create(&hub, 2..4);
        assert!(hub.feed("kept").is_some() && hub.feed("f1").is_none());
    }

    #[test]
    fn only_feeds_without_subscribers_count_toward_the_cap() {
        let hub = Hub::new(1 << 20);
        let x = hub.feed_or_create("x");
        subscribe(&x, "s1");
        assert!(x.remove(1, "s1"));
        drop(x);
        // Many feeds in use, created after `x` was left unused: `x` is the one unused feed.
        let used: Vec<_> = (0..300)
            .map(|i| {
                let f = hub.feed_or_create(&format!("u{i}"));
                subscribe(&f, "s1");
                f
            })
            .collect();
        assert!(
            hub.feed("x").is_some(),
            "dropped within its window, alone unused"
        );
        assert_eq!(hub.shared.unused_feeds.load(Ordering::Relaxed), 1);
        drop(used);
    }

    #[test]
    fn past_the_budget_feeds_without_subscribers_go_first() {
        let hub = Hub::with_bounds(1 << 20, 8 * 1024, RESUME_WINDOW);
        let write = |ts| {
            Change::Insert(vec![Rec {
                doc: "d".into(),
                ts,
                data: "x".repeat(100),
            }])
        };
        // `idle` holds history from when it had a subscriber, then has none.
        let idle = hub.feed_or_create("idle");
        subscribe(&idle, "s1");
        for ts in 0..30 {
            idle.publish(0, write(ts));
        }
        idle.flush(0);
        assert!(idle.remove(1, "s1"));
        drop(idle);
        let busy = hub.feed_or_create("busy");
        subscribe(&busy, "s1");
        for ts in 0..60 {
            busy.publish(0, write(ts));
            busy.flush(0);
            hub.after_writes();
        }
        assert!(
            hub.feed("idle").is_none(),
            "the feed without subscribers was kept"
        );
        assert!(
            busy.history_len() >= 30,
            "{} writes kept",
            busy.history_len()
        );
    }

    #[test]
    fn the_history_kept_only_for_resuming_is_bounded_across_feeds() {
        let hub = Hub::with_bounds(1 << 20, 4096, RESUME_WINDOW);
        let (a, b) = (hub.feed_or_create("a"), hub.feed_or_create("b"));
        subscribe(&b, "s1");
        let write = |ts| {
            Change::Insert(vec![Rec {
                doc: "d".into(),
                ts,
                data: "x".repeat(100),
            }])
        };
        for ts in 0..100 {
            a.publish(0, write(ts));
            b.publish(0, write(ts));
            a.flush(0);
            b.flush(0);
            // `a` (held here) cannot be dropped: the feed with a subscriber trims too.
            hub.after_writes();
        }
        let held = hub.shared.history.load(Ordering::Relaxed);
        assert!(held <= 4096 + 2 * 200, "{held} bytes of history kept");
        assert!(a.history_len() > 0 && b.history_len() > 0);
        // Each history accounted for: both feeds gone, nothing is counted.
        drop((a, b));
        drop(hub.feeds.write().drain());
        assert_eq!(hub.shared.history.load(Ordering::Relaxed), 0);
    }
}
