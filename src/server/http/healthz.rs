//! `GET /healthz`: 200 `ok` while the process serves HTTP at all (recovery included).

use super::{Ctx, Response};

pub fn get(_: &Ctx<'_>) -> Response {
    Response::text(200, "ok")
}
