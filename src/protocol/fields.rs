//! Field rules of docs/protocol.md#how-field-values-are-read: how a JSON value becomes a field's
//! value, and the exact error text when it cannot.

use super::json::Scalar;
use super::pattern::is_pattern_shaped;
use std::borrow::Cow;
use std::fmt;

/// The longest name (collection, document, KV key, API key) in bytes.
pub const MAX_NAME_BYTES: usize = 4096;

/// Whether `s` passes the rule of a required name ([`Members::name`]): non-empty, at most
/// [`MAX_NAME_BYTES`]. For the one-pass readers, which decline what it refuses.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME_BYTES
}

/// A broken field rule: `invalid payload: <path> <rule>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub index: Option<usize>,
    pub field: &'static str,
    pub rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    NonEmptyString,
    String,
    PositiveInteger,
    NonNegativeInteger,
    Integer,
    Boolean,
    AtMost4096,
}

impl Rule {
    pub fn text(self) -> &'static str {
        match self {
            Rule::NonEmptyString => "must be a non-empty string",
            Rule::String => "must be a string",
            Rule::PositiveInteger => "must be a positive integer",
            Rule::NonNegativeInteger => "must be a non-negative integer",
            Rule::Integer => "must be an integer",
            Rule::Boolean => "must be a boolean",
            Rule::AtMost4096 => "must be at most 4096 bytes",
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "[{i}].{} {}", self.field, self.rule.text()),
            None => write!(f, "{} {}", self.field, self.rule.text()),
        }
    }
}

/// Reads the fields of one object, remembering the array index for error paths.
pub struct Fields<'s, 'a> {
    slots: &'s mut [Scalar<'a>],
    index: Option<usize>,
}

impl<'s, 'a> Fields<'s, 'a> {
    pub fn new(slots: &'s mut [Scalar<'a>], index: Option<usize>) -> Self {
        Fields { slots, index }
    }

    fn err(&self, field: &'static str, rule: Rule) -> FieldError {
        FieldError {
            index: self.index,
            field,
            rule,
        }
    }

    fn take(&mut self, slot: usize) -> Scalar<'a> {
        std::mem::take(&mut self.slots[slot])
    }

    /// A required, non-empty name of at most 4096 bytes.
    pub fn name(&mut self, slot: usize, field: &'static str) -> Result<Cow<'a, str>, FieldError> {
        match self.take(slot) {
            Scalar::Str(s) if s.is_empty() => Err(self.err(field, Rule::NonEmptyString)),
            Scalar::Str(s) if s.len() > MAX_NAME_BYTES => Err(self.err(field, Rule::AtMost4096)),
            Scalar::Str(s) => Ok(s),
            _ => Err(self.err(field, Rule::NonEmptyString)),
        }
    }

    /// A required, non-empty string without a length rule (`sval` value).
    pub fn non_empty(
        &mut self,
        slot: usize,
        field: &'static str,
    ) -> Result<Cow<'a, str>, FieldError> {
        match self.take(slot) {
            Scalar::Str(s) if !s.is_empty() => Ok(s),
            _ => Err(self.err(field, Rule::NonEmptyString)),
        }
    }

    /// A required string that may be empty (`ins` data).
    pub fn string(&mut self, slot: usize, field: &'static str) -> Result<Cow<'a, str>, FieldError> {
        match self.take(slot) {
            Scalar::Str(s) => Ok(s),
            _ => Err(self.err(field, Rule::String)),
        }
    }

    /// An optional string; absent, `null` and `""` all give `None`.
    pub fn opt_string(
        &mut self,
        slot: usize,
        field: &'static str,
    ) -> Result<Option<Cow<'a, str>>, FieldError> {
        match self.take(slot) {
            Scalar::Absent | Scalar::Null => Ok(None),
            Scalar::Str(s) if s.is_empty() => Ok(None),
            Scalar::Str(s) => Ok(Some(s)),
            _ => Err(self.err(field, Rule::String)),
        }
    }

    /// An optional name: like [`Self::opt_string`] plus the 4096-byte limit.
    pub fn opt_name(
        &mut self,
        slot: usize,
        field: &'static str,
    ) -> Result<Option<Cow<'a, str>>, FieldError> {
        let value = self.opt_string(slot, field)?;
        match value {
            Some(s) if s.len() > MAX_NAME_BYTES => Err(self.err(field, Rule::AtMost4096)),
            other => Ok(other),
        }
    }

    /// A required name, or a `/pattern/flags` of any length (a pattern's source has its own
    /// limit, past which it is taken literally, never refused).
    pub fn pattern(
        &mut self,
        slot: usize,
        field: &'static str,
    ) -> Result<Cow<'a, str>, FieldError> {
        match self.take(slot) {
            Scalar::Str(s) if !s.is_empty() && is_pattern_shaped(&s) => Ok(s),
            other => {
                self.slots[slot] = other;
                self.name(slot, field)
            }
        }
    }

    /// An optional [`Self::pattern`]: absent, `null` and `""` give `None`.
    pub fn opt_pattern(
        &mut self,
        slot: usize,
        field: &'static str,
    ) -> Result<Option<Cow<'a, str>>, FieldError> {
        match self.opt_string(slot, field)? {
            Some(s) if s.len() > MAX_NAME_BYTES && !is_pattern_shaped(&s) => {
                Err(self.err(field, Rule::AtMost4096))
            }
            other => Ok(other),
        }
    }

    /// A required integer greater than zero.
    pub fn positive(&mut self, slot: usize, field: &'static str) -> Result<i64, FieldError> {
        match to_integer(&self.take(slot)) {
            Some(v) if v > 0 => Ok(v),
            _ => Err(self.err(field, Rule::PositiveInteger)),
        }
    }

    /// An optional integer of at least zero; absent and `null` give `None`.
    pub fn opt_non_negative(
        &mut self,
        slot: usize,
        field: &'static str,
    ) -> Result<Option<u64>, FieldError> {
        let value = self.take(slot);
        if value.is_missing() {
            return Ok(None);
        }
        match to_integer(&value).map(u64::try_from) {
            Some(Ok(v)) => Ok(Some(v)),
            _ => Err(self.err(field, Rule::NonNegativeInteger)),
        }
    }

    /// An optional integer with a default.
    pub fn opt_integer(
        &mut self,
        slot: usize,
        field: &'static str,
        default: i64,
    ) -> Result<i64, FieldError> {
        let value = self.take(slot);
        if value.is_missing() {
            return Ok(default);
        }
        to_integer(&value).ok_or_else(|| self.err(field, Rule::Integer))
    }

    /// An optional boolean: `true`/`false`, or an integer (0 is false).
    pub fn opt_bool(&mut self, slot: usize, field: &'static str) -> Result<bool, FieldError> {
        match self.take(slot) {
            Scalar::Absent | Scalar::Null => Ok(false),
            Scalar::Bool(b) => Ok(b),
            Scalar::Int(i) => Ok(i != 0),
            Scalar::UInt(_) => Ok(true),
            _ => Err(self.err(field, Rule::Boolean)),
        }
    }

    /// The raw string of a slot, if it is one (used by `keys`, which has its own texts).
    pub fn raw_string(&mut self, slot: usize) -> Option<Cow<'a, str>> {
        match self.take(slot) {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The integer a JSON value stands for, under the rules of §2.4.
pub fn to_integer(value: &Scalar<'_>) -> Option<i64> {
    match value {
        Scalar::Int(i) => Some(*i),
        Scalar::Float(f) => float_to_i64(*f),
        Scalar::Str(s) => parse_digits(s),
        _ => None,
    }
}

fn float_to_i64(f: f64) -> Option<i64> {
    // The range is (-2^63, 2^63): an integer literal just below i64::MIN reaches us as the
    // float -2^63 (the parser only keeps integers that fit), and must be refused.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let t = f.trunc();
    (t.is_finite() && t > -LIMIT && t < LIMIT).then_some(t as i64)
}

fn parse_digits(s: &str) -> Option<i64> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_the_coercion_table() {
        assert_eq!(to_integer(&Scalar::Int(5)), Some(5));
        assert_eq!(to_integer(&Scalar::Float(600.9)), Some(600));
        assert_eq!(to_integer(&Scalar::Float(-1.9)), Some(-1));
        assert_eq!(to_integer(&Scalar::Float(9.3e18)), None);
        assert_eq!(
            to_integer(&Scalar::Float(-9_223_372_036_854_775_808.0)),
            None
        );
        assert_eq!(to_integer(&Scalar::Float(f64::NAN)), None);
        assert_eq!(to_integer(&Scalar::Str(" +700 ".into())), Some(700));
        assert_eq!(to_integer(&Scalar::Str("-7".into())), Some(-7));
        assert_eq!(to_integer(&Scalar::Str("12abc".into())), None);
        assert_eq!(to_integer(&Scalar::Str("".into())), None);
        assert_eq!(to_integer(&Scalar::Str("+".into())), None);
        assert_eq!(
            to_integer(&Scalar::Str("99999999999999999999".into())),
            None
        );
        assert_eq!(to_integer(&Scalar::UInt(9223372036854775808)), None);
        assert_eq!(to_integer(&Scalar::Bool(true)), None);
        assert_eq!(to_integer(&Scalar::Null), None);
    }

    #[test]
    fn names_and_paths() {
        let long = "x".repeat(4097);
        let mut slots = [
            Scalar::Str(long.into()),
            Scalar::Str("".into()),
            Scalar::Int(3),
        ];
        let mut f = Fields::new(&mut slots, Some(2));
        assert_eq!(
            f.name(0, "col").unwrap_err().to_string(),
            "[2].col must be at most 4096 bytes"
        );
        assert_eq!(
            f.name(1, "doc").unwrap_err().to_string(),
            "[2].doc must be a non-empty string"
        );
        assert_eq!(
            f.string(2, "data").unwrap_err().to_string(),
            "[2].data must be a string"
        );
    }

    #[test]
    fn booleans() {
        let mut slots = [
            Scalar::Int(0),
            Scalar::Int(2),
            Scalar::Str("yes".into()),
            Scalar::Float(1.0),
        ];
        let mut f = Fields::new(&mut slots, None);
        assert_eq!(f.opt_bool(0, "reverse"), Ok(false));
        assert_eq!(f.opt_bool(1, "reverse"), Ok(true));
        assert_eq!(
            f.opt_bool(2, "reverse").unwrap_err().to_string(),
            "reverse must be a boolean"
        );
        assert!(f.opt_bool(3, "reverse").is_err());
    }
}
