//! `/pattern/flags` recognition and matching (docs/protocol.md#patternflags) and the
//! `where`/`filter` predicates built on it (§6).

use regex::{Regex, RegexBuilder};

/// The longest pattern source compiled; a longer one is taken literally.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// Compiled-size limit per pattern; a pattern over it is taken literally.
pub const MAX_COMPILED_BYTES: usize = 1 << 20;

/// Splits `/source/flags`; `None` when the text is not pattern-shaped.
fn split(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix('/')?;
    if rest.is_empty() {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' => return Some((&rest[..i], &rest[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Compiles `text` when it is a valid pattern; `None` means "use it literally".
pub fn compile(text: &str) -> Option<Regex> {
    let (source, flags) = split(text)?;
    if source.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let mut builder = RegexBuilder::new(source);
    builder
        .size_limit(MAX_COMPILED_BYTES)
        .dfa_size_limit(MAX_COMPILED_BYTES);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            _ => return None,
        };
    }
    match builder.build() {
        Ok(re) => Some(re),
        Err(e) => {
            log::debug!("pattern {text:?} used literally: {e}");
            None
        }
    }
}

/// Whether `text` has the `/source/flags` shape (it is then a pattern if it compiles).
pub fn is_pattern_shaped(text: &str) -> bool {
    split(text).is_some()
}

/// A text every string the pattern `text` matches starts with; empty when none is known. Only
/// the plain start of an anchored source counts (`^drone-` of `/^drone-[0-9]+$/`): none under
/// the `i` or `m` flags or with a `|` anywhere, and a character a quantifier follows is left out
/// unless the quantifier is `+`.
pub fn literal_prefix(text: &str) -> String {
    let mut prefix = String::new();
    let Some((source, flags)) = split(text) else {
        return prefix;
    };
    if flags.contains(['i', 'm']) || source.contains('|') {
        return prefix;
    }
    let Some(rest) = source.strip_prefix('^') else {
        return prefix;
    };
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() && !matches!(e, '<' | '>') => e,
                _ => break,
            },
            c if c.is_ascii_alphanumeric() || "-_:@,=!%&~ ".contains(c) => c,
            _ => break,
        };
        match chars.peek() {
            Some('+') => {
                prefix.push(literal);
                break;
            }
            Some('?' | '*' | '{') => break,
            _ => prefix.push(literal),
        }
    }
    prefix
}

/// A name selector: a literal name or a compiled pattern.
pub enum Selector<'a> {
    Literal(&'a str),
    Pattern(Regex),
}

impl<'a> Selector<'a> {
    pub fn new(text: &'a str) -> Self {
        match compile(text) {
            Some(re) => Selector::Pattern(re),
            None => Selector::Literal(text),
        }
    }
}

/// One `where` or `filter` test on record data.
pub enum Test<'a> {
    Substring(&'a str),
    Pattern(Regex),
}

impl<'a> Test<'a> {
    fn new(text: &'a str) -> Self {
        match compile(text) {
            Some(re) => Test::Pattern(re),
            None => Test::Substring(text),
        }
    }

    fn matches(&self, data: &str) -> bool {
        match self {
            Test::Substring(s) => data.contains(s),
            Test::Pattern(re) => re.is_match(data),
        }
    }
}

/// `where` (keep if it matches) and `filter` (drop if it matches), compiled once per request.
#[derive(Default)]
pub struct Predicate<'a> {
    keep: Option<Test<'a>>,
    drop: Option<Test<'a>>,
}

impl<'a> Predicate<'a> {
    pub fn new(where_: Option<&'a str>, filter: Option<&'a str>) -> Self {
        Predicate {
            keep: where_.map(Test::new),
            drop: filter.map(Test::new),
        }
    }

    /// True without `where` and `filter`: every record is kept.
    pub fn is_trivial(&self) -> bool {
        self.keep.is_none() && self.drop.is_none()
    }

    pub fn accepts(&self, data: &str) -> bool {
        self.keep.as_ref().is_none_or(|t| t.matches(data))
            && !self.drop.as_ref().is_some_and(|t| t.matches(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognition() {
        assert!(compile("/").is_none());
        assert!(compile("abc").is_none());
        assert!(compile("/abc").is_none());
        assert!(compile("/abc/g").is_none(), "unknown flag makes it literal");
        assert!(compile("/[/").is_none(), "invalid source is literal");
        assert!(compile("//").is_some_and(|r| r.is_match("anything")));
        assert!(compile("/^a\\/b$/").is_some_and(|r| r.is_match("a/b")));
        assert!(compile("/DEV-2/i").is_some_and(|r| r.is_match("dev-2")));
        assert!(compile("/a/iim").is_some());
        assert!(
            compile("/(a)\\1/").is_none(),
            "back-references do not compile"
        );
        let long = format!("/{}/", "a".repeat(MAX_SOURCE_BYTES + 1));
        assert!(compile(&long).is_none());
    }

    #[test]
    fn flags_m_and_s() {
        let data = "line1\nstate:flying";
        assert!(compile("/^state/m").is_some_and(|r| r.is_match(data)));
        assert!(!compile("/^state/").is_some_and(|r| r.is_match(data)));
        assert!(compile("/line1.state/s").is_some_and(|r| r.is_match(data)));
        assert!(!compile("/line1.state/").is_some_and(|r| r.is_match(data)));
    }

    #[test]
    fn huge_repetition_is_refused_not_slow() {
        assert!(compile("/(a{1000}){1000}/").is_none());
    }

    #[test]
    fn predicates() {
        let d = "temp:22 state:flying quality:bad";
        assert!(Predicate::new(Some("state:flying"), None).accepts(d));
        assert!(!Predicate::new(None, Some("/QUALITY:BAD/i")).accepts(d));
        assert!(Predicate::new(Some("/state:(flying|landed)/"), None).accepts(d));
        assert!(!Predicate::new(Some("/[/"), None).accepts(d));
        assert!(Predicate::new(Some("/[/"), None).accepts("x/[/y"));
        assert!(Predicate::default().is_trivial());
    }

    #[test]
    fn literal_prefixes_never_exclude_a_match() {
        for (text, want) in [
            ("/^drone-[0-9]+$/", "drone-"),
            ("/^doc[0-9]{1,2}$/", "doc"),
            ("/^ab?c/", "a"),
            ("/^ab+c/", "ab"),
            ("/^a\\.b\\/c\\d/", "a.b/c"),
            ("/^ab*/", "a"),
            ("/^ab{2}/", "a"),
            ("/drone/", ""),
            ("/^a|b/", ""),
            ("/^abc/i", ""),
            ("/^abc/m", ""),
            ("/^(?i)abc/", ""),
            ("/^é/", ""),
            ("not a pattern", ""),
        ] {
            assert_eq!(literal_prefix(text), want, "{text}");
        }
        let names = [
            "", "a", "a.b/c1", "ab", "abb", "abc", "ac", "b", "dd", "doc", "doc7", "doc77",
            "drone-", "drone-1", "drone-x", "x\nabc", "ABC",
        ];
        for text in [
            "/^drone-[0-9]+$/",
            "/^doc[0-9]{1,2}$/",
            "/^ab?c/",
            "/^ab+c/",
            "/^a\\.b\\/c\\d/",
            "/^ab*/",
            "/^a|b/",
            "/^abc/i",
            "/^abc/m",
            "/^(?i)abc/",
            "/^a(?:b)c/",
        ] {
            let re = compile(text).unwrap();
            let prefix = literal_prefix(text);
            for name in names {
                if re.is_match(name) {
                    assert!(
                        name.starts_with(&prefix),
                        "{text} matches {name:?}, prefix {prefix:?}"
                    );
                }
            }
        }
    }
}
