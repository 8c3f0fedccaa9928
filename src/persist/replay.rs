//! Applies logged mutations to the store during recovery (no logging of its own).

use super::codec::WalOp;
use super::error::Damage;
use crate::store::{Handles, Policy, SeriesError, Store};

/// Applies one log entry; an entry that cannot be applied means damaged data.
pub fn apply(store: &Store, handles: &mut Handles, op: &WalOp<'_>) -> Result<(), Damage> {
    match op {
        WalOp::Insert { col, records } => store.write_or_create(handles, col, |c| {
            records.iter().try_for_each(|(doc, ts, data)| {
                c.insert(doc, *ts, data).map_err(|e| match e {
                    SeriesError::DocumentTooLarge => Damage::DocumentTooLarge {
                        col: col.to_string(),
                        doc: doc.to_string(),
                    },
                })
            })
        })?,
        WalOp::DeleteRecords { col, records } => {
            store.write_existing(handles, col, |c| {
                for (doc, ts) in records {
                    c.remove_record(doc, *ts);
                }
            });
        }
        WalOp::DeleteRange { col, doc, from, to } => {
            store.write_existing(handles, col, |c| c.remove_range(doc, *from, *to));
        }
        WalOp::DeleteDoc { col, doc } => {
            store.write_existing(handles, col, |c| c.remove_doc(doc));
        }
        WalOp::DropCollection { col } => {
            store.drop_collection(col, || Ok::<(), Damage>(()))?;
        }
        WalOp::SetValue { col, key, value } => {
            store.write_or_create(handles, col, |c| c.set_value(key, value))
        }
        WalOp::DeleteValue { col, key } => {
            store.write_existing(handles, col, |c| c.remove_value(key));
        }
        WalOp::SetRetention {
            col,
            max_age,
            max_records,
        } => {
            let policy = Policy {
                max_age: *max_age,
                max_records: *max_records,
            };
            let limits = store.policies().set(col, policy);
            store.write_existing(handles, col, |c| c.set_limits(limits));
        }
        WalOp::Trim { col, cuts } => {
            store.write_existing(handles, col, |c| {
                for (doc, cut) in cuts {
                    c.trim(doc, *cut);
                }
            });
        }
    }
    Ok(())
}
