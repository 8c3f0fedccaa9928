//! `sub` and `unsub`: live subscriptions (see `crate::live`).
//!
//! A subscription with `since` is registered while the collection's write lock holds its
//! writers off (appends to existing documents only read-hold it), and its backlog is read
//! under the same lock: every write is then either in the
//! backlog or pushed, never both, never neither. A collection that does not exist has no lock
//! to hold; then the registration succeeds only if no write was published between finding it
//! missing and registering (else it tries again).

use super::{Ctx, OpError};
use crate::live::{self, Filter, LiveError, Registered, Start, Subscriber};
use crate::protocol::declare::payload;
use crate::protocol::reply::Reply;
use crate::store::{Collection, Current};
use std::borrow::Cow;
use std::ops::ControlFlow;

payload! {
    /// The payload of `sub`: what to watch and where to start
    /// (docs/protocol.md#sub--start-a-subscription).
    pub struct Sub {
        col: Name,
        doc: OptPattern,
        where_ as "where": OptStr,
        filter: OptStr,
        since: OptInt,
        after_seq: OptInt,
    }
    rules { NotBoth(since, after_seq) => SinceWithAfterSeq }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubStart {
    /// With the next write.
    Live,
    /// First every matching stored record with a timestamp above this one.
    Since(i64),
    /// First every write after this apply sequence number, from the recent history.
    AfterSeq(i64),
}

impl Sub<'_> {
    /// Where the subscription starts (its rules let at most one of `since` and `after_seq` be
    /// given).
    pub fn start(&self) -> SubStart {
        match (self.since, self.after_seq) {
            (Some(since), _) => SubStart::Since(since),
            (None, Some(after)) => SubStart::AfterSeq(after),
            (None, None) => SubStart::Live,
        }
    }
}

payload! {
    /// The payload of `unsub`.
    pub struct Unsub {
        sub: Name,
    }
}

/// Records per `rec` frame of a `since` backlog.
const BACKLOG_CHUNK: usize = 1000;
/// Tries before a `since` registration on a collection that keeps appearing and vanishing
/// gives up.
const TRIES: usize = 1000;

pub fn subscribe(ctx: &mut Ctx<'_>, p: &Sub<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    ctx.subs.check_room()?;
    let sink = ctx.sessions.sink(ctx.session).ok_or(LiveError::Closing)?;
    // Counted before anything changes: a filter past a limit is refused with nothing created.
    let room = ctx.subs.filter_room(ctx.log.live);
    let (doc, where_, filter) = (p.doc.as_deref(), p.where_.as_deref(), p.filter.as_deref());
    let filter = match Filter::within(doc, where_, filter, room) {
        Ok(filter) => filter,
        // Past a limit: the charge of what was counted is refused with that limit's text.
        Err(counted) => match ctx.subs.charge(ctx.log.live, counted) {
            Err(refused) => return Err(refused.into()),
            // Freed meanwhile by another connection: built whole, and charged as usual.
            Ok(charge) => {
                drop(charge);
                Filter::new(doc, where_, filter)
            }
        },
    };
    let charge = ctx.subs.charge(ctx.log.live, filter.bytes())?;
    let feed = ctx.log.live.feed_or_create(&p.col);
    let id = ctx.subs.next_id();
    let sub = Subscriber::new(ctx.session, id.clone(), sink, filter).charged(charge);
    // With `since`: how many backlog frames follow, so that a client can tell when it has
    // them all (they all carry the answer's `seq`).
    let mut backlog_frames = None;
    let registered = match p.start() {
        SubStart::Live => register(&feed, sub, Start::Live),
        SubStart::AfterSeq(after) => register(&feed, sub, Start::After(after)),
        SubStart::Since(since) => {
            let log = ctx.log.position();
            let mut slot = Some(sub);
            let mut done = None;
            for _ in 0..TRIES {
                let before = feed.seq();
                let read = ctx.read_exclusive(&p.col, |c| {
                    let sub = slot.take()?;
                    // Read under the collection's lock: every write the backlog holds was
                    // logged before the lock was taken, so the backlog waits for all of them
                    // (read before it, a write logged in between would be in the backlog
                    // without its position).
                    let lsn = log.appended();
                    let seq = feed.seq();
                    let start = match backlog(c, &sub, feed.col(), seq, since, feed.limit()) {
                        Some(frames) => {
                            backlog_frames = Some(frames.len());
                            Start::Backlog(frames, lsn)
                        }
                        None => Start::BacklogTooLarge,
                    };
                    Some(register(&feed, sub, start))
                });
                if let Some(Some(r)) = read {
                    done = Some(r);
                    break;
                }
                let Some(sub) = slot.take() else { break };
                match feed.register(sub, Start::Live, Some(before)) {
                    Ok(r) => {
                        done = Some(r);
                        break;
                    }
                    Err(back) => slot = Some(back),
                }
            }
            // A collection that does not exist has no backlog.
            backlog_frames.get_or_insert(0);
            done.ok_or(LiveError::Busy)?
        }
    };
    if registered.wait > 0 {
        ctx.log.require(registered.wait, feed.clone());
    }
    ctx.subs.add(id.clone(), feed);
    reply.member("sub").str(&id);
    reply.member("seq").int(registered.seq as i64);
    if let Some(n) = backlog_frames {
        reply.member("backlog").int(n as i64);
    }
    Ok(())
}

/// Registers where no "unchanged since" condition applies (so it cannot come back).
fn register(feed: &live::Feed, sub: Box<Subscriber>, start: Start) -> Registered {
    match feed.register(sub, start, None) {
        Ok(r) => r,
        Err(_) => unreachable!("a registration without a condition is always taken"),
    }
}

/// The `rec` frames of the stored records `sub` selects with `ts > since`, per document in
/// name order, by timestamp; `None` once their bytes pass `limit` (the subscriber's send-buffer
/// limit, which they could never pass through). Built under the collection's write lock, so
/// a backlog too large to send stops being read there and then.
fn backlog(
    c: &Collection,
    sub: &Subscriber,
    col: &str,
    seq: u64,
    since: i64,
    limit: usize,
) -> Option<Vec<Vec<u8>>> {
    // Nothing is above i64::MAX (saturating, `since` itself would be included).
    let Some(from) = since.checked_add(1) else {
        return Some(Vec::new());
    };
    let filter = sub.filter();
    let mut frames = Vec::new();
    let mut chunk: Vec<(&str, i64, Cow<'_, str>)> = Vec::new();
    // The bytes of the frames built, and of the data of the records waiting in `chunk`.
    let (mut framed, mut pending) = (0usize, 0usize);
    let docs: Box<dyn Iterator<Item = _>> = match filter.literal() {
        Some(name) => Box::new(c.docs.get_key_value(name).into_iter()),
        None => Box::new(c.docs.iter().filter(|(n, _)| filter.doc(n))),
    };
    // Every document stays locked until the frames are built (no writer waits: the caller
    // holds the collection's write lock).
    let docs: Vec<(&str, Current<'_>)> = docs.map(|(n, d)| (n.as_str(), d.read())).collect();
    for (name, series) in &docs {
        let name = *name;
        // A scan, not a read by position: sealed history is decoded once per block into a
        // buffer of the scan's, not kept in the blocks' caches after the backlog is sent.
        let range = series.range(from, i64::MAX);
        series.scan(range, false, |ts, data| {
            let data = data.text();
            if !filter.data(&data) {
                return ControlFlow::Continue(());
            }
            pending += data.len();
            chunk.push((name, ts, Cow::Owned(data.into_owned())));
            if chunk.len() == BACKLOG_CHUNK {
                let frame = rec_frame(sub, col, seq, &chunk);
                framed += frame.len();
                frames.push(frame);
                chunk.clear();
                pending = 0;
            }
            if framed + pending > limit {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        if framed + pending > limit {
            return None;
        }
    }
    if !chunk.is_empty() {
        let frame = rec_frame(sub, col, seq, &chunk);
        framed += frame.len();
        frames.push(frame);
    }
    (framed <= limit).then_some(frames)
}

fn rec_frame(
    sub: &Subscriber,
    col: &str,
    seq: u64,
    chunk: &[(&str, i64, Cow<'_, str>)],
) -> Vec<u8> {
    let records = chunk.iter().map(|(doc, ts, data)| (*doc, *ts, &**data));
    live::encode::rec(sub.id(), col, seq, records)
}

pub fn unsubscribe(ctx: &mut Ctx<'_>, p: &Unsub<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    Ok(ctx.subs.remove(&p.sub)?)
}
