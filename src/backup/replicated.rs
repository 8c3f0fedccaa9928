//! How a replica takes one log entry copied from its primary: logged in its own journal with
//! the primary's write time, applied to its store, and — like a client's write on the primary
//! (`ops::Log`) — published to the live feed of its collection under the collection's write
//! lock, so that a replica's `sub` (with `since` or `after_seq`) sees the writes it applies.
//! Pushes leave once the replica's log is durable up to them ([`Applier::settle`]).

use crate::live::{Change, Feed, Hub, Rec};
use crate::persist::{self, Journal, Lsn, WalOp};
use crate::store::{Collection, Handles, Policy, Store};
use std::fmt;
use std::sync::Arc;

/// Why a copied entry was not taken.
#[derive(Debug)]
pub enum ApplyError {
    /// The entry does not decode, or the replica's log refused it.
    Log(persist::Error),
    /// The entry decodes but cannot be applied (a document grown past its limit).
    Apply(String),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Log(e) => write!(f, "{e}"),
            ApplyError::Apply(why) => f.write_str(why),
        }
    }
}

/// Applies copied entries; remembers the feeds they were published to.
pub struct Applier<'a> {
    journal: &'a Journal,
    store: &'a Store,
    live: &'a Hub,
    handles: &'a mut Handles,
    touched: Vec<Arc<Feed>>,
    /// The log position of the last entry applied (0: none).
    last: Lsn,
}

impl<'a> Applier<'a> {
    pub fn new(
        journal: &'a Journal,
        store: &'a Store,
        live: &'a Hub,
        handles: &'a mut Handles,
    ) -> Self {
        Applier {
            journal,
            store,
            live,
            handles,
            touched: Vec::new(),
            last: 0,
        }
    }

    /// The replica's store.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Logs and applies one encoded entry (`time_ms`: when the primary wrote it); returns its
    /// position in the replica's log.
    pub fn apply_bytes(&mut self, op: &[u8], time_ms: i64) -> Result<Lsn, ApplyError> {
        let op = persist::decode_copied(op).map_err(ApplyError::Log)?;
        self.apply(&op, time_ms)
    }

    /// Logs and applies one entry. It is logged under the lock of what it changes, as a
    /// client's write on the primary is (`ops::Log`): a checkpoint copies a collection under
    /// that lock after rotating the log, so an entry logged before the rotation is in the copy,
    /// and the segment holding it can go. Logged before the lock, an entry could land in a
    /// segment the checkpoint removes while the copy missed it: gone after a restart.
    pub fn apply(&mut self, op: &WalOp<'_>, time_ms: i64) -> Result<Lsn, ApplyError> {
        let mut entry = Entry {
            journal: self.journal,
            op,
            time_ms,
            lsn: None,
        };
        let mut publisher = Publisher {
            live: self.live,
            col: pushed_collection(op),
            feed: None,
            published: false,
        };
        let applied = log_and_apply(self.store, self.handles, &mut entry, &mut publisher);
        // Also when the entry stopped part way: what it applied was published, and its pushes
        // must leave with the next settle.
        if let Some(feed) = publisher.published() {
            self.touch(feed);
        }
        // An entry that changed nothing here (its collection does not exist) took no lock: it
        // is logged now, so that the replica's log still holds every copied entry.
        if applied.is_ok() && entry.lsn.is_none() {
            entry.log()?;
        }
        if let Some(lsn) = entry.lsn {
            self.last = lsn;
        }
        applied.map(|()| self.last)
    }

    fn touch(&mut self, feed: Arc<Feed>) {
        if !self.touched.iter().any(|f| Arc::ptr_eq(f, &feed)) {
            self.touched.push(feed);
        }
    }

    /// Waits until everything applied so far is in the log, then lets its pushes leave.
    pub fn settle(&mut self) -> Result<(), persist::Error> {
        if self.last > 0 {
            self.journal.wait(self.last)?;
        }
        let wrote = !self.touched.is_empty();
        for feed in self.touched.drain(..) {
            feed.flush(self.last);
        }
        if wrote {
            self.live.after_writes();
        }
        Ok(())
    }
}

/// The collection whose subscribers an entry concerns (key/value changes, retention and trims
/// are never pushed).
fn pushed_collection<'o>(op: &WalOp<'o>) -> Option<&'o str> {
    match *op {
        WalOp::Insert { col, .. }
        | WalOp::DeleteRecords { col, .. }
        | WalOp::DeleteRange { col, .. }
        | WalOp::DeleteDoc { col, .. }
        | WalOp::DropCollection { col } => Some(col),
        WalOp::SetValue { .. }
        | WalOp::DeleteValue { .. }
        | WalOp::SetRetention { .. }
        | WalOp::Trim { .. } => None,
    }
}

/// Publishes what one entry changed to its collection's feed, if it has one. The feed is
/// looked up under the collection's write lock, as the primary's `ops::Log::publish` does: a
/// `since` subscriber reads its backlog under that lock too, so it either finds this write
/// there or was registered on the feed found here. (Looked up before the lock, a feed created
/// in between would miss the write both ways.)
struct Publisher<'a> {
    live: &'a Hub,
    /// `None`: the entry is never pushed.
    col: Option<&'a str>,
    /// The feed once looked up (on first use, under the lock).
    feed: Option<Option<Arc<Feed>>>,
    published: bool,
}

impl Publisher<'_> {
    fn feed(&mut self) -> Option<&Arc<Feed>> {
        let (live, col) = (self.live, self.col);
        self.feed
            .get_or_insert_with(|| col.and_then(|col| live.feed(col)))
            .as_ref()
    }

    /// Whether the collection has a feed (changes are worth building).
    fn wanted(&mut self) -> bool {
        self.feed().is_some()
    }

    fn publish(&mut self, lsn: Lsn, change: impl FnOnce() -> Change) {
        if let Some(feed) = self.feed() {
            feed.publish(lsn, change());
            self.published = true;
        }
    }

    /// The feed published to, if any.
    fn published(self) -> Option<Arc<Feed>> {
        self.feed.flatten().filter(|_| self.published)
    }
}

/// One copied entry and, once logged, its position in the replica's log.
struct Entry<'a, 'o> {
    journal: &'a Journal,
    op: &'a WalOp<'o>,
    time_ms: i64,
    lsn: Option<Lsn>,
}

impl Entry<'_, '_> {
    /// Logs the entry (called under the lock of what it changes, before changing it).
    fn log(&mut self) -> Result<Lsn, ApplyError> {
        let lsn = self
            .journal
            .log_replicated(self.op, self.time_ms)
            .map_err(ApplyError::Log)?;
        self.lsn = Some(lsn);
        Ok(lsn)
    }
}

/// Logs an entry, applies it and publishes what it changed (key/value changes, retention and
/// trims are never pushed), under the collection's write lock, as the primary's operations
/// do. A delete that removes nothing here publishes nothing (as on
/// the primary, where it is not even logged). Nothing is logged when the collection does not
/// exist (see [`Applier::apply`]).
///
/// The log does not tell `drec` from a `dmrec` of one record: a delete of one record is
/// pushed as `drec`'s range of one.
fn log_and_apply(
    store: &Store,
    handles: &mut Handles,
    entry: &mut Entry<'_, '_>,
    publisher: &mut Publisher<'_>,
) -> Result<(), ApplyError> {
    let op = entry.op;
    let done = match op {
        WalOp::Insert { col, records } => Some(store.write_or_create(handles, col, |c| {
            let lsn = entry.log()?;
            insert(c, col, records, lsn, publisher)
        })),
        WalOp::DeleteRecords { col, records } => store.write_existing(handles, col, |c| {
            let lsn = entry.log()?;
            let mut gone: Vec<(String, Vec<i64>)> = Vec::new();
            for (doc, ts) in records {
                if c.remove_record(doc, *ts) {
                    match gone.iter_mut().find(|(d, _)| d == doc) {
                        Some((_, list)) => list.push(*ts),
                        None => gone.push((doc.to_string(), vec![*ts])),
                    }
                }
            }
            match gone.as_slice() {
                [] => {}
                [(doc, ts)] if records.len() == 1 => {
                    let (doc, ts) = (doc.clone(), ts[0]);
                    publisher.publish(lsn, || Change::DeleteRecord { doc, ts })
                }
                _ => publisher.publish(lsn, || Change::DeleteRecords(gone)),
            }
            Ok(())
        }),
        WalOp::DeleteRange { col, doc, from, to } => store.write_existing(handles, col, |c| {
            let lsn = entry.log()?;
            if c.has_range(doc, *from, *to) {
                c.remove_range(doc, *from, *to);
                publisher.publish(lsn, || Change::DeleteRange {
                    doc: doc.to_string(),
                    from: *from,
                    to: *to,
                });
            }
            Ok(())
        }),
        WalOp::DeleteDoc { col, doc } => store.write_existing(handles, col, |c| {
            let lsn = entry.log()?;
            if c.remove_doc(doc) {
                publisher.publish(lsn, || Change::DeleteDoc(doc.to_string()));
            }
            Ok(())
        }),
        WalOp::DropCollection { col } => {
            // Logged under the store's map lock and the collection's: the collection is
            // dropped only if the entry is logged.
            let dropped = store.drop_collection(col, || {
                let lsn = entry.log()?;
                publisher.publish(lsn, || Change::DropCollection);
                Ok(())
            });
            dropped.map(|_| ()).err().map(Err)
        }
        WalOp::SetValue { col, key, value } => Some(store.write_or_create(handles, col, |c| {
            entry.log()?;
            c.set_value(key, value);
            Ok(())
        })),
        WalOp::DeleteValue { col, key } => store.write_existing(handles, col, |c| {
            entry.log()?;
            c.remove_value(key);
            Ok(())
        }),
        WalOp::SetRetention {
            col,
            max_age,
            max_records,
        } => {
            // As on the primary: the policy changes before it is logged, so a checkpoint that
            // saves the policies between the two holds it already (and one saved before
            // leaves the entry in a segment it keeps).
            let policies = store.policies();
            let previous = policies.own(col);
            let limits = policies.set(
                col,
                Policy {
                    max_age: *max_age,
                    max_records: *max_records,
                },
            );
            let logged = store.write_existing(handles, col, |c| {
                entry.log()?;
                c.set_limits(limits);
                Ok(())
            });
            let logged = match logged {
                Some(logged) => logged,
                None => entry.log().map(|_| ()),
            };
            if logged.is_err() {
                policies.set(col, previous.unwrap_or_default());
            }
            Some(logged)
        }
        WalOp::Trim { col, cuts } => store.write_existing(handles, col, |c| {
            entry.log()?;
            for (doc, cut) in cuts {
                c.trim(doc, *cut);
            }
            Ok(())
        }),
    };
    done.unwrap_or(Ok(()))
}

/// An insert's records, in order; the ones applied are published (all of them unless a
/// document would grow past its limit, which stops the entry).
fn insert(
    c: &mut Collection,
    col: &str,
    records: &[(&str, i64, &str)],
    lsn: Lsn,
    publisher: &mut Publisher<'_>,
) -> Result<(), ApplyError> {
    let wanted = publisher.wanted();
    let mut applied = Vec::with_capacity(if wanted { records.len() } else { 0 });
    let mut failure = None;
    for (doc, ts, data) in records {
        if c.insert(doc, *ts, data).is_err() {
            failure = Some(ApplyError::Apply(format!(
                "document {doc:?} of collection {col:?} would grow past its size limit"
            )));
            break;
        }
        if wanted {
            applied.push(Rec {
                doc: doc.to_string(),
                ts: *ts,
                data: data.to_string(),
            });
        }
    }
    if wanted {
        // As on the primary: records retention drops at once (the primary's next entry trims
        // them) are not pushed, and the write still takes its sequence number.
        // (A write that failed part-way is not trimmed on the primary either.)
        let cuts = match failure {
            None => c.cutoffs(records.iter().map(|(doc, _, _)| *doc)),
            Some(_) => Vec::new(),
        };
        applied.retain(|r| !crate::store::cut_off(&cuts, &r.doc, r.ts));
        publisher.publish(lsn, || Change::Insert(applied));
    }
    failure.map_or(Ok(()), Err)
}
