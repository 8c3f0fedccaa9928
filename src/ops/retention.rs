//! `sret` and `gret`, and the retention step every insert ends with.
//!
//! Records that retention drops are logged (`WalOp::Trim`) like any deletion, so recovery
//! replays the drops instead of re-deriving them: the result after a restart is the state
//! before it, whatever order snapshots and log entries are read in.

use super::{Ctx, Log, OpError};
use crate::live::Hub;
use crate::persist::{Journal, WalOp};
use crate::protocol::declare::payload;
use crate::protocol::payload::Col;
use crate::protocol::reply::Reply;
use crate::store::{Collection, Handles, Limits, Policy, Store};

payload! {
    /// The payload of `sret`: a member `None` (absent or `null`) inherits the server default, 0
    /// is unlimited.
    pub struct Sret {
        col: Name,
        max_age: OptCount,
        max_records: OptCount,
    }
}

/// Drops from `docs` the records past the collection's limits, logging the drop first.
pub(super) fn enforce<'d>(
    c: &mut Collection,
    log: &mut Log<'_>,
    col: &str,
    docs: impl IntoIterator<Item = &'d str>,
) -> Result<(), OpError> {
    let cuts = c.cutoffs(docs);
    apply(c, log, col, cuts)
}

/// Drops the records before each cut (from [`Collection::cutoffs`]), logging the drop first.
pub(super) fn apply(
    c: &mut Collection,
    log: &mut Log<'_>,
    col: &str,
    cuts: Vec<(&str, i64)>,
) -> Result<(), OpError> {
    if cuts.is_empty() {
        return Ok(());
    }
    log.append(|| WalOp::Trim {
        col,
        cuts: cuts.clone(),
    })?;
    for (doc, cut) in cuts {
        c.trim(doc, cut);
    }
    Ok(())
}

/// Documents trimmed under one hold of a collection's lock by a sweep.
const SWEEP_CHUNK: usize = 64;

/// Applies a collection's limits to every document it holds, a few documents per hold of its
/// lock, so that a sweep of a large collection never pauses it: requests interleave between
/// chunks (and an insert trims the documents it touches itself).
fn sweep(
    store: &Store,
    handles: &mut Handles,
    log: &mut Log<'_>,
    col: &str,
) -> Result<(), OpError> {
    let Some(names) = store.read(handles, col, |c| {
        if c.limits().is_unlimited() {
            Vec::new()
        } else {
            c.docs.keys().cloned().collect::<Vec<_>>()
        }
    }) else {
        return Ok(());
    };
    for chunk in names.chunks(SWEEP_CHUNK) {
        let trimmed = store.write_existing(handles, col, |c| {
            enforce(c, log, col, chunk.iter().map(String::as_str))
        });
        match trimmed {
            Some(result) => result?,
            // Dropped (`dcol`) between two chunks: nothing is left to trim.
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Applies the limits in force to every collection (start-up: the default may have changed
/// since the data was written).
pub(crate) fn enforce_everywhere(
    store: &Store,
    journal: Option<&Journal>,
    live: &Hub,
) -> Result<(), OpError> {
    let mut handles = Handles::default();
    let mut log = Log::new(journal, live, None);
    for name in store.names() {
        sweep(store, &mut handles, &mut log, &name)?;
    }
    match journal {
        Some(journal) => journal
            .wait(log.lsn())
            .map_err(|e| OpError::Storage(e.to_string())),
        None => Ok(()),
    }
}

/// `sret`: sets or removes the collection's own policy and applies it to the data held.
pub fn set(ctx: &mut Ctx<'_>, s: &Sret<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    let store = ctx.store;
    let col = &*s.col;
    let policy = Policy {
        max_age: s.max_age,
        max_records: s.max_records,
    };
    // A policy outlives its collection: one for a name that holds nothing yet adds to what
    // the store holds. For a collection that exists it is how memory is freed at the limit.
    if !policy.is_empty() && !store.policies().has_own(col) && store.get(col).is_none() {
        store.check_memory().map_err(OpError::MemoryFull)?;
    }
    // Under the collection's lock (created for the moment if it does not exist), so the
    // policy takes effect between two inserts, in the order the log records them.
    // The policy changes before it is logged: a checkpoint that saves the policies between the
    // two then holds it already, and the log entry lands in a segment the checkpoint keeps
    // (logged first, the entry could go with an old segment before the change was saved).
    ctx.write_or_create(col, |c, log| {
        let previous = store.policies().own(col);
        let limits = store.policies().set(col, policy);
        let logged = log.append(|| WalOp::SetRetention {
            col,
            max_age: policy.max_age,
            max_records: policy.max_records,
        });
        if let Err(e) = logged {
            store.policies().set(col, previous.unwrap_or_default());
            return Err(e);
        }
        c.set_limits(limits);
        Ok(())
    })?;
    // The answer leaves once every document is within the new limits.
    sweep(store, ctx.handles, &mut ctx.log, col)
}

/// `gret`: the effective limits of a collection (existing or not).
pub fn get(ctx: &mut Ctx<'_>, c: &Col<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let (limits, default): (Limits, bool) = ctx.store.policies().effective(&c.col);
    let mut r = reply.member("retention").object();
    let number = |v: Option<u64>| v.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    match number(limits.max_age) {
        Some(n) => r.member("max_age").int(n),
        None => r.member("max_age").null(),
    }
    match number(limits.max_records) {
        Some(n) => r.member("max_records").int(n),
        None => r.member("max_records").null(),
    }
    r.member("default").bool(default);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::spec::Payload;

    fn err(data: &str) -> String {
        Sret::decode(data).unwrap_err().to_string()
    }

    #[test]
    fn sret_payload_rules() {
        assert_eq!(
            err(r#"{"col":"c","max_age":-1}"#),
            "invalid payload: max_age must be a non-negative integer"
        );
        assert_eq!(
            err(r#"{"col":"c","max_age":5,"max_records":"x"}"#),
            "invalid payload: max_records must be a non-negative integer"
        );
        assert_eq!(
            Sret::decode(r#"{"col":"c","max_age":"7","max_records":null}"#),
            Ok(Sret {
                col: "c".into(),
                max_age: Some(7),
                max_records: None
            })
        );
    }
}
