//! The per-collection key/value store: `sval`, `gval`, `gvalues`, `gvals`, `rval`, `gkeys`.

use super::{Budget, Ctx, OpError};
use crate::persist::WalOp;
use crate::protocol::encode;
use crate::protocol::pattern::Selector;

pub fn set(ctx: &Ctx<'_>, col: &str, key: &str, value: &str) -> Result<(), OpError> {
    ctx.write_or_create(col, |c| {
        ctx.log(|| WalOp::SetValue { col, key, value })?;
        c.set_value(key, value);
        Ok(())
    })
}

pub fn remove(ctx: &Ctx<'_>, col: &str, key: &str) -> Result<(), OpError> {
    ctx.write_existing(col, |c| {
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
    ctx.read(col, |c| {
        encode::string(out, c.kv.get(key).map_or("", String::as_str))
    })
    .unwrap_or_else(|| encode::string(out, ""));
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
    let selector = key.map(Selector::new);
    ctx.read(col, |c| {
        let kv = c.kv.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        match selector {
            None => encode::string_map(out, kv),
            Some(Selector::Pattern(re)) => {
                encode::string_map(out, kv.filter(|(k, _)| re.is_match(k)))
            }
            Some(Selector::Literal(k)) => {
                encode::string_map(out, [(k, c.kv.get(k).map_or("", String::as_str))]);
            }
        }
    })
    .unwrap_or_else(|| out.extend_from_slice(b"{}"));
    budget.check(out)
}

pub fn keys(ctx: &Ctx<'_>, col: &str, out: &mut Vec<u8>, budget: &Budget) -> Result<(), OpError> {
    encode::member(out, "keys");
    ctx.read(col, |c| {
        encode::string_array(out, c.kv.keys().map(String::as_str))
    })
    .unwrap_or_else(|| out.extend_from_slice(b"[]"));
    budget.check(out)
}
