//! The answer-size ceiling: an echo server inside this process with the same transport shape as
//! FluxionDB — the upgrade answered with tungstenite's accept key, then one thread per
//! connection reading frames in place from one buffer, every answer queued and written once per
//! read (only when no further complete request is buffered) — that answers every text frame with
//! one fixed [`Reply`]: an answer our server gave once, captured, replayed under each request's
//! id. It parses nothing but the id, so the load generator measured against it shows what the
//! transport allows for answers of exactly that size and content.

use crate::procfs;
use crate::wire::{self, FrameReader, OP_CLOSE, OP_PING, OP_TEXT};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const READY: &[u8] = br#"{"type":"ready","message":"Authentication successful"}"#;
/// How every answer (and every request of this load generator) starts.
const ID_HEAD: &[u8] = b"{\"id\":\"";

/// An answer to replay: everything after the id of the request it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// From the quote that closes the id to the end, e.g. `","records":{…}}`.
    tail: Vec<u8>,
}

impl Reply {
    /// `{"id":"…"}`: FluxionDB's acknowledgement of a write.
    pub fn ack() -> Reply {
        Reply {
            tail: b"\"}".to_vec(),
        }
    }

    /// Takes an answer of our server, `{"id":"<id>"…`, apart. The id must hold no escaped
    /// quote (this load generator's ids are decimal numbers).
    pub fn from_answer(answer: &[u8]) -> Result<Reply, String> {
        let shown = || String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        let rest = answer
            .strip_prefix(ID_HEAD)
            .ok_or_else(|| format!("the answer does not start with an id: {}", shown()))?;
        let close = rest
            .iter()
            .position(|&b| b == b'"')
            .ok_or_else(|| format!("the answer's id is not closed: {}", shown()))?;
        if rest[..close].contains(&b'\\') {
            return Err(format!("the answer's id holds an escape: {}", shown()));
        }
        Ok(Reply {
            tail: rest[close..].to_vec(),
        })
    }

    /// Bytes of the answer to a request whose id has `id_len` bytes.
    pub fn len(&self, id_len: usize) -> usize {
        ID_HEAD.len() + id_len + self.tail.len()
    }

    /// Appends the server frame answering `req` (a request starting with `{"id":"…"`).
    fn push_frame(&self, out: &mut Vec<u8>, req: &[u8]) {
        let id = req
            .strip_prefix(ID_HEAD)
            .and_then(|r| r.iter().position(|&b| b == b'"').map(|i| &r[..i]));
        match id {
            Some(id) => {
                wire::push_header(out, OP_TEXT, self.len(id.len()));
                out.extend_from_slice(ID_HEAD);
                out.extend_from_slice(id);
                out.extend_from_slice(&self.tail);
            }
            None => wire::push_plain(
                out,
                OP_TEXT,
                br#"{"error":"echo: request does not start with an id"}"#,
            ),
        }
    }
}

/// A running echo server; stops accepting when dropped (connections end with their clients).
pub struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Ids of the connection threads, for their CPU figures.
    threads: Arc<Mutex<Vec<u32>>>,
    accept: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Listens on a free loopback port and answers every request with `reply`.
    pub fn start(reply: Reply) -> Result<EchoServer, String> {
        EchoServer::bind("127.0.0.1", 0, reply)
    }

    pub fn bind(host: &str, port: u16, reply: Reply) -> Result<EchoServer, String> {
        let listener =
            TcpListener::bind((host, port)).map_err(|e| format!("binding {host}:{port}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("reading the bound address: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let reply = Arc::new(reply);
        let threads = Arc::new(Mutex::new(Vec::new()));
        let ids = threads.clone();
        let accept = std::thread::Builder::new()
            .name("echo-accept".into())
            .spawn(move || accept_loop(listener, &flag, reply, ids))
            .map_err(|e| format!("starting the echo server: {e}"))?;
        Ok(EchoServer {
            addr,
            stop,
            threads,
            accept: Some(accept),
        })
    }

    /// `HOST:PORT` to connect to.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The ids of its connection threads (registered as each starts).
    pub fn threads(&self) -> Arc<Mutex<Vec<u32>>> {
        self.threads.clone()
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: &AtomicBool,
    reply: Arc<Reply>,
    threads: Arc<Mutex<Vec<u32>>>,
) {
    for sock in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let sock = match sock {
            Ok(s) => s,
            Err(e) => {
                eprintln!("echo: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let reply = reply.clone();
        let threads = threads.clone();
        let spawned = std::thread::Builder::new()
            .name("echo-conn".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                if let Some(id) = procfs::thread_id() {
                    threads.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                }
                if let Err(e) = session(sock, &reply) {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        eprintln!("echo: connection ended: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("echo: cannot start a connection thread: {e}");
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads the upgrade request, answers 101 and the ready frame, and returns bytes read beyond
/// the request.
fn handshake(sock: &mut TcpStream) -> io::Result<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = sock.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 64 * 1024 {
            return Err(invalid("request headers too long"));
        }
    };
    let text = String::from_utf8_lossy(&head[..end]);
    let key = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| v.trim().to_string())
        })
        .ok_or_else(|| invalid("no Sec-WebSocket-Key"))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes();
    wire::push_plain(&mut resp, OP_TEXT, READY);
    sock.write_all(&resp)?;
    sock.set_read_timeout(None)?;
    Ok(head[end..].to_vec())
}

fn session(mut sock: TcpStream, reply: &Reply) -> io::Result<()> {
    sock.set_nodelay(true)?;
    let rest = handshake(&mut sock)?;
    let mut reader = FrameReader::new(256 * 1024);
    reader.preload(&rest);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        while let Some(f) = reader.next_frame()? {
            let p = reader.payload(&f);
            match f.opcode {
                OP_TEXT => reply.push_frame(&mut out, p),
                OP_PING => wire::push_plain(&mut out, wire::OP_PONG, p),
                OP_CLOSE => {
                    wire::push_plain(&mut out, OP_CLOSE, &p[..p.len().min(125)]);
                    sock.write_all(&out)?;
                    return Ok(());
                }
                _ => {}
            }
        }
        // Nothing complete is left in the buffer: write everything queued in one call.
        if !out.is_empty() {
            sock.write_all(&out)?;
            out.clear();
        }
        if reader.fill_from(&mut sock)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_carry_the_id() {
        let mut out = Vec::new();
        Reply::ack().push_frame(&mut out, br#"{"id":"77","type":"ins","data":"[]"}"#);
        let mut r = FrameReader::new(64);
        r.preload(&out);
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(r.payload(&f), br#"{"id":"77"}"#);
    }

    #[test]
    fn answers_that_cannot_be_replayed_are_refused() {
        assert!(Reply::from_answer(br#"{"records":{}}"#).is_err());
        assert!(Reply::from_answer(br#"{"id":"12"#).is_err());
        assert!(Reply::from_answer(br#"{"id":"a\"b","records":{}}"#).is_err());
        assert_eq!(Reply::from_answer(br#"{"id":"5"}"#).unwrap(), Reply::ack());
    }

    /// A captured answer (escaped quotes, non-ASCII text, over 64 KiB so that its frame takes
    /// the 8-byte length) comes back over a real socket, to an independent client
    /// (tungstenite), under each pipelined request's own id — ids of different lengths — and
    /// is otherwise the captured bytes.
    #[test]
    fn a_captured_answer_is_replayed_under_each_id() {
        use tungstenite::Message;
        let mut body = String::from(
            r#"{"id":"1","records":{"doc0":{"ts":7,"data":"{\"seq\":1,\"pad\":\"ü\"}"}"#,
        );
        for i in 1..2000 {
            body.push_str(&format!(r#","doc{i}":{{"ts":7,"data":"{{\"seq\":{i}}}"}}"#));
        }
        body.push_str("}}");
        assert!(body.len() > 65_536);
        let captured = body.into_bytes();
        let echo = EchoServer::start(Reply::from_answer(&captured).unwrap()).unwrap();
        let addr = echo.addr();
        let stream = TcpStream::connect(&addr).unwrap();
        let (mut ws, _) = tungstenite::client(format!("ws://{addr}/?api-key=k"), stream).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Message::text(std::str::from_utf8(READY).unwrap())
        );
        let ids = ["1", "42", "1000000007", "x"];
        for id in ids {
            let req = format!(r#"{{"id":"{id}","type":"qry","data":"{{}}"}}"#);
            ws.write(Message::text(req)).unwrap();
        }
        ws.flush().unwrap();
        for id in ids {
            let mut want = format!("{{\"id\":\"{id}\"").into_bytes();
            want.extend_from_slice(&captured[br#"{"id":"1""#.len()..]);
            match ws.read().unwrap() {
                Message::Text(t) => assert!(t.as_bytes() == want.as_slice(), "id {id}"),
                other => panic!("id {id}: {other:?}"),
            }
        }
        ws.close(None).unwrap();
    }
}
