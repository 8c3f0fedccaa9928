//! `keys` (API key management, master only) and `conn` (open connections).

use super::{Ctx, OpError};
use crate::auth::{normalise, RemoveError, Scope};
use crate::protocol::fields::MAX_NAME_BYTES;
use crate::protocol::payload::{Empty, Keys};
use crate::protocol::reply::Reply;

pub fn keys(ctx: &mut Ctx<'_>, k: &Keys<'_>, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let action = k.action.as_deref().map(normalise);
    match action.as_deref() {
        Some("add") => {
            let scope = k
                .scope
                .as_deref()
                .and_then(Scope::parse)
                .ok_or(OpError::Keys("invalid scope"))?;
            let key = k
                .key
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or(OpError::Keys("api key cannot be empty"))?;
            if key.len() > MAX_NAME_BYTES {
                return Err(OpError::Keys(
                    "invalid payload: key must be at most 4096 bytes",
                ));
            }
            // A change that cannot be saved is undone: the answer says it did not happen.
            let _change = ctx.keys.changing();
            let prior = ctx.keys.lookup(key).map(|e| e.scope());
            let effective = ctx.keys.add(key, scope);
            if let Err(e) = ctx.save_keys() {
                ctx.keys.restore_scope(key, prior);
                return Err(e);
            }
            reply.member("status").str("ok");
            reply.member("scope").str(effective.name());
        }
        Some("remove") => {
            let key = k.key.as_deref().unwrap_or("");
            let change = ctx.keys.changing();
            let entry = ctx.keys.remove(key).map_err(|e| match e {
                RemoveError::NotFound => OpError::Keys("api key not found"),
                RemoveError::NotRemovable => OpError::Keys("api key cannot be removed"),
            })?;
            if let Err(e) = ctx.save_keys() {
                ctx.keys.reinstate(entry);
                return Err(e);
            }
            // Closing the key's connections may take a while; other changes need not wait.
            drop(change);
            ctx.sessions.revoke(&entry);
            reply.member("status").str("ok");
        }
        Some("list") => {
            reply.member("status").str("ok");
            let mut list = reply.member("keys").array();
            for (key, scope, deletable) in ctx.keys.list() {
                let mut entry = list.item().object();
                entry.member("key").str(&key);
                entry.member("scope").str(scope.name());
                entry.member("deletable").bool(deletable);
            }
        }
        _ => return Err(OpError::Keys("unknown action")),
    }
    Ok(())
}

/// `conn`.
pub fn connections(ctx: &mut Ctx<'_>, _: &Empty, reply: &mut Reply<'_>) -> Result<(), OpError> {
    let mut list = reply.member("connections").array();
    for c in ctx.sessions.list(ctx.session) {
        let mut entry = list.item().object();
        entry.member("ip").str(&c.ip);
        entry.member("since").int(c.since_ms);
        entry.member("name").opt_str(c.name.as_deref());
        entry.member("self").bool(c.is_self);
    }
    Ok(())
}
