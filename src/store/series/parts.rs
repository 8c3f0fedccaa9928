//! A series as plain columns and back: what snapshots and the model tests exchange.

use super::Series;
use std::ops::ControlFlow;

impl Series {
    /// The series as columns: timestamps, data lengths and the data concatenated in order.
    pub fn to_parts(&self) -> (Vec<i64>, Vec<u32>, String) {
        let mut data = String::with_capacity(self.data_bytes());
        let mut ts = Vec::with_capacity(self.len());
        let mut lens = Vec::with_capacity(self.len());
        let mut scratch = String::new();
        self.scan(0..self.len(), false, |t, d| {
            let text = d.text_in(&mut scratch);
            data.push_str(text);
            ts.push(t);
            lens.push(text.len() as u32);
            ControlFlow::Continue(())
        });
        (ts, lens, data)
    }

    /// Rebuilds a series from [`Series::to_parts`] output, checking that it is consistent.
    pub fn from_parts(ts: Vec<i64>, lens: Vec<u32>, data: String) -> Result<Series, String> {
        if ts.len() != lens.len() {
            return Err("timestamp and length columns differ in size".into());
        }
        if ts.windows(2).any(|w| w[0] >= w[1]) {
            return Err("timestamps are not strictly increasing".into());
        }
        if data.len() > u32::MAX as usize {
            return Err("document data exceeds 4 GiB".into());
        }
        let mut start = 0usize;
        let mut spans = Vec::with_capacity(lens.len());
        for len in lens {
            let end = start + len as usize;
            if end > data.len() || !data.is_char_boundary(end) {
                return Err("data lengths do not match the data".into());
            }
            spans.push(start..end);
            start = end;
        }
        if start != data.len() {
            return Err("data lengths do not match the data".into());
        }
        let mut s = Series::default();
        for (t, span) in ts.into_iter().zip(spans) {
            s.insert(t, &data[span])
                .map_err(|_| "document data exceeds 4 GiB".to_string())?;
        }
        Ok(s)
    }
}
