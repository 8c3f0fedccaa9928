//! `GET /metrics`: the Prometheus text exposition. Needs a valid API key of any scope
//! (`Authorization: Bearer KEY` or `?api-key=KEY`) unless the server runs with
//! `--metrics-public`; unknown keys are slowed down like unknown keys on the WebSocket.

use super::{Ctx, Phase, Response};
use crate::metrics::{render, Gauges};
use crate::server::handshake::parse_query;
use std::time::Instant;

/// The key the request presents: the `Authorization: Bearer` header, else `?api-key=`.
fn presented_key(ctx: &Ctx<'_>) -> Option<String> {
    let req = ctx.request;
    let bearer = req.authorization.as_deref().and_then(|v| {
        let (scheme, key) = v.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| key.trim().to_owned())
    });
    bearer
        .filter(|k| !k.is_empty())
        .or_else(|| parse_query(req.query.as_deref()).api_key)
}

fn unauthorized(text: &str) -> Response {
    let mut r = Response::text(401, text);
    r.headers.push_str("WWW-Authenticate: Bearer\r\n");
    r
}

pub fn get(ctx: &Ctx<'_>) -> Response {
    let Phase::Serving(shared) = ctx.phase else {
        return Response::text(503, "recovering");
    };
    if !shared.config.metrics_public {
        match presented_key(ctx) {
            None => return unauthorized("missing API key"),
            Some(key) if shared.keys.lookup(&key).is_none() => {
                let wait = shared.throttle.failed(ctx.peer, Instant::now());
                if !wait.is_zero() {
                    shared.stop.sleep(wait);
                }
                return unauthorized("unknown API key");
            }
            Some(_) => {}
        }
    }
    let st = shared.store.stats();
    let gauges = Gauges {
        open_connections: shared.registry.len(),
        collections: st.collections,
        documents: st.documents,
        records: st.records,
        store_bytes: st.bytes,
        persistent: shared.journal.is_some(),
        answer_cache_bytes: shared.answers.bytes(),
        subscription_filter_bytes: shared.live.filters().bytes(),
    };
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: render(&gauges),
        headers: String::new(),
    }
}
