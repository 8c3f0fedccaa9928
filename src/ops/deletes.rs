//! `ddoc`, `dcol`, `drec`, `dmrec` and `drrng`. Deleting what does not exist is a no-op: no log
//! entry, no wait for one.

use super::{by_collection, Ctx, OpError};
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
        .drop_collection(col, || log.append(|| WalOp::DropCollection { col }))
        .map(|_| ())
}

/// `drec`.
pub fn record(ctx: &mut Ctx<'_>, r: &RecordRef<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    records(ctx, std::slice::from_ref(r), reply)
}

/// `dmrec` (and `drec`): atomic per collection.
pub fn records(
    ctx: &mut Ctx<'_>,
    refs: &[RecordRef<'_>],
    _: &mut Reply<'_>,
) -> Result<(), OpError> {
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
                for r in group.iter() {
                    c.remove_record(&r.doc, r.ts);
                }
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
        Ok(())
    })
}
