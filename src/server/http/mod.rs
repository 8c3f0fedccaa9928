//! Plain HTTP on the WebSocket port: one answer per connection, then `Connection: close`.
//! GET and HEAD only; an unknown path is 404, another method on a known path 405, a head that
//! does not parse 400.
//!
//! To add an endpoint: one entry in [`ROUTES`] and its own file beside this one.

mod healthz;
mod metrics;
mod readyz;

use super::conn::Conn;
use super::handshake::{BadUpgrade, HttpRequest};
use super::Shared;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

/// How long the answer may take to leave, and unread input is drained before closing.
const LINGER: Duration = Duration::from_secs(1);

/// What state the server is in, as the endpoints see it.
pub enum Phase<'a> {
    /// The data folder is being recovered: nothing but the process exists yet.
    Recovering,
    Serving(&'a Shared),
}

/// What an endpoint is given.
pub struct Ctx<'a> {
    pub phase: Phase<'a>,
    pub peer: IpAddr,
    pub request: &'a HttpRequest,
}

/// One endpoint: a path and what answers a GET (HEAD gets the same head, no body).
struct Route {
    path: &'static str,
    get: fn(&Ctx<'_>) -> Response,
}

const ROUTES: &[Route] = &[
    Route {
        path: "/healthz",
        get: healthz::get,
    },
    Route {
        path: "/readyz",
        get: readyz::get,
    },
    Route {
        path: "/metrics",
        get: metrics::get,
    },
];

/// An answer.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Extra header lines, each ending in CRLF.
    pub headers: String,
}

impl Response {
    /// A plain-text answer: `body` plus a newline.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
            headers: String::new(),
        }
    }

    fn with_header(mut self, line: &str) -> Response {
        self.headers.push_str(line);
        self.headers.push_str("\r\n");
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The answer to `request`.
fn route(ctx: &Ctx<'_>) -> Response {
    let req = ctx.request;
    if req.is_malformed() {
        return Response::text(400, "bad request");
    }
    let Some(route) = ROUTES.iter().find(|r| r.path == req.path) else {
        return Response::text(404, "not found");
    };
    match req.method.as_str() {
        "GET" | "HEAD" => (route.get)(ctx),
        _ => Response::text(405, "method not allowed").with_header("Allow: GET, HEAD"),
    }
}

/// Answers one plain HTTP request and ends the connection.
pub fn answer(conn: Conn, phase: Phase<'_>, peer: IpAddr, request: &HttpRequest) {
    let ctx = Ctx {
        phase,
        peer,
        request,
    };
    let resp = route(&ctx);
    send(conn, peer, request, resp);
}

/// Answers an upgrade request that cannot be taken: 426 (with the version this server
/// speaks) or 400, with its reason.
pub fn bad_upgrade(conn: Conn, peer: IpAddr, bad: &BadUpgrade) {
    let mut resp = Response::text(bad.status, &bad.reason);
    if bad.status == 426 {
        resp = resp.with_header("Sec-WebSocket-Version: 13");
    }
    let request = HttpRequest {
        method: "GET".into(),
        path: "(upgrade)".into(),
        ..HttpRequest::default()
    };
    send(conn, peer, &request, resp);
}

/// Answers 503 with `reason` whatever was asked (the connection limit is reached).
pub fn unavailable(conn: Conn, peer: IpAddr, request: &HttpRequest, reason: &str) {
    send(conn, peer, request, Response::text(503, reason));
}

fn send(mut conn: Conn, peer: IpAddr, request: &HttpRequest, resp: Response) {
    crate::metrics::http_request();
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len(),
        resp.headers
    );
    log::debug!(
        "http {} {:?} from {}: {}",
        request.method,
        request.path,
        peer,
        resp.status
    );
    let out = conn.queue();
    out.extend_from_slice(head.as_bytes());
    if request.method != "HEAD" {
        out.extend_from_slice(resp.body.as_bytes());
    }
    conn.finish(LINGER);
}
