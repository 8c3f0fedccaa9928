//! The message table: the one declaration of every message type. Each line gives the wire name,
//! the permission it needs, its payload type and decoder (`protocol::request`) and the operation
//! that serves it; the type enum, the name lookup, the permission, decoding and dispatch are all
//! generated from it, and the fuzzer's generator and the round-trip test iterate
//! [`MsgType::ALL`]. Adding a message type is one line here plus its decoder and its operation.
//!
//! `auth` is not in the table: the server knows the name only to refuse it with its own text
//! (see `server::dispatch`), so it never decodes to a request.

use super::{admin, deletes, kv, records, retention, subs, Ctx, OpError};
use crate::auth::Permission;
use crate::protocol::payload::{
    Col, ColKey, Ddoc, Drrng, Empty, IntoStatic, Keys, NewRecord, Qdoc, Qry, RecordRef, Sret, Sub,
    Sval, Unsub,
};
use crate::protocol::reply::Reply;
use crate::protocol::request;
use crate::protocol::PayloadError;

macro_rules! messages {
    ($(
        $variant:ident $name:literal $permission:ident
            $payload:ty = $decode:path => $op:path;
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

            /// The same request with every string copied (to keep it past its frame).
            pub fn into_static(self) -> Request<'static> {
                match self {
                    $(Request::$variant(payload) => Request::$variant(payload.into_static()),)*
                }
            }
        }

        /// Decodes the payload of a message type (whose permission was already granted).
        pub fn decode(kind: MsgType, data: &str) -> Result<Request<'_>, PayloadError> {
            Ok(match kind {
                $(MsgType::$variant => Request::$variant($decode(data)?),)*
            })
        }

        /// Serves a decoded request, writing its members into `reply`.
        pub(crate) fn execute(
            ctx: &mut Ctx<'_>,
            req: &Request<'_>,
            reply: &mut Reply<'_>,
        ) -> Result<(), OpError> {
            match req {
                $(Request::$variant(payload) => $op(ctx, payload, reply),)*
            }
        }
    };
}

messages! {
//  type    wire name  permission  payload              decoder               operation
    Ins     "ins"      Write       Vec<NewRecord<'a>> = request::ins       => records::insert;
    Qry     "qry"      Read        Qry<'a>            = request::qry       => records::latest;
    Cols    "cols"     Read        Empty              = request::empty     => records::collections;
    Qdoc    "qdoc"     Read        Qdoc<'a>           = request::qdoc      => records::document;
    Ddoc    "ddoc"     Delete      Ddoc<'a>           = request::ddoc      => deletes::document;
    Dcol    "dcol"     Delete      Col<'a>            = request::col       => deletes::collection;
    Drec    "drec"     Delete      RecordRef<'a>      = request::record    => deletes::record;
    Dmrec   "dmrec"    Delete      Vec<RecordRef<'a>> = request::records   => deletes::records;
    Drrng   "drrng"    Delete      Drrng<'a>          = request::drrng     => deletes::range;
    Sval    "sval"     Write       Sval<'a>           = request::sval      => kv::set;
    Gval    "gval"     Read        ColKey<'a>         = request::col_key   => kv::get;
    Gvalues "gvalues"  Read        ColKey<'a>         = request::col_key   => kv::values;
    Rval    "rval"     Delete      ColKey<'a>         = request::col_key   => kv::remove;
    Gvals   "gvals"    Read        Col<'a>            = request::col       => kv::all_values;
    Gkeys   "gkeys"    Read        Col<'a>            = request::col       => kv::keys;
    Keys    "keys"     ManageKeys  Keys<'a>           = request::keys      => admin::keys;
    Conn    "conn"     Read        Empty              = request::empty     => admin::connections;
    Sub     "sub"      Read        Sub<'a>            = request::sub       => subs::subscribe;
    Unsub   "unsub"    Read        Unsub<'a>          = request::unsub     => subs::unsubscribe;
    Sret    "sret"     Delete      Sret<'a>           = request::sret      => retention::set;
    Gret    "gret"     Read        Col<'a>            = request::col       => retention::get;
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn every_type_decodes_to_its_own_variant() {
        let samples = [
            r#"[{"col":"c","doc":"d","ts":1,"data":"x"}]"#,
            r#"[{"col":"c","doc":"d","ts":1}]"#,
            r#"{"col":"c","doc":"d","ts":1,"to":2,"key":"k","value":"v","fromTs":1,"toTs":2,"action":"list","sub":"s1"}"#,
        ];
        for &t in MsgType::ALL {
            let req = samples
                .iter()
                .find_map(|d| decode(t, d).ok())
                .unwrap_or_else(|| panic!("{t:?} decodes none of the samples"));
            assert_eq!(req.kind(), t);
        }
    }
}
