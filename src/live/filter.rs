//! What a subscription selects: a document (a literal name or a `/pattern/flags`) and the
//! `where` / `filter` tests of `qry`, compiled once and kept for the subscription's life.
//! Patterns are recognised and compiled by `protocol::pattern`, so a text means the same here
//! as in a query.

use crate::protocol::pattern::compile;
use regex::Regex;

/// A text test: a substring, or a pattern when the text is one.
enum Test {
    Substring(String),
    Pattern(Regex),
}

impl Test {
    fn new(text: &str) -> Self {
        match compile(text) {
            Some(re) => Test::Pattern(re),
            None => Test::Substring(text.to_owned()),
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Test::Substring(t) => s.contains(t.as_str()),
            Test::Pattern(re) => re.is_match(s),
        }
    }
}

/// A document selector plus a record predicate.
#[derive(Default)]
pub struct Filter {
    /// `None`: every document. A literal name must match exactly.
    doc: Option<Doc>,
    keep: Option<Test>,
    drop: Option<Test>,
    /// The texts it was made from: subscriptions with equal specs select the same records.
    spec: String,
}

enum Doc {
    Name(String),
    Pattern(Regex),
}

impl Filter {
    pub fn new(doc: Option<&str>, where_: Option<&str>, filter: Option<&str>) -> Self {
        Filter {
            doc: doc.map(|d| match compile(d) {
                Some(re) => Doc::Pattern(re),
                None => Doc::Name(d.to_owned()),
            }),
            keep: where_.map(Test::new),
            drop: filter.map(Test::new),
            spec: format!("{:?}", (doc, where_, filter)),
        }
    }

    /// The texts it was made from (equal specs: equal selections).
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The one document a literal selector names, if it is one.
    pub fn literal(&self) -> Option<&str> {
        match &self.doc {
            Some(Doc::Name(n)) => Some(n),
            _ => None,
        }
    }

    pub fn doc(&self, name: &str) -> bool {
        match &self.doc {
            None => true,
            Some(Doc::Name(n)) => n == name,
            Some(Doc::Pattern(re)) => re.is_match(name),
        }
    }

    pub fn data(&self, data: &str) -> bool {
        self.keep.as_ref().is_none_or(|t| t.matches(data))
            && !self.drop.as_ref().is_some_and(|t| t.matches(data))
    }

    pub fn record(&self, doc: &str, data: &str) -> bool {
        self.doc(doc) && self.data(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
