//! The per-collection key/value store: `sval`, `gval`, `gvalues`, `gvals`, `rval`, `gkeys`.

use super::{Budget, Ctx, OpError};
use crate::persist::WalOp;
use crate::protocol::encode;
use crate::protocol::pattern::Selector;

pub fn set(ctx: &Ctx<'_>, col: &str, key: &str, value: &str) -> Result<(), OpError> {
    ctx.store.write_or_create(col, |c| {
        ctx.log(|| WalOp::SetValue { col, key, value })?;
        c.set_value(key, value);
        Ok(())
    })
}

pub fn remove(ctx: &Ctx<'_>, col: &str, key: &str) -> Result<(), OpError> {
    ctx.store
        .write_existing(col, |c| {
            if c.kv.contains_key(key) {
                ctx.log(|| WalOp::DeleteValue { col, key })?;
                c.remove_value(key);
            }
            Ok(())
        })
        .unwrap_or(Ok(()))
}

/// `gval`: the value, or `""` when absent.
pub fn get(ctx: &Ctx<'_>, col: &str, key: &str, out: &mut Vec<u8>) {
    encode::member(out, "value");
    match ctx.store.get(col) {
        Some(handle) => encode::string(out, handle.read().kv.get(key).map_or("", String::as_str)),
        None => encode::string(out, ""),
    }
}

/// `gvalues` (with a key or pattern) and `gvals` (without).
pub fn values(
    ctx: &Ctx<'_>,
    col: &str,
    key: Option<&str>,
    out: &mut Vec<u8>,
    budget: &Budget,
) -> Result<(), OpError> {
    encode::member(out, "values");
    let Some(handle) = ctx.store.get(col) else {
        out.extend_from_slice(b"{}");
        return Ok(());
    };
    let selector = key.map(Selector::new);
    let c = handle.read();
    let kv = c.kv.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    match selector {
        None => encode::string_map(out, kv),
        Some(Selector::Pattern(re)) => encode::string_map(out, kv.filter(|(k, _)| re.is_match(k))),
        Some(Selector::Literal(k)) => {
            encode::string_map(out, [(k, c.kv.get(k).map_or("", String::as_str))]);
        }
    }
    budget.check(out)
}

pub fn keys(ctx: &Ctx<'_>, col: &str, out: &mut Vec<u8>, budget: &Budget) -> Result<(), OpError> {
    encode::member(out, "keys");
    match ctx.store.get(col) {
        Some(handle) => encode::string_array(out, handle.read().kv.keys().map(String::as_str)),
        None => out.extend_from_slice(b"[]"),
    }
    budget.check(out)
}
