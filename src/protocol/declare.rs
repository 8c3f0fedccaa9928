//! Declaring a payload: the [`payload!`] macro and the two traits its output rests on.
//!
//! A payload is written once, as its members in the order docs/protocol.md lists them, each
//! with the [`Kind`](super::spec::Kind) of rule its value follows, plus the rules between two
//! members. From that one list the macro makes the struct (each field's type follows from its
//! kind), its [`Payload`] implementation (declaration, decoder, values) and its
//! [`IntoStatic`](super::into_static::IntoStatic), so the declaration the fuzzer and the message
//! table's tests read and the decoder the server runs cannot drift apart.

use super::fields::FieldError;
use super::members::Members;
use super::spec::{Check, Member, Payload, Shape, Spec, Value};
use super::PayloadError;
use std::borrow::Cow;

/// An object payload declared with [`payload!`]. Each one is a payload on its own (`data` is
/// one object) and as the element of a `Vec` (`data` is an array of such objects).
pub trait Declared<'a>: Sized {
    /// The members, in declaration order.
    const MEMBERS: &'static [Member];
    /// The rules between two members.
    const CHECKS: &'static [Check];

    /// Reads one object: every member in declaration order, then the rules between members.
    fn read(f: &mut Members<'a>) -> Result<Self, PayloadError>;

    /// The decoded value of every member, in declaration order.
    fn push_values<'v>(&'v self, out: &mut Vec<Value<'v>>);

    /// A one-pass reader of a whole array of these, for a shape the SDKs send often; `None`
    /// hands the input to the general reader, which decides and words any error.
    fn fast_array(_data: &'a str) -> Option<Vec<Self>> {
        None
    }

    /// A one-pass reader of one of these as a whole payload, for a shape the SDKs send often;
    /// `None` hands the input to the general reader, which decides and words any error.
    fn fast_object(_data: &'a str) -> Option<Self> {
        None
    }
}

impl<'a, T: Declared<'a>> Payload<'a> for T {
    const SPEC: Spec = Spec {
        shape: Shape::Object,
        members: T::MEMBERS,
        checks: T::CHECKS,
    };

    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        match T::fast_object(data) {
            Some(payload) => Ok(payload),
            None => T::read(&mut Members::object(data, &Self::SPEC)?),
        }
    }

    fn values(&self) -> Vec<Value<'_>> {
        let mut out = Vec::new();
        self.push_values(&mut out);
        out
    }
}

impl<'a, T: Declared<'a>> Payload<'a> for Vec<T> {
    const SPEC: Spec = Spec {
        shape: Shape::Array,
        members: T::MEMBERS,
        checks: T::CHECKS,
    };

    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        match T::fast_array(data) {
            Some(items) => Ok(items),
            None => Members::array(data, &Self::SPEC, T::read),
        }
    }

    fn values(&self) -> Vec<Value<'_>> {
        let mut out = Vec::new();
        for item in self {
            item.push_values(&mut out);
        }
        out
    }
}

/// The Rust type of a member's field: how it is read (the getter of [`Members`] for its family
/// of kinds, which applies the member's declared rule) and the [`Value`] it reports.
pub trait Field<'a>: Sized {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError>;
    fn value(&self) -> Value<'_>;
}

impl<'a> Field<'a> for Cow<'a, str> {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError> {
        f.text(i)
    }
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<'a> Field<'a> for Option<Cow<'a, str>> {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError> {
        f.opt_text(i)
    }
    fn value(&self) -> Value<'_> {
        Value::text(self.as_deref())
    }
}

impl<'a> Field<'a> for i64 {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError> {
        f.int(i)
    }
    fn value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl<'a> Field<'a> for Option<i64> {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError> {
        f.opt_int(i)
    }
    fn value(&self) -> Value<'_> {
        self.map_or(Value::Missing, Value::Int)
    }
}

impl<'a> Field<'a> for Option<u64> {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError> {
        f.count(i)
    }
    fn value(&self) -> Value<'_> {
        Value::count(*self)
    }
}

impl<'a> Field<'a> for bool {
    fn read(f: &mut Members<'a>, i: usize) -> Result<Self, FieldError> {
        f.flag(i)
    }
    fn value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}

/// Declares a payload type from its members and rules.
///
/// ```ignore
/// payload! {
///     /// `qdoc`: …
///     pub struct Qdoc {
///         col: Name,
///         from: IntOrZero,
///         to: Positive,
///         where_ as "where": OptStr,
///     }
///     rules { NotAfter(from, to) => FromAfterTo }
/// }
/// ```
///
/// Each member is `field: Kind` (the wire name is the field's name) or `field as "wire": Kind`;
/// the field's type follows from the kind (`Cow<str>`, `Option<Cow<str>>`, `i64`,
/// `Option<i64>`, `Option<u64>` or `bool`). `rules` names the members of each
/// [`Check`](super::spec::Check) and the [`PayloadError`](super::PayloadError) variant it
/// answers. `fast_array = path;` gives the one-pass reader of an array of them, `fast_object =
/// path;` that of one of them as a whole payload. A unit struct
/// (`pub struct Empty;`) is a payload whose `data` is never looked at.
macro_rules! payload {
    (@wire $field:ident) => { stringify!($field) };
    (@wire $field:ident $wire:literal) => { $wire };

    (@type Name) => { ::std::borrow::Cow<'a, str> };
    (@type Str) => { ::std::borrow::Cow<'a, str> };
    (@type NonEmpty) => { ::std::borrow::Cow<'a, str> };
    (@type OptName) => { ::std::option::Option<::std::borrow::Cow<'a, str>> };
    (@type Pattern) => { ::std::borrow::Cow<'a, str> };
    (@type OptPattern) => { ::std::option::Option<::std::borrow::Cow<'a, str>> };
    (@type OptStr) => { ::std::option::Option<::std::borrow::Cow<'a, str>> };
    (@type Raw) => { ::std::option::Option<::std::borrow::Cow<'a, str>> };
    (@type Positive) => { i64 };
    (@type IntOrZero) => { i64 };
    (@type OptInt) => { ::std::option::Option<i64> };
    (@type OptCount) => { ::std::option::Option<u64> };
    (@type Flag) => { bool };
    // A record's `data`: read as a `Str`, kept escaped when it was sent in the stored form.
    (@type RecordData) => { $crate::protocol::record_data::RecordData<'a> };

    (@kind RecordData) => { $crate::protocol::spec::Kind::Str };
    (@kind $kind:ident) => { $crate::protocol::spec::Kind::$kind };

    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        $vis struct $name;

        impl<'a> $crate::protocol::spec::Payload<'a> for $name {
            const SPEC: $crate::protocol::spec::Spec = $crate::protocol::spec::Spec {
                shape: $crate::protocol::spec::Shape::Ignored,
                members: &[],
                checks: &[],
            };
            fn decode(_data: &'a str) -> Result<Self, $crate::protocol::PayloadError> {
                Ok($name)
            }
            fn values(&self) -> Vec<$crate::protocol::spec::Value<'_>> {
                Vec::new()
            }
        }

        impl $crate::protocol::into_static::IntoStatic for $name {
            type Static = $name;
            fn into_static(self) -> $name {
                self
            }
        }
    };

    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident $(as $wire:literal)? : $kind:ident
            ),+ $(,)?
        }
        $(rules { $($rule:ident($a:ident, $b:ident) => $error:ident),* $(,)? })?
        $(fast_array = $fast:path;)?
        $(fast_object = $fast_object:path;)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name<'a> {
            $(
                $(#[$field_meta])*
                pub $field: $crate::protocol::declare::payload!(@type $kind),
            )+
        }

        impl<'a> $crate::protocol::declare::Declared<'a> for $name<'a> {
            const MEMBERS: &'static [$crate::protocol::spec::Member] = &[$(
                $crate::protocol::spec::Member {
                    name: $crate::protocol::declare::payload!(@wire $field $($wire)?),
                    kind: $crate::protocol::declare::payload!(@kind $kind),
                },
            )+];

            const CHECKS: &'static [$crate::protocol::spec::Check] = {
                /// The position of each member, for the rules.
                #[allow(non_camel_case_types, dead_code)]
                enum At {
                    $($field,)+
                }
                &[$($(
                    $crate::protocol::spec::Check::$rule(
                        At::$a as usize,
                        At::$b as usize,
                        $crate::protocol::PayloadError::$error,
                    ),
                )*)?]
            };

            fn read(
                f: &mut $crate::protocol::members::Members<'a>,
            ) -> Result<Self, $crate::protocol::PayloadError> {
                let mut at = 0;
                let mut next = || {
                    at += 1;
                    at - 1
                };
                // Fields are evaluated in the order written: the declaration order.
                let payload = $name {
                    $($field: $crate::protocol::declare::Field::read(f, next())?,)+
                };
                f.checks()?;
                Ok(payload)
            }

            fn push_values<'v>(&'v self, out: &mut Vec<$crate::protocol::spec::Value<'v>>) {
                $(out.push($crate::protocol::declare::Field::value(&self.$field));)+
            }

            $(
                fn fast_array(data: &'a str) -> Option<Vec<Self>> {
                    $fast(data)
                }
            )?

            $(
                fn fast_object(data: &'a str) -> Option<Self> {
                    $fast_object(data)
                }
            )?
        }

        const _: () = assert!(
            <$name<'static> as $crate::protocol::declare::Declared<'static>>::MEMBERS.len()
                <= $crate::protocol::spec::MAX_MEMBERS,
            "more members than the readers keep slots for"
        );

        impl $crate::protocol::into_static::IntoStatic for $name<'_> {
            type Static = $name<'static>;
            fn into_static(self) -> $name<'static> {
                $name {
                    $($field: $crate::protocol::into_static::IntoStatic::into_static(self.$field),)+
                }
            }
        }
    };
}

pub(crate) use payload;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::into_static::IntoStatic;
    use crate::protocol::spec::Kind;

    payload! {
        /// Every family of kinds, a renamed member and both rules.
        struct Sample {
            name: Name,
            note as "the note": OptStr,
            low: IntOrZero,
            high as "HIGH": Positive,
            this: OptInt,
            that: OptInt,
            count: OptCount,
            flag: Flag,
        }
        rules {
            NotAfter(low, high) => FromAfterTo,
            NotBoth(this, that) => SinceWithAfterSeq,
        }
    }

    #[test]
    fn the_declaration_is_the_member_list() {
        let spec = <Sample as Payload>::SPEC;
        assert_eq!(spec.shape, Shape::Object);
        let members: Vec<_> = spec.members.iter().map(|m| (m.name, m.kind)).collect();
        assert_eq!(
            members,
            [
                ("name", Kind::Name),
                ("the note", Kind::OptStr),
                ("low", Kind::IntOrZero),
                ("HIGH", Kind::Positive),
                ("this", Kind::OptInt),
                ("that", Kind::OptInt),
                ("count", Kind::OptCount),
                ("flag", Kind::Flag),
            ]
        );
        assert_eq!(
            spec.checks,
            [
                Check::NotAfter(2, 3, PayloadError::FromAfterTo),
                Check::NotBoth(4, 5, PayloadError::SinceWithAfterSeq),
            ]
        );
        assert_eq!(<Vec<Sample> as Payload>::SPEC.shape, Shape::Array);
    }

    #[test]
    fn decodes_by_the_declaration_and_reports_values_in_its_order() {
        let data = r#"{"flag":1,"HIGH":9,"name":"n","the note":"x","low":2,"that":5,"count":3}"#;
        let s = Sample::decode(data).unwrap();
        assert_eq!(
            s.values(),
            [
                Value::Text("n"),
                Value::Text("x"),
                Value::Int(2),
                Value::Int(9),
                Value::Missing,
                Value::Int(5),
                Value::Count(3),
                Value::Bool(true),
            ]
        );
        let kept: Sample<'static> = s.clone().into_static();
        assert_eq!(kept, s);
        let err = |d| Sample::decode(d).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"name":"n","low":10,"HIGH":9}"#),
            "invalid payload: from must not be greater than to"
        );
        assert_eq!(
            err(r#"{"name":"n","HIGH":9,"this":1,"that":2}"#),
            "invalid payload: since and after_seq cannot be used together"
        );
        assert_eq!(
            err(r#"{"name":"n","the note":5,"HIGH":9}"#),
            "invalid payload: the note must be a string"
        );
        assert_eq!(
            <Vec<Sample>>::decode(r#"[{"name":"n","HIGH":1},{"name":"n"}]"#)
                .unwrap_err()
                .to_string(),
            "invalid payload: [1].HIGH must be a positive integer"
        );
    }
}
