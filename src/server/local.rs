//! In-process sessions: the dispatcher driven without a socket (tests, the fuzzer, tools).

use super::dispatch::{self, Caller, Verdict};
use super::registry::{Lifecycle, Opening};
use super::Shared;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A session without a socket (see `Server::local_session`). It is a session like any other:
/// listed by `conn`, closed when its key is revoked or the server stops (its requests are then
/// refused with the close code and reason a WebSocket client would get), and its replies are
/// returned only once what they acknowledge is durable.
pub struct LocalSession {
    shared: Arc<Shared>,
    life: Lifecycle,
    caller: Caller,
    closed: Option<(u16, &'static str)>,
    out: Vec<u8>,
}

impl LocalSession {
    pub(super) fn open(
        shared: &Arc<Shared>,
        api_key: &str,
        name: Option<&str>,
    ) -> Option<LocalSession> {
        let key = shared.keys.lookup(api_key)?;
        if shared.stopping.load(Ordering::Acquire) {
            return None;
        }
        let id = shared.registry.next_id();
        let who = Opening {
            id,
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            name: name.map(str::to_owned),
            key: key.clone(),
            since: Instant::now(),
        };
        let life = shared.registry.register(who, None);
        let handle = life.handle();
        let caller = Caller::new(id, key, handle.ip.clone(), handle.name.clone());
        Some(LocalSession {
            shared: shared.clone(),
            life,
            caller,
            closed: None,
            out: Vec::new(),
        })
    }

    /// Serves one request frame and returns the reply text, or the close code and reason the
    /// connection ends with instead (then and for every later request).
    pub fn request(&mut self, text: &str) -> Result<String, (u16, &'static str)> {
        if let Some(close) = self.closed.or(self.life.handle().close_request()) {
            return Err(self.close(close));
        }
        self.out.clear();
        let verdict = dispatch::dispatch(&self.shared, &mut self.caller, text, &mut self.out);
        if let Verdict::Close(code, reason) = verdict {
            return Err(self.close((code, reason)));
        }
        let upto = self.caller.durable_upto;
        if upto > 0 {
            if let Some(journal) = &self.shared.journal {
                if journal.wait(upto).is_err() {
                    // A WebSocket client sees the connection drop without a close frame.
                    return Err(self.close((1006, "storage unavailable")));
                }
            }
            self.caller.durable_upto = 0;
        }
        self.caller.subs.flush(upto);
        Ok(String::from_utf8_lossy(&self.out).into_owned())
    }

    fn close(&mut self, close: (u16, &'static str)) -> (u16, &'static str) {
        self.closed = Some(close);
        self.life.unlist();
        self.life.handle().mark_closed();
        close
    }
}
