//! Subscriptions' pushes into the push seam: a [`Sink`] per session.

use super::frames::{write_header, OP_TEXT};
use super::registry::{PushError, SessionHandle};
use crate::live::{Sink, SinkError};
use std::sync::Arc;

pub(crate) struct SessionSink(pub Arc<SessionHandle>);

/// The texts as text frames, back to back.
fn frames<'t>(texts: impl Iterator<Item = &'t [u8]> + Clone) -> Vec<u8> {
    let size = texts.clone().map(|t| t.len() + 10).sum();
    let mut out = Vec::with_capacity(size);
    for text in texts {
        write_header(&mut out, OP_TEXT, text.len());
        out.extend_from_slice(text);
    }
    out
}

impl Sink for SessionSink {
    fn push(&self, texts: &[Vec<u8>], limit: usize) -> Result<(), SinkError> {
        let bytes = frames(texts.iter().map(Vec::as_slice));
        self.0.push(&bytes, limit).map_err(|e| match e {
            PushError::Full => SinkError::Full,
            PushError::Closed => SinkError::Closed,
        })
    }

    fn push_last(&self, text: &[u8]) {
        let _ = self.0.push(&frames(std::iter::once(text)), usize::MAX);
    }
}
