//! One applied write to a collection, as subscribers see it. Key/value changes and retention
//! drops are not changes here: they are never pushed.

/// One inserted record.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub doc: String,
    pub ts: i64,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `ins`: the batch's records of this collection, in applied order.
    Insert(Vec<Rec>),
    /// `drec`.
    DeleteRecord { doc: String, ts: i64 },
    /// `dmrec`: per document (in order of first appearance), the timestamps that existed.
    DeleteRecords(Vec<(String, Vec<i64>)>),
    /// `drrng`.
    DeleteRange { doc: String, from: i64, to: i64 },
    /// `ddoc`.
    DeleteDoc(String),
    /// `dcol`.
    DropCollection,
}

impl Change {
    /// Roughly the memory it holds, for bounding the history.
    pub fn bytes(&self) -> usize {
        64 + match self {
            Change::Insert(recs) => recs
                .iter()
                .map(|r| 48 + r.doc.capacity() + r.data.capacity())
                .sum(),
            Change::DeleteRecord { doc, .. } | Change::DeleteRange { doc, .. } => doc.len(),
            Change::DeleteRecords(docs) => {
                docs.iter().map(|(d, ts)| 32 + d.len() + 8 * ts.len()).sum()
            }
            Change::DeleteDoc(doc) => doc.len(),
            Change::DropCollection => 0,
        }
    }
}
