//! A WebSocket client of the server under test, with raw-frame helpers.

use super::*;

/// `application/x-www-form-urlencoded` encoding of one value (space → `+`).
pub fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One frame read from the server, or what happened instead.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// A close frame: `None` when it carried no status code.
    Close(Option<(u16, String)>),
    /// The connection ended without a close frame (or was already closed).
    Dropped(String),
    /// Nothing arrived within the read timeout.
    Timeout,
}

impl Frame {
    pub fn describe(&self) -> String {
        match self {
            Frame::Text(t) => format!("text frame {}", truncate(t, 400)),
            Frame::Binary(b) => format!("binary frame of {} bytes", b.len()),
            Frame::Close(Some((c, r))) => format!("close {c} {r:?}"),
            Frame::Close(None) => "close frame without status code".to_string(),
            Frame::Dropped(e) => format!("connection dropped without close frame ({e})"),
            Frame::Timeout => format!("no frame within {READ_TIMEOUT:?}"),
        }
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// A WebSocket client connection to the test server.
pub struct Client {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    closed: bool,
}

impl Client {
    /// TCP connect to 127.0.0.1:port and perform the WebSocket handshake. Does not read any frame.
    pub fn connect(port: u16, path_and_query: &str) -> Result<Client, String> {
        let stream =
            TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("tcp connect: {e}"))?;
        stream.set_nodelay(true).ok();
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let url = format!("ws://127.0.0.1:{port}{path_and_query}");
        // The client must never be the limiting side: no frame or message size limits.
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_frame_size(None)
            .max_message_size(None);
        match tungstenite::client::client_with_config(url.as_str(), stream, Some(config)) {
            Ok((ws, _response)) => Ok(Client {
                ws,
                next_id: 0,
                closed: false,
            }),
            Err(tungstenite::HandshakeError::Interrupted(_)) => {
                Err(format!("handshake to {url} timed out"))
            }
            Err(tungstenite::HandshakeError::Failure(e)) => {
                Err(format!("handshake to {url} failed: {e}"))
            }
        }
    }

    /// Connects with `?api-key=<key>[&name=<name>]` (form encoded) and asserts the `ready` frame.
    pub fn open(port: u16, key: &str, name: Option<&str>) -> Client {
        let mut q = format!("/?api-key={}", form_encode(key));
        if let Some(n) = name {
            q.push_str("&name=");
            q.push_str(&form_encode(n));
        }
        Client::open_path(port, &q)
    }

    /// Connects with a raw path and query and asserts the `ready` frame.
    pub fn open_path(port: u16, path_and_query: &str) -> Client {
        let mut c = Client::connect(port, path_and_query).unwrap_or_else(|e| panic!("{e}"));
        c.expect_ready();
        c
    }

    /// Reads the next frame and asserts it is exactly the `ready` frame.
    pub fn expect_ready(&mut self) {
        let v = self.recv_json();
        assert_eq!(
            v,
            json!({"type":"ready","message":"Authentication successful"}),
            "first frame must be the ready frame"
        );
    }

    /// Connects and expects the server to close the connection before any frame: returns
    /// (code, reason).
    pub fn open_expect_close(port: u16, path_and_query: &str) -> (u16, String) {
        let mut c = Client::connect(port, path_and_query).unwrap_or_else(|e| panic!("{e}"));
        c.recv_close()
    }

    pub fn stream(&self) -> &TcpStream {
        self.ws.get_ref()
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.ws.get_ref().set_read_timeout(Some(t)).unwrap();
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .unwrap_or_else(|e| panic!("send failed: {e}"));
    }

    pub fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        self.ws
            .send(Message::text(text.to_string()))
            .map_err(|e| e.to_string())
    }

    pub fn send_message(&mut self, m: Message) {
        self.ws
            .send(m)
            .unwrap_or_else(|e| panic!("send failed: {e}"));
    }

    /// Writes one raw frame (client-masked with a zero key, so the payload is unchanged) straight
    /// to the socket, bypassing tungstenite's checks: lets a test send invalid UTF-8 in a text
    /// frame, fragments, or oversize messages. `opcode`: 0 continuation, 1 text, 2 binary, 9 ping.
    pub fn send_raw_frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) -> std::io::Result<()> {
        let header = raw_frame_header(opcode, fin, payload.len() as u64);
        let s = self.ws.get_mut();
        s.write_all(&header)?;
        s.write_all(payload)?;
        s.flush()
    }

    /// Sends a text frame of `length` bytes of `fill` from a helper thread (errors ignored: the
    /// server may stop reading and close), so that the caller can read the server's reaction
    /// while the write is still in progress.
    pub fn send_big_text_frame(&mut self, fill: u8, length: usize) -> thread::JoinHandle<()> {
        let mut s = self.ws.get_ref().try_clone().expect("clone stream");
        thread::spawn(move || {
            let header = raw_frame_header(1, true, length as u64);
            if s.write_all(&header).is_err() {
                return;
            }
            let chunk = vec![fill; 64 * 1024];
            let mut left = length;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
            let _ = s.flush();
        })
    }

    /// Sends one text frame of `length` bytes and returns the server's reaction (the next
    /// frame), then hangs up: for messages over the size limit, which the server refuses
    /// (close 1009) without reading them whole.
    pub fn send_oversize(&mut self, length: usize) -> Frame {
        let writer = self.send_big_text_frame(b'x', length);
        let got = self.next_frame();
        let _ = self.stream().shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        got
    }

    /// The next message exactly as tungstenite returns it (pings and pongs included).
    pub fn read_raw(&mut self) -> tungstenite::Result<Message> {
        self.ws.read()
    }

    /// Reads the next data or close frame (pings and pongs are skipped; pings are answered by
    /// tungstenite).
    pub fn next_frame(&mut self) -> Frame {
        if self.closed {
            return Frame::Dropped("connection already closed".into());
        }
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Frame::Text(t.to_string()),
                Ok(Message::Binary(b)) => return Frame::Binary(b.to_vec()),
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => continue,
                Ok(Message::Close(cf)) => return self.closed_by_server(cf),
                Err(e) => return self.read_failed(e),
            }
        }
    }

    /// The server's close frame arrived: the connection is over once tungstenite has sent its
    /// close reply (a failure to send it is ignored).
    fn closed_by_server(&mut self, cf: Option<CloseFrame>) -> Frame {
        self.closed = true;
        let _ = self.ws.flush();
        Frame::Close(cf.map(|f| (u16::from(f.code), f.reason.to_string())))
    }

    /// A read that brought no message: a timeout leaves the connection open, anything else ends
    /// it.
    fn read_failed(&mut self, e: tungstenite::Error) -> Frame {
        match e {
            tungstenite::Error::Io(e) if timed_out(&e) => Frame::Timeout,
            e => {
                self.closed = true;
                Frame::Dropped(e.to_string())
            }
        }
    }

    /// Reads the next frame, which must be a text frame holding JSON.
    pub fn recv_json(&mut self) -> Value {
        match self.next_frame() {
            Frame::Text(t) => serde_json::from_str(&t).unwrap_or_else(|e| {
                panic!("server sent a text frame that is not JSON ({e}): {t:?}")
            }),
            other => panic!("expected a JSON text frame, got {}", other.describe()),
        }
    }

    /// Reads the next frame, which must be a close frame with a status code.
    pub fn recv_close(&mut self) -> (u16, String) {
        match self.next_frame() {
            Frame::Close(Some(cr)) => cr,
            other => panic!("expected a close frame, got {}", other.describe()),
        }
    }

    /// Sends `{"id":id,"type":ty,"data":<payload as JSON text>}` and returns the answer's text
    /// exactly as it arrived (for comparing answers byte for byte).
    pub fn answer_text(&mut self, id: &str, ty: &str, payload: &Value) -> String {
        let frame = json!({"id": id, "type": ty, "data": payload.to_string()}).to_string();
        self.send_text(&frame);
        match self.next_frame() {
            Frame::Text(t) => t,
            other => panic!(
                "{ty} {payload}: expected an answer, got {}",
                other.describe()
            ),
        }
    }

    /// Sends `{"id":id,"type":ty,"data":data}` and returns the next frame as JSON, asserting that
    /// it echoes `id`.
    pub fn request(&mut self, id: &str, ty: &str, data: &str) -> Value {
        let frame = json!({"id": id, "type": ty, "data": data}).to_string();
        self.send_text(&frame);
        let v = self.recv_json();
        assert_eq!(
            v.get("id"),
            Some(&json!(id)),
            "response does not echo id {id:?}: {v} (request {frame})"
        );
        v
    }

    /// Sends a request with an automatic id and `data` = the JSON text of `payload` (or `payload`
    /// itself when it is a JSON string). Returns the response with the `id` member removed.
    pub fn call(&mut self, ty: &str, payload: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let data = match payload {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let mut v = self.request(&id, ty, &data);
        v.as_object_mut().unwrap().remove("id");
        v
    }

    /// `call`, asserting success (no `error` member); returns the response without `id`.
    pub fn ok(&mut self, ty: &str, payload: Value) -> Value {
        let shown = payload.to_string();
        let v = self.call(ty, payload);
        assert!(v.get("error").is_none(), "{ty} {shown} failed: {v}");
        v
    }

    /// `call`, asserting an error response with exactly the members `id` and `error`; returns the
    /// error text.
    pub fn err(&mut self, ty: &str, payload: Value) -> String {
        let shown = payload.to_string();
        let v = self.call(ty, payload);
        let obj = v.as_object().unwrap();
        match (obj.len(), obj.get("error")) {
            (1, Some(Value::String(e))) => e.clone(),
            _ => panic!("{ty} {shown}: expected an error response, got {v}"),
        }
    }

    /// Initiates a close (1000) and waits (bounded) for the server's close frame.
    pub fn close(&mut self) -> Frame {
        if self.closed {
            return Frame::Dropped("connection already closed".into());
        }
        let _ = self.ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.ws.flush();
        loop {
            match self.ws.read() {
                Ok(Message::Close(cf)) => return self.closed_by_server(cf),
                // Responses still in flight may arrive before the close reply; skip them.
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed) => {
                    self.closed = true;
                    return Frame::Close(None);
                }
                Err(e) => return self.read_failed(e),
            }
        }
    }
}

/// Whether a read failed only because nothing came within the socket's read timeout.
pub fn timed_out(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Header of a client frame with a zero masking key.
pub fn raw_frame_header(opcode: u8, fin: bool, len: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    h.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    if len < 126 {
        h.push(0x80 | len as u8);
    } else if len <= u16::MAX as u64 {
        h.push(0x80 | 126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(0x80 | 127);
        h.extend_from_slice(&len.to_be_bytes());
    }
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}
