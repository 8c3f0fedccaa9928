//! Lazy JSON reading: a JSON object is read straight into a fixed set of slots, one per field
//! the message type knows, without building a `serde_json::Value`. Unknown members are skipped;
//! when a member repeats, the last occurrence wins.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// One JSON value as far as a field validator needs to know it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Scalar<'a> {
    /// The member was not present.
    #[default]
    Absent,
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An object or an array (its content is not kept).
    Compound,
}

impl<'a> Scalar<'a> {
    /// `null` is treated exactly like an absent member.
    pub fn is_missing(&self) -> bool {
        matches!(self, Scalar::Absent | Scalar::Null)
    }
}

/// Why a JSON text could not be read in the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// The text is not JSON at all.
    NotJson,
    /// Valid JSON, but not of the expected top-level kind.
    WrongKind,
}

/// What a slot is called: the key of the member it takes.
pub trait Named: Sync + 'static {
    fn name(&self) -> &str;
}

impl Named for &'static str {
    fn name(&self) -> &str {
        self
    }
}

/// Reads a JSON object into `N` slots named by `names` (slots past the names stay absent; names
/// past `N` are not looked for).
pub fn read_object<'a, T: Named, const N: usize>(
    text: &'a str,
    names: &'static [T],
) -> Result<[Scalar<'a>; N], ShapeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let shape = de
        .deserialize_any(ObjectSlots::<T, N> { names })
        .map_err(|_| ShapeError::NotJson)?;
    de.end().map_err(|_| ShapeError::NotJson)?;
    shape.ok_or(ShapeError::WrongKind)
}

/// Reads a JSON array whose elements should be objects; an element that is not an object is
/// `None`, so the caller can report its index in validation order. Only the tests use it: the
/// request readers walk arrays with `for_each_object_in_array`.
#[cfg(test)]
#[allow(clippy::type_complexity)]
pub fn read_array_of_objects<'a, const N: usize>(
    text: &'a str,
    names: &'static [&'static str],
) -> Result<Vec<Option<[Scalar<'a>; N]>>, ShapeError> {
    let mut items = Vec::new();
    for_each_object_in_array(text, names, |_, item| items.push(item))?;
    Ok(items)
}

/// Reads a JSON array whose elements should be objects, handing each element (its index, and
/// `None` when it is not an object) to `each` as soon as it is read, so that nothing per
/// element has to be kept: a payload of millions of tiny elements costs no memory beyond what
/// `each` keeps. The whole text is still read, so a syntax error anywhere is reported as
/// [`ShapeError::NotJson`] (which takes precedence over element errors).
pub fn for_each_object_in_array<'a, T: Named, const N: usize>(
    text: &'a str,
    names: &'static [T],
    each: impl FnMut(usize, Option<[Scalar<'a>; N]>),
) -> Result<(), ShapeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let shape = de
        .deserialize_any(ArrayOfObjects { names, each })
        .map_err(|_| ShapeError::NotJson)?;
    de.end().map_err(|_| ShapeError::NotJson)?;
    shape.ok_or(ShapeError::WrongKind)
}

/// Accepts any JSON value; keeps only what a scalar field needs.
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Scalar::Int(i),
            Err(_) => Scalar::UInt(v),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// Maps an object key to the index of the slot that wants it (among the first `N` names).
struct KeyIndex<T: 'static, const N: usize> {
    names: &'static [T],
}

impl<'de, T: Named, const N: usize> DeserializeSeed<'de> for KeyIndex<T, N> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T: Named, const N: usize> Visitor<'de> for KeyIndex<T, N> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.names.iter().take(N).position(|n| n.name() == v))
    }
}

/// Visitor methods for the scalar JSON values a shape-reading visitor does not want: each is
/// "some other kind of value" (`Ok(None)`).
macro_rules! scalars_are_other_kinds {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
}

/// An object read into slots, or `None` for any other JSON value (consumed whole).
struct ObjectSlots<T: 'static, const N: usize> {
    names: &'static [T],
}

impl<'de, T: Named, const N: usize> DeserializeSeed<'de> for ObjectSlots<T, N> {
    type Value = Option<[Scalar<'de>; N]>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Named, const N: usize> Visitor<'de> for ObjectSlots<T, N> {
    type Value = Option<[Scalar<'de>; N]>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: [Scalar<'de>; N] = std::array::from_fn(|_| Scalar::Absent);
        while let Some(idx) = map.next_key_seed(KeyIndex::<T, N> { names: self.names })? {
            match idx {
                Some(i) => slots[i] = map.next_value::<Scalar<'de>>()?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(slots))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    scalars_are_other_kinds!();
}

/// An array whose elements are read as [`ObjectSlots`] and handed to `each` one by one;
/// `None` for any non-array value.
struct ArrayOfObjects<T: 'static, const N: usize, F> {
    names: &'static [T],
    each: F,
}

impl<'de, T: Named, const N: usize, F: FnMut(usize, Option<[Scalar<'de>; N]>)> Visitor<'de>
    for ArrayOfObjects<T, N, F>
{
    type Value = Option<()>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut i = 0;
        while let Some(item) = seq.next_element_seed(ObjectSlots::<T, N> { names: self.names })? {
            (self.each)(i, item);
            i += 1;
        }
        Ok(Some(()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    scalars_are_other_kinds!();
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    #[test]
    fn object_slots_take_known_members_last_wins() {
        let s =
            read_object::<_, 3>(r#"{"a":1,"x":{"deep":[1,2]},"b":"t\"x","a":2}"#, &NAMES).unwrap();
        assert_eq!(s[0], Scalar::Int(2));
        assert_eq!(s[1], Scalar::Str(Cow::Owned("t\"x".into())));
        assert_eq!(s[2], Scalar::Absent);
    }

    #[test]
    fn borrowed_strings_when_unescaped() {
        let s = read_object::<_, 3>(r#"{"c":"plain"}"#, &NAMES).unwrap();
        assert!(matches!(s[2], Scalar::Str(Cow::Borrowed("plain"))));
    }

    #[test]
    fn kinds_and_errors() {
        assert_eq!(
            read_object::<_, 3>("[1]", &NAMES),
            Err(ShapeError::WrongKind)
        );
        assert_eq!(
            read_object::<_, 3>("null", &NAMES),
            Err(ShapeError::WrongKind)
        );
        assert_eq!(read_object::<_, 3>("{", &NAMES), Err(ShapeError::NotJson));
        assert_eq!(
            read_object::<_, 3>("{} x", &NAMES),
            Err(ShapeError::NotJson)
        );
        assert_eq!(
            read_array_of_objects::<3>("{}", &NAMES),
            Err(ShapeError::WrongKind)
        );
        assert_eq!(
            read_array_of_objects::<3>("[{}", &NAMES),
            Err(ShapeError::NotJson)
        );
        let v = read_array_of_objects::<3>(r#"[{"a":null},5]"#, &NAMES).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].as_ref().map(|s| s[0].clone()), Some(Scalar::Null));
        assert!(v[1].is_none());
    }

    #[test]
    fn numbers() {
        let s = read_object::<_, 3>(r#"{"a":9223372036854775808,"b":1.5,"c":-3}"#, &NAMES).unwrap();
        assert_eq!(s[0], Scalar::UInt(9223372036854775808));
        assert_eq!(s[1], Scalar::Float(1.5));
        assert_eq!(s[2], Scalar::Int(-3));
    }

    #[test]
    fn deep_nesting_is_skipped_without_recursion() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            read_object::<_, 3>(&deep, &NAMES).unwrap()[0],
            Scalar::Compound
        );
        let top = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            read_array_of_objects::<3>(&top, &NAMES).unwrap(),
            vec![None]
        );
        let broken = format!("{{\"a\":{}", "[".repeat(100_000));
        assert_eq!(
            read_object::<_, 3>(&broken, &NAMES),
            Err(ShapeError::NotJson)
        );
    }
}
