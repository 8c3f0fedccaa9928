//! Reading a payload by its declaration: the name and the rule of each member come from the
//! payload's [`Spec`], so a decoder only says which member goes to which field of its struct,
//! and the cross-member rules are applied from the declaration too.

use super::fields::{FieldError, Fields};
use super::json::{for_each_object_in_array, read_object, Scalar, ShapeError};
use super::spec::{Check, Kind, Spec, MAX_MEMBERS};
use super::PayloadError;
use std::borrow::Cow;

/// The members of one object of a declared payload, read and awaiting their rules.
///
/// Each getter applies the rule of the member's declared [`Kind`]; a getter of another family
/// than the declared kind reads the member as the getter's strictest kind. No decoder does
/// that: the round-trip test of the message table decodes a sample of every declaration through
/// every getter call, and the fuzzer compares each decoded value with its declaration.
pub(crate) struct Members<'a> {
    slots: [Scalar<'a>; MAX_MEMBERS],
    spec: &'static Spec,
    /// The array index of this object, for error paths.
    index: Option<usize>,
    /// Which members were given (neither absent nor `null`), for [`Check::NotBoth`].
    given: [bool; MAX_MEMBERS],
    /// The integers read so far, for [`Check::NotAfter`].
    ints: [Option<i64>; MAX_MEMBERS],
}

fn shape_error(e: ShapeError, wrong_kind: PayloadError) -> PayloadError {
    match e {
        ShapeError::NotJson => PayloadError::NotJson,
        ShapeError::WrongKind => wrong_kind,
    }
}

impl<'a> Members<'a> {
    fn new(slots: [Scalar<'a>; MAX_MEMBERS], spec: &'static Spec, index: Option<usize>) -> Self {
        let given = std::array::from_fn(|i| !slots[i].is_missing());
        Members {
            slots,
            spec,
            index,
            given,
            ints: [None; MAX_MEMBERS],
        }
    }

    /// Reads `data`, which must be a JSON object, into the members of `spec`.
    pub fn object(data: &'a str, spec: &'static Spec) -> Result<Self, PayloadError> {
        let slots = read_object(data, spec.members)
            .map_err(|e| shape_error(e, PayloadError::ExpectedObject))?;
        Ok(Members::new(slots, spec, None))
    }

    /// Reads `data`, which must be a JSON array of objects, handing each element's members to
    /// `each`. Elements are validated as they are read and only valid ones are kept: after the
    /// first invalid element the rest is only parsed (a syntax error further on still wins), so
    /// a huge array of bad elements costs no memory per element.
    pub fn array<T>(
        data: &'a str,
        spec: &'static Spec,
        mut each: impl FnMut(&mut Members<'a>) -> Result<T, PayloadError>,
    ) -> Result<Vec<T>, PayloadError> {
        let mut out = Vec::new();
        let mut first_error = None;
        for_each_object_in_array(data, spec.members, |i, item| {
            if first_error.is_some() {
                return;
            }
            match item {
                None => first_error = Some(PayloadError::ElementNotObject(i)),
                Some(slots) => match each(&mut Members::new(slots, spec, Some(i))) {
                    Ok(t) => out.push(t),
                    Err(e) => first_error = Some(e),
                },
            }
        })
        .map_err(|e| shape_error(e, PayloadError::ExpectedArray))?;
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The rules of `spec` between two members; call once every member is read.
    pub fn checks(&self) -> Result<(), PayloadError> {
        for check in self.spec.checks {
            let broken = match check {
                Check::NotAfter(a, b, _) => matches!(
                    (self.ints.get(*a), self.ints.get(*b)),
                    (Some(Some(x)), Some(Some(y))) if x > y
                ),
                Check::NotBoth(a, b, _) => {
                    self.given.get(*a) == Some(&true) && self.given.get(*b) == Some(&true)
                }
            };
            if broken {
                let (Check::NotAfter(_, _, e) | Check::NotBoth(_, _, e)) = check;
                return Err(e.clone());
            }
        }
        Ok(())
    }

    fn member(&mut self, i: usize) -> (Fields<'_, 'a>, &'static str, Kind) {
        let m = self.spec.members[i];
        (Fields::new(&mut self.slots, self.index), m.name, m.kind)
    }

    fn note(&mut self, i: usize, v: Result<i64, FieldError>) -> Result<i64, FieldError> {
        if let (Ok(n), Some(slot)) = (&v, self.ints.get_mut(i)) {
            *slot = Some(*n);
        }
        v
    }

    /// A member declared `Name`, `Pattern`, `Str` or `NonEmpty`.
    pub fn text(&mut self, i: usize) -> Result<Cow<'a, str>, FieldError> {
        let (mut f, name, kind) = self.member(i);
        match kind {
            Kind::Str => f.string(i, name),
            Kind::NonEmpty => f.non_empty(i, name),
            Kind::Pattern => f.pattern(i, name),
            _ => f.name(i, name),
        }
    }

    /// A member declared `OptName`, `OptPattern`, `OptStr` or `Raw`.
    pub fn opt_text(&mut self, i: usize) -> Result<Option<Cow<'a, str>>, FieldError> {
        let (mut f, name, kind) = self.member(i);
        match kind {
            Kind::OptStr => f.opt_string(i, name),
            Kind::OptPattern => f.opt_pattern(i, name),
            Kind::Raw => Ok(f.raw_string(i)),
            _ => f.opt_name(i, name),
        }
    }

    /// A member declared `Positive` or `IntOrZero`.
    pub fn int(&mut self, i: usize) -> Result<i64, FieldError> {
        let (mut f, name, kind) = self.member(i);
        let v = match kind {
            Kind::IntOrZero => f.opt_integer(i, name, 0),
            _ => f.positive(i, name),
        };
        self.note(i, v)
    }

    /// A member declared `OptInt`: `None` when absent or `null`.
    pub fn opt_int(&mut self, i: usize) -> Result<Option<i64>, FieldError> {
        let given = self.given.get(i) == Some(&true);
        let (mut f, name, _) = self.member(i);
        let v = f.opt_integer(i, name, 0);
        let v = self.note(i, v)?;
        Ok(given.then_some(v))
    }

    /// A member declared `OptCount`.
    pub fn count(&mut self, i: usize) -> Result<Option<u64>, FieldError> {
        let (mut f, name, _) = self.member(i);
        f.opt_non_negative(i, name)
    }

    /// A member declared `Flag`.
    pub fn flag(&mut self, i: usize) -> Result<bool, FieldError> {
        let (mut f, name, _) = self.member(i);
        f.opt_bool(i, name)
    }
}
