//! `GET /readyz`: 200 when the server serves its role; 503 with a one-line reason while it
//! recovers its data folder, once its storage stopped taking writes, once it is fenced (another
//! primary holds its backup location: it still serves reads, but refuses every write a primary
//! is sent), while a replica serves a history its location no longer holds (the location was
//! started over, and the replica has not reloaded from it yet), or while it shuts down.

use super::{Ctx, Phase, Response};
use crate::persist::Gate;
use crate::server::Shared;
use std::sync::atomic::Ordering;

pub fn get(ctx: &Ctx<'_>) -> Response {
    match ctx.phase {
        Phase::Recovering => Response::text(503, "recovering"),
        Phase::Serving(shared) => {
            if shared.stopping.load(Ordering::Acquire) {
                Response::text(503, "shutting down")
            } else if shared.journal.is_some() && crate::metrics::storage_is_failed() {
                Response::text(503, "storage unavailable: the write-ahead log failed")
            } else if let Some(reason) = fenced(shared) {
                Response::text(503, &reason)
            } else if let Some(reason) = diverged(shared) {
                Response::text(503, &reason)
            } else {
                Response::text(200, "ready")
            }
        }
    }
}

/// The reason of a fenced server, naming its backup location (a primary's `--backup`, or the
/// `--replica-of` of a promoted replica).
fn fenced(shared: &Shared) -> Option<String> {
    let journal = shared.journal.as_ref()?;
    if journal.gate() != Gate::Fenced {
        return None;
    }
    let config = &shared.config;
    let location = config.backup.as_ref().map(|b| &b.location);
    let location = location.or(config.replica.as_ref().map(|r| &r.location));
    let location = location.map_or(String::new(), |l| format!(" {l}"));
    Some(if crate::metrics::backup::fenced_behind() {
        format!(
            "fenced: the backup location{location} holds a longer history than this data folder"
        )
    } else {
        format!("fenced: the backup location{location} belongs to another primary")
    })
}

/// The reason of a replica whose location was started over with another history, until it has
/// reloaded from it (see `backup::continuity`).
fn diverged(shared: &Shared) -> Option<String> {
    if !crate::metrics::backup::replica_is_diverged() {
        return None;
    }
    Some(match shared.config.replica.as_ref() {
        Some(r) => format!(
            "replica out of date: {} holds another history than this replica's copy; reloading from it",
            r.location
        ),
        None => "replica out of date: its location holds another history; reloading from it"
            .to_owned(),
    })
}
