//! What a subscription selects: a document (a literal name or a `/pattern/flags`) and the
//! `where` / `filter` tests of `qry`, compiled once and kept for the subscription's life.
//! Patterns are recognised and compiled by `protocol::pattern`, so a text means the same here
//! as in a query.
//!
//! Each text is held once (a pattern keeps its text beside its program, to tell equal filters
//! apart), and [`Filter::bytes`] bounds what a filter holds, which `sub` counts against the
//! connection's and the server's limits (see `budget`).

use crate::protocol::pattern::KeptPattern;

/// A text as a filter keeps it: literally, or as a pattern when it is one.
enum Text {
    Literal(Box<str>),
    Pattern(Box<str>, Box<KeptPattern>),
}

impl Text {
    fn new(text: &str) -> Self {
        match KeptPattern::new(text) {
            Some(re) => Text::Pattern(text.into(), Box::new(re)),
            None => Text::Literal(text.into()),
        }
    }

    fn text(&self) -> &str {
        match self {
            Text::Literal(t) | Text::Pattern(t, _) => t,
        }
    }

    /// What it holds at most: its text, and its pattern's program and cache.
    fn bytes(&self) -> usize {
        match self {
            Text::Literal(t) => t.len(),
            Text::Pattern(t, re) => t.len().saturating_add(re.bytes()),
        }
    }

    /// A test on data: a substring, or a pattern search.
    fn found_in(&self, s: &str) -> bool {
        match self {
            Text::Literal(t) => s.contains(&**t),
            Text::Pattern(_, re) => re.is_match(s),
        }
    }
}

/// A document selector plus a record predicate.
#[derive(Default)]
pub struct Filter {
    /// `None`: every document. A literal name must match exactly.
    doc: Option<Text>,
    keep: Option<Text>,
    drop: Option<Text>,
    /// [`Filter::bytes`].
    bytes: usize,
}

impl Filter {
    pub fn new(doc: Option<&str>, where_: Option<&str>, filter: Option<&str>) -> Self {
        match Filter::within(doc, where_, filter, usize::MAX) {
            Ok(f) => f,
            Err(_) => unreachable!("no filter passes usize::MAX bytes"),
        }
    }

    /// [`Filter::new`], given up as soon as what it holds passes `room` bytes: `Err` with the
    /// bytes counted by then (more than `room`). A `sub` past its limits is then refused
    /// without compiling the patterns after the one that passed them (each may take tens of
    /// milliseconds).
    pub fn within(
        doc: Option<&str>,
        where_: Option<&str>,
        filter: Option<&str>,
        room: usize,
    ) -> Result<Self, usize> {
        let mut bytes = std::mem::size_of::<Filter>();
        let mut make = |text: Option<&str>| -> Result<Option<Text>, usize> {
            let Some(text) = text else { return Ok(None) };
            // A text alone past the room needs no compiling to be refused.
            if bytes.saturating_add(text.len()) > room {
                return Err(bytes.saturating_add(text.len()));
            }
            let t = Text::new(text);
            bytes = bytes.saturating_add(t.bytes());
            if bytes > room {
                return Err(bytes);
            }
            Ok(Some(t))
        };
        let (doc, keep, drop) = (make(doc)?, make(where_)?, make(filter)?);
        Ok(Filter {
            doc,
            keep,
            drop,
            bytes,
        })
    }

    /// What it holds at most, in bytes: its texts, and each pattern's program and match cache
    /// (see `KeptPattern::new`).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether it was made from the same texts as `other` (then both select the same records).
    pub fn same_texts(&self, other: &Filter) -> bool {
        fn texts(f: &Filter) -> [Option<&str>; 3] {
            [&f.doc, &f.keep, &f.drop].map(|t| t.as_ref().map(Text::text))
        }
        texts(self) == texts(other)
    }

    /// The one document a literal selector names, if it is one.
    pub fn literal(&self) -> Option<&str> {
        match &self.doc {
            Some(Text::Literal(n)) => Some(n),
            _ => None,
        }
    }

    pub fn doc(&self, name: &str) -> bool {
        match &self.doc {
            None => true,
            Some(Text::Literal(n)) => **n == *name,
            Some(Text::Pattern(_, re)) => re.is_match(name),
        }
    }

    pub fn data(&self, data: &str) -> bool {
        self.keep.as_ref().is_none_or(|t| t.found_in(data))
            && !self.drop.as_ref().is_some_and(|t| t.found_in(data))
    }

    pub fn record(&self, doc: &str, data: &str) -> bool {
        self.doc(doc) && self.data(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::pattern::KEPT_DFA_CACHE_MIN;

    #[test]
    fn literal_pattern_and_predicates() {
        let f = Filter::new(Some("/^dev-\\d$/i"), Some("state:"), Some("/bad/"));
        assert!(f.record("DEV-1", "state:ok"));
        assert!(!f.record("dev-10", "state:ok"));
        assert!(!f.record("dev-1", "temp:1"));
        assert!(!f.record("dev-1", "state:bad"));
        let f = Filter::new(Some("d"), None, None);
        assert_eq!(f.literal(), Some("d"));
        assert!(f.doc("d") && !f.doc("dd"));
    }

    #[test]
    fn equal_texts_make_equal_filters() {
        let f = |d, w, x| Filter::new(d, w, x);
        assert!(f(Some("/a/"), Some("b"), None).same_texts(&f(Some("/a/"), Some("b"), None)));
        assert!(!f(Some("/a/"), Some("b"), None).same_texts(&f(Some("/a/"), None, Some("b"))));
        assert!(!f(Some("a"), None, None).same_texts(&f(None, Some("a"), None)));
        assert!(!f(Some("/a/"), None, None).same_texts(&f(Some("/a/i"), None, None)));
        assert!(f(None, None, None).same_texts(&Filter::default()));
    }

    #[test]
    fn a_filter_counts_each_text_once_and_each_pattern_by_what_it_may_hold() {
        let base = std::mem::size_of::<Filter>();
        assert_eq!(Filter::new(None, None, None).bytes(), base);
        // A literal text is held once (no second copy to compare filters by).
        let long = "x".repeat(1 << 20);
        assert_eq!(
            Filter::new(None, Some(&long), None).bytes(),
            base + (1 << 20)
        );
        assert_eq!(
            Filter::new(Some("d"), Some(&long), Some(&long)).bytes(),
            base + 1 + (2 << 20)
        );
        // A small pattern: its text, its program and cache, and the lazy DFA's allowance.
        let small = Filter::new(Some("/^dev-\\d+$/"), Some("state:"), None).bytes();
        let re = KeptPattern::new("/^dev-\\d+$/").unwrap();
        assert_eq!(
            small,
            base + "/^dev-\\d+$/".len() + re.bytes() + "state:".len()
        );
        assert!(re.bytes() > 2 * KEPT_DFA_CACHE_MIN && re.bytes() < 128 << 10);
        // Short patterns compiling to nearly the size limit (the audit's) cost what they hold.
        let big = Filter::new(
            Some("/q0_1_0\\w{20}/"),
            Some("/q0_1_1\\w{20}/"),
            Some("/q0_1_2\\w{20}/"),
        );
        assert!(big.bytes() > 12 << 20, "{}", big.bytes());
        assert!(big.bytes() < 18 << 20, "{}", big.bytes());
    }
}
