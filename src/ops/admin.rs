//! `keys` (API key management, master only) and `conn` (open connections).

use super::{Ctx, OpError};
use crate::auth::{normalise, RemoveError, Scope};
use crate::protocol::encode;
use crate::protocol::fields::MAX_NAME_BYTES;
use crate::protocol::request::Keys;

pub fn keys(ctx: &Ctx<'_>, k: &Keys<'_>, out: &mut Vec<u8>) -> Result<(), OpError> {
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
            let effective = ctx.keys.add(key, scope);
            ctx.save_keys()?;
            status_ok(out);
            encode::member(out, "scope");
            encode::string(out, effective.name());
        }
        Some("remove") => {
            let key = k.key.as_deref().unwrap_or("");
            let entry = ctx.keys.remove(key).map_err(|e| match e {
                RemoveError::NotFound => OpError::Keys("api key not found"),
                RemoveError::NotRemovable => OpError::Keys("api key cannot be removed"),
            })?;
            ctx.save_keys()?;
            ctx.sessions.revoke(&entry);
            status_ok(out);
        }
        Some("list") => {
            status_ok(out);
            encode::member(out, "keys");
            out.push(b'[');
            for (i, (key, scope, deletable)) in ctx.keys.list().into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"key\":");
                encode::string(out, &key);
                out.extend_from_slice(b",\"scope\":");
                encode::string(out, scope.name());
                out.extend_from_slice(if deletable {
                    b",\"deletable\":true}"
                } else {
                    b",\"deletable\":false}"
                });
            }
            out.push(b']');
        }
        _ => return Err(OpError::Keys("unknown action")),
    }
    Ok(())
}

fn status_ok(out: &mut Vec<u8>) {
    encode::member(out, "status");
    encode::string(out, "ok");
}

pub fn connections(ctx: &Ctx<'_>, out: &mut Vec<u8>) {
    encode::member(out, "connections");
    out.push(b'[');
    for (i, c) in ctx.sessions.list(ctx.session).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"ip\":");
        encode::string(out, &c.ip);
        out.extend_from_slice(b",\"since\":");
        encode::integer(out, c.since_ms);
        out.extend_from_slice(b",\"name\":");
        match &c.name {
            Some(n) => encode::string(out, n),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(if c.is_self {
            b",\"self\":true}"
        } else {
            b",\"self\":false}"
        });
    }
    out.push(b']');
}
