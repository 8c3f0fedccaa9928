//! One small function per message type, grouped by family. This is the one place that knows
//! what a message means: each takes the store and a typed request and writes its response.

mod admin;
mod deletes;
mod kv;
mod records;

use crate::auth::{KeyEntry, KeyRing};
use crate::persist::{Journal, Lsn, WalOp};
use crate::protocol::encode;
use crate::protocol::Request;
use crate::store::{Collection, Handles, MemoryFull, Store};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

/// One open connection as `conn` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnInfo {
    pub ip: String,
    pub since_ms: i64,
    pub name: Option<String>,
    pub is_self: bool,
}

/// What the operations need from the connection layer.
pub trait Sessions: Send + Sync {
    /// Every open, authenticated connection, oldest first; `me` marks the caller's own entry.
    fn list(&self, me: u64) -> Vec<ConnInfo>;
    /// Closes every connection that authenticated with `key` (1008 `API key revoked`) and
    /// returns once they are closed (or a short grace period has passed).
    fn revoke(&self, key: &KeyEntry);
}

/// Everything an operation may touch.
pub struct Ctx<'a> {
    pub store: &'a Store,
    /// The calling connection's recently used collection handles.
    pub handles: &'a RefCell<Handles>,
    pub keys: &'a KeyRing,
    pub sessions: &'a dyn Sessions,
    /// The calling connection.
    pub session: u64,
    /// Largest response body; 0 means no limit.
    pub max_response: usize,
    /// The data folder's log, when persistence is on.
    pub journal: Option<&'a Journal>,
    /// The log position this request's acknowledgement must wait for.
    pub lsn: Cell<Lsn>,
}

impl Ctx<'_> {
    /// [`Store::write_or_create`] through the connection's handles.
    fn write_or_create<R>(&self, col: &str, f: impl FnOnce(&mut Collection) -> R) -> R {
        self.store
            .write_or_create(&mut self.handles.borrow_mut(), col, f)
    }

    /// [`Store::write_existing`] through the connection's handles.
    fn write_existing<R>(&self, col: &str, f: impl FnOnce(&mut Collection) -> R) -> Option<R> {
        self.store
            .write_existing(&mut self.handles.borrow_mut(), col, f)
    }

    /// [`Store::read`] through the connection's handles.
    fn read<R>(&self, col: &str, f: impl FnOnce(&Collection) -> R) -> Option<R> {
        self.store.read(&mut self.handles.borrow_mut(), col, f)
    }

    /// Logs a mutation (built only when persistence is on). Call under the lock of the
    /// collection it changes, before changing it.
    fn log<'o>(&self, op: impl FnOnce() -> WalOp<'o>) -> Result<(), OpError> {
        if let Some(journal) = self.journal {
            let lsn = journal
                .log(&op())
                .map_err(|e| OpError::Storage(e.to_string()))?;
            self.lsn.set(self.lsn.get().max(lsn));
        }
        Ok(())
    }

    /// Persists the API keys after a change.
    fn save_keys(&self) -> Result<(), OpError> {
        match self.journal {
            Some(journal) => journal.save_keys(self.keys).map_err(|e| {
                log::error!("saving API keys failed: {e}");
                OpError::Storage(format!("saving API keys failed: {e}"))
            }),
            None => Ok(()),
        }
    }
}

/// A request that was valid but could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpError {
    ResponseTooLarge,
    DocumentTooLarge,
    /// A `keys` error with upstream's text.
    Keys(&'static str),
    /// The data folder cannot take writes.
    Storage(String),
    /// The store holds its `--max-memory`.
    MemoryFull(MemoryFull),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let OpError::MemoryFull(m) = self {
            return m.fmt(f);
        }
        f.write_str(match self {
            OpError::ResponseTooLarge => "response too large",
            OpError::DocumentTooLarge => "document too large: at most 4 GiB of data per document",
            OpError::Keys(text) => text,
            OpError::Storage(_) => "storage unavailable: the server cannot persist writes",
            OpError::MemoryFull(_) => unreachable!("written above"),
        })
    }
}

/// Guards the optional response limit while a response is being written.
pub(crate) struct Budget {
    start: usize,
    max: usize,
}

impl Budget {
    fn new(out: &[u8], max: usize) -> Self {
        Budget {
            start: out.len(),
            max,
        }
    }

    fn check(&self, out: &[u8]) -> Result<(), OpError> {
        if self.max > 0 && out.len() - self.start > self.max {
            Err(OpError::ResponseTooLarge)
        } else {
            Ok(())
        }
    }
}

/// Executes a decoded request and appends its whole success response to `out`. On error,
/// `out` may hold a partial response that the caller discards.
pub fn execute(
    ctx: &Ctx<'_>,
    id: &str,
    req: Request<'_>,
    out: &mut Vec<u8>,
) -> Result<(), OpError> {
    let budget = Budget::new(out, ctx.max_response);
    encode::begin(out, id);
    if matches!(req, Request::Ins(_) | Request::Sval { .. }) {
        ctx.store.check_memory().map_err(OpError::MemoryFull)?;
    }
    match req {
        Request::Ins(records) => records::insert(ctx, &records)?,
        Request::Qry(q) => records::latest(ctx, &q, out, &budget)?,
        Request::Cols => records::collections(ctx, out),
        Request::Qdoc(q) => records::document(ctx, &q, out, &budget)?,
        Request::Ddoc { doc, col } => deletes::document(ctx, &doc, col.as_deref())?,
        Request::Dcol { col } => deletes::collection(ctx, &col)?,
        Request::Drec(r) => deletes::records(ctx, std::slice::from_ref(&r))?,
        Request::Dmrec(rs) => deletes::records(ctx, &rs)?,
        Request::Drrng(r) => deletes::range(ctx, &r)?,
        Request::Sval { col, key, value } => kv::set(ctx, &col, &key, &value)?,
        Request::Gval { col, key } => kv::get(ctx, &col, &key, out),
        Request::Gvalues { col, key } => kv::values(ctx, &col, Some(&key), out, &budget)?,
        Request::Gvals { col } => kv::values(ctx, &col, None, out, &budget)?,
        Request::Rval { col, key } => kv::remove(ctx, &col, &key)?,
        Request::Gkeys { col } => kv::keys(ctx, &col, out, &budget)?,
        Request::Keys(k) => admin::keys(ctx, &k, out)?,
        Request::Conn => admin::connections(ctx, out),
    }
    encode::end(out);
    budget.check(out)
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
