//! `ins`, `qry`, `qdoc` and `cols`.

use super::{by_collection, retention, Ctx, Group, Log, OpError};
use crate::live::{Change, Rec};
use crate::persist::WalOp;
use crate::protocol::pattern::{self, Predicate, Selector};
use crate::protocol::payload::{Empty, NewRecord, Qdoc, Qry};
use crate::protocol::reply::{Array, Object, Reply};
use crate::store::{Appender, Collection, Data, DocNames, InView, Newest, RecordSink};
use std::borrow::Cow;
use std::ops::ControlFlow;

pub fn insert(
    ctx: &mut Ctx<'_>,
    records: &[NewRecord<'_>],
    _reply: &mut Reply<'_>,
) -> Result<(), OpError> {
    // An empty batch changes nothing: no-op, as the protocol says, even at the memory limit.
    if records.is_empty() {
        return Ok(());
    }
    ctx.store.check_memory().map_err(OpError::MemoryFull)?;
    by_collection(
        records,
        |r| &r.col,
        |col, group| {
            ctx.write_or_append(
                col,
                |c, log| append(c, log, col, group),
                |c, log| {
                    if !c.can_insert(group.iter().map(|r| (&*r.doc, r.data.incoming()))) {
                        return Err(OpError::DocumentTooLarge);
                    }
                    let texts = logged_texts(log.is_persistent(), group);
                    log.append(|| wal_insert(col, group, &texts))?;
                    let mut applied = 0;
                    let result = group.iter().try_for_each(|r| {
                        applied += 1;
                        c.insert_incoming(&r.doc, r.ts, r.data.incoming())
                            .map_err(|_| OpError::DocumentTooLarge)
                    });
                    // Records retention drops at once were never stored: not pushed either.
                    let cuts = match result {
                        Ok(()) => c.cutoffs(group.iter().map(|r| &*r.doc)),
                        Err(_) => Vec::new(),
                    };
                    log.publish(col, || {
                        changes(
                            group
                                .iter()
                                .take(applied - usize::from(result.is_err()))
                                .filter(|r| !crate::store::cut_off(&cuts, &r.doc, r.ts)),
                        )
                    });
                    result?;
                    retention::apply(c, log, col, cuts)
                },
            )
        },
    )
}

/// The usual insert — records for one existing document, newer than all it holds — made
/// while the collection is only read-locked (see `Collection::append`); `None` for any other.
fn append(
    c: &mut Appender<'_>,
    log: &mut Log<'_>,
    col: &str,
    group: Group<'_, '_, NewRecord<'_>>,
) -> Option<Result<(), OpError>> {
    let doc = &*group.iter().next()?.doc;
    if group.iter().any(|r| *r.doc != *doc) {
        return None;
    }
    let persistent = log.is_persistent();
    c.append(
        doc,
        group.iter().map(|r| (r.ts, r.data.incoming())),
        // Framed before the collection's apply-order lock, which then covers the append alone.
        || {
            let texts = logged_texts(persistent, group);
            Log::encode(persistent, || wal_insert(col, group, &texts))
        },
        |entry| {
            log.append_encoded(entry.as_ref())?;
            log.publish(col, || changes(group.iter()));
            Ok(())
        },
    )
}

/// The records' data as sent, for the log (which keeps it un-escaped); nothing when there is
/// no log.
fn logged_texts<'r>(persistent: bool, group: Group<'_, 'r, NewRecord<'r>>) -> Vec<Cow<'r, str>> {
    if !persistent {
        return Vec::new();
    }
    group.iter().map(|r| r.data.text()).collect()
}

/// The log's entry for a batch of one collection, given the records' data as sent.
fn wal_insert<'o>(
    col: &'o str,
    group: Group<'_, 'o, NewRecord<'o>>,
    texts: &'o [Cow<'o, str>],
) -> WalOp<'o> {
    WalOp::Insert {
        col,
        records: group
            .iter()
            .zip(texts)
            .map(|(r, data)| (&*r.doc, r.ts, &**data))
            .collect(),
    }
}

/// The live feed's record of inserted records.
fn changes<'r>(records: impl Iterator<Item = &'r NewRecord<'r>>) -> Change {
    Change::Insert(
        records
            .map(|r| Rec {
                doc: r.doc.to_string(),
                ts: r.ts,
                data: r.data.text().into_owned(),
            })
            .collect(),
    )
}

pub fn collections(ctx: &mut Ctx<'_>, _: &Empty, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let names = ctx.store.names();
    reply
        .member("collections")
        .strings(names.iter().map(String::as_str));
    Ok(())
}

/// `qry`: the newest record at or before `ts` of each selected document. Read under the
/// collection's read lock, each document as it was when the read began (appends go on
/// meanwhile, see `store/doc.rs`); if a document took too many appends to tell, the answer is
/// written again under the collection's write lock.
pub fn latest(ctx: &mut Ctx<'_>, q: &Qry<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let predicate = Predicate::new(q.where_.as_deref(), q.filter.as_deref());
    // Compiled only when the collection does not remember the pattern's documents.
    let mut selector = None;
    let mark = reply.mark();
    if latest_pass(ctx, q, &mut selector, &predicate, reply, false)? {
        return Ok(());
    }
    reply.rewind(mark);
    latest_pass(ctx, q, &mut selector, &predicate, reply, true).map(drop)
}

/// One pass of [`latest`]: `Ok(false)` when a document could not be seen as it was when the
/// pass began (never under the write lock: `exclusive`, where the view is always quiet).
fn latest_pass<'q>(
    ctx: &mut Ctx<'_>,
    q: &'q Qry<'_>,
    selector: &mut Option<Selector<'q>>,
    predicate: &Predicate<'_>,
    reply: &mut Reply<'_>,
    exclusive: bool,
) -> Result<bool, OpError> {
    let mut records = reply.member("records").object();
    let mut emit = Emit {
        q,
        predicate,
        scratch: String::new(),
    };
    let text = q.doc.as_deref();
    let read = |c: &Collection| -> Result<bool, OpError> {
        let selection = match text {
            Some(text) => pattern_docs(c, text, selector),
            None => c.all_docs(),
        };
        let snap = c.snapshot();
        if let Some(selection) = &selection {
            // Quiet: every document read straight, the next ones asked for ahead.
            // Rendered records only where the predicate keeps every record: they hold no
            // data to test.
            let rendered = predicate.is_trivial();
            let quiet = snap.latest_each(selection, q.ts, rendered, |name, newest| match newest {
                Newest::Rendered(ts, tail) => emit.rendered(&mut records, name, ts, tail),
                Newest::Record(ts, data) => emit.record(&mut records, Name::Head(name), ts, data),
            });
            if let Some(result) = quiet {
                return result.map(|()| true);
            }
            for (name, doc) in selection.iter() {
                let Some(view) = snap.handle(doc).view() else {
                    return Ok(false);
                };
                if let Some((ts, data)) = view.latest(q.ts) {
                    emit.record(&mut records, Name::Escaped(name.as_bytes()), ts, data)?;
                }
            }
            return Ok(true);
        }
        let docs: Box<dyn Iterator<Item = (&String, InView<'_, '_>)>> = match text {
            Some(name) => Box::new(snap.doc(name).into_iter()),
            None => Box::new(snap.docs()),
        };
        for (name, doc) in docs {
            let Some(view) = doc.view() else {
                return Ok(false);
            };
            if let Some((ts, data)) = view.latest(q.ts) {
                emit.record(&mut records, Name::Plain(name), ts, data)?;
            }
        }
        Ok(true)
    };
    let done = if exclusive {
        ctx.read_exclusive(&q.col, read)
    } else {
        ctx.read(&q.col, read)
    };
    match done {
        Some(result) => result,
        // No such collection: an empty answer, complete.
        None => Ok(true),
    }
}

/// Writes the members of a `qry` answer.
struct Emit<'a, 'q> {
    q: &'a Qry<'q>,
    predicate: &'a Predicate<'a>,
    scratch: String,
}

impl Emit<'_, '_> {
    /// The member for a document whose newest record (at or before the query's time) is
    /// `(ts, data)`, unless the query leaves that record out. Inlined into each document
    /// loop: called through memory, the record's fields were written piecemeal and read back
    /// whole, which stalled every document on the stores (they cannot be forwarded).
    #[inline(always)]
    fn record(
        &mut self,
        records: &mut Object<'_>,
        name: Name<'_>,
        ts: i64,
        data: Data<'_>,
    ) -> Result<(), OpError> {
        if ts < self.q.from || !keeps(self.predicate, data, &mut self.scratch) {
            return Ok(());
        }
        match name {
            Name::Escaped(name) => records.escaped_record_member(name, ts, data.wire()),
            Name::Head(head) => records.escaped_record_after_head(head, ts, data.wire()),
            Name::Plain(name) => records.member(name).escaped_record(ts, data.wire()),
        }
        Ok(records.check()?)
    }

    /// The member for a document whose newest record (at `ts`) is rendered ahead of time:
    /// its member head and that `tail`, unless the query's `from` leaves it out. Only for a
    /// query whose predicate keeps every record.
    #[inline(always)]
    fn rendered(
        &mut self,
        records: &mut Object<'_>,
        head: &[u8],
        ts: i64,
        tail: &[u8],
    ) -> Result<(), OpError> {
        if ts < self.q.from {
            return Ok(());
        }
        records.rendered_after_head(head, tail);
        Ok(records.check()?)
    }
}

/// A document's name as a `qry` answer's member key.
#[derive(Clone, Copy)]
enum Name<'a> {
    /// Escaped, as a remembered selection keeps it (UTF-8 bytes).
    Escaped(&'a [u8]),
    /// A remembered selection's member head: `"name":{"ts":` with the name escaped.
    Head(&'a [u8]),
    Plain(&'a str),
}

/// The documents `text` selects when it is a pattern (`None`: a literal name). The collection
/// remembers them while its set of documents is unchanged, so a repeated pattern is neither
/// compiled (`selector`, compiled on first need) nor matched again, and its documents are not
/// looked up by name.
fn pattern_docs<'q>(
    c: &Collection,
    text: &'q str,
    selector: &mut Option<Selector<'q>>,
) -> Option<DocNames> {
    if !pattern::is_pattern_shaped(text) {
        return None;
    }
    if let Some(names) = c.remembered_docs(text) {
        return Some(names);
    }
    match selector.get_or_insert_with(|| Selector::new(text)) {
        Selector::Pattern(re) => {
            let prefix = pattern::literal_prefix(text);
            Some(c.matching_docs(text, &prefix, |name| re.is_match(name)))
        }
        Selector::Literal(_) => None,
    }
}

/// Bytes of answer a `qdoc` writes at most between two checks of its size, roughly.
const CHECK_BYTES: usize = 1 << 20;

/// `qdoc`: one document's records in `[from, to]`, filtered, limited, in either order.
pub fn document(ctx: &mut Ctx<'_>, q: &Qdoc<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let predicate = Predicate::new(q.where_.as_deref(), q.filter.as_deref());
    let limit = if q.limit > 0 {
        usize::try_from(q.limit).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let mut records = reply.member("records").array();
    ctx.read_existing(&q.col, |c, docs| {
        let Some(doc) = c.find_doc(docs, &q.doc) else {
            return Ok(());
        };
        let series = doc.read();
        let mut scratch = String::new();
        let range = series.range(q.from, q.to);
        let mut kept = 0;
        let mut result = Ok(());
        if predicate.is_trivial() {
            // Every record of the range up to the limit, a chunk at a time between checks of
            // the answer's size: as many records (at most 256) as come to about CHECK_BYTES at
            // the document's average size, then at the size the last chunk's records had, so
            // that an answer past the limit stops within about that much however large its
            // records (256 records of 16 MiB made 4 GiB). Records kept rendered are copied
            // whole.
            let mut range = range;
            let mut sink = Sink(&mut records);
            let mut per_record = series.data_bytes() / series.len().max(1) + 32;
            while kept < limit {
                let chunk = (limit - kept).min((CHECK_BYTES / per_record).clamp(1, 256));
                let before = sink.0.written();
                let given = series.scan_texts(range.clone(), q.reverse, chunk, &mut sink);
                kept += given;
                if given < chunk {
                    break;
                }
                sink.0.check()?;
                per_record = (sink.0.written() - before) / given + 1;
                if q.reverse {
                    range.end -= given;
                } else {
                    range.start += given;
                }
            }
            return Ok(());
        }
        // Sealed blocks are decoded once each by the scan.
        series.scan(range, q.reverse, |ts, data| {
            if kept == limit {
                return ControlFlow::Break(());
            }
            if !keeps(&predicate, data, &mut scratch) {
                return ControlFlow::Continue(());
            }
            records.escaped_record_item(ts, data.wire());
            kept += 1;
            if let Err(e) = records.check() {
                result = Err(e.into());
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        result
    })
}

/// A `qdoc` answer's records as [`Series::scan_texts`] gives them.
struct Sink<'a, 'o>(&'a mut Array<'o>);

impl RecordSink for Sink<'_, '_> {
    #[inline(always)]
    fn rendered(&mut self, text: &str) {
        self.0.rendered_record_item(text);
    }
    /// Out of line: the rare path, kept out of the scan's loops.
    #[inline(never)]
    fn record(&mut self, ts: i64, data: Data<'_>) {
        self.0.escaped_record_item(ts, data.wire());
    }
}

/// Whether `predicate` keeps a record's data: tested as it was sent, un-escaped (into
/// `scratch`) only when there is a test to run and the data holds an escape.
fn keeps(predicate: &Predicate<'_>, data: Data<'_>, scratch: &mut String) -> bool {
    predicate.is_trivial() || predicate.accepts(data.text_in(scratch))
}
