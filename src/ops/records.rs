//! `ins`, `qry`, `qdoc` and `cols`.

use super::{by_collection, Budget, Ctx, OpError};
use crate::persist::WalOp;
use crate::protocol::encode;
use crate::protocol::pattern::{Predicate, Selector};
use crate::protocol::request::{NewRecord, Qdoc, Qry};
use crate::store::Series;
use std::ops::ControlFlow;

pub fn insert(ctx: &Ctx<'_>, records: &[NewRecord<'_>]) -> Result<(), OpError> {
    by_collection(
        records,
        |r| &r.col,
        |col, group| {
            ctx.write_or_create(col, |c| {
                if !c.can_insert(group.iter().map(|r| (&*r.doc, &*r.data))) {
                    return Err(OpError::DocumentTooLarge);
                }
                ctx.log(|| WalOp::Insert {
                    col,
                    records: group.iter().map(|r| (&*r.doc, r.ts, &*r.data)).collect(),
                })?;
                for r in group.iter() {
                    c.insert(&r.doc, r.ts, &r.data)
                        .map_err(|_| OpError::DocumentTooLarge)?;
                }
                Ok(())
            })
        },
    )
}

pub fn collections(ctx: &Ctx<'_>, out: &mut Vec<u8>) {
    encode::member(out, "collections");
    let names = ctx.store.names();
    encode::string_array(out, names.iter().map(String::as_str));
}

/// `qry`: the newest record at or before `ts` of each selected document.
pub fn latest(
    ctx: &Ctx<'_>,
    q: &Qry<'_>,
    out: &mut Vec<u8>,
    budget: &Budget,
) -> Result<(), OpError> {
    let selector = q.doc.as_deref().map(Selector::new);
    let predicate = Predicate::new(q.where_.as_deref(), q.filter.as_deref());
    encode::member(out, "records");
    out.push(b'{');
    ctx.read(&q.col, |c| {
        let mut first = true;
        let mut emit = |name: &str, series: &Series, out: &mut Vec<u8>| -> Result<(), OpError> {
            let Some(i) = series.latest_at(q.ts) else {
                return Ok(());
            };
            let (ts, data) = series.get(i);
            if ts < q.from || !predicate.accepts(data) {
                return Ok(());
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            encode::string(out, name);
            out.push(b':');
            write_record(out, series, ts, data);
            budget.check(out)
        };
        match &selector {
            None => {
                for (name, series) in &c.docs {
                    emit(name, series, out)?;
                }
            }
            Some(Selector::Literal(name)) => {
                if let Some(series) = c.docs.get(*name) {
                    emit(name, series, out)?;
                }
            }
            Some(Selector::Pattern(re)) => {
                for (name, series) in c.docs.iter().filter(|(n, _)| re.is_match(n)) {
                    emit(name, series, out)?;
                }
            }
        }
        Ok(())
    })
    .unwrap_or(Ok(()))?;
    out.push(b'}');
    Ok(())
}

/// `qdoc`: one document's records in `[from, to]`, filtered, limited, in either order.
pub fn document(
    ctx: &Ctx<'_>,
    q: &Qdoc<'_>,
    out: &mut Vec<u8>,
    budget: &Budget,
) -> Result<(), OpError> {
    let predicate = Predicate::new(q.where_.as_deref(), q.filter.as_deref());
    let limit = if q.limit > 0 {
        usize::try_from(q.limit).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    encode::member(out, "records");
    out.push(b'[');
    ctx.read(&q.col, |c| {
        if let Some(series) = c.docs.get(&*q.doc) {
            let range = series.range(q.from, q.to);
            let mut kept = 0;
            let mut result = Ok(());
            // Sealed blocks are decoded once each by the scan.
            series.scan(range, q.reverse, |ts, data| {
                if kept == limit {
                    return ControlFlow::Break(());
                }
                if !predicate.accepts(data) {
                    return ControlFlow::Continue(());
                }
                if kept > 0 {
                    out.push(b',');
                }
                write_record(out, series, ts, data);
                kept += 1;
                if kept % 256 == 0 {
                    if let Err(e) = budget.check(out) {
                        result = Err(e);
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            });
            return result;
        }
        Ok(())
    })
    .unwrap_or(Ok(()))?;
    out.push(b']');
    Ok(())
}

/// One `{ts, data}` record of `series`, copying the data verbatim when the series knows it
/// needs no escaping.
fn write_record(out: &mut Vec<u8>, series: &Series, ts: i64, data: &str) {
    if series.data_is_plain() {
        encode::plain_record(out, ts, data);
    } else {
        encode::record(out, ts, data);
    }
}
