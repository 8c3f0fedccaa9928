//! `ins`, `qry`, `qdoc` and `cols`.

use super::{by_collection, retention, Ctx, OpError};
use crate::live::{Change, Rec};
use crate::persist::WalOp;
use crate::protocol::pattern::{Predicate, Selector};
use crate::protocol::payload::{Empty, NewRecord, Qdoc, Qry};
use crate::protocol::reply::{Object, Reply};
use crate::store::Series;
use std::ops::ControlFlow;

pub fn insert(
    ctx: &mut Ctx<'_>,
    records: &[NewRecord<'_>],
    _reply: &mut Reply<'_>,
) -> Result<(), OpError> {
    ctx.store.check_memory().map_err(OpError::MemoryFull)?;
    by_collection(
        records,
        |r| &r.col,
        |col, group| {
            ctx.write_or_create(col, |c, log| {
                if !c.can_insert(group.iter().map(|r| (&*r.doc, &*r.data))) {
                    return Err(OpError::DocumentTooLarge);
                }
                log.append(|| WalOp::Insert {
                    col,
                    records: group.iter().map(|r| (&*r.doc, r.ts, &*r.data)).collect(),
                })?;
                let mut applied = 0;
                let result = group.iter().try_for_each(|r| {
                    applied += 1;
                    c.insert(&r.doc, r.ts, &r.data)
                        .map_err(|_| OpError::DocumentTooLarge)
                });
                log.publish(col, || {
                    Change::Insert(
                        group
                            .iter()
                            .take(applied - usize::from(result.is_err()))
                            .map(|r| Rec {
                                doc: r.doc.to_string(),
                                ts: r.ts,
                                data: r.data.to_string(),
                            })
                            .collect(),
                    )
                });
                result?;
                retention::enforce(c, log, col, group.iter().map(|r| &*r.doc))
            })
        },
    )
}

pub fn collections(ctx: &mut Ctx<'_>, _: &Empty, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let names = ctx.store.names();
    reply
        .member("collections")
        .strings(names.iter().map(String::as_str));
    Ok(())
}

/// `qry`: the newest record at or before `ts` of each selected document.
pub fn latest(ctx: &mut Ctx<'_>, q: &Qry<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let selector = q.doc.as_deref().map(Selector::new);
    let predicate = Predicate::new(q.where_.as_deref(), q.filter.as_deref());
    let mut records = reply.member("records").object();
    let emit = |records: &mut Object<'_>, name: &str, series: &Series| -> Result<(), OpError> {
        let Some(i) = series.latest_at(q.ts) else {
            return Ok(());
        };
        let (ts, data) = series.get(i);
        if ts < q.from || !predicate.accepts(data) {
            return Ok(());
        }
        records
            .member(name)
            .record(ts, data, series.data_is_plain());
        Ok(records.check()?)
    };
    ctx.read_existing(&q.col, |c| match &selector {
        None => c
            .docs
            .iter()
            .try_for_each(|(name, series)| emit(&mut records, name, series)),
        Some(Selector::Literal(name)) => match c.docs.get(*name) {
            Some(series) => emit(&mut records, name, series),
            None => Ok(()),
        },
        Some(Selector::Pattern(re)) => c
            .docs
            .iter()
            .filter(|(n, _)| re.is_match(n))
            .try_for_each(|(name, series)| emit(&mut records, name, series)),
    })
}

/// `qdoc`: one document's records in `[from, to]`, filtered, limited, in either order.
pub fn document(ctx: &mut Ctx<'_>, q: &Qdoc<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let predicate = Predicate::new(q.where_.as_deref(), q.filter.as_deref());
    let limit = if q.limit > 0 {
        usize::try_from(q.limit).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let mut records = reply.member("records").array();
    ctx.read_existing(&q.col, |c| {
        let Some(series) = c.docs.get(&*q.doc) else {
            return Ok(());
        };
        let plain = series.data_is_plain();
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
            records.item().record(ts, data, plain);
            kept += 1;
            if kept % 256 == 0 {
                if let Err(e) = records.check() {
                    result = Err(e.into());
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        result
    })
}
