//! The per-collection key/value store: `sval`, `gval`, `gvalues`, `gvals`, `rval`, `gkeys`.

use super::{Ctx, OpError};
use crate::persist::WalOp;
use crate::protocol::pattern::Selector;
use crate::protocol::payload::{Col, ColKey, ColKeys, Sval};
use crate::protocol::reply::Reply;

pub fn set(ctx: &mut Ctx<'_>, s: &Sval<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    ctx.store.check_memory().map_err(OpError::MemoryFull)?;
    let (col, key, value) = (&*s.col, &*s.key, &*s.value);
    ctx.write_or_create(col, |c, log| {
        log.append(|| WalOp::SetValue { col, key, value })?;
        c.set_value(key, value);
        Ok(())
    })
}

/// `rval`.
pub fn remove(ctx: &mut Ctx<'_>, k: &ColKey<'_>, _: &mut Reply<'_>) -> Result<(), OpError> {
    let (col, key) = (&*k.col, &*k.key);
    ctx.write_existing(col, |c, log| {
        if c.kv.contains_key(key) {
            log.append(|| WalOp::DeleteValue { col, key })?;
            c.remove_value(key);
        }
        Ok(())
    })
}

/// `gval`: the value, or `""` when absent.
pub fn get(ctx: &mut Ctx<'_>, k: &ColKey<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let mut value = Some(reply.member("value"));
    ctx.read(&k.col, |c| {
        if let Some(v) = value.take() {
            v.str(c.kv.get(&*k.key).map_or("", String::as_str));
        }
    });
    if let Some(v) = value {
        v.str("");
    }
    Ok(())
}

/// `gvalues`: the values of a key, or of the keys a pattern matches.
pub fn values(ctx: &mut Ctx<'_>, k: &ColKeys<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    write_values(ctx, &k.col, Some(&k.key), reply)
}

/// `gvals`: every value of a collection.
pub fn all_values(ctx: &mut Ctx<'_>, c: &Col<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    write_values(ctx, &c.col, None, reply)
}

fn write_values(
    ctx: &mut Ctx<'_>,
    col: &str,
    key: Option<&str>,
    reply: &mut Reply<'_>,
) -> Result<(), OpError> {
    let selector = key.map(Selector::new);
    let mut values = reply.member("values").object();
    ctx.read(col, |c| match &selector {
        None => {
            for (k, v) in &c.kv {
                values.member(k).str(v);
            }
        }
        Some(Selector::Pattern(re)) => {
            for (k, v) in c.kv.iter().filter(|(k, _)| re.is_match(k)) {
                values.member(k).str(v);
            }
        }
        Some(Selector::Literal(k)) => {
            values
                .member(k)
                .str(c.kv.get(*k).map_or("", String::as_str));
        }
    });
    Ok(values.check()?)
}

/// `gkeys`.
pub fn keys(ctx: &mut Ctx<'_>, c: &Col<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let mut keys = reply.member("keys").array();
    ctx.read(&c.col, |c| {
        for k in c.kv.keys() {
            keys.item().str(k);
        }
    });
    Ok(keys.check()?)
}
