//! Subscriptions' pushes into the push seam: a [`Sink`] per session.

use super::frames::{write_header, OP_TEXT};
use super::registry::{PushError, SessionHandle};
use crate::live::{Sink, SinkError};
use std::sync::Arc;

pub(crate) struct SessionSink(pub Arc<SessionHandle>);

impl Sink for SessionSink {
    fn header(&self, out: &mut Vec<u8>, len: usize) {
        write_header(out, OP_TEXT, len);
    }

    fn push(&self, pieces: &[&[u8]], limit: usize) -> Result<(), SinkError> {
        self.0.push_pieces(pieces, limit).map_err(|e| match e {
            PushError::Full => SinkError::Full,
            PushError::Closed => SinkError::Closed,
        })
    }

    fn push_last(&self, text: &[u8]) {
        let mut frame = Vec::with_capacity(text.len() + 10);
        self.header(&mut frame, text.len());
        frame.extend_from_slice(text);
        let _ = self.0.push(&frame, usize::MAX);
    }
}
