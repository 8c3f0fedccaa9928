//! Payload decoders of the shapes in [`super::payload`], each validating in the order of the
//! payload tables of docs/protocol.md#message-reference, with their [`Payload`] declarations; and
//! the readers (`object`, `array`) that a payload declared next to its operation decodes with.

use super::fields::{FieldError, Fields};
use super::insert_scan::fast_insert;
use super::json::{for_each_object_in_array, read_object, Scalar, ShapeError};
use super::payload::{
    Col, ColKey, Ddoc, Drrng, Empty, Keys, NewRecord, Qdoc, Qry, RecordRef, Sval,
};
use super::spec::{member, spec, Check, Kind, Member, Payload, Shape, Spec, Value};
use std::fmt;

/// Why a payload was refused; the text after `invalid payload: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    NotJson,
    ExpectedObject,
    ExpectedArray,
    ElementNotObject(usize),
    Field(FieldError),
    FromAfterTo,
    FromTsAfterToTs,
    SinceWithAfterSeq,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid payload: ")?;
        match self {
            PayloadError::NotJson => f.write_str("data is not valid JSON"),
            PayloadError::ExpectedObject => f.write_str("expected a JSON object"),
            PayloadError::ExpectedArray => f.write_str("expected a JSON array"),
            PayloadError::ElementNotObject(i) => write!(f, "[{i}] must be a JSON object"),
            PayloadError::Field(e) => e.fmt(f),
            PayloadError::FromAfterTo => f.write_str("from must not be greater than to"),
            PayloadError::FromTsAfterToTs => f.write_str("fromTs must not be greater than toTs"),
            PayloadError::SinceWithAfterSeq => {
                f.write_str("since and after_seq cannot be used together")
            }
        }
    }
}

impl From<FieldError> for PayloadError {
    fn from(e: FieldError) -> Self {
        PayloadError::Field(e)
    }
}

pub(crate) fn object<'a, const N: usize>(
    data: &'a str,
    names: &'static [&'static str; N],
) -> Result<[Scalar<'a>; N], PayloadError> {
    read_object(data, names).map_err(|e| match e {
        ShapeError::NotJson => PayloadError::NotJson,
        ShapeError::WrongKind => PayloadError::ExpectedObject,
    })
}

pub(crate) fn array<'a, const N: usize, T>(
    data: &'a str,
    names: &'static [&'static str; N],
    mut each: impl FnMut(&mut Fields<'_, 'a>) -> Result<T, FieldError>,
) -> Result<Vec<T>, PayloadError> {
    // Elements are validated as they are read and only valid ones are kept: after the first
    // invalid element the rest is only parsed (a syntax error further on still wins), so a
    // huge array of bad elements costs no memory per element.
    let mut out = Vec::new();
    let mut first_error = None;
    for_each_object_in_array(data, names, |i, item| {
        if first_error.is_some() {
            return;
        }
        match item {
            None => first_error = Some(PayloadError::ElementNotObject(i)),
            Some(mut slots) => match each(&mut Fields::new(&mut slots, Some(i))) {
                Ok(t) => out.push(t),
                Err(e) => first_error = Some(e.into()),
            },
        }
    })
    .map_err(|e| match e {
        ShapeError::NotJson => PayloadError::NotJson,
        ShapeError::WrongKind => PayloadError::ExpectedArray,
    })?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `cols` and `conn`: `data` is never looked at.
pub fn empty(_data: &str) -> Result<Empty, PayloadError> {
    Ok(Empty)
}

/// `ins`: the SDKs' batches in one pass, anything else through the general reader.
pub fn ins(data: &str) -> Result<Vec<NewRecord<'_>>, PayloadError> {
    match fast_insert(data) {
        Some(records) => Ok(records),
        None => array(data, &["col", "doc", "ts", "data"], new_record),
    }
}

fn new_record<'a>(f: &mut Fields<'_, 'a>) -> Result<NewRecord<'a>, FieldError> {
    Ok(NewRecord {
        col: f.name(0, "col")?,
        doc: f.name(1, "doc")?,
        ts: f.positive(2, "ts")?,
        data: f.string(3, "data")?,
    })
}

/// `dmrec`.
pub fn records(data: &str) -> Result<Vec<RecordRef<'_>>, PayloadError> {
    array(data, &["col", "doc", "ts"], record_ref)
}

/// `drec`.
pub fn record(data: &str) -> Result<RecordRef<'_>, PayloadError> {
    let mut s = object(data, &["col", "doc", "ts"])?;
    Ok(record_ref(&mut Fields::new(&mut s, None))?)
}

pub fn qry(data: &str) -> Result<Qry<'_>, PayloadError> {
    let mut s = object(data, &["col", "ts", "doc", "from", "where", "filter"])?;
    let mut f = Fields::new(&mut s, None);
    Ok(Qry {
        col: f.name(0, "col")?,
        ts: f.positive(1, "ts")?,
        doc: f.opt_name(2, "doc")?,
        from: f.opt_integer(3, "from", 0)?,
        where_: f.opt_string(4, "where")?,
        filter: f.opt_string(5, "filter")?,
    })
}

pub fn qdoc(data: &str) -> Result<Qdoc<'_>, PayloadError> {
    let names = &[
        "col", "doc", "from", "to", "limit", "reverse", "where", "filter",
    ];
    let mut s = object(data, names)?;
    let mut f = Fields::new(&mut s, None);
    let q = Qdoc {
        col: f.name(0, "col")?,
        doc: f.name(1, "doc")?,
        from: f.opt_integer(2, "from", 0)?,
        to: f.positive(3, "to")?,
        limit: f.opt_integer(4, "limit", 0)?,
        reverse: f.opt_bool(5, "reverse")?,
        where_: f.opt_string(6, "where")?,
        filter: f.opt_string(7, "filter")?,
    };
    if q.from > q.to {
        return Err(PayloadError::FromAfterTo);
    }
    Ok(q)
}

pub fn ddoc(data: &str) -> Result<Ddoc<'_>, PayloadError> {
    let mut s = object(data, &["doc", "col"])?;
    let mut f = Fields::new(&mut s, None);
    let doc = f.name(0, "doc")?;
    Ok(Ddoc {
        doc,
        col: f.opt_name(1, "col")?,
    })
}

pub fn drrng(data: &str) -> Result<Drrng<'_>, PayloadError> {
    let mut s = object(data, &["col", "doc", "fromTs", "toTs"])?;
    let mut f = Fields::new(&mut s, None);
    let r = Drrng {
        col: f.name(0, "col")?,
        doc: f.name(1, "doc")?,
        from_ts: f.positive(2, "fromTs")?,
        to_ts: f.positive(3, "toTs")?,
    };
    if r.from_ts > r.to_ts {
        return Err(PayloadError::FromTsAfterToTs);
    }
    Ok(r)
}

pub fn sval(data: &str) -> Result<Sval<'_>, PayloadError> {
    let mut s = object(data, &["col", "key", "value"])?;
    let mut f = Fields::new(&mut s, None);
    let col = f.name(0, "col")?;
    let key = f.name(1, "key")?;
    Ok(Sval {
        col,
        key,
        value: f.non_empty(2, "value")?,
    })
}

/// `gval`, `gvalues`, `rval`.
pub fn col_key(data: &str) -> Result<ColKey<'_>, PayloadError> {
    let mut s = object(data, &["col", "key"])?;
    let mut f = Fields::new(&mut s, None);
    let col = f.name(0, "col")?;
    let key = f.name(1, "key")?;
    Ok(ColKey { col, key })
}

/// `dcol`, `gvals`, `gkeys`.
pub fn col(data: &str) -> Result<Col<'_>, PayloadError> {
    let mut s = object(data, &["col"])?;
    Ok(Col {
        col: Fields::new(&mut s, None).name(0, "col")?,
    })
}

pub fn keys(data: &str) -> Result<Keys<'_>, PayloadError> {
    let mut s = object(data, &["action", "key", "scope"])?;
    let mut f = Fields::new(&mut s, None);
    Ok(Keys {
        action: f.raw_string(0),
        key: f.raw_string(1),
        scope: f.raw_string(2),
    })
}

fn record_ref<'a>(f: &mut Fields<'_, 'a>) -> Result<RecordRef<'a>, FieldError> {
    Ok(RecordRef {
        col: f.name(0, "col")?,
        doc: f.name(1, "doc")?,
        ts: f.positive(2, "ts")?,
    })
}

// ---------------------------------------------------------------------------------------------
// The declarations ([`Payload`]) of the payloads decoded above.

const RECORD_REF: &[Member] = &[
    member("col", Kind::Name),
    member("doc", Kind::Name),
    member("ts", Kind::Positive),
];

fn record_ref_values<'v>(r: &'v RecordRef<'_>, out: &mut Vec<Value<'v>>) {
    out.extend([Value::Text(&r.col), Value::Text(&r.doc), Value::Int(r.ts)]);
}

impl<'a> Payload<'a> for Empty {
    const SPEC: Spec = spec(Shape::Ignored, &[]);
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        empty(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        Vec::new()
    }
}

impl<'a> Payload<'a> for Vec<NewRecord<'a>> {
    const SPEC: Spec = spec(
        Shape::Array,
        &[
            member("col", Kind::Name),
            member("doc", Kind::Name),
            member("ts", Kind::Positive),
            member("data", Kind::Str),
        ],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        ins(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        self.iter()
            .flat_map(|r| {
                [
                    Value::Text(&r.col),
                    Value::Text(&r.doc),
                    Value::Int(r.ts),
                    Value::Text(&r.data),
                ]
            })
            .collect()
    }
}

impl<'a> Payload<'a> for RecordRef<'a> {
    const SPEC: Spec = spec(Shape::Object, RECORD_REF);
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        record(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        let mut out = Vec::new();
        record_ref_values(self, &mut out);
        out
    }
}

impl<'a> Payload<'a> for Vec<RecordRef<'a>> {
    const SPEC: Spec = spec(Shape::Array, RECORD_REF);
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        records(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        let mut out = Vec::new();
        for r in self {
            record_ref_values(r, &mut out);
        }
        out
    }
}

impl<'a> Payload<'a> for Qry<'a> {
    const SPEC: Spec = spec(
        Shape::Object,
        &[
            member("col", Kind::Name),
            member("ts", Kind::Positive),
            member("doc", Kind::OptName),
            member("from", Kind::IntOrZero),
            member("where", Kind::OptStr),
            member("filter", Kind::OptStr),
        ],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        qry(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.col),
            Value::Int(self.ts),
            Value::text(self.doc.as_deref()),
            Value::Int(self.from),
            Value::text(self.where_.as_deref()),
            Value::text(self.filter.as_deref()),
        ]
    }
}

impl<'a> Payload<'a> for Qdoc<'a> {
    const SPEC: Spec = Spec {
        shape: Shape::Object,
        members: &[
            member("col", Kind::Name),
            member("doc", Kind::Name),
            member("from", Kind::IntOrZero),
            member("to", Kind::Positive),
            member("limit", Kind::IntOrZero),
            member("reverse", Kind::Flag),
            member("where", Kind::OptStr),
            member("filter", Kind::OptStr),
        ],
        checks: &[Check::NotAfter(2, 3, PayloadError::FromAfterTo)],
    };
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        qdoc(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.col),
            Value::Text(&self.doc),
            Value::Int(self.from),
            Value::Int(self.to),
            Value::Int(self.limit),
            Value::Bool(self.reverse),
            Value::text(self.where_.as_deref()),
            Value::text(self.filter.as_deref()),
        ]
    }
}

impl<'a> Payload<'a> for Ddoc<'a> {
    const SPEC: Spec = spec(
        Shape::Object,
        &[member("doc", Kind::Name), member("col", Kind::OptName)],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        ddoc(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![Value::Text(&self.doc), Value::text(self.col.as_deref())]
    }
}

impl<'a> Payload<'a> for Drrng<'a> {
    const SPEC: Spec = Spec {
        shape: Shape::Object,
        members: &[
            member("col", Kind::Name),
            member("doc", Kind::Name),
            member("fromTs", Kind::Positive),
            member("toTs", Kind::Positive),
        ],
        checks: &[Check::NotAfter(2, 3, PayloadError::FromTsAfterToTs)],
    };
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        drrng(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.col),
            Value::Text(&self.doc),
            Value::Int(self.from_ts),
            Value::Int(self.to_ts),
        ]
    }
}

impl<'a> Payload<'a> for Sval<'a> {
    const SPEC: Spec = spec(
        Shape::Object,
        &[
            member("col", Kind::Name),
            member("key", Kind::Name),
            member("value", Kind::NonEmpty),
        ],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        sval(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.col),
            Value::Text(&self.key),
            Value::Text(&self.value),
        ]
    }
}

impl<'a> Payload<'a> for ColKey<'a> {
    const SPEC: Spec = spec(
        Shape::Object,
        &[member("col", Kind::Name), member("key", Kind::Name)],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        col_key(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![Value::Text(&self.col), Value::Text(&self.key)]
    }
}

impl<'a> Payload<'a> for Col<'a> {
    const SPEC: Spec = spec(Shape::Object, &[member("col", Kind::Name)]);
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        col(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![Value::Text(&self.col)]
    }
}

impl<'a> Payload<'a> for Keys<'a> {
    const SPEC: Spec = spec(
        Shape::Object,
        &[
            member("action", Kind::Raw),
            member("key", Kind::Raw),
            member("scope", Kind::Raw),
        ],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        keys(data)
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::text(self.action.as_deref()),
            Value::text(self.key.as_deref()),
            Value::text(self.scope.as_deref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<'a, T: fmt::Debug>(
        decode: impl Fn(&'a str) -> Result<T, PayloadError>,
        data: &'a str,
    ) -> String {
        decode(data).unwrap_err().to_string()
    }

    #[test]
    fn ins_errors_in_table_order() {
        assert_eq!(err(ins, "{}"), "invalid payload: expected a JSON array");
        assert_eq!(err(ins, "null"), "invalid payload: expected a JSON array");
        assert_eq!(
            err(ins, "[1]"),
            "invalid payload: [0] must be a JSON object"
        );
        assert_eq!(err(ins, "[{"), "invalid payload: data is not valid JSON");
        assert_eq!(
            err(ins, "[{}]"),
            "invalid payload: [0].col must be a non-empty string"
        );
        assert_eq!(
            err(
                ins,
                r#"[{"col":"c","doc":"d","ts":1,"data":"x"},{"col":"","doc":"d","ts":1,"data":"x"}]"#
            ),
            "invalid payload: [1].col must be a non-empty string"
        );
        assert_eq!(
            err(ins, r#"[{"col":"c","doc":"d","ts":-5,"data":"x"}]"#),
            "invalid payload: [0].ts must be a positive integer"
        );
        assert_eq!(
            err(ins, r#"[{"col":"c","doc":"d","ts":1,"data":{"v":1}}]"#),
            "invalid payload: [0].data must be a string"
        );
    }

    #[test]
    fn ins_fast_path_agrees_with_the_general_reader() {
        let general = |d| array(d, &["col", "doc", "ts", "data"], new_record);
        for d in [
            r#"[]"#,
            r#" [ ] "#,
            r#"[{"ts":100,"doc":"dev-1","data":"t\"x\u00e9","col":"s"},{"col":"s","doc":"d","ts":9223372036854775807,"data":""}]"#,
            r#"[{"col":"a","doc":"b","ts":1,"data":"x","ts":2}]"#,
        ] {
            assert_eq!(fast_insert(d), Some(general(d).unwrap()), "{d}");
        }
        for d in [
            r#"[{"col":"a","doc":"b","ts":1.5,"data":"x"}]"#,
            r#"[{"col":"a","doc":"b","ts":"1","data":"x"}]"#,
            r#"[{"col":"","doc":"b","ts":1,"data":"x"}]"#,
            r#"[{"col":"a","doc":"b","ts":0,"data":"x"}]"#,
            r#"[{"col":"a","doc":"b","ts":1}]"#,
            r#"[{"col":"a","doc":"b","ts":1,"data":"x","x":1}]"#,
            r#"[{"col":"a","doc":"b","ts":1,"data":"x"},]"#,
            r#"[{"col":"a","doc":"b","ts":1,"data":"x"}] x"#,
            r#"[{"col":"a","doc":"b","ts":1,"data":"x"}"#,
            r#"[1]"#,
            r#"{}"#,
        ] {
            assert_eq!(fast_insert(d), None, "{d}");
        }
    }

    #[test]
    fn ins_accepts_coercible_values() {
        let v = ins(r#"[{"ts":600.9,"doc":"d","data":"","col":"c"},{"ts":"700","doc":"d","data":"g","col":"c"}]"#).unwrap();
        assert_eq!(v[0].ts, 600);
        assert_eq!(v[1].ts, 700);
        assert_eq!(v[0].data, "");
    }

    #[test]
    fn qdoc_rules() {
        assert_eq!(
            err(qdoc, r#"{"col":"s","doc":"d","from":300,"to":100}"#),
            "invalid payload: from must not be greater than to"
        );
        assert_eq!(
            err(qdoc, r#"{"col":"s","doc":"d","from":0,"to":0}"#),
            "invalid payload: to must be a positive integer"
        );
        assert_eq!(
            err(qdoc, r#"{"col":"s","from":0,"to":10}"#),
            "invalid payload: doc must be a non-empty string"
        );
        assert_eq!(
            err(qdoc, r#"{"col":"s","doc":"d","to":10,"reverse":"yes"}"#),
            "invalid payload: reverse must be a boolean"
        );
        assert_eq!(
            err(qdoc, r#"{"col":"s","doc":"d","to":10,"limit":"ten"}"#),
            "invalid payload: limit must be an integer"
        );
        let q = qdoc(r#"{"col":"s","doc":"d","to":10,"reverse":1,"where":null}"#).unwrap();
        assert!(q.reverse);
        assert_eq!(q.from, 0);
        assert_eq!(q.where_, None);
    }

    #[test]
    fn other_types() {
        assert_eq!(err(qry, "[]"), "invalid payload: expected a JSON object");
        assert_eq!(
            err(qry, r#"{"col":"s","ts":1000,"where":5}"#),
            "invalid payload: where must be a string"
        );
        assert_eq!(
            err(qry, r#"{"col":"s","ts":1000,"from":"x"}"#),
            "invalid payload: from must be an integer"
        );
        assert_eq!(
            err(ddoc, r#"{"col":"s"}"#),
            "invalid payload: doc must be a non-empty string"
        );
        assert_eq!(
            err(drrng, r#"{"col":"s","doc":"d","fromTs":300,"toTs":100}"#),
            "invalid payload: fromTs must not be greater than toTs"
        );
        assert_eq!(
            err(drrng, r#"{"col":"s","doc":"d","from":100,"to":200}"#),
            "invalid payload: fromTs must be a positive integer"
        );
        assert_eq!(
            err(sval, r#"{"col":"c","key":"n","value":5}"#),
            "invalid payload: value must be a non-empty string"
        );
        assert_eq!(
            err(col, "{}"),
            "invalid payload: col must be a non-empty string"
        );
        assert_eq!(
            err(
                records,
                r#"[{"col":"s","doc":"d","ts":1},{"col":"s","doc":"d"}]"#
            ),
            "invalid payload: [1].ts must be a positive integer"
        );
        assert_eq!(err(keys, "[]"), "invalid payload: expected a JSON object");
        assert_eq!(empty("x"), Ok(Empty));
    }
}
