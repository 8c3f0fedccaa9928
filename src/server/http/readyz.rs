//! `GET /readyz`: 200 when the server serves its role; 503 with a one-line reason while it
//! recovers its data folder, once its storage stopped taking writes, or while it shuts down.

use super::{Ctx, Phase, Response};
use std::sync::atomic::Ordering;

pub fn get(ctx: &Ctx<'_>) -> Response {
    match ctx.phase {
        Phase::Recovering => Response::text(503, "recovering"),
        Phase::Serving(shared) => {
            if shared.stopping.load(Ordering::Acquire) {
                Response::text(503, "shutting down")
            } else if shared.journal.is_some() && crate::metrics::storage_is_failed() {
                Response::text(503, "storage unavailable: the write-ahead log failed")
            } else {
                Response::text(200, "ready")
            }
        }
    }
}
