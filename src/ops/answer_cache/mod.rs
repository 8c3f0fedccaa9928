//! The answer cache: encoded answers to `qry` and `qdoc`, remembered so that the same request
//! on an unchanged collection is answered by copying bytes. N dashboards polling one query
//! cost one computation per change of the collection.
//!
//! An answer is remembered under its message type and the request's `data` as sent (the id
//! left out; its text, or — when the envelope's reader read the payload straight from it —
//! the body of the envelope's string still escaped, a key of another kind), with the content
//! version of the collection it read ([`Stamp`], see `store/version.rs`) taken before it was
//! computed; it is remembered only if the version is the same after. It is served only while
//! the collection's version is still that one, so a served answer is byte for byte the one the
//! server would compute now: the response head `{"id":…` is written for the request's own id
//! and the remembered rest of the answer follows it. Error answers are never remembered.
//!
//! The cache holds at most `--answer-cache-mib` (split over shards, each behind its own lock
//! and evicting by CLOCK, see [`bounded`]); one answer may take at most [`MAX_ANSWER`] bytes.
//! The request is hashed once: the hash picks the shard and finds the entry in it. A hit
//! takes the shard's lock for the lookup only; the collection's version is checked through the
//! shared version the answer keeps (three atomic loads), without the store's map or the
//! collection's lock.

mod bounded;

use super::{MsgType, Request};
use crate::protocol::encode;
use crate::store::{Handles, Stamp, Store, VersionRef};
use bounded::{Bounded, Weigh};
use parking_lot::Mutex;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

/// Bodies at least this long are handed out by reference (queued without a copy, see
/// `server/conn.rs`); shorter ones are copied, which costs less than a piece of their own.
pub const SHARE_AT: usize = 1024;
/// The largest answer remembered (request and bookkeeping included).
pub const MAX_ANSWER: usize = 64 * 1024;
/// Shards of the cache, each with its own lock and its share of the budget.
const SHARDS: usize = 16;
/// The kinds of keys remembered: each cached message type's `data` as text, and as the body of
/// the envelope's string, still escaped.
const KINDS: usize = 4;

/// Which of the cached message types `kind` is, if it is one, and so the kind of its key: its
/// `data` as text, or as the envelope's string (`escaped`). The two never share a key: the
/// same bytes can mean one payload as text and another still escaped.
fn kind_slot(kind: MsgType, escaped: bool) -> Option<usize> {
    let slot = match kind {
        MsgType::Qry => 0,
        MsgType::Qdoc => 1,
        _ => return None,
    };
    Some(slot + if escaped { 2 } else { 0 })
}

/// The collection a cacheable request reads.
fn collection<'r>(req: &'r Request<'_>) -> Option<&'r str> {
    match req {
        Request::Qry(q) => Some(&q.col),
        Request::Qdoc(q) => Some(&q.col),
        _ => None,
    }
}

/// One remembered answer.
struct Answer {
    /// The version of the collection it read, and what it was then.
    version: VersionRef,
    stamp: Stamp,
    /// The answer after its id: `,"records":…}`.
    body: Arc<[u8]>,
}

impl Weigh for Answer {
    fn bytes(&self) -> usize {
        std::mem::size_of::<VersionRef>() + self.body.len()
    }
}

/// The cache (one per server).
pub(crate) struct AnswerCache {
    /// Empty when the cache is disabled (`--answer-cache-mib 0`).
    shards: Box<[Mutex<Bounded<Answer, KINDS>>]>,
    hasher: RandomState,
}

/// A request the cache may answer, on its way through the dispatcher.
pub(crate) struct Candidate<'d> {
    slot: usize,
    data: &'d str,
    /// The hash of `(slot, data)`: its middle bits pick the shard, and the shard's index
    /// takes it whole.
    hash: u64,
}

/// How [`AnswerCache::serve`] went.
pub(crate) enum Served {
    /// Nothing remembered is valid: compute the answer.
    Miss,
    /// The whole answer was written.
    Copied,
    /// The answer's head was written; these bytes are the rest of it.
    Shared(Arc<[u8]>),
}

/// The version of a request's collection read before its answer was computed.
pub(crate) struct Before {
    version: VersionRef,
    stamp: Stamp,
}

impl AnswerCache {
    /// A cache of at most `budget` bytes; 0 disables it.
    pub fn new(budget: usize) -> Self {
        let shards = if budget == 0 {
            Vec::new()
        } else {
            (0..SHARDS)
                .map(|_| Mutex::new(Bounded::new(budget / SHARDS)))
                .collect()
        };
        AnswerCache {
            shards: shards.into_boxed_slice(),
            hasher: RandomState::new(),
        }
    }

    /// Whether the cache is on (`--answer-cache-mib` above 0).
    pub fn is_on(&self) -> bool {
        !self.shards.is_empty()
    }

    /// Bytes held, by the budget's accounting.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes()).sum()
    }

    /// The request as the cache sees it, when the cache is on and remembers its type.
    /// `data` is its text, or with `escaped` the body of the envelope's `data` string as sent.
    pub fn candidate<'d>(
        &self,
        kind: MsgType,
        data: &'d str,
        escaped: bool,
    ) -> Option<Candidate<'d>> {
        if self.shards.is_empty() {
            return None;
        }
        let slot = kind_slot(kind, escaped)?;
        Some(Candidate {
            slot,
            data,
            hash: self.hasher.hash_one((slot, data)),
        })
    }

    fn shard(&self, c: &Candidate<'_>) -> &Mutex<Bounded<Answer, KINDS>> {
        // Not the low bits (the index's buckets) nor the top ones (its tags): within a shard
        // every hash shares the bits that picked it.
        &self.shards[((c.hash >> 32) % SHARDS as u64) as usize]
    }

    /// Answers `c` for request `id` from what is remembered, if there is an answer and its
    /// collection is unchanged since (and it fits in `max` bytes, 0: no limit): its head is
    /// written at the end of `out` and the rest copied after it or, when large, handed back
    /// ([`Served::Shared`]) to be sent from where the cache keeps it. Nothing is written on a
    /// [`Served::Miss`].
    pub fn serve(&self, c: &Candidate<'_>, id: &str, max: usize, out: &mut Vec<u8>) -> Served {
        let Some(answer) = self.shard(c).lock().get(c.hash, c.slot, c.data) else {
            return Served::Miss;
        };
        if !answer.version.is_still(answer.stamp) {
            return Served::Miss;
        }
        let base = out.len();
        encode::begin(out, id);
        if max > 0 && out.len() - base + answer.body.len() > max {
            out.truncate(base);
            return Served::Miss;
        }
        if answer.body.len() >= SHARE_AT {
            return Served::Shared(answer.body.clone());
        }
        out.extend_from_slice(&answer.body);
        Served::Copied
    }

    /// The version of the collection `req` reads, before its answer is computed (`None`: not
    /// one to remember — no such collection, or a change under way).
    pub fn before(
        &self,
        store: &Store,
        handles: &mut Handles,
        req: &Request<'_>,
    ) -> Option<Before> {
        let col = collection(req)?;
        store.read(handles, col, |c| {
            let version = c.content_version();
            let stamp = version.stamp()?;
            Some(Before {
                version: version.clone(),
                stamp,
            })
        })?
    }

    /// Remembers `body` (the answer after its id) as the answer to `c`, if the collection is
    /// still at the version `before` saw and the answer is not too large.
    pub fn remember(&self, c: &Candidate<'_>, before: Before, body: &[u8]) {
        let weight = std::mem::size_of::<VersionRef>() + body.len();
        if c.data.len() + weight + bounded::ENTRY_OVERHEAD > MAX_ANSWER {
            return;
        }
        if !before.version.is_still(before.stamp) {
            return;
        }
        let answer = Answer {
            version: before.version,
            stamp: before.stamp,
            body: body.into(),
        };
        self.shard(c).lock().insert(c.hash, c.slot, c.data, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_and_an_escaped_body_are_keys_of_their_own_kinds() {
        let slots: Vec<usize> = [MsgType::Qry, MsgType::Qdoc]
            .into_iter()
            .flat_map(|k| [false, true].map(|escaped| kind_slot(k, escaped).unwrap()))
            .collect();
        let mut distinct = slots.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{slots:?}");
        assert!(slots.iter().all(|&s| s < KINDS), "{slots:?}");
        for escaped in [false, true] {
            assert_eq!(kind_slot(MsgType::Ins, escaped), None);
            assert_eq!(kind_slot(MsgType::Cols, escaped), None);
        }
        // The same bytes under both kinds: one does not answer for the other.
        let cache = AnswerCache::new(1 << 20);
        let text = cache.candidate(MsgType::Qry, "x", false).unwrap();
        let escaped = cache.candidate(MsgType::Qry, "x", true).unwrap();
        assert_ne!((text.slot, text.hash), (escaped.slot, escaped.hash));
    }
}
