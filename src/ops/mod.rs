//! One small function per message type, grouped by family. This is the one place that knows
//! what a message means: each takes the store and a typed payload and writes its members
//! through a [`Reply`]. Which function serves which type is declared in [`messages`].

mod admin;
pub(crate) mod answer_cache;
mod deletes;
mod kv;
pub mod messages;
mod records;
mod retention;
mod subs;

use crate::auth::{KeyEntry, KeyRing};
use crate::live::{Change, Feed, Hub, LiveError, Sink, Subscriptions};
use crate::persist::{now_ms, Framed, Journal, Lsn, WalOp};
use crate::protocol::reply::TooLarge;
use crate::store::{Appender, Collection, DocCache, Handles, MemoryFull, SeriesError, Store};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub(crate) use messages::execute;
pub use messages::{decode, MsgType, Request};
pub(crate) use retention::enforce_everywhere;

/// One open connection as `conn` reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConnInfo {
    pub ip: String,
    pub since_ms: i64,
    pub name: Option<String>,
    pub is_self: bool,
}

/// What the operations need from the connection layer.
pub(crate) trait Sessions: Send + Sync {
    /// Every open, authenticated connection, oldest first; `me` marks the caller's own entry.
    fn list(&self, me: u64) -> Vec<ConnInfo>;
    /// Closes every connection that authenticated with `key` (1008 `API key revoked`) and
    /// returns once they are closed (or a short grace period has passed).
    fn revoke(&self, key: &KeyEntry);
    /// Where pushes to connection `id` go (`None` once it is closing).
    fn sink(&self, id: u64) -> Option<Arc<dyn Sink>>;
}

/// Everything an operation may touch, for one request.
pub(crate) struct Ctx<'a> {
    pub store: &'a Store,
    /// The calling connection's recently used collection handles.
    pub handles: &'a mut Handles,
    pub keys: &'a KeyRing,
    pub sessions: &'a dyn Sessions,
    /// The calling connection.
    pub session: u64,
    /// The calling connection's subscriptions.
    pub subs: &'a mut Subscriptions,
    /// Where mutations are logged, and how far this request's acknowledgement must wait.
    pub log: Log<'a>,
}

/// The data folder's log as one request sees it, and the live feeds its changes go to.
pub(crate) struct Log<'a> {
    journal: Option<&'a Journal>,
    /// The key the request came with (`None`: the server's own changes, such as retention
    /// at start-up).
    key: Option<&'a KeyEntry>,
    lsn: Lsn,
    /// The position of the last entry this request logged.
    last: Lsn,
    live: &'a Hub,
    /// Feeds this request published to: their pushes leave once `lsn` is durable.
    touched: Vec<Arc<Feed>>,
}

impl<'a> Log<'a> {
    /// `journal` is `None` when the server runs purely in memory.
    pub fn new(journal: Option<&'a Journal>, live: &'a Hub, key: Option<&'a KeyEntry>) -> Self {
        Log {
            journal,
            key,
            lsn: 0,
            last: 0,
            live,
            touched: Vec::new(),
        }
    }

    /// The feeds this request published to (see [`Subscriptions::touch`]); `None` when it
    /// published to none (most requests: no empty vector to move and drop).
    pub fn take_touched(&mut self) -> Option<Vec<Arc<Feed>>> {
        (!self.touched.is_empty()).then(|| std::mem::take(&mut self.touched))
    }

    /// Publishes a change just logged to `col` to its live feed, if it has one. Call in the
    /// collection's apply order: under its write lock after changing it, or within an append's
    /// `commit` (under the apply-order lock, see `Collection::append`).
    fn publish(&mut self, col: &str, change: impl FnOnce() -> Change) {
        if let Some(feed) = self.live.feed(col) {
            feed.publish(self.last, change());
            self.touch(feed);
        }
    }

    fn touch(&mut self, feed: Arc<Feed>) {
        if !self.touched.iter().any(|f| Arc::ptr_eq(f, &feed)) {
            self.touched.push(feed);
        }
    }

    /// Makes this request's answer (and the feed's pushes) wait for log position `lsn`.
    fn require(&mut self, lsn: Lsn, feed: Arc<Feed>) {
        self.lsn = self.lsn.max(lsn);
        self.touch(feed);
    }

    /// Where the log stands, readable while the request holds a collection's lock.
    fn position(&self) -> Position<'a> {
        Position(self.journal)
    }

    /// The log position this request's acknowledgement must wait for (0: none).
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Logs a mutation (built only when persistence is on). Call under the write lock of the
    /// collection it changes (or within an append's `commit`), before changing it.
    fn append<'o>(&mut self, op: impl FnOnce() -> WalOp<'o>) -> Result<(), OpError> {
        let entry = Log::encode(self.is_persistent(), op)?;
        self.append_encoded(entry.as_ref())
    }

    /// Whether mutations are logged (`--data`).
    fn is_persistent(&self) -> bool {
        self.journal.is_some()
    }

    /// Frames a mutation for [`Log::append_encoded`] when `persistent` (else `None`): the
    /// part of logging that needs no lock, done before taking the one the append needs.
    fn encode<'o>(
        persistent: bool,
        op: impl FnOnce() -> WalOp<'o>,
    ) -> Result<Option<Framed>, OpError> {
        if !persistent {
            return Ok(None);
        }
        Framed::encode(&op(), now_ms()).map(Some).map_err(log_error)
    }

    /// Logs an entry framed by [`Log::encode`]; same rules as [`Log::append`].
    ///
    /// A key revoked since the request was let in changes nothing more: checked here, under
    /// the lock of what the change is about to touch, a change is either made before the
    /// revocation (and before its answer) or refused. (Checked only when the request began,
    /// one held up past the revocation's wait for the key's connections could still write
    /// after the client that revoked the key was told it was gone.)
    fn append_encoded(&mut self, entry: Option<&Framed>) -> Result<(), OpError> {
        if self.key.is_some_and(KeyEntry::is_revoked) {
            return Err(OpError::Refused(crate::live::KEY_REVOKED));
        }
        if let (Some(journal), Some(entry)) = (self.journal, entry) {
            let lsn = journal.log_encoded(entry).map_err(log_error)?;
            self.lsn = self.lsn.max(lsn);
            self.last = lsn;
        }
        Ok(())
    }
}

/// The log's end as a request reads it (see [`Log::position`]).
#[derive(Clone, Copy)]
struct Position<'a>(Option<&'a Journal>);

impl Position<'_> {
    /// Everything logged so far, by anyone (0 in memory).
    fn appended(self) -> Lsn {
        self.0.map_or(0, |j| j.wal().appended())
    }
}

/// What a client is told when logging a mutation failed.
fn log_error(e: crate::persist::Error) -> OpError {
    match e {
        crate::persist::Error::Refused(text) => OpError::Refused(text),
        e => OpError::Storage(e.to_string()),
    }
}

impl<'a> Ctx<'a> {
    /// [`Store::write_or_create`] through the connection's handles; `f` logs through the
    /// [`Log`] it is given.
    fn write_or_create<R>(
        &mut self,
        col: &str,
        f: impl FnOnce(&mut Collection, &mut Log<'a>) -> R,
    ) -> R {
        let log = &mut self.log;
        self.store.write_or_create(self.handles, col, |c| f(c, log))
    }

    /// [`Store::write_existing`] through the connection's handles: a collection that does not
    /// exist is left alone (deleting from it changes nothing).
    fn write_existing(
        &mut self,
        col: &str,
        f: impl FnOnce(&mut Collection, &mut Log<'a>) -> Result<(), OpError>,
    ) -> Result<(), OpError> {
        let log = &mut self.log;
        match self.store.write_existing(self.handles, col, |c| f(c, log)) {
            Some(result) => result,
            None => Ok(()),
        }
    }

    /// [`Store::write_or_append`] through the connection's handles: `append` under the
    /// collection's read lock first, `write` under its write lock if that declines.
    fn write_or_append<R>(
        &mut self,
        col: &str,
        append: impl FnOnce(&mut Appender<'_>, &mut Log<'a>) -> Option<R>,
        write: impl FnOnce(&mut Collection, &mut Log<'a>) -> R,
    ) -> R {
        self.store
            .write_or_append(self.handles, col, &mut self.log, append, write)
    }

    /// [`Store::read_exclusive`] through the connection's handles: a read that holds the
    /// collection's writers off.
    fn read_exclusive<R>(&mut self, col: &str, f: impl FnOnce(&Collection) -> R) -> Option<R> {
        self.store.read_exclusive(self.handles, col, f)
    }

    /// [`Store::read`] through the connection's handles: `None` when the collection does not
    /// exist.
    fn read<R>(&mut self, col: &str, f: impl FnOnce(&Collection) -> R) -> Option<R> {
        self.store.read(self.handles, col, f)
    }

    /// [`Store::read_with_docs`] of a collection that may not exist: a missing one reads as
    /// empty.
    fn read_existing(
        &mut self,
        col: &str,
        f: impl FnOnce(&Collection, &mut DocCache) -> Result<(), OpError>,
    ) -> Result<(), OpError> {
        match self.store.read_with_docs(self.handles, col, f) {
            Some(result) => result,
            None => Ok(()),
        }
    }

    /// Persists the API keys after a change.
    fn save_keys(&self) -> Result<(), OpError> {
        match self.log.journal {
            Some(journal) => journal.save_keys(self.keys).map_err(|e| match e {
                crate::persist::Error::Refused(text) => OpError::Refused(text),
                e => {
                    log::error!("saving API keys failed: {e}");
                    OpError::Storage(format!("saving API keys failed: {e}"))
                }
            }),
            None => Ok(()),
        }
    }
}

/// A request that was valid but could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpError {
    ResponseTooLarge,
    DocumentTooLarge,
    /// A `keys` error with upstream's text.
    Keys(&'static str),
    /// The data folder cannot take writes.
    Storage(String),
    /// The store holds its `--max-memory`.
    MemoryFull(MemoryFull),
    /// A `sub` or `unsub` refused.
    Live(LiveError),
    /// A write to a read replica or a fenced primary (the text says which).
    Refused(&'static str),
}

/// Refuses a request that would change data (or keys) when the journal's gate is closed: a
/// read replica, or a primary a newer one deposed. Checked before anything runs, so even a
/// write that would change nothing gets the same answer.
fn refuse_writes(ctx: &Ctx<'_>, req: &Request<'_>) -> Result<(), OpError> {
    let Some(journal) = ctx.log.journal else {
        return Ok(());
    };
    let Some(text) = journal.gate().refusal() else {
        return Ok(());
    };
    let writes = match req {
        Request::Keys(k) => k
            .action
            .as_deref()
            .is_none_or(|a| crate::auth::normalise(a) != "list"),
        other => matches!(
            other.kind(),
            MsgType::Ins
                | MsgType::Ddoc
                | MsgType::Dcol
                | MsgType::Drec
                | MsgType::Dmrec
                | MsgType::Drrng
                | MsgType::Sval
                | MsgType::Rval
                | MsgType::Sret
        ),
    };
    if writes {
        Err(OpError::Refused(text))
    } else {
        Ok(())
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpError::MemoryFull(m) => return m.fmt(f),
            OpError::Live(e) => return e.fmt(f),
            OpError::ResponseTooLarge => "response too large",
            OpError::DocumentTooLarge => "document too large: at most 4 GiB of data per document",
            OpError::Keys(text) | OpError::Refused(text) => text,
            OpError::Storage(_) => "storage unavailable: the server cannot persist writes",
        })
    }
}

impl From<SeriesError> for OpError {
    fn from(_: SeriesError) -> Self {
        OpError::DocumentTooLarge
    }
}

impl From<LiveError> for OpError {
    fn from(e: LiveError) -> Self {
        OpError::Live(e)
    }
}

impl From<TooLarge> for OpError {
    fn from(_: TooLarge) -> Self {
        OpError::ResponseTooLarge
    }
}

/// The items of one collection in a batch: the whole batch (the usual case, which then costs
/// no grouping at all) or those picked out of it, in batch order.
enum Group<'g, 'r, T> {
    Whole(&'r [T]),
    Picked(&'g [&'r T]),
}

// Not derived: the derive would ask for `T: Copy`.
impl<T> Clone for Group<'_, '_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Group<'_, '_, T> {}

impl<'g, 'r: 'g, T> Group<'g, 'r, T> {
    fn iter(self) -> impl Iterator<Item = &'r T> + Clone + 'g {
        let (whole, picked): (&'r [T], &'g [&'r T]) = match self {
            Group::Whole(w) => (w, &[]),
            Group::Picked(p) => (&[], p),
        };
        whole.iter().chain(picked.iter().copied())
    }
}

/// Calls `each` once per collection named in a batch, in order of first appearance, with its
/// items in batch order.
fn by_collection<'r, T, E>(
    items: &'r [T],
    col: impl Fn(&'r T) -> &'r str,
    mut each: impl FnMut(&'r str, Group<'_, 'r, T>) -> Result<(), E>,
) -> Result<(), E> {
    let Some(first) = items.first() else {
        return Ok(());
    };
    let name = col(first);
    if items.iter().all(|item| col(item) == name) {
        return each(name, Group::Whole(items));
    }
    for (name, group) in groups(items, col) {
        each(name, Group::Picked(&group))?;
    }
    Ok(())
}

/// Groups batch items by collection, keeping their order inside each collection. Batches name
/// a few collections, so groups are found by a short scan (a map only past 8 groups).
fn groups<'r, T>(items: &'r [T], col: impl Fn(&'r T) -> &'r str) -> Vec<(&'r str, Vec<&'r T>)> {
    let mut groups: Vec<(&'r str, Vec<&'r T>)> = Vec::new();
    let mut index: HashMap<&'r str, usize> = HashMap::new();
    for item in items {
        let name = col(item);
        let slot = if groups.len() <= 8 {
            groups.iter().position(|(n, _)| *n == name)
        } else {
            if index.is_empty() {
                index.extend(groups.iter().enumerate().map(|(i, (n, _))| (*n, i)));
            }
            index.get(name).copied()
        };
        match slot {
            Some(i) => groups[i].1.push(item),
            None => {
                if !index.is_empty() {
                    index.insert(name, groups.len());
                }
                groups.push((name, vec![item]));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::by_collection;

    fn shape<'a>(items: &'a [&'a str]) -> Vec<(&'a str, Vec<&'a str>)> {
        let mut seen = Vec::new();
        by_collection(
            items,
            |s| &s[..1],
            |name, group| {
                seen.push((name, group.iter().copied().collect()));
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        seen
    }

    #[test]
    fn grouping_keeps_order_with_one_few_and_many_collections() {
        assert_eq!(shape(&["a1", "a2"]), vec![("a", vec!["a1", "a2"])]);
        assert_eq!(shape(&[]), vec![]);
        assert_eq!(
            shape(&["a1", "b1", "a2", "c1", "b2"]),
            vec![
                ("a", vec!["a1", "a2"]),
                ("b", vec!["b1", "b2"]),
                ("c", vec!["c1"])
            ]
        );
        let names: Vec<String> = (0..40)
            .map(|i| format!("{}{i}", (b'A' + i % 20) as char))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let g = shape(&refs);
        assert_eq!(g.len(), 20);
        assert!(g
            .iter()
            .enumerate()
            .all(|(i, (n, v))| n.as_bytes()[0] == b'A' + i as u8
                && v.len() == 2
                && v[1] == format!("{n}{}", i + 20)));
    }
}
