//! The payloads of docs/protocol.md#message-reference that live with the wire format: the
//! shapes several message types share (`gval`, `gvalues` and `rval` all carry a [`ColKey`]) and
//! those the protocol's own readers build (`ins` records, read in one pass by `insert_scan`; `qry` and `qdoc`, by `read_scan`).
//! Each is declared with [`payload!`], its members in the order of the protocol's payload
//! tables. A payload that only one operation uses may instead be declared in that operation's
//! file (`ops/retention.rs`, `ops/subs.rs`). Which type a payload belongs to is the message
//! table's business (`ops::messages`), not this module's.

use super::declare::payload;
use super::insert_scan::fast_insert;
use super::read_scan::{fast_qdoc, fast_qry};

payload! {
    /// The payload of `cols` and `conn`: their `data` is never looked at.
    pub struct Empty;
}

payload! {
    /// One record of an `ins` batch (`data` is an array of them); the batches the SDKs send are
    /// read in one pass.
    pub struct NewRecord {
        col: Name,
        doc: Name,
        ts: Positive,
        data: RecordData,
    }
    fast_array = fast_insert;
}

payload! {
    /// One `(col, doc, ts)`: the payload of `drec`, and each element of `dmrec`'s array.
    pub struct RecordRef {
        col: Name,
        doc: Name,
        ts: Positive,
    }
}

payload! {
    /// `qry`: the newest record of each document, as of `ts`.
    pub struct Qry {
        col: Name,
        ts: Positive,
        doc: OptPattern,
        from: IntOrZero,
        where_ as "where": OptStr,
        filter: OptStr,
    }
    fast_object = fast_qry;
}

payload! {
    /// `qdoc`: a time range of one document.
    pub struct Qdoc {
        col: Name,
        doc: Name,
        from: IntOrZero,
        to: Positive,
        limit: IntOrZero,
        reverse: Flag,
        where_ as "where": OptStr,
        filter: OptStr,
    }
    rules { NotAfter(from, to) => FromAfterTo }
    fast_object = fast_qdoc;
}

payload! {
    /// `ddoc`: one document, from one collection or (without `col`) from all.
    pub struct Ddoc {
        doc: Name,
        col: OptName,
    }
}

payload! {
    /// `drrng`: removes a time range of one document.
    pub struct Drrng {
        col: Name,
        doc: Name,
        from_ts as "fromTs": Positive,
        to_ts as "toTs": Positive,
    }
    rules { NotAfter(from_ts, to_ts) => FromTsAfterToTs }
}

payload! {
    /// A collection name alone: `dcol`, `gvals`, `gkeys`, `gret`.
    pub struct Col {
        col: Name,
    }
}

payload! {
    /// A collection and a key: `gval`, `rval`.
    pub struct ColKey {
        col: Name,
        key: Name,
    }
}

payload! {
    /// A collection and a key or key pattern: `gvalues`.
    pub struct ColKeys {
        col: Name,
        key: Pattern,
    }
}

payload! {
    /// `sval`.
    pub struct Sval {
        col: Name,
        key: Name,
        value: NonEmpty,
    }
}

payload! {
    /// `keys` keeps upstream's own error texts, so its members are kept raw here and checked by
    /// the operation (docs/protocol.md#keys--api-keys).
    pub struct Keys {
        action: Raw,
        key: Raw,
        scope: Raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::declare::Declared;
    use crate::protocol::members::Members;
    use crate::protocol::spec::Payload;
    use std::fmt;

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
        let general = |d| Members::array(d, &Ins::SPEC, NewRecord::read);
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
    fn ins_fast_path_keeps_data_escaped_only_in_the_stored_form() {
        use crate::protocol::record_data::RecordData;
        let batch = |d: &str| format!(r#"[{{"col":"c","doc":"d","ts":1,"data":{d}}}]"#);
        let stored_form = batch(r#""{\"a\":\"\\\n\u001f\"}""#);
        let records = fast_insert(&stored_form).unwrap();
        assert!(
            matches!(records[0].data, RecordData::Escaped(b) if b == r#"{\"a\":\"\\\n\u001f\"}"#),
            "{:?}",
            records[0].data
        );
        assert_eq!(records[0].data.text(), "{\"a\":\"\\\n\u{1f}\"}");
        for (spelled, text) in [
            (r#""a\/b""#, "a/b"),
            (r#""\u00e9""#, "é"),
            (r#""\u000A""#, "\n"),
            (r#""\u001F""#, "\u{1f}"),
        ] {
            let other = batch(spelled);
            let records = fast_insert(&other).unwrap();
            assert!(matches!(records[0].data, RecordData::Text(_)), "{spelled}");
            assert_eq!(records[0].data.text(), text, "{spelled}");
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
