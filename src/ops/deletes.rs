//! `ddoc`, `dcol`, `drec`, `dmrec` and `drrng`. Deleting what does not exist is a no-op.

use super::{by_collection, Ctx, OpError};
use crate::persist::WalOp;
use crate::protocol::request::{Drrng, RecordRef};

/// `ddoc`: from one collection, or from every collection when `col` is absent or empty.
pub fn document(ctx: &Ctx<'_>, doc: &str, col: Option<&str>) -> Result<(), OpError> {
    let names = match col {
        Some(col) => vec![col.to_owned()],
        None => ctx.store.names(),
    };
    for col in &names {
        ctx.write_existing(col, |c| {
            if c.docs.contains_key(doc) {
                ctx.log(|| WalOp::DeleteDoc { col, doc })?;
                c.remove_doc(doc);
            }
            Ok(())
        })
        .unwrap_or(Ok(()))?;
    }
    Ok(())
}

pub fn collection(ctx: &Ctx<'_>, col: &str) -> Result<(), OpError> {
    ctx.store
        .drop_collection(col, || ctx.log(|| WalOp::DropCollection { col }))
        .map(|_| ())
}

/// `drec` and `dmrec`: atomic per collection.
pub fn records(ctx: &Ctx<'_>, refs: &[RecordRef<'_>]) -> Result<(), OpError> {
    by_collection(
        refs,
        |r| &r.col,
        |col, group| {
            ctx.write_existing(col, |c| {
                // Deleting what does not exist changes nothing: no log entry, no wait for it.
                if !group.iter().any(|r| c.has_record(&r.doc, r.ts)) {
                    return Ok(());
                }
                ctx.log(|| WalOp::DeleteRecords {
                    col,
                    records: group.iter().map(|r| (&*r.doc, r.ts)).collect(),
                })?;
                for r in group.iter() {
                    c.remove_record(&r.doc, r.ts);
                }
                Ok(())
            })
            .unwrap_or(Ok(()))
        },
    )
}

pub fn range(ctx: &Ctx<'_>, r: &Drrng<'_>) -> Result<(), OpError> {
    ctx.write_existing(&r.col, |c| {
        if !c.has_range(&r.doc, r.from_ts, r.to_ts) {
            return Ok(());
        }
        ctx.log(|| WalOp::DeleteRange {
            col: &r.col,
            doc: &r.doc,
            from: r.from_ts,
            to: r.to_ts,
        })?;
        c.remove_range(&r.doc, r.from_ts, r.to_ts);
        Ok(())
    })
    .unwrap_or(Ok(()))
}
