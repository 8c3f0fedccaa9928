//! `ddoc`, `dcol`, `drec`, `dmrec` and `drrng`. Deleting what does not exist is a no-op: no log
//! entry, no wait for one.

use super::{by_collection, Ctx, OpError};
use crate::live::Change;
use crate::persist::WalOp;
use crate::protocol::payload::{Col, Ddoc, Drrng, RecordRef};
use crate::protocol::reply::Reply;

/// `ddoc`: from one collection, or from every collection when `col` is absent or empty.
pub fn document(ctx: &mut Ctx<'_>, d: &Ddoc<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    let doc = &*d.doc;
    let names = match d.col.as_deref() {
        Some(col) => vec![col.to_owned()],
        None => ctx.store.names(),
    };
    for col in &names {
        ctx.write_existing(col, |c, log| {
            if c.docs.contains_key(doc) {
                log.append(|| WalOp::DeleteDoc { col, doc })?;
                c.remove_doc(doc);
                log.publish(col, || Change::DeleteDoc(doc.to_owned()));
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// `dcol`.
pub fn collection(ctx: &mut Ctx<'_>, c: &Col<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    let col = &*c.col;
    let log = &mut ctx.log;
    ctx.store
        .drop_collection(col, || {
            log.append(|| WalOp::DropCollection { col })?;
            log.publish(col, || Change::DropCollection);
            Ok(())
        })
        .map(|_| ())
}

/// `drec`.
pub fn record(ctx: &mut Ctx<'_>, r: &RecordRef<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    remove(ctx, std::slice::from_ref(r), true)
}

/// `dmrec`.
pub fn records(
    ctx: &mut Ctx<'_>,
    refs: &[RecordRef<'_>],
    _: &mut Reply<'_>,
) -> Result<(), OpError> {
    remove(ctx, refs, false)
}

/// `dmrec` and `drec` (`single`, pushed as a range of one): atomic per collection.
fn remove(ctx: &mut Ctx<'_>, refs: &[RecordRef<'_>], single: bool) -> Result<(), OpError> {
    by_collection(
        refs,
        |r| &r.col,
        |col, group| {
            ctx.write_existing(col, |c, log| {
                if !group.iter().any(|r| c.has_record(&r.doc, r.ts)) {
                    return Ok(());
                }
                log.append(|| WalOp::DeleteRecords {
                    col,
                    records: group.iter().map(|r| (&*r.doc, r.ts)).collect(),
                })?;
                let mut gone: Vec<(String, Vec<i64>)> = Vec::new();
                for r in group.iter() {
                    if c.remove_record(&r.doc, r.ts) {
                        match gone.iter_mut().find(|(d, _)| *d == *r.doc) {
                            Some((_, ts)) => ts.push(r.ts),
                            None => gone.push((r.doc.to_string(), vec![r.ts])),
                        }
                    }
                }
                log.publish(col, || match gone.pop() {
                    Some((doc, ts)) if single => Change::DeleteRecord { doc, ts: ts[0] },
                    Some(last) => {
                        gone.push(last);
                        Change::DeleteRecords(gone)
                    }
                    None => Change::DeleteRecords(Vec::new()),
                });
                Ok(())
            })
        },
    )
}

/// `drrng`.
pub fn range(ctx: &mut Ctx<'_>, r: &Drrng<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    ctx.write_existing(&r.col, |c, log| {
        if !c.has_range(&r.doc, r.from_ts, r.to_ts) {
            return Ok(());
        }
        log.append(|| WalOp::DeleteRange {
            col: &r.col,
            doc: &r.doc,
            from: r.from_ts,
            to: r.to_ts,
        })?;
        c.remove_range(&r.doc, r.from_ts, r.to_ts);
        log.publish(&r.col, || Change::DeleteRange {
            doc: r.doc.to_string(),
            from: r.from_ts,
            to: r.to_ts,
        });
        Ok(())
    })
}
