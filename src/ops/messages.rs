//! The message table: the one declaration of every message type. Each line gives the wire name,
//! the permission it needs, its payload type and the operation that serves it; the type enum,
//! the name lookup, the permission, decoding and dispatch are all generated from it. A payload
//! type implements [`Payload`] (its decoder and its declaration, [`Payload::SPEC`]) — the table
//! does not compile without one — and the fuzzer's generator and the round-trip test below
//! iterate [`MsgType::ALL`] and read each type's declaration through [`MsgType::spec`]. Adding
//! a message type is one line here plus its own files, its payload declared with `payload!`
//! (docs/architecture.md, "Where to add things", "A message type").
//!
//! `auth` is not in the table: the server knows the name only to refuse it with its own text
//! (see `server::dispatch`), so it never decodes to a request.

use super::retention::{self, Sret};
use super::subs::{self, Sub, Unsub};
use super::{admin, deletes, kv, records, Ctx, OpError};
use crate::auth::Permission;
use crate::protocol::into_static::IntoStatic;
use crate::protocol::payload::{
    Col, ColKey, ColKeys, Ddoc, Drrng, Empty, Keys, NewRecord, Qdoc, Qry, RecordRef, Sval,
};
use crate::protocol::reply::Reply;
use crate::protocol::spec::{Payload, Spec, Value};
use crate::protocol::PayloadError;

macro_rules! messages {
    ($(
        $variant:ident $name:literal $permission:ident $payload:ty => $op:path;
    )*) => {
        /// Every request type the server serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MsgType {
            $($variant,)*
        }

        impl MsgType {
            /// Every message type, in table order.
            pub const ALL: &'static [MsgType] = &[$(MsgType::$variant,)*];

            /// The wire name (case-sensitive).
            pub fn name(self) -> &'static str {
                match self {
                    $(MsgType::$variant => $name,)*
                }
            }

            pub fn parse(name: &str) -> Option<MsgType> {
                match name {
                    $($name => Some(MsgType::$variant),)*
                    _ => None,
                }
            }

            /// What the caller's scope must grant.
            pub fn permission(self) -> Permission {
                match self {
                    $(MsgType::$variant => Permission::$permission,)*
                }
            }

            /// The declaration of the payload: its shape, members and their rules.
            pub fn spec(self) -> &'static Spec {
                // `'a` names the lifetime the table's payload types are written with.
                fn of<'a>(kind: MsgType, _: &'a str) -> &'static Spec {
                    match kind {
                        $(MsgType::$variant => &<$payload as Payload<'a>>::SPEC,)*
                    }
                }
                of(self, "")
            }
        }

        /// A decoded, valid request: one variant per message type, holding its payload.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request<'a> {
            $($variant($payload),)*
        }

        impl Request<'_> {
            pub fn kind(&self) -> MsgType {
                match self {
                    $(Request::$variant(_) => MsgType::$variant,)*
                }
            }

            /// The payload's values, one per member of [`MsgType::spec`] (element after element
            /// for an array).
            pub fn values(&self) -> Vec<Value<'_>> {
                match self {
                    $(Request::$variant(payload) => payload.values(),)*
                }
            }

            /// The same request with every string copied (to keep it past its frame).
            pub fn into_static(self) -> Request<'static> {
                match self {
                    $(Request::$variant(payload) => Request::$variant(payload.into_static()),)*
                }
            }
        }

        /// Decodes the payload of a message type (whose permission was already granted).
        pub fn decode<'a>(kind: MsgType, data: &'a str) -> Result<Request<'a>, PayloadError> {
            Ok(match kind {
                $(MsgType::$variant => Request::$variant(<$payload as Payload<'a>>::decode(data)?),)*
            })
        }

        /// Serves a decoded request, writing its members into `reply`.
        pub(crate) fn execute(
            ctx: &mut Ctx<'_>,
            req: &Request<'_>,
            reply: &mut Reply<'_>,
        ) -> Result<(), OpError> {
            super::refuse_writes(ctx, req)?;
            match req {
                $(Request::$variant(payload) => $op(ctx, payload, reply),)*
            }
        }
    };
}

messages! {
//  type    wire name  permission  payload               operation
    Ins     "ins"      Write       Vec<NewRecord<'a>>  => records::insert;
    Qry     "qry"      Read        Qry<'a>             => records::latest;
    Cols    "cols"     Read        Empty               => records::collections;
    Qdoc    "qdoc"     Read        Qdoc<'a>            => records::document;
    Ddoc    "ddoc"     Delete      Ddoc<'a>            => deletes::document;
    Dcol    "dcol"     Delete      Col<'a>             => deletes::collection;
    Drec    "drec"     Delete      RecordRef<'a>       => deletes::record;
    Dmrec   "dmrec"    Delete      Vec<RecordRef<'a>>  => deletes::records;
    Drrng   "drrng"    Delete      Drrng<'a>           => deletes::range;
    Sval    "sval"     Write       Sval<'a>            => kv::set;
    Gval    "gval"     Read        ColKey<'a>          => kv::get;
    Gvalues "gvalues"  Read        ColKeys<'a>         => kv::values;
    Rval    "rval"     Delete      ColKey<'a>          => kv::remove;
    Gvals   "gvals"    Read        Col<'a>             => kv::all_values;
    Gkeys   "gkeys"    Read        Col<'a>             => kv::keys;
    Keys    "keys"     ManageKeys  Keys<'a>            => admin::keys;
    Conn    "conn"     Read        Empty               => admin::connections;
    Sub     "sub"      Read        Sub<'a>             => subs::subscribe;
    Unsub   "unsub"    Read        Unsub<'a>           => subs::unsubscribe;
    Sret    "sret"     Delete      Sret<'a>            => retention::set;
    Gret    "gret"     Read        Col<'a>             => retention::get;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::spec::{Check, Kind, Shape};

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for &t in MsgType::ALL {
            assert_eq!(MsgType::parse(t.name()), Some(t));
        }
        assert_eq!(MsgType::parse("INS"), None);
        assert_eq!(MsgType::parse(""), None);
    }

    #[test]
    fn auth_is_not_a_request() {
        assert_eq!(MsgType::parse("auth"), None);
    }

    /// A valid `data` for a declaration, every member given (but the second of a "not both"
    /// pair): a distinct name or increasing number per member, so that a decoder that reads one
    /// member into another's place is caught.
    fn sample(spec: &Spec) -> (String, Vec<Value<'static>>) {
        const NAMES: [&str; 8] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];
        let left_out: Vec<usize> = spec
            .checks
            .iter()
            .filter_map(|c| match c {
                Check::NotBoth(_, b, _) => Some(*b),
                Check::NotAfter(..) => None,
            })
            .collect();
        let mut members = Vec::new();
        let mut values = Vec::new();
        for (i, m) in spec.members.iter().enumerate() {
            if left_out.contains(&i) {
                values.push(Value::Missing);
                continue;
            }
            let n = i as u64 + 1;
            let (json, value) = match m.kind {
                Kind::Name
                | Kind::OptName
                | Kind::Pattern
                | Kind::OptPattern
                | Kind::Str
                | Kind::OptStr
                | Kind::NonEmpty
                | Kind::Raw => (format!("\"{}\"", NAMES[i]), Value::Text(NAMES[i])),
                Kind::Positive | Kind::IntOrZero | Kind::OptInt => {
                    (n.to_string(), Value::Int(n as i64))
                }
                Kind::OptCount => (n.to_string(), Value::Count(n)),
                Kind::Flag => ("true".to_string(), Value::Bool(true)),
            };
            members.push(format!("\"{}\":{json}", m.name));
            values.push(value);
        }
        let object = format!("{{{}}}", members.join(","));
        match spec.shape {
            Shape::Ignored => ("{}".to_string(), Vec::new()),
            Shape::Object => (object, values),
            Shape::Array => {
                let mut twice = values.clone();
                twice.extend(values);
                (format!("[{object},{object}]"), twice)
            }
        }
    }

    #[test]
    fn every_type_decodes_a_sample_of_its_declaration_to_its_own_variant() {
        for &t in MsgType::ALL {
            let (data, values) = sample(t.spec());
            let req = decode(t, &data).unwrap_or_else(|e| panic!("{t:?} refuses {data}: {e}"));
            assert_eq!(req.kind(), t, "{data}");
            assert_eq!(req.values(), values, "{t:?}: {data}");
        }
    }

    #[test]
    fn declarations_fit_the_generators() {
        for &t in MsgType::ALL {
            let spec = t.spec();
            assert!(
                spec.members.len() <= 8,
                "{t:?}: more members than sample() names"
            );
            for (i, m) in spec.members.iter().enumerate() {
                assert!(
                    spec.members[..i].iter().all(|o| o.name != m.name),
                    "{t:?}: {} declared twice",
                    m.name
                );
            }
            for c in spec.checks {
                let (Check::NotAfter(a, b, _) | Check::NotBoth(a, b, _)) = c;
                assert!(*a < spec.members.len() && *b < spec.members.len(), "{t:?}");
            }
        }
    }
}
