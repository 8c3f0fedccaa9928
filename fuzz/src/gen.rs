//! Input generation and checking for the request decoder, shared by the fuzz binary
//! (`fuzz/src/main.rs`, `make fuzz`) and the fast run inside the test suite
//! (`tests/it/decoder_fuzz.rs`, through this package's library). Only `std` and `fluxiondb`
//! are used. The message types and the shape and members of each payload come from the server's
//! message table (`MsgType::ALL`, `MsgType::spec`), so a new message type is fuzzed without a
//! change here; how each member's value is read (the rules of docs/protocol.md, "How field
//! values are read") is this generator's own, independent oracle.
//!
//! Two kinds of input:
//! * **structured**: a frame built from a random message type and random field values, together
//!   with the outcome docs/protocol.md prescribes for it (#how-errors-are-chosen,
//!   #how-field-values-are-read, #message-reference) (an independent oracle);
//! * **mutated**: bytes of a corpus entry or of a structured frame, flipped, cut, spliced and
//!   repeated, checked only against invariants (no panic, a documented error text, a valid
//!   request satisfies every field rule, bounded allocation — the caller measures that).

use fluxiondb::wire::envelope::{self, BAD_DATA, BAD_ID, BAD_TYPE, NOT_AN_OBJECT};
use fluxiondb::wire::pattern;
use fluxiondb::wire::{decode, Check, Kind, MsgType, Request, Shape, Spec, Value};

/// splitmix64: small, fast, good enough for input generation, reproducible from a seed.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// JSON text helpers

/// JSON string literal of `s`; with `fancy`, some characters are written as `\u` escapes
/// (surrogate pairs included) so the decoder's unescaping path is exercised too.
pub fn json_str(s: &str, fancy: bool, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if fancy && rng.chance(1, 4) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{:04X}", unit));
                }
            }
            '/' if fancy && rng.chance(1, 2) => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// Field values and the rules of §2.4 (the oracle)

/// One JSON value given for a field, as the oracle sees it.
#[derive(Clone, Debug)]
pub enum Val {
    Absent,
    Null,
    Str(String),
    Int(i64),
    /// A number written with a fraction or exponent: its text and its f64 value.
    Float(String, f64),
    /// An integer literal above i64::MAX (kept as u64 by the parser).
    Big(u64),
    Bool(bool),
    /// An object or array (its JSON text).
    Compound(String),
}

impl Val {
    fn json(&self, rng: &mut Rng) -> Option<String> {
        Some(match self {
            Val::Absent => return None,
            Val::Null => "null".into(),
            Val::Str(s) => {
                let fancy = rng.chance(1, 5);
                json_str(s, fancy, rng)
            }
            Val::Int(i) => i.to_string(),
            Val::Float(t, _) => t.clone(),
            Val::Big(u) => u.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Compound(t) => t.clone(),
        })
    }

    fn missing(&self) -> bool {
        matches!(self, Val::Absent | Val::Null)
    }

    /// The integer coercion of §2.4.
    fn integer(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Float(_, f) => {
                let t = f.trunc();
                let limit = 9_223_372_036_854_775_808.0;
                (t.is_finite() && t > -limit && t < limit).then_some(t as i64)
            }
            Val::Str(s) => {
                let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
                let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                t.parse().ok()
            }
            _ => None,
        }
    }
}

/// A broken rule: the text after `invalid payload: `.
type Broken = String;

fn rule(index: Option<usize>, field: &str, text: &str) -> Broken {
    match index {
        Some(i) => format!("[{i}].{field} {text}"),
        None => format!("{field} {text}"),
    }
}

const NON_EMPTY: &str = "must be a non-empty string";
const STRING: &str = "must be a string";
const POSITIVE: &str = "must be a positive integer";
const NON_NEGATIVE: &str = "must be a non-negative integer";
const INTEGER: &str = "must be an integer";
const BOOLEAN: &str = "must be a boolean";
const AT_MOST: &str = "must be at most 4096 bytes";

fn o_name(v: &Val, ix: Option<usize>, f: &str) -> Result<String, Broken> {
    match v {
        Val::Str(s) if s.is_empty() => Err(rule(ix, f, NON_EMPTY)),
        Val::Str(s) if s.len() > 4096 => Err(rule(ix, f, AT_MOST)),
        Val::Str(s) => Ok(s.clone()),
        _ => Err(rule(ix, f, NON_EMPTY)),
    }
}
fn o_non_empty(v: &Val, ix: Option<usize>, f: &str) -> Result<String, Broken> {
    match v {
        Val::Str(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(rule(ix, f, NON_EMPTY)),
    }
}
fn o_string(v: &Val, ix: Option<usize>, f: &str) -> Result<String, Broken> {
    match v {
        Val::Str(s) => Ok(s.clone()),
        _ => Err(rule(ix, f, STRING)),
    }
}
fn o_opt_string(v: &Val, ix: Option<usize>, f: &str) -> Result<Option<String>, Broken> {
    match v {
        Val::Absent | Val::Null => Ok(None),
        Val::Str(s) if s.is_empty() => Ok(None),
        Val::Str(s) => Ok(Some(s.clone())),
        _ => Err(rule(ix, f, STRING)),
    }
}
fn o_opt_name(v: &Val, ix: Option<usize>, f: &str) -> Result<Option<String>, Broken> {
    match o_opt_string(v, ix, f)? {
        Some(s) if s.len() > 4096 => Err(rule(ix, f, AT_MOST)),
        other => Ok(other),
    }
}
/// docs/protocol.md#patternflags: `/`, a source with `\` escaping the character after it, a
/// closing `/`, then anything (the flags).
fn shaped_as_pattern(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('/').filter(|r| !r.is_empty()) else {
        return false;
    };
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '/' => return true,
            _ => {}
        }
    }
    false
}
fn o_pattern(v: &Val, ix: Option<usize>, f: &str) -> Result<String, Broken> {
    match v {
        Val::Str(s) if shaped_as_pattern(s) => Ok(s.clone()),
        _ => o_name(v, ix, f),
    }
}
fn o_opt_pattern(v: &Val, ix: Option<usize>, f: &str) -> Result<Option<String>, Broken> {
    match o_opt_string(v, ix, f)? {
        Some(s) if s.len() > 4096 && !shaped_as_pattern(&s) => Err(rule(ix, f, AT_MOST)),
        other => Ok(other),
    }
}
fn o_positive(v: &Val, ix: Option<usize>, f: &str) -> Result<i64, Broken> {
    match v.integer() {
        Some(i) if i > 0 => Ok(i),
        _ => Err(rule(ix, f, POSITIVE)),
    }
}
fn o_opt_integer(v: &Val, ix: Option<usize>, f: &str) -> Result<Option<i64>, Broken> {
    if v.missing() {
        return Ok(None);
    }
    v.integer().map(Some).ok_or_else(|| rule(ix, f, INTEGER))
}
fn o_opt_non_negative(v: &Val, ix: Option<usize>, f: &str) -> Result<Option<u64>, Broken> {
    if v.missing() {
        return Ok(None);
    }
    match v.integer().map(u64::try_from) {
        Some(Ok(n)) => Ok(Some(n)),
        _ => Err(rule(ix, f, NON_NEGATIVE)),
    }
}
fn o_opt_bool(v: &Val, ix: Option<usize>, f: &str) -> Result<bool, Broken> {
    match v {
        Val::Absent | Val::Null => Ok(false),
        Val::Bool(b) => Ok(*b),
        Val::Int(i) => Ok(*i != 0),
        Val::Big(_) => Ok(true),
        _ => Err(rule(ix, f, BOOLEAN)),
    }
}
fn o_raw(v: &Val) -> Option<String> {
    match v {
        Val::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// A decoded member value as the oracle predicts it (an owned [`Value`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    Missing,
    Text(String),
    Int(i64),
    Count(u64),
    Bool(bool),
}

impl From<Value<'_>> for Got {
    fn from(v: Value<'_>) -> Got {
        match v {
            Value::Missing => Got::Missing,
            Value::Text(s) => Got::Text(s.to_owned()),
            Value::Escaped(_) => Got::Text(v.string().unwrap_or_default().into_owned()),
            Value::Int(i) => Got::Int(i),
            Value::Count(n) => Got::Count(n),
            Value::Bool(b) => Got::Bool(b),
        }
    }
}

fn text_or_missing(s: Option<String>) -> Got {
    s.map_or(Got::Missing, Got::Text)
}

/// The value a member of `kind` decodes to, or the rule it breaks.
fn predict(v: &Val, kind: Kind, ix: Option<usize>, f: &str) -> Result<Got, Broken> {
    Ok(match kind {
        Kind::Name => Got::Text(o_name(v, ix, f)?),
        Kind::OptName => text_or_missing(o_opt_name(v, ix, f)?),
        Kind::Pattern => Got::Text(o_pattern(v, ix, f)?),
        Kind::OptPattern => text_or_missing(o_opt_pattern(v, ix, f)?),
        Kind::Str => Got::Text(o_string(v, ix, f)?),
        Kind::OptStr => text_or_missing(o_opt_string(v, ix, f)?),
        Kind::NonEmpty => Got::Text(o_non_empty(v, ix, f)?),
        Kind::Positive => Got::Int(o_positive(v, ix, f)?),
        Kind::IntOrZero => Got::Int(o_opt_integer(v, ix, f)?.unwrap_or(0)),
        Kind::OptInt => o_opt_integer(v, ix, f)?.map_or(Got::Missing, Got::Int),
        Kind::OptCount => o_opt_non_negative(v, ix, f)?.map_or(Got::Missing, Got::Count),
        Kind::Flag => Got::Bool(o_opt_bool(v, ix, f)?),
        Kind::Raw => text_or_missing(o_raw(v)),
    })
}

/// The error text of a broken cross-member rule, without its `invalid payload: ` prefix.
fn check_text(e: &fluxiondb::wire::PayloadError) -> Broken {
    let text = e.to_string();
    text.strip_prefix("invalid payload: ")
        .unwrap_or(&text)
        .to_string()
}

/// The prescribed decoding of one object with the given member values: every member's rule in
/// declaration order, then the cross-member rules.
fn predict_object(spec: &Spec, vals: &[Val], ix: Option<usize>) -> Result<Vec<Got>, Broken> {
    let mut got = Vec::new();
    for (m, v) in spec.members.iter().zip(vals) {
        got.push(predict(v, m.kind, ix, m.name)?);
    }
    for c in spec.checks {
        match c {
            Check::NotAfter(a, b, e) => {
                if let (Got::Int(x), Got::Int(y)) = (&got[*a], &got[*b]) {
                    if x > y {
                        return Err(check_text(e));
                    }
                }
            }
            Check::NotBoth(a, b, e) => {
                if !vals[*a].missing() && !vals[*b].missing() {
                    return Err(check_text(e));
                }
            }
        }
    }
    Ok(got)
}

// ---------------------------------------------------------------------------------------------
// Random values

/// Interesting text: names, pattern-shaped strings, escapes, non-ASCII, long strings.
pub fn text(rng: &mut Rng) -> String {
    match rng.below(16) {
        0 => String::new(),
        1 => "x".repeat(4096),
        2 => "y".repeat(4097),
        3 => "é".repeat(2048 + rng.below(2)), // 4096 or 4098 bytes
        4 => pattern_text(rng),
        5 => "\u{0}nul\u{1f}\u{7f}".into(),
        6 => "../etc/passwd".into(),
        7 => " +42 ".into(),
        8 => "-7".into(),
        9 => "12abc".into(),
        10 => "99999999999999999999".into(),
        11 => "日本語😀\u{2028}".into(),
        12 => "\"quoted\" \\back\\ /slash/".into(),
        _ => {
            let len = 1 + rng.below(12);
            (0..len)
                .map(|_| *rng.pick(&['a', 'b', 'd', 'e', 'v', '-', '1', '2', 'Z', '.', ' ']))
                .collect()
        }
    }
}

/// A `/pattern/flags` string from a small grammar, including nesting, huge repetitions,
/// invalid sources and unknown flags.
pub fn pattern_text(rng: &mut Rng) -> String {
    let flags = *rng.pick(&["", "", "i", "m", "s", "ims", "g", "ii", "x"]);
    let source = match rng.below(10) {
        0 => {
            let depth = *rng.pick(&[10usize, 100, 200, 249, 250, 251, 400, 2000]);
            let open = *rng.pick(&["(", "(?:", "(?i:", "[", "(a|"]);
            let close = if open == "[" { "]" } else { ")" };
            format!("{}a{}", open.repeat(depth), close.repeat(depth))
        }
        1 => format!("a{}", "{2}".repeat(1 + rng.below(40))),
        2 => format!(
            "(?:\\w{{{}}}){{{}}}",
            1 + rng.below(200),
            1 + rng.below(200)
        ),
        3 => "[".repeat(1 + rng.below(50)),
        4 => "a*".repeat(1 + rng.below(500)),
        5 => "\\".into(),
        6 => "(a)\\1".into(),
        7 => "(?=a)".into(),
        8 => format!("x{}", "|x".repeat(rng.below(2000))),
        _ => gen_regex(rng, 4),
    };
    format!("/{source}/{flags}")
}

fn gen_regex(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return rng
            .pick(&[
                "a", ".", "\\d", "\\w", "[a-z]", "[^x]", "\\p{L}", "^", "$", "\\/", "é",
            ])
            .to_string();
    }
    match rng.below(6) {
        0 => format!("{}{}", gen_regex(rng, depth - 1), gen_regex(rng, depth - 1)),
        1 => format!(
            "({}|{})",
            gen_regex(rng, depth - 1),
            gen_regex(rng, depth - 1)
        ),
        2 => format!("(?:{})*", gen_regex(rng, depth - 1)),
        3 => format!(
            "{}{{{},{}}}",
            gen_regex(rng, depth - 1),
            rng.below(3),
            3 + rng.below(300)
        ),
        4 => format!("(?i){}", gen_regex(rng, depth - 1)),
        _ => gen_regex(rng, depth - 1),
    }
}

fn compound(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => "{}".into(),
        1 => "[]".into(),
        2 => "{\"a\":[1,{\"b\":null}]}".into(),
        3 => {
            let d = 1 + rng.below(3000);
            format!("{}{}", "[".repeat(d), "]".repeat(d))
        }
        4 => "[\"x\",1.5,true]".into(),
        _ => "{\"col\":\"c\"}".into(),
    }
}

/// A value for a field whose valid kind is `want`; valid most of the time.
fn val(rng: &mut Rng, want: Want) -> Val {
    if rng.chance(7, 10) {
        return match want {
            Want::Name => Val::Str(name(rng)),
            Want::Text => Val::Str(if rng.chance(1, 3) {
                pattern_text(rng)
            } else {
                name(rng)
            }),
            Want::Int => match rng.below(4) {
                0 => Val::Int(1 + rng.below(1000) as i64),
                1 => Val::Int(rng.next_u64() as i64),
                2 => Val::Str(format!(" {} ", 1 + rng.below(1000))),
                _ => {
                    let v = rng.below(100_000) as f64 / 7.0;
                    Val::Float(format!("{v:?}"), v)
                }
            },
            Want::Bool => Val::Bool(rng.chance(1, 2)),
        };
    }
    match rng.below(12) {
        0 => Val::Absent,
        1 => Val::Null,
        2 => Val::Str(text(rng)),
        3 => Val::Int(*rng.pick(&[0, -1, 1, i64::MAX, i64::MIN, 100])),
        4 => {
            let (t, v) = *rng.pick(&[
                ("1e3", 1000.0),
                ("-0.5", -0.5),
                ("0.9", 0.9),
                ("9.3e18", 9.3e18),
                ("-9223372036854775809", -9_223_372_036_854_775_809.0),
                ("600.9", 600.9),
                ("-1.5e-300", -1.5e-300),
            ]);
            Val::Float(t.into(), v)
        }
        5 => Val::Big(*rng.pick(&[9_223_372_036_854_775_808u64, u64::MAX])),
        6 => Val::Bool(rng.chance(1, 2)),
        7 => Val::Compound(compound(rng)),
        8 => Val::Str(String::new()),
        9 => Val::Str(format!("{}", rng.below(5))),
        _ => Val::Str(name(rng)),
    }
}

/// A short name from a small alphabet (so that pattern and literal selections overlap).
pub fn name(rng: &mut Rng) -> String {
    if rng.chance(1, 8) {
        return text(rng);
    }
    let stems = ["c", "d", "dev-1", "dev-2", "k", "é", "a/b", "..", "x y"];
    rng.pick(&stems).to_string()
}

#[derive(Clone, Copy)]
enum Want {
    Name,
    Text,
    Int,
    Bool,
}

/// One payload object: members in a random order, unknown members, repeated members (the last
/// occurrence wins, so the oracle is given the last one).
fn object(rng: &mut Rng, fields: &[(&str, Want)]) -> (String, Vec<Val>) {
    let mut members: Vec<(String, String)> = Vec::new();
    let mut vals = Vec::new();
    for (f, w) in fields {
        let v = val(rng, *w);
        if !matches!(v, Val::Absent) && rng.chance(1, 12) {
            // An earlier occurrence that the later one overrides.
            let early = val(rng, *w);
            if let Some(j) = early.json(rng) {
                members.push((f.to_string(), j));
            }
        }
        if let Some(j) = v.json(rng) {
            members.push((f.to_string(), j));
        }
        vals.push(v);
    }
    if rng.chance(1, 4) {
        members.push(("extra".into(), compound(rng)));
    }
    if rng.chance(1, 8) {
        // Case matters: `COL` is not `col`.
        members.push(("COL".into(), "\"c\"".into()));
    }
    // Shuffle, but keep the relative order of repeated members so "last wins" stays true.
    let mut keyed: Vec<(usize, usize, (String, String))> = Vec::new();
    for (i, m) in members.into_iter().enumerate() {
        keyed.push((0, i, m));
    }
    let mut slots: Vec<(String, usize)> = Vec::new();
    for k in &mut keyed {
        let name = k.2 .0.clone();
        let bucket = match slots.iter().find(|(n, _)| *n == name) {
            Some((_, b)) => *b,
            None => {
                let b = rng.below(1000);
                slots.push((name, b));
                b
            }
        };
        k.0 = bucket;
    }
    keyed.sort_by_key(|k| (k.0, k.1));
    let ws = if rng.chance(1, 6) { " \n\t" } else { "" };
    let body: Vec<String> = keyed
        .into_iter()
        .map(|(_, _, (k, v))| format!("{ws}\"{k}\"{ws}:{ws}{v}{ws}"))
        .collect();
    (format!("{{{}}}", body.join(",")), vals)
}

/// A structured frame and the exact outcome the protocol prescribes for it.
pub struct Case {
    pub frame: String,
    pub expect: Expect,
}

#[derive(Debug, PartialEq)]
pub enum Expect {
    /// The envelope is refused: id (if readable) and message.
    Envelope(Option<String>, &'static str),
    /// `type` names no message type.
    UnknownType,
    /// The payload decodes to a request of this type holding exactly these member values.
    Ok(MsgType, Vec<Got>),
    /// The payload is refused with exactly this text.
    Payload(String),
}

/// What kind of random value suits a member of `kind`.
fn want(kind: Kind) -> Want {
    match kind {
        Kind::Name | Kind::Pattern | Kind::Str | Kind::Raw => Want::Name,
        Kind::OptName | Kind::OptPattern | Kind::OptStr | Kind::NonEmpty => Want::Text,
        Kind::Positive | Kind::IntOrZero | Kind::OptInt | Kind::OptCount => Want::Int,
        Kind::Flag => Want::Bool,
    }
}

/// Random members for a declaration: the object's text and the value given for each member.
fn members(rng: &mut Rng, spec: &Spec) -> (String, Vec<Val>) {
    let fields: Vec<(&str, Want)> = spec
        .members
        .iter()
        .map(|m| (m.name, want(m.kind)))
        .collect();
    object(rng, &fields)
}

/// Builds a payload for `kind` from its declaration, with its prescribed decoding.
fn payload(rng: &mut Rng, kind: MsgType) -> (String, Result<Vec<Got>, Broken>) {
    let spec = kind.spec();
    let wrong_kind = rng.chance(1, 30);
    match spec.shape {
        Shape::Ignored => (
            rng.pick(&["{}", "x", "[1", "null"]).to_string(),
            Ok(Vec::new()),
        ),
        Shape::Array => {
            if wrong_kind {
                let (t, _) = object(rng, &[("col", Want::Name)]);
                return (t, Err("expected a JSON array".into()));
            }
            let mut items = Vec::new();
            let mut first_err: Option<Broken> = None;
            let mut got = Vec::new();
            for i in 0..rng.below(5) {
                if rng.chance(1, 25) {
                    items.push(rng.pick(&["1", "null", "\"x\"", "[]"]).to_string());
                    first_err.get_or_insert_with(|| format!("[{i}] must be a JSON object"));
                    continue;
                }
                let (t, v) = members(rng, spec);
                items.push(t);
                match predict_object(spec, &v, Some(i)) {
                    Ok(values) => got.extend(values),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            let text = format!("[{}]", items.join(","));
            (text, first_err.map_or(Ok(got), Err))
        }
        Shape::Object => {
            if wrong_kind {
                return (
                    rng.pick(&["[]", "1", "\"s\"", "null", "true"]).to_string(),
                    Err("expected a JSON object".into()),
                );
            }
            let (t, v) = members(rng, spec);
            (t, predict_object(spec, &v, None))
        }
    }
}

/// A whole frame from the structure of §2.1 and §4, with its prescribed outcome.
pub fn structured(rng: &mut Rng) -> Case {
    let kind_name: String = if rng.chance(1, 20) {
        rng.pick(&["INS", "nope", "", "qry ", "auth"]).to_string()
    } else {
        rng.pick(MsgType::ALL).name().to_string()
    };
    let kind = MsgType::parse(&kind_name);
    let (data, decoded) = match kind {
        Some(k) => payload(rng, k),
        None => ("{}".into(), Ok(Vec::new())),
    };
    // Envelope members, each sometimes broken.
    let id = if rng.chance(1, 15) {
        rng.pick(&[
            Val::Absent,
            Val::Str(String::new()),
            Val::Int(7),
            Val::Null,
            Val::Compound("{}".into()),
        ])
        .clone()
    } else {
        Val::Str(
            rng.pick(&["1", "q-1", "é", "\"", "x".repeat(300).as_str()])
                .to_string(),
        )
    };
    let ty = if rng.chance(1, 20) {
        rng.pick(&[Val::Absent, Val::Int(1), Val::Null]).clone()
    } else {
        Val::Str(kind_name.clone())
    };
    let data_val = if rng.chance(1, 20) {
        rng.pick(&[
            Val::Absent,
            Val::Str(String::new()),
            Val::Compound("{\"col\":\"c\"}".into()),
            Val::Int(1),
        ])
        .clone()
    } else {
        Val::Str(data)
    };
    let mut members = Vec::new();
    for (k, v) in [("id", &id), ("type", &ty), ("data", &data_val)] {
        if let Some(j) = v.json(rng) {
            members.push(format!("\"{k}\":{j}"));
        }
    }
    if rng.chance(1, 5) {
        members.push("\"extra\":{\"id\":1}".into());
    }
    for i in (1..members.len()).rev() {
        members.swap(i, rng.below(i + 1));
    }
    let frame = format!("{{{}}}", members.join(","));
    let nonempty = |v: &Val| match v {
        Val::Str(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let expect = match (nonempty(&id), nonempty(&ty), nonempty(&data_val)) {
        (None, _, _) => Expect::Envelope(None, BAD_ID),
        (Some(id), None, _) => Expect::Envelope(Some(id), BAD_TYPE),
        (Some(id), Some(_), None) => Expect::Envelope(Some(id), BAD_DATA),
        _ if kind.is_none() => Expect::UnknownType,
        _ => match (kind, decoded) {
            (Some(k), Ok(values)) => Expect::Ok(k, values),
            (_, Err(e)) => Expect::Payload(format!("invalid payload: {e}")),
            (None, Ok(_)) => Expect::UnknownType,
        },
    };
    Case { frame, expect }
}

/// Checks a structured case against its oracle; `Err` describes a mismatch.
pub fn check_case(case: &Case) -> Result<(), String> {
    let got = match envelope::parse(&case.frame) {
        Err(e) => Expect::Envelope(e.id.map(|s| s.into_owned()), e.message),
        Ok(env) => match MsgType::parse(&env.kind) {
            None => Expect::UnknownType,
            Some(kind) => match decode(kind, &env.data) {
                Ok(r) => Expect::Ok(r.kind(), r.values().into_iter().map(Got::from).collect()),
                Err(e) => Expect::Payload(e.to_string()),
            },
        },
    };
    if got == case.expect {
        Ok(())
    } else {
        Err(format!(
            "frame {}\n  expected {:?}\n  got      {:?}",
            shorten(&case.frame),
            case.expect,
            got
        ))
    }
}

pub fn shorten(s: &str) -> String {
    if s.len() <= 300 {
        return format!("{s:?}");
    }
    let mut end = 300;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &s[..end], s.len())
}

// ---------------------------------------------------------------------------------------------
// Mutation

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "\\udc00",
    "\\uD83D\\uDE00",
    "null",
    "true",
    "-",
    "0",
    "1e999",
    "-0",
    "9223372036854775808",
    "\"id\":\"1\"",
    "\"type\":\"ins\"",
    "\"data\":\"",
    "\\\"",
    "/",
    "/(",
    "){99999}",
    "é",
    "\u{0}",
    " ",
    "\"col\"",
    "\"ts\"",
    "{}",
    "[{},{}]",
];

/// Mutates `input` a few times; sometimes repeats a slice many times (to measure allocation
/// against input size on large inputs).
pub fn mutate(rng: &mut Rng, input: &[u8], max_len: usize) -> Vec<u8> {
    let mut b = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = b.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = *rng.pick(b"{}[]\",:\\/0-9a ");
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                b.drain(i..i + n);
            }
            3 => {
                let i = rng.below(len + 1);
                let t = rng.pick(TOKENS).as_bytes();
                b.splice(i..i, t.iter().copied());
            }
            4 if len > 1 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = b[i..i + n].to_vec();
                let j = rng.below(len + 1);
                b.splice(j..j, chunk);
            }
            5 if len > 1 => {
                // Repeat a slice many times (large inputs: allocation per input byte).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                let chunk = b[i..i + n].to_vec();
                let times = 1 + rng.below(max_len / 2 / n.max(1)).min(50_000);
                let mut rep = Vec::with_capacity(chunk.len() * times);
                for _ in 0..times {
                    rep.extend_from_slice(&chunk);
                }
                b.splice(i..i, rep);
            }
            6 if len > 0 => b.truncate(rng.below(len)),
            7 => {
                let i = rng.below(len + 1);
                let t = pattern_text(rng);
                b.splice(i..i, t.into_bytes());
            }
            _ => {
                // Wrap the current bytes as the (escaped) data of an envelope.
                let inner = String::from_utf8_lossy(&b).into_owned();
                let kind = rng.pick(MsgType::ALL).name();
                b = format!(
                    "{{\"id\":\"m\",\"type\":\"{kind}\",\"data\":{}}}",
                    json_str(&inner, false, rng)
                )
                .into_bytes();
            }
        }
        b.truncate(max_len);
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Invariants on any input

const ENVELOPE_ERRORS: [&str; 4] = [NOT_AN_OBJECT, BAD_ID, BAD_TYPE, BAD_DATA];
const FIELDS: &[&str] = &[
    "col",
    "doc",
    "ts",
    "data",
    "from",
    "to",
    "limit",
    "reverse",
    "where",
    "filter",
    "fromTs",
    "toTs",
    "key",
    "value",
    "sub",
    "since",
    "after_seq",
    "max_age",
    "max_records",
];
const RULES: &[&str] = &[
    NON_EMPTY,
    STRING,
    POSITIVE,
    NON_NEGATIVE,
    INTEGER,
    BOOLEAN,
    AT_MOST,
];

/// Whether `e` is one of the payload error texts of §2.3.
pub fn documented_payload_error(e: &str) -> bool {
    let Some(rest) = e.strip_prefix("invalid payload: ") else {
        return false;
    };
    if matches!(
        rest,
        "data is not valid JSON"
            | "expected a JSON object"
            | "expected a JSON array"
            | "from must not be greater than to"
            | "fromTs must not be greater than toTs"
            | "since and after_seq cannot be used together"
    ) {
        return true;
    }
    let (path, rule) = match rest.split_once(' ') {
        Some(p) => p,
        None => return false,
    };
    if rule == "must be a JSON object" {
        return index_ok(path.strip_prefix('[').and_then(|p| p.strip_suffix(']')));
    }
    let field = match path.strip_prefix('[') {
        Some(p) => match p.split_once("].") {
            Some((i, f)) if index_ok(Some(i)) => f,
            _ => return false,
        },
        None => path,
    };
    FIELDS.contains(&field) && RULES.contains(&rule)
}

fn index_ok(i: Option<&str>) -> bool {
    i.is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

fn name_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 4096
}

/// Exercises a pattern-capable string the way the server does: compile once, then match.
fn try_pattern(text: &str) {
    if let Some(re) = pattern::compile(text) {
        let _ = re.is_match("dev-1 temp:22 state:flying é 😀\nline2 /a/b");
    }
}

/// The body of the JSON string JSON encoders write for `s` (the short escapes where JSON has
/// one, `\u00xx` in lowercase for the other control characters): the form the store keeps a
/// record's data in.
fn canonical_body(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whether a decoded value keeps the rule of its member's kind.
fn value_ok(kind: Kind, v: &Value<'_>) -> bool {
    match (kind, v) {
        (Kind::Name, Value::Text(s)) => name_ok(s),
        (Kind::OptName, Value::Text(s)) => name_ok(s),
        (Kind::Pattern | Kind::OptPattern, Value::Text(s)) => name_ok(s) || shaped_as_pattern(s),
        (Kind::OptStr | Kind::NonEmpty, Value::Text(s)) => !s.is_empty(),
        (Kind::Str | Kind::Raw, Value::Text(_)) => true,
        // A record's data kept as the body of its JSON string: exactly what a JSON encoder
        // writes for the text it stands for.
        (Kind::Str, Value::Escaped(body)) => v
            .string()
            .is_some_and(|text| canonical_body(&text) == *body),
        (Kind::OptName | Kind::OptPattern | Kind::OptStr | Kind::Raw, Value::Missing) => true,
        (Kind::Positive, Value::Int(i)) => *i > 0,
        (Kind::IntOrZero, Value::Int(_)) => true,
        (Kind::OptInt, Value::Int(_) | Value::Missing) => true,
        (Kind::OptCount, Value::Count(_) | Value::Missing) => true,
        (Kind::Flag, Value::Bool(_)) => true,
        _ => false,
    }
}

/// Checks one decoded request against its declaration's rules; exercises its patterns.
fn check_request(kind: MsgType, r: &Request<'_>) -> Result<(), String> {
    let bad = |what: String| Err(format!("{kind:?}: decoded request breaks a rule: {what}"));
    if r.kind() != kind {
        return bad(format!("decoded as {:?}", r.kind()));
    }
    let spec = kind.spec();
    let values = r.values();
    let n = spec.members.len();
    let count_ok = match spec.shape {
        Shape::Ignored => values.is_empty(),
        Shape::Object => values.len() == n,
        Shape::Array => n > 0 && values.len().is_multiple_of(n),
    };
    if !count_ok {
        return bad(format!("{} values for {n} members", values.len()));
    }
    for element in values.chunks(n.max(1)) {
        for (m, v) in spec.members.iter().zip(element) {
            if !value_ok(m.kind, v) {
                return bad(format!("{} = {v:?}", m.name));
            }
            if let (
                Kind::Name | Kind::OptName | Kind::Pattern | Kind::OptPattern | Kind::OptStr,
                Value::Text(t),
            ) = (m.kind, v)
            {
                try_pattern(t);
            }
        }
        for c in spec.checks {
            match (c, element) {
                (Check::NotAfter(a, b, _), e) => {
                    if let (Value::Int(x), Value::Int(y)) = (&e[*a], &e[*b]) {
                        if x > y {
                            return bad(format!(
                                "{} after {}",
                                spec.members[*a].name, spec.members[*b].name
                            ));
                        }
                    }
                }
                (Check::NotBoth(a, b, _), e) => {
                    if e[*a] != Value::Missing && e[*b] != Value::Missing {
                        return bad(format!(
                            "both {} and {}",
                            spec.members[*a].name, spec.members[*b].name
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs the server's decoding path on raw frame bytes and checks the invariants. Invalid UTF-8
/// never reaches the decoder (the connection is closed with 1007), so it is decoded lossily.
pub fn check_bytes(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    match envelope::parse(&text) {
        Err(e) => {
            if !ENVELOPE_ERRORS.contains(&e.message) {
                return Err(format!("undocumented envelope error {:?}", e.message));
            }
            let id_expected = e.message == BAD_TYPE || e.message == BAD_DATA;
            if e.id.is_some() != id_expected {
                return Err(format!("id presence wrong for {:?}", e.message));
            }
            if e.id.as_deref().is_some_and(str::is_empty) {
                return Err("empty id echoed".into());
            }
        }
        Ok(env) => {
            if env.id.is_empty() || env.kind.is_empty() || env.data.is_empty() {
                return Err("envelope accepted with an empty member".into());
            }
            // Decode the payload as every message type, not just the named one.
            for &kind in MsgType::ALL {
                match decode(kind, &env.data) {
                    Ok(r) => check_request(kind, &r)?,
                    Err(e) => {
                        let e = e.to_string();
                        if !documented_payload_error(&e) {
                            return Err(format!("{kind:?}: undocumented error {e:?}"));
                        }
                    }
                }
            }
        }
    }
    same_when_pending(&text)?;
    // Pattern-shaped text is also compiled directly.
    if text.starts_with('/') && text.len() < 64 * 1024 {
        try_pattern(&text);
    }
    Ok(())
}

/// The dispatcher's two readers agree: a `qry`/`qdoc` payload left pending for the answer cache
/// (`read_pending`) is the body of the envelope's `data` string as sent, and once read is what
/// `read` made of it; every other envelope, errors included, comes out of both alike.
fn same_when_pending(text: &str) -> Result<(), String> {
    let (now, later) = match (envelope::read(text), envelope::read_pending(text)) {
        (Ok(now), Ok(later)) => (now, later),
        (Err(now), Err(later)) if now == later => return Ok(()),
        (now, later) => {
            return Err(format!(
                "read and read_pending disagree: {:?} / {:?}",
                now.err(),
                later.err()
            ))
        }
    };
    if (&now.id, &now.kind) != (&later.id, &later.kind) || now.data.text() != later.data.text() {
        return Err("read_pending gave another id, type or data".into());
    }
    if let envelope::Data::Pending { escaped, at, .. } = &later.data {
        let body = text.get(at + 1..at + 1 + escaped.len());
        if body != Some(*escaped) || text.as_bytes().get(at + 1 + escaped.len()) != Some(&b'"') {
            return Err("a pending body is not the data string's body".into());
        }
    }
    let (now, later) = (now.data.settle(text), later.data.settle(text));
    if format!("{now:?}") != format!("{later:?}") {
        return Err("a pending payload settles otherwise than read reads it".into());
    }
    Ok(())
}

/// The seed corpus built into the generator (the files in fuzz/corpus/ are added to it).
pub fn builtin_corpus() -> Vec<Vec<u8>> {
    let frames = [
        r#"{"id":"i1","type":"ins","data":"[{\"ts\":100,\"doc\":\"dev-1\",\"data\":\"temp:20\",\"col\":\"sensors\"}]"}"#,
        r#"{"id":"q1","type":"qry","data":"{\"col\":\"sensors\",\"ts\":1000,\"doc\":\"/^dev-/\"}"}"#,
        r#"{"id":"d1","type":"qdoc","data":"{\"col\":\"sensors\",\"doc\":\"dev-1\",\"from\":0,\"to\":1000,\"reverse\":true,\"limit\":2,\"where\":\"/state:(flying|landed)/i\"}"}"#,
        r#"{"id":"c1","type":"cols","data":"{}"}"#,
        r#"{"id":"x1","type":"ddoc","data":"{\"col\":\"sensors\",\"doc\":\"probe-9\"}"}"#,
        r#"{"id":"r1","type":"drrng","data":"{\"col\":\"s\",\"doc\":\"d\",\"fromTs\":1,\"toTs\":9}"}"#,
        r#"{"id":"m1","type":"dmrec","data":"[{\"col\":\"s\",\"doc\":\"d\",\"ts\":1},{\"col\":\"s\",\"doc\":\"d\",\"ts\":\"2\"}]"}"#,
        r#"{"id":"v1","type":"sval","data":"{\"col\":\"config\",\"key\":\"region\",\"value\":\"eu\"}"}"#,
        r#"{"id":"gv1","type":"gvalues","data":"{\"col\":\"config\",\"key\":\"/^env[.]/\"}"}"#,
        r#"{"id":"k1","type":"keys","data":"{\"action\":\"add\",\"key\":\"ro-key\",\"scope\":\"Read-Only\"}"}"#,
        r#"{"id":"n1","type":"conn","data":"{}"}"#,
        r#"{"id":"a1","type":"auth","data":"x"}"#,
        r#"{"id":"e1","type":"qry","data":{"col":"s"}}"#,
        "[{},{},{},{},{},{},{},{}]",
        "/(?:a|b)*c{2,5}/ims",
    ];
    frames.iter().map(|f| f.as_bytes().to_vec()).collect()
}
