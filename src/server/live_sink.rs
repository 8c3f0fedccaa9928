//! Subscriptions' pushes into the push seam: a [`Sink`] per session.

use super::frames::{write_header, OP_TEXT};
use super::registry::{PushError, SessionHandle};
use crate::live::{Sink, SinkError};
use std::sync::Arc;

pub(crate) struct SessionSink(pub Arc<SessionHandle>);

fn frame(text: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(text.len() + 10);
    write_header(&mut frame, OP_TEXT, text.len());
    frame.extend_from_slice(text);
    frame
}

impl Sink for SessionSink {
    fn push(&self, text: &[u8], limit: usize) -> Result<(), SinkError> {
        self.0.push(&frame(text), limit).map_err(|e| match e {
            PushError::Full => SinkError::Full,
            PushError::Closed => SinkError::Closed,
        })
    }

    fn push_last(&self, text: &[u8]) {
        let _ = self.0.push(&frame(text), usize::MAX);
    }
}
