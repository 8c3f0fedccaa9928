//! Planning a delivery round: which durable writes and backlog frames may leave now, for
//! whom, and how much of the history is owed (what holds writers back and what a writer may
//! hand over before its own answers leave). The round itself is handed over by
//! [`super::Feed::flush`].

use super::{Entry, State, MAX_LAG, MAX_LAG_BYTES};
use crate::live::deliver::Work;
use crate::live::Sink;
use std::sync::Arc;

/// Bytes of changes one delivery round takes at most (at least one write): bounds what a
/// round builds for a connection, and how long the first pushes of a round wait for the last.
const ROUND_BYTES: usize = 256 << 10;

/// What one delivery round hands over.
pub(super) struct Round {
    pub entries: Vec<Arc<Entry>>,
    pub work: Vec<Work>,
    /// Subscribers whose owed writes left the history.
    pub lost: Vec<(u64, Arc<str>, Arc<dyn Sink>)>,
    /// The round's one write, encoded for every group at once, would pass the encoding
    /// budget: it is encoded and handed over one group at a time.
    pub by_group: bool,
}

impl State {
    /// How many writes of the history are durable: all of them when the newest is (always in
    /// memory-only mode), which is checked first, so that the usual answer does not walk a
    /// binary search through entries long out of the cache.
    fn ready(&self) -> usize {
        match self.history.back() {
            Some(last) if last.lsn > self.durable => {
                self.history.partition_point(|e| e.lsn <= self.durable)
            }
            _ => self.history.len(),
        }
    }

    /// Whether the durable writes some subscriber is owed are more than a delivery round
    /// should leave behind (see [`MAX_LAG`], [`MAX_LAG_BYTES`]).
    pub(super) fn lagging(&self) -> bool {
        let front = self.history.front().map_or(self.seq + 1, |e| e.seq);
        let ready = self.ready();
        let first = self.floor.max(front);
        let (Some(last), Some(oldest)) = (
            ready.checked_sub(1).and_then(|i| self.history.get(i)),
            self.history.get((first - front) as usize),
        ) else {
            return false;
        };
        last.seq >= first
            && (last.seq + 1 - first > MAX_LAG
                || last.total - oldest.total + oldest.bytes as u64 > MAX_LAG_BYTES)
    }

    /// The bytes of the durable changes owed to the subscriber furthest behind (roughly
    /// counted; 0: none).
    pub(super) fn owed_bytes(&self) -> u64 {
        let front = self.history.front().map_or(self.seq + 1, |e| e.seq);
        let ready = self.ready();
        let first = self.floor.max(front);
        let last = ready.checked_sub(1).and_then(|i| self.history.get(i));
        let oldest = usize::try_from(first - front)
            .ok()
            .and_then(|i| self.history.get(i));
        match (last, oldest) {
            (Some(last), Some(oldest)) if last.seq >= first => {
                last.total - oldest.total + oldest.bytes as u64
            }
            _ => 0,
        }
    }

    /// Takes what may leave now: every subscriber's durable backlog frames and the durable
    /// writes it is owed; advances the subscribers past them. The round's writes times the
    /// groups they are encoded for stay within `encode_budget` bytes (but a round takes at
    /// least one write).
    pub(super) fn plan(&mut self, encode_budget: usize) -> Round {
        let groups = self.groups.iter().filter(|g| g.users > 0).count().max(1);
        let upto = self.durable;
        let front = self.history.front().map_or(self.seq + 1, |e| e.seq);
        let ready = self.ready();
        // The first write owed to anyone who may be served now.
        let first = self
            .subs
            .iter()
            .filter(|s| s.next >= front && s.pre.iter().all(|(lsn, _)| *lsn <= upto))
            .map(|s| s.next)
            .min()
            .unwrap_or(u64::MAX);
        // The writes of this round: durable ones from `first`, a bounded amount of them.
        let skip = first.saturating_sub(front).min(ready as u64) as usize;
        let mut take = 0;
        let mut bytes = 0;
        for e in self.history.range(skip..ready) {
            let more = bytes + e.bytes;
            if take > 0 && (more > ROUND_BYTES || more.saturating_mul(groups) > encode_budget) {
                break;
            }
            take += 1;
            bytes += e.bytes;
        }
        // The last write that may leave this round (front - 1: none).
        let last = front + (skip + take) as u64 - 1;
        let mut work = Vec::new();
        let mut lost = Vec::new();
        let mut floor = u64::MAX;
        for (i, sub) in self.subs.iter_mut().enumerate() {
            let durable = sub.pre.iter().take_while(|(lsn, _)| *lsn <= upto).count();
            let pre: Vec<Vec<u8>> = sub.pre.drain(..durable).map(|(_, f)| f).collect();
            let mut from = u64::MAX;
            if sub.pre.is_empty() && sub.next <= last {
                if sub.next < front {
                    lost.push(i);
                    continue;
                }
                from = sub.next;
                sub.next = last + 1;
            }
            floor = floor.min(sub.next);
            if pre.is_empty() && from == u64::MAX {
                continue;
            }
            work.push(Work {
                conn: sub.conn,
                id: sub.id.clone(),
                id_text: sub.id_text.clone(),
                sink: sub.sink.clone(),
                group: sub.group,
                filter: sub.filter.clone(),
                from,
                pre,
            });
        }
        self.floor = floor;
        let lost = lost
            .iter()
            .map(|&i| {
                let s = &self.subs[i];
                (s.conn, s.id.clone(), s.sink.clone())
            })
            .collect::<Vec<_>>();
        if !lost.is_empty() {
            self.remove(|s| lost.iter().any(|(c, id, _)| s.conn == *c && s.id == *id));
        }
        let entries = self.history.range(skip..skip + take).cloned().collect();
        Round {
            entries,
            work,
            lost,
            by_group: take == 1 && bytes.saturating_mul(groups) > encode_budget,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Feed, Start, Subscriber, MAX_LAG, MAX_LAG_BYTES};
    use crate::live::{Change, Drain, Filter, Rec};
    use std::sync::Arc;

    fn ins(ts: i64, data: String) -> Change {
        Change::Insert(vec![Rec {
            doc: "d".into(),
            ts,
            data,
        }])
    }

    /// A feed with one subscriber that has been served nothing yet.
    fn watched() -> Feed {
        let feed = Feed::new("c", 0, 1 << 20);
        let sub = Subscriber::new(1, "s1".into(), Arc::new(Drain), Filter::default());
        assert!(feed.register(sub, Start::Live, None).is_ok());
        feed
    }

    fn lagging(feed: &Feed) -> bool {
        let mut st = feed.state.lock();
        st.take_arrivals(&feed.arrivals, &feed.shared);
        st.lagging()
    }

    /// Writers wait for the deliverer once more than `MAX_LAG` durable writes are owed, and
    /// not at `MAX_LAG`.
    #[test]
    fn writers_are_held_back_past_max_lag_owed_writes() {
        let feed = watched();
        for ts in 0..MAX_LAG as i64 {
            feed.publish(0, ins(ts, "x".into()));
        }
        assert!(!lagging(&feed));
        feed.publish(0, ins(-1, "x".into()));
        assert!(lagging(&feed));
    }

    /// Likewise past `MAX_LAG_BYTES` of owed changes, however few the writes.
    #[test]
    fn writers_are_held_back_past_max_lag_bytes_owed() {
        const MIB: usize = 1 << 20;
        let writes = MAX_LAG_BYTES as usize / MIB;
        let feed = watched();
        for ts in 1..writes as i64 {
            feed.publish(0, ins(ts, "x".repeat(MIB)));
        }
        assert!(!lagging(&feed));
        feed.publish(0, ins(0, "x".repeat(2 * MIB)));
        assert!(lagging(&feed));
    }
}
