//! The typed payloads of docs/protocol.md#message-reference that live with the wire format: the
//! shapes several message types share (`gval`, `gvalues` and `rval` all carry a [`ColKey`]) and
//! those the protocol's own readers build (`ins` records, read in one pass by `insert_scan`).
//! Their declarations and decoders are in `request.rs`; a payload that only one operation uses
//! may instead live in that operation's file (`ops/retention.rs`, `ops/subs.rs`), with
//! [`into_static!`] for it. Which type a payload belongs to is the message table's business
//! (`ops::messages`), not this module's.

use std::borrow::Cow;

/// The payload of `cols` and `conn`: their `data` is never looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Empty;

/// One record of an `ins` batch.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord<'a> {
    pub col: Cow<'a, str>,
    pub doc: Cow<'a, str>,
    pub ts: i64,
    pub data: Cow<'a, str>,
}

/// One `(col, doc, ts)` of `drec` / `dmrec`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRef<'a> {
    pub col: Cow<'a, str>,
    pub doc: Cow<'a, str>,
    pub ts: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Qry<'a> {
    pub col: Cow<'a, str>,
    pub ts: i64,
    pub doc: Option<Cow<'a, str>>,
    pub from: i64,
    pub where_: Option<Cow<'a, str>>,
    pub filter: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Qdoc<'a> {
    pub col: Cow<'a, str>,
    pub doc: Cow<'a, str>,
    pub from: i64,
    pub to: i64,
    pub limit: i64,
    pub reverse: bool,
    pub where_: Option<Cow<'a, str>>,
    pub filter: Option<Cow<'a, str>>,
}

/// `ddoc`: one document, from one collection or (without `col`) from all.
#[derive(Debug, Clone, PartialEq)]
pub struct Ddoc<'a> {
    pub doc: Cow<'a, str>,
    pub col: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Drrng<'a> {
    pub col: Cow<'a, str>,
    pub doc: Cow<'a, str>,
    pub from_ts: i64,
    pub to_ts: i64,
}

/// A collection name alone: `dcol`, `gvals`, `gkeys`.
#[derive(Debug, Clone, PartialEq)]
pub struct Col<'a> {
    pub col: Cow<'a, str>,
}

/// A collection and a key (or, for `gvalues`, a key pattern): `gval`, `gvalues`, `rval`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColKey<'a> {
    pub col: Cow<'a, str>,
    pub key: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sval<'a> {
    pub col: Cow<'a, str>,
    pub key: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

/// `keys` keeps upstream's own error texts, so its members are kept raw here and checked by
/// the operation (docs/protocol.md#keys--api-keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Keys<'a> {
    pub action: Option<Cow<'a, str>>,
    pub key: Option<Cow<'a, str>>,
    pub scope: Option<Cow<'a, str>>,
}

/// A payload that can outlive the frame it was read from: every borrowed string copied.
pub trait IntoStatic {
    type Static;
    fn into_static(self) -> Self::Static;
}

fn own(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl IntoStatic for Cow<'_, str> {
    type Static = Cow<'static, str>;
    fn into_static(self) -> Self::Static {
        own(self)
    }
}

impl<T: IntoStatic> IntoStatic for Option<T> {
    type Static = Option<T::Static>;
    fn into_static(self) -> Self::Static {
        self.map(T::into_static)
    }
}

impl<T: IntoStatic> IntoStatic for Vec<T> {
    type Static = Vec<T::Static>;
    fn into_static(self) -> Self::Static {
        self.into_iter().map(T::into_static).collect()
    }
}

impl IntoStatic for Empty {
    type Static = Empty;
    fn into_static(self) -> Empty {
        self
    }
}

/// `IntoStatic` for a payload struct: its listed string fields are copied, the rest moved.
macro_rules! into_static {
    ($name:ident { $($text:ident),* } { $($plain:ident),* }) => {
        impl IntoStatic for $name<'_> {
            type Static = $name<'static>;
            fn into_static(self) -> $name<'static> {
                $name {
                    $($text: self.$text.into_static(),)*
                    $($plain: self.$plain,)*
                }
            }
        }
    };
}

into_static!(NewRecord { col, doc, data } { ts });
into_static!(RecordRef { col, doc } { ts });
into_static!(Qry { col, doc, where_, filter } { ts, from });
into_static!(Qdoc { col, doc, where_, filter } { from, to, limit, reverse });
into_static!(Ddoc { doc, col } {});
into_static!(Drrng { col, doc } { from_ts, to_ts });
into_static!(Col { col } {});
into_static!(ColKey { col, key } {});
into_static!(Sval { col, key, value } {});
into_static!(Keys { action, key, scope } {});

pub(crate) use into_static;
