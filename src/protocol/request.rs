//! The declarations and decoders ([`Payload`]) of the shared payload shapes of
//! [`super::payload`], each member in the order of the payload tables of
//! docs/protocol.md#message-reference; and [`PayloadError`], why a payload was refused.

use super::fields::FieldError;
use super::insert_scan::fast_insert;
use super::members::Members;
use super::payload::{
    Col, ColKey, Ddoc, Drrng, Empty, Keys, NewRecord, Qdoc, Qry, RecordRef, Sval,
};
use super::spec::{member, spec, Check, Kind, Payload, Shape, Spec, Value};
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

const NEW_RECORD: Spec = spec(
    Shape::Array,
    &[
        member("col", Kind::Name),
        member("doc", Kind::Name),
        member("ts", Kind::Positive),
        member("data", Kind::Str),
    ],
);

const RECORD_REF: &[super::spec::Member] = &[
    member("col", Kind::Name),
    member("doc", Kind::Name),
    member("ts", Kind::Positive),
];

fn new_record<'a>(f: &mut Members<'a>) -> Result<NewRecord<'a>, PayloadError> {
    Ok(NewRecord {
        col: f.text(0)?,
        doc: f.text(1)?,
        ts: f.int(2)?,
        data: f.text(3)?,
    })
}

fn record_ref<'a>(f: &mut Members<'a>) -> Result<RecordRef<'a>, PayloadError> {
    Ok(RecordRef {
        col: f.text(0)?,
        doc: f.text(1)?,
        ts: f.int(2)?,
    })
}

fn record_ref_values<'v>(r: &'v RecordRef<'_>, out: &mut Vec<Value<'v>>) {
    out.extend([Value::Text(&r.col), Value::Text(&r.doc), Value::Int(r.ts)]);
}

/// `cols` and `conn`: `data` is never looked at.
impl<'a> Payload<'a> for Empty {
    const SPEC: Spec = spec(Shape::Ignored, &[]);
    fn decode(_data: &'a str) -> Result<Self, PayloadError> {
        Ok(Empty)
    }
    fn values(&self) -> Vec<Value<'_>> {
        Vec::new()
    }
}

/// `ins`: the SDKs' batches in one pass, anything else through the general reader.
impl<'a> Payload<'a> for Vec<NewRecord<'a>> {
    const SPEC: Spec = NEW_RECORD;
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        match fast_insert(data) {
            Some(records) => Ok(records),
            None => Members::array(data, &NEW_RECORD, new_record),
        }
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

/// `drec`.
impl<'a> Payload<'a> for RecordRef<'a> {
    const SPEC: Spec = spec(Shape::Object, RECORD_REF);
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        record_ref(&mut Members::object(data, &Self::SPEC)?)
    }
    fn values(&self) -> Vec<Value<'_>> {
        let mut out = Vec::new();
        record_ref_values(self, &mut out);
        out
    }
}

/// `dmrec`.
impl<'a> Payload<'a> for Vec<RecordRef<'a>> {
    const SPEC: Spec = spec(Shape::Array, RECORD_REF);
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        Members::array(data, &Self::SPEC, record_ref)
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
        let mut f = Members::object(data, &Self::SPEC)?;
        Ok(Qry {
            col: f.text(0)?,
            ts: f.int(1)?,
            doc: f.opt_text(2)?,
            from: f.int(3)?,
            where_: f.opt_text(4)?,
            filter: f.opt_text(5)?,
        })
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
        let mut f = Members::object(data, &Self::SPEC)?;
        let q = Qdoc {
            col: f.text(0)?,
            doc: f.text(1)?,
            from: f.int(2)?,
            to: f.int(3)?,
            limit: f.int(4)?,
            reverse: f.flag(5)?,
            where_: f.opt_text(6)?,
            filter: f.opt_text(7)?,
        };
        f.checks()?;
        Ok(q)
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

/// `ddoc`.
impl<'a> Payload<'a> for Ddoc<'a> {
    const SPEC: Spec = spec(
        Shape::Object,
        &[member("doc", Kind::Name), member("col", Kind::OptName)],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        let mut f = Members::object(data, &Self::SPEC)?;
        let doc = f.text(0)?;
        Ok(Ddoc {
            doc,
            col: f.opt_text(1)?,
        })
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
        let mut f = Members::object(data, &Self::SPEC)?;
        let r = Drrng {
            col: f.text(0)?,
            doc: f.text(1)?,
            from_ts: f.int(2)?,
            to_ts: f.int(3)?,
        };
        f.checks()?;
        Ok(r)
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
        let mut f = Members::object(data, &Self::SPEC)?;
        let col = f.text(0)?;
        let key = f.text(1)?;
        Ok(Sval {
            col,
            key,
            value: f.text(2)?,
        })
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            Value::Text(&self.col),
            Value::Text(&self.key),
            Value::Text(&self.value),
        ]
    }
}

/// `gval`, `gvalues`, `rval`.
impl<'a> Payload<'a> for ColKey<'a> {
    const SPEC: Spec = spec(
        Shape::Object,
        &[member("col", Kind::Name), member("key", Kind::Name)],
    );
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        let mut f = Members::object(data, &Self::SPEC)?;
        let col = f.text(0)?;
        let key = f.text(1)?;
        Ok(ColKey { col, key })
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![Value::Text(&self.col), Value::Text(&self.key)]
    }
}

/// `dcol`, `gvals`, `gkeys`, `gret`.
impl<'a> Payload<'a> for Col<'a> {
    const SPEC: Spec = spec(Shape::Object, &[member("col", Kind::Name)]);
    fn decode(data: &'a str) -> Result<Self, PayloadError> {
        let mut f = Members::object(data, &Self::SPEC)?;
        Ok(Col { col: f.text(0)? })
    }
    fn values(&self) -> Vec<Value<'_>> {
        vec![Value::Text(&self.col)]
    }
}

/// `keys`: its members are kept raw and judged by the operation, with upstream's texts.
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
        let mut f = Members::object(data, &Self::SPEC)?;
        Ok(Keys {
            action: f.opt_text(0)?,
            key: f.opt_text(1)?,
            scope: f.opt_text(2)?,
        })
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

    type Ins<'a> = Vec<NewRecord<'a>>;
    type Dmrec<'a> = Vec<RecordRef<'a>>;

    fn err<'a, T: Payload<'a> + fmt::Debug>(data: &'a str) -> String {
        T::decode(data).unwrap_err().to_string()
    }

    #[test]
    fn ins_errors_in_table_order() {
        assert_eq!(err::<Ins>("{}"), "invalid payload: expected a JSON array");
        assert_eq!(err::<Ins>("null"), "invalid payload: expected a JSON array");
        assert_eq!(
            err::<Ins>("[1]"),
            "invalid payload: [0] must be a JSON object"
        );
        assert_eq!(err::<Ins>("[{"), "invalid payload: data is not valid JSON");
        assert_eq!(
            err::<Ins>("[{}]"),
            "invalid payload: [0].col must be a non-empty string"
        );
        assert_eq!(
            err::<Ins>(
                r#"[{"col":"c","doc":"d","ts":1,"data":"x"},{"col":"","doc":"d","ts":1,"data":"x"}]"#
            ),
            "invalid payload: [1].col must be a non-empty string"
        );
        assert_eq!(
            err::<Ins>(r#"[{"col":"c","doc":"d","ts":-5,"data":"x"}]"#),
            "invalid payload: [0].ts must be a positive integer"
        );
        assert_eq!(
            err::<Ins>(r#"[{"col":"c","doc":"d","ts":1,"data":{"v":1}}]"#),
            "invalid payload: [0].data must be a string"
        );
    }

    #[test]
    fn ins_fast_path_agrees_with_the_general_reader() {
        let general = |d| Members::array(d, &NEW_RECORD, new_record);
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
        let v = Ins::decode(r#"[{"ts":600.9,"doc":"d","data":"","col":"c"},{"ts":"700","doc":"d","data":"g","col":"c"}]"#).unwrap();
        assert_eq!(v[0].ts, 600);
        assert_eq!(v[1].ts, 700);
        assert_eq!(v[0].data, "");
    }

    #[test]
    fn qdoc_rules() {
        assert_eq!(
            err::<Qdoc>(r#"{"col":"s","doc":"d","from":300,"to":100}"#),
            "invalid payload: from must not be greater than to"
        );
        assert_eq!(
            err::<Qdoc>(r#"{"col":"s","doc":"d","from":0,"to":0}"#),
            "invalid payload: to must be a positive integer"
        );
        assert_eq!(
            err::<Qdoc>(r#"{"col":"s","from":0,"to":10}"#),
            "invalid payload: doc must be a non-empty string"
        );
        assert_eq!(
            err::<Qdoc>(r#"{"col":"s","doc":"d","to":10,"reverse":"yes"}"#),
            "invalid payload: reverse must be a boolean"
        );
        assert_eq!(
            err::<Qdoc>(r#"{"col":"s","doc":"d","to":10,"limit":"ten"}"#),
            "invalid payload: limit must be an integer"
        );
        let q = Qdoc::decode(r#"{"col":"s","doc":"d","to":10,"reverse":1,"where":null}"#).unwrap();
        assert!(q.reverse);
        assert_eq!(q.from, 0);
        assert_eq!(q.where_, None);
    }

    #[test]
    fn other_types() {
        assert_eq!(err::<Qry>("[]"), "invalid payload: expected a JSON object");
        assert_eq!(
            err::<Qry>(r#"{"col":"s","ts":1000,"where":5}"#),
            "invalid payload: where must be a string"
        );
        assert_eq!(
            err::<Qry>(r#"{"col":"s","ts":1000,"from":"x"}"#),
            "invalid payload: from must be an integer"
        );
        assert_eq!(
            err::<Ddoc>(r#"{"col":"s"}"#),
            "invalid payload: doc must be a non-empty string"
        );
        assert_eq!(
            err::<Drrng>(r#"{"col":"s","doc":"d","fromTs":300,"toTs":100}"#),
            "invalid payload: fromTs must not be greater than toTs"
        );
        assert_eq!(
            err::<Drrng>(r#"{"col":"s","doc":"d","from":100,"to":200}"#),
            "invalid payload: fromTs must be a positive integer"
        );
        assert_eq!(
            err::<Sval>(r#"{"col":"c","key":"n","value":5}"#),
            "invalid payload: value must be a non-empty string"
        );
        assert_eq!(
            err::<Col>("{}"),
            "invalid payload: col must be a non-empty string"
        );
        assert_eq!(
            err::<Dmrec>(r#"[{"col":"s","doc":"d","ts":1},{"col":"s","doc":"d"}]"#),
            "invalid payload: [1].ts must be a positive integer"
        );
        assert_eq!(err::<Keys>("[]"), "invalid payload: expected a JSON object");
        assert_eq!(Empty::decode("x"), Ok(Empty));
    }
}
