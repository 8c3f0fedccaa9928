//! `/pattern/flags` recognition and matching (docs/protocol.md#patternflags) and the
//! `where`/`filter` predicates built on it (§6).
//!
//! Patterns are compiled by `regex_automata`'s meta engine, configured exactly as the `regex`
//! crate configures it (see [`config`]), so they mean what `regex` made them mean. It is used
//! directly because it reports what a compiled pattern holds: a live subscription keeps its
//! patterns (see [`KeptPattern`]), and what they may hold is counted against its limits.

use parking_lot::Mutex;
use regex_automata::{meta, util::syntax, Input, MatchKind};

/// The longest pattern source compiled; a longer one is taken literally.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// Compiled-size limit per pattern; a pattern over it is taken literally.
pub const MAX_COMPILED_BYTES: usize = 1 << 20;
/// The smallest lazy DFA cache a [`KeptPattern`] gets: it gets as much as its program holds,
/// between this and [`MAX_COMPILED_BYTES`] (a request's patterns get [`MAX_COMPILED_BYTES`]).
/// Past it the cache is cleared, and when it would be cleared too often, or cannot hold the
/// pattern's smallest lazy DFA, the search runs on the engine's other matchers: slower, never a
/// different answer. (Below 16 KiB some short patterns searched 25 times slower.)
pub const KEPT_DFA_CACHE_MIN: usize = 16 << 10;
/// What a [`KeptPattern`]'s structures hold besides what the engine reports (the engine's own
/// structures, its NFAs' fixed parts, the cache's): measured at 5 KiB for a literal and 13 KiB
/// for a short pattern, counted as 16 KiB.
pub const KEPT_FIXED_BYTES: usize = 16 << 10;

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

/// The engine's configuration: what `regex` 1.13's `RegexBuilder` gives it for one pattern
/// matched on `&str` (`build_one_string`: leftmost-first, empty matches only at character
/// boundaries, UTF-8 syntax), with `size_limit` (the NFA's) and `dfa_size_limit` (the lazy DFA's
/// cache) both [`MAX_COMPILED_BYTES`], as this module set them. Only the cache may differ
/// between uses: it changes how fast a search runs, never whether a text compiles or matches.
fn config(dfa_cache: usize) -> meta::Config {
    meta::Config::new()
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .nfa_size_limit(Some(MAX_COMPILED_BYTES))
        .hybrid_cache_capacity(dfa_cache)
}

/// Compiles `text` with `config` when it is a valid pattern; `None` means "use it literally".
fn build(text: &str, config: meta::Config) -> Option<meta::Regex> {
    let (source, flags) = split(text)?;
    if source.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let mut syntax = syntax::Config::new().utf8(true);
    for flag in flags.chars() {
        syntax = match flag {
            'i' => syntax.case_insensitive(true),
            'm' => syntax.multi_line(true),
            's' => syntax.dot_matches_new_line(true),
            _ => return None,
        };
    }
    match meta::Builder::new()
        .configure(config)
        .syntax(syntax)
        .build(source)
    {
        Ok(re) => Some(re),
        Err(e) => {
            log::debug!("pattern {text:?} used literally: {e}");
            None
        }
    }
}

/// A compiled pattern, for the length of a request.
pub struct Regex(meta::Regex);

impl Regex {
    /// Whether it matches anywhere in `text` (as `regex::Regex::is_match`: the earliest match
    /// end found by a half search).
    pub fn is_match(&self, text: &str) -> bool {
        self.0
            .search_half(&Input::new(text).earliest(true))
            .is_some()
    }
}

/// Compiles `text` when it is a valid pattern; `None` means "use it literally".
pub fn compile(text: &str) -> Option<Regex> {
    build(text, config(MAX_COMPILED_BYTES)).map(Regex)
}

/// A compiled pattern kept for a live subscription's life, with the one match cache it uses
/// and a bound on what both hold ([`KeptPattern::bytes`]). A text is a `KeptPattern` exactly
/// when [`compile`] takes it as a pattern, and both match the same texts.
pub struct KeptPattern {
    re: meta::Regex,
    /// Its own cache rather than the engine's pool (which makes one per thread searching at
    /// once): one cache, whose growth is bounded below. Searches are made by one thread at a
    /// time per collection (its delivery), so it is not waited for.
    cache: Mutex<meta::Cache>,
    bytes: usize,
}

impl KeptPattern {
    /// Compiles `text` when it is a valid pattern; `None` means "use it literally".
    ///
    /// What it holds at most, [`KeptPattern::bytes`], is
    /// `2 × program + cache + 2 × lazy DFA cache + KEPT_FIXED_BYTES`:
    /// - `program` is the compiled pattern (`memory_usage`: its forward and reverse NFAs,
    ///   prefilter, one-pass DFA), once for itself;
    /// - `cache` is the match cache with every matcher's part made (`Cache::memory_usage`: the
    ///   PikeVM's state sets and capture slots, sized by the NFA, the one-pass DFA's slots, the
    ///   lazy DFAs' initial tables);
    /// - what the cache may still grow by: the PikeVM's stack, at most two 16-byte frames per
    ///   NFA state (allowed for by counting `program` a second time: it holds the forward and
    ///   the reverse NFA, each over 24 bytes per state), and the forward lazy DFA up to its
    ///   capacity ([`KEPT_DFA_CACHE_MIN`] or `program`, at most [`MAX_COMPILED_BYTES`]),
    ///   counted twice for the spare room of its growing vectors (only the forward one grows:
    ///   a subscription's tests only ask whether there is a match). The bounded backtracker,
    ///   whose visited set grows with the text searched, is turned off: its answers are the
    ///   PikeVM's;
    /// - [`KEPT_FIXED_BYTES`] for the structures the engine does not report.
    ///
    /// A pattern whose cache is empty with every part made is searched without one (a
    /// literal, found by the prefilter alone): it holds `program + KEPT_FIXED_BYTES`.
    pub fn new(text: &str) -> Option<KeptPattern> {
        let kept = |dfa_cache| build(text, config(dfa_cache).backtrack(false));
        let mut re = kept(MAX_COMPILED_BYTES)?;
        // The program does not depend on the cache's capacity, which is set when compiling: a
        // smaller one means compiling again (only programs under 1 MiB, the quicker to compile).
        let dfa_cache = re
            .memory_usage()
            .clamp(KEPT_DFA_CACHE_MIN, MAX_COMPILED_BYTES);
        if dfa_cache < MAX_COMPILED_BYTES {
            re = kept(dfa_cache)?;
        }
        let mut cache = re.create_cache();
        // A cache is created with its matchers' parts made on first use; a reset makes them all.
        cache.reset(&re);
        let bytes = kept_bytes(re.memory_usage(), cache.memory_usage(), dfa_cache);
        Some(KeptPattern {
            re,
            cache: Mutex::new(cache),
            bytes,
        })
    }

    /// Whether it matches anywhere in `text` (as [`Regex::is_match`]).
    pub fn is_match(&self, text: &str) -> bool {
        let mut cache = self.cache.lock();
        self.re
            .search_half_with(&mut cache, &Input::new(text).earliest(true))
            .is_some()
    }

    /// What it holds at most, in bytes (see [`KeptPattern::new`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// [`KeptPattern::bytes`] of a program of `program` bytes whose cache holds `cache` bytes with
/// every part made, its lazy DFA's cache at most `dfa_cache`.
fn kept_bytes(program: usize, cache: usize, dfa_cache: usize) -> usize {
    let grown = if cache == 0 {
        0
    } else {
        program
            .saturating_add(cache)
            .saturating_add(dfa_cache.saturating_mul(2))
    };
    program
        .saturating_add(grown)
        .saturating_add(KEPT_FIXED_BYTES)
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

    /// What the `regex` crate made of a text when this module compiled through it.
    fn through_regex_crate(text: &str) -> Option<regex::Regex> {
        let (source, flags) = split(text)?;
        if source.len() > MAX_SOURCE_BYTES {
            return None;
        }
        let mut builder = regex::RegexBuilder::new(source);
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
        builder.build().ok()
    }

    /// Compiling with the engine directly changes nothing: a text is a pattern exactly when
    /// the `regex` crate took it as one (near the size limit too), for a request and for a
    /// subscription alike, and matches the same texts.
    #[test]
    fn texts_compile_and_match_as_through_the_regex_crate() {
        let mut texts: Vec<String> = [
            "//",
            "/^$/",
            "/a*/",
            "/^/m",
            "/$/m",
            "/^state/m",
            "/line1.state/s",
            "/DEV-2/i",
            "/\\bdev\\b/",
            "/\\Bx/",
            "/é+/i",
            "/ÉCOLE/i",
            "/\\w+:\\d+/",
            "/[[:alpha:]]+/",
            "/(?u:\\w)/",
            "/\\pL{3}/",
            "/a|b|/",
            "/(a)\\1/",
            "/(?=a)/",
            "/[/",
            "/a/g",
            "/^a\\/b$/",
            "/(?-u:\\w)+/",
            "/.*x$/s",
            "/^$/m",
            "/(a{1000}){1000}/",
            "/q0_1_0\\w{20}/",
        ]
        .map(String::from)
        .to_vec();
        // Either side of the size limit (`\w{20}` compiles, `\w{21}` does not; 145 and 146
        // repetitions of `[a-z]{100}` likewise).
        for n in 17..=24 {
            texts.push(format!("/\\w{{{n}}}/"));
            texts.push(format!("/(?:[a-z]{{100}}){{{}}}/", 125 + n));
        }
        assert!(compile("/\\w{20}/").is_some() && compile("/\\w{21}/").is_none());
        assert!(compile("/(?:[a-z]{100}){145}/").is_some());
        assert!(compile("/(?:[a-z]{100}){146}/").is_none());
        let mut rng = fastrand::Rng::with_seed(7);
        let atoms = [
            "a", "b", ".", "\\d", "\\w", "[ab]", "é", "^", "$", "\\b", "(?i)A", "x*",
        ];
        for _ in 0..300 {
            let mut source = String::new();
            for _ in 0..rng.usize(1..6) {
                source.push_str(atoms[rng.usize(..atoms.len())]);
                source.push_str(["", "*", "+", "?", "|", "{2}"][rng.usize(..6)]);
            }
            let flags = ["", "i", "m", "s", "ims"][rng.usize(..5)];
            texts.push(format!("/{source}/{flags}"));
        }
        let mut hays: Vec<String> = [
            "",
            "a",
            "b",
            "ab",
            "ba\nab",
            "é",
            "É",
            "xA",
            "dev-12",
            "dev",
            "line1\nstate:flying",
            "a/b",
            "aa",
            "\n",
            "q0_1_0abcdefghijklmnopqrstu",
        ]
        .map(String::from)
        .to_vec();
        hays.push("ab".repeat(300) + "é9");
        for _ in 0..50 {
            let pick = ["a", "b", "é", "\n", " ", "A", "9", "_", "x"];
            hays.push(
                (0..rng.usize(0..12))
                    .map(|_| pick[rng.usize(..pick.len())])
                    .collect(),
            );
        }
        for text in &texts {
            let before = through_regex_crate(text);
            let (now, kept) = (compile(text), KeptPattern::new(text));
            assert_eq!(before.is_some(), now.is_some(), "{text}");
            assert_eq!(before.is_some(), kept.is_some(), "{text}");
            let (Some(before), Some(now), Some(kept)) = (before, now, kept) else {
                continue;
            };
            for hay in &hays {
                let want = before.is_match(hay);
                assert_eq!(now.is_match(hay), want, "{text} on {hay:?}");
                assert_eq!(kept.is_match(hay), want, "{text} on {hay:?} (kept)");
            }
        }
    }

    #[test]
    fn what_a_kept_pattern_may_hold() {
        let (min, fixed) = (KEPT_DFA_CACHE_MIN, KEPT_FIXED_BYTES);
        assert_eq!(kept_bytes(1000, 300, min), 2300 + 2 * min + fixed);
        assert_eq!(kept_bytes(1000, 0, min), 1000 + fixed);
        assert_eq!(kept_bytes(usize::MAX, 1, min), usize::MAX);
        // A literal holds its prefilter; a short pattern little more than the allowances.
        let literal = KeptPattern::new("/state:flying/").unwrap();
        assert!(literal.bytes() < fixed + 1024, "{}", literal.bytes());
        let small = KeptPattern::new("/^dev-\\d+$/").unwrap();
        assert!(
            small.bytes() < 2 * min + fixed + (32 << 10),
            "{}",
            small.bytes()
        );
        // One compiling near the size limit (the audit's) counts its program twice, its cache
        // and a lazy DFA cache as large as its program, twice.
        let big = KeptPattern::new("/q0_1_0\\w{20}/").unwrap();
        assert!(big.bytes() > 4 << 20, "{}", big.bytes());
        assert!(big.bytes() < 6 << 20, "{}", big.bytes());
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
