//! The hub: every collection's live feed by name, and what bounds the feeds nobody reads.
//!
//! A feed is created by the first `sub` on its collection and keeps a history of recent writes
//! so that a client that lost its connection can resume (`after_seq`). A feed without
//! subscribers is kept for [`RESUME_WINDOW`] after its last one left, then dropped the next time
//! a feed is created; past [`MAX_UNUSED`] such feeds, the one unused longest goes first. A resume from a dropped feed is answered `resume point lost`, as for any
//! point the history no longer holds: a new feed numbers its writes from the current time in
//! microseconds, above every earlier feed's. The history all feeds keep only for resuming (writes
//! every subscriber was served) is bounded by [`HISTORY_BUDGET`] in all, besides each feed's own
//! bound.

use super::feed::Feed;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a feed without subscribers keeps its history for a resume.
pub const RESUME_WINDOW: Duration = Duration::from_secs(60);
/// Feeds without subscribers kept at most (the longest unused is dropped first past it).
pub const MAX_UNUSED: usize = 256;
/// Bytes of changes (roughly counted) all feeds keep at most only for resuming.
pub const HISTORY_BUDGET: usize = 256 << 20;

/// What a hub's feeds share with it.
pub struct Shared {
    /// Feeds that had no subscriber when they were queued, in the order they lost their last
    /// one (or were created); each feed at most once.
    unused: Mutex<VecDeque<Weak<Feed>>>,
    /// Bytes of changes in every feed's history.
    history: AtomicUsize,
    /// [`HISTORY_BUDGET`] (smaller in tests).
    budget: usize,
    /// [`RESUME_WINDOW`] in milliseconds (shorter in tests).
    window_ms: u64,
    /// What [`Shared::now_ms`] counts from.
    epoch: Instant,
}

impl Shared {
    pub fn new(budget: usize, window: Duration) -> Self {
        Shared {
            unused: Mutex::default(),
            history: AtomicUsize::new(0),
            budget,
            window_ms: window.as_millis() as u64,
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the hub started, at least 1 (0 stands for "in use" in a feed).
    pub(super) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Counts history bytes taken in (`grown`) or let go.
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

    /// Queues a feed that has no subscriber (it is not in the queue yet).
    pub(super) fn queue_unused(&self, feed: Weak<Feed>) {
        self.unused.lock().push_back(feed);
    }

    /// Whether a feed unused since `since_ms` (0: in use) is past the resume window.
    pub(super) fn expired(&self, since_ms: u64) -> bool {
        since_ms != 0 && self.now_ms().saturating_sub(since_ms) >= self.window_ms
    }

    /// Takes the queued feeds due for a look: those past the window (or in use again, whose
    /// place in the queue is stale), and the oldest beyond [`MAX_UNUSED`].
    fn due(&self) -> Vec<Arc<Feed>> {
        let mut q = self.unused.lock();
        let mut due = Vec::new();
        while let Some(front) = q.front() {
            let Some(feed) = front.upgrade() else {
                // Gone already.
                q.pop_front();
                continue;
            };
            let since = feed.unused_since_ms();
            if !(since == 0 || self.expired(since) || q.len() > MAX_UNUSED) {
                break;
            }
            q.pop_front();
            due.push(feed);
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
        }
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
                    let feed = Feed::in_hub(col, now_micros(), self.limit, self.shared.clone());
                    feeds.insert(col.to_owned(), feed.clone());
                    (feed, true)
                }
            }
        };
        self.any.store(true, Ordering::Release);
        if created {
            // Unused until its first subscriber registers.
            self.shared.queue_unused(Arc::downgrade(&feed));
            self.sweep();
        }
        feed
    }

    /// Drops the queued feeds that are due and that nothing else holds: not a subscription,
    /// nor a `sub` or a write in progress (under the map's write lock nobody can take a new
    /// reference, so a feed held only by the map and by this look is not in use anywhere).
    /// Those held elsewhere go back to the queue; those in use again leave it.
    fn sweep(&self) {
        let due = self.shared.due();
        if due.is_empty() {
            return;
        }
        let mut back = Vec::new();
        {
            let mut feeds = self.feeds.write();
            for feed in due {
                if !feed.still_unused() {
                    continue;
                }
                let mapped = feeds.get(feed.col()).is_some_and(|f| Arc::ptr_eq(f, &feed));
                // The map's and this look's.
                if mapped && Arc::strong_count(&feed) == 2 {
                    feeds.remove(feed.col());
                } else if mapped {
                    back.push(feed);
                }
            }
        }
        for feed in back {
            self.shared.queue_unused(Arc::downgrade(&feed));
        }
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
    use crate::live::{Change, Filter, Rec, Sink, SinkError, Start, Subscriber};

    struct Quiet;

    impl Sink for Quiet {
        fn header(&self, _: &mut Vec<u8>, _: usize) {}
        fn push(&self, _: &[&[u8]], _: usize) -> Result<(), SinkError> {
            Ok(())
        }
        fn push_last(&self, _: &[u8]) {}
    }

    fn subscribe(feed: &Feed, id: &str) {
        let sub = Subscriber::new(1, id.into(), Arc::new(Quiet), Filter::new(None, None, None));
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
