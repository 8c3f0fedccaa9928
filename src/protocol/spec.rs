//! What every payload declares about itself, next to its decoder: the shape of `data`, its
//! members in the order their rules are checked, and the rules that tie two members together.
//! The message table (`ops::messages`) requires a [`Payload`] implementation of each entry's
//! payload type, so a message type cannot exist without a decoder and a declaration; the
//! fuzzer's generator and the table's round-trip test read the declarations to build their
//! inputs and to predict each outcome.

use super::json::Named;
use super::PayloadError;

/// The most members a payload declares (what the readers keep slots for).
pub const MAX_MEMBERS: usize = 8;

/// A payload type: how `data` is decoded into it, what it declares, and the values it holds.
/// Payloads are declared with `protocol::declare::payload!`, which implements this trait from
/// the members and rules written once.
pub trait Payload<'a>: Sized {
    /// The shape and members of `data`.
    const SPEC: Spec;

    /// Reads `data`, checking the members' rules in [`Spec::members`] order (with
    /// `protocol::members::Members`, which takes each member's name and rule from [`Self::SPEC`]).
    fn decode(data: &'a str) -> Result<Self, PayloadError>;

    /// The decoded values, one per member in declaration order (for an array, element after
    /// element): what the fuzzer compares with its own prediction.
    fn values(&self) -> Vec<Value<'_>>;
}

/// The declaration of one payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub shape: Shape,
    /// The members of the object (of each element, for an array).
    pub members: &'static [Member],
    /// Rules between two members, checked once every member is valid.
    pub checks: &'static [Check],
}

/// What `data` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Never looked at.
    Ignored,
    /// A JSON object.
    Object,
    /// A JSON array of objects.
    Array,
}

/// One member and the rule its value follows (docs/protocol.md#how-field-values-are-read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub name: &'static str,
    pub kind: Kind,
}

impl Named for Member {
    fn name(&self) -> &str {
        self.name
    }
}

/// How a member's value is read; the decoded [`Value`] of each kind is given in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A name: a non-empty string of at most 4096 bytes (`Text`).
    Name,
    /// A name or nothing: absent, `null` and `""` read as nothing (`Text` or `Missing`).
    OptName,
    /// A name, or a `/pattern/flags` of any length (a pattern has its own limit, past which it
    /// is taken literally: docs/protocol.md#patternflags) (`Text`).
    Pattern,
    /// A [`Kind::Pattern`] or nothing, read as [`Kind::OptName`] is (`Text` or `Missing`).
    OptPattern,
    /// Any string (`Text`; a record's data may come as `Escaped`, the body of its JSON string).
    Str,
    /// A string or nothing: absent, `null` and `""` read as nothing (`Text` or `Missing`).
    OptStr,
    /// A non-empty string of any length (`Text`).
    NonEmpty,
    /// An integer above 0 (`Int`).
    Positive,
    /// An integer; absent or `null` reads as 0 (`Int`).
    IntOrZero,
    /// An integer or nothing (`Int` or `Missing`).
    OptInt,
    /// A non-negative integer or nothing (`Count` or `Missing`).
    OptCount,
    /// A boolean (or a number, true unless 0); absent or `null` reads as false (`Bool`).
    Flag,
    /// Kept as given when it is a string, left to the operation to judge (`Text` or `Missing`).
    Raw,
}

/// A rule between two members (indexes into [`Spec::members`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The first integer must not be greater than the second.
    NotAfter(usize, usize, PayloadError),
    /// The two members must not both be given.
    NotBoth(usize, usize, PayloadError),
}

/// One decoded member value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'v> {
    Missing,
    Text(&'v str),
    /// A string given by the body of its JSON literal, escape sequences and all (a record's
    /// data kept in the form the store takes; one without escapes is reported as `Text`).
    Escaped(&'v str),
    Int(i64),
    Count(u64),
    Bool(bool),
}

impl<'v> Value<'v> {
    /// `Text` for a string, `Missing` for none.
    pub fn text(s: Option<&'v str>) -> Value<'v> {
        s.map_or(Value::Missing, Value::Text)
    }

    /// The string of a `Text` or `Escaped` value (un-escaped), `None` for the others.
    pub fn string(&self) -> Option<std::borrow::Cow<'v, str>> {
        match *self {
            Value::Text(s) => Some(std::borrow::Cow::Borrowed(s)),
            Value::Escaped(body) => {
                let mut out = String::with_capacity(body.len());
                crate::text::unescape_into(&mut out, body);
                Some(std::borrow::Cow::Owned(out))
            }
            _ => None,
        }
    }

    /// `Count` for a number, `Missing` for none.
    pub fn count(n: Option<u64>) -> Value<'v> {
        n.map_or(Value::Missing, Value::Count)
    }
}
