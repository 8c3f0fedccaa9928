//! `ddoc`, `dcol`, `drec`, `dmrec` and `drrng`. Deleting what does not exist is a no-op.

use super::{by_collection, Ctx};
use crate::protocol::request::{Drrng, RecordRef};

/// `ddoc`: from one collection, or from every collection when `col` is absent or empty.
pub fn document(ctx: &Ctx<'_>, doc: &str, col: Option<&str>) {
    match col {
        Some(col) => {
            ctx.store.write_existing(col, |c| c.remove_doc(doc));
        }
        None => {
            for (name, _) in ctx.store.all() {
                ctx.store.write_existing(&name, |c| c.remove_doc(doc));
            }
        }
    }
}

pub fn collection(ctx: &Ctx<'_>, col: &str) {
    ctx.store.drop_collection(col);
}

/// `drec` and `dmrec`: atomic per collection.
pub fn records(ctx: &Ctx<'_>, refs: &[RecordRef<'_>]) {
    for (col, group) in by_collection(refs, |r| &r.col) {
        ctx.store.write_existing(col, |c| {
            for r in group {
                c.remove_record(&r.doc, r.ts);
            }
        });
    }
}

pub fn range(ctx: &Ctx<'_>, r: &Drrng<'_>) {
    ctx.store
        .write_existing(&r.col, |c| c.remove_range(&r.doc, r.from_ts, r.to_ts));
}
