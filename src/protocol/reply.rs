//! The reply writer. An operation writes its members and values through a [`Reply`]; the writer
//! owns the JSON punctuation (separators, brackets, escaping) and the response-size limit, so no
//! operation writes a byte of JSON by hand. Containers close themselves when dropped, which also
//! covers an early `?` return (the caller then discards the partial reply anyway).
//!
//! ```text
//! let mut reply = Reply::begin(out, "id-1", 0);          // {"id":"id-1"
//! reply.member("status").str("ok");                       // ,"status":"ok"
//! let mut keys = reply.member("keys").array();            // ,"keys":[
//! keys.item().str("k1");                                  // "k1"
//! drop(keys);                                             // ]
//! reply.finish()?;                                        // }
//! ```

use super::encode;

/// The response grew past the configured limit (`--max-response-mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// The response-size limit: where the response started and how long it may grow.
#[derive(Clone, Copy)]
struct Limit {
    start: usize,
    max: usize,
}

impl Limit {
    fn check(self, out: &[u8]) -> Result<(), TooLarge> {
        if self.max > 0 && out.len() - self.start > self.max {
            Err(TooLarge)
        } else {
            Ok(())
        }
    }
}

/// One response object `{"id":…, …}` being written at the end of `out`.
pub struct Reply<'o> {
    out: &'o mut Vec<u8>,
    limit: Limit,
}

impl<'o> Reply<'o> {
    /// Starts the response to request `id`; `max` bounds its size in bytes (0: no limit).
    pub fn begin(out: &'o mut Vec<u8>, id: &str, max: usize) -> Self {
        let limit = Limit {
            start: out.len(),
            max,
        };
        encode::begin(out, id);
        Reply { out, limit }
    }

    /// The value of member `name` (written next to the id, comma included): one of the
    /// protocol's names, written without escaping.
    pub fn member(&mut self, name: &'static str) -> Value<'_> {
        encode::member(self.out, name);
        Value {
            out: self.out,
            limit: self.limit,
        }
    }

    /// Where the response ends now, to go back to with [`Reply::rewind`].
    pub fn mark(&self) -> usize {
        self.out.len()
    }

    /// Drops what was written after `mark` (members written since, closed or not), so that
    /// an operation can write them again.
    pub fn rewind(&mut self, mark: usize) {
        self.out.truncate(mark);
    }

    /// Closes the response object and checks its final size.
    pub fn finish(self) -> Result<(), TooLarge> {
        encode::end(self.out);
        self.limit.check(self.out)
    }
}

/// A place for exactly one JSON value; each method writes one and consumes the place.
pub struct Value<'o> {
    out: &'o mut Vec<u8>,
    limit: Limit,
}

impl<'o> Value<'o> {
    pub fn str(self, s: &str) {
        encode::string(self.out, s);
    }

    pub fn int(self, v: i64) {
        encode::integer(self.out, v);
    }

    pub fn bool(self, v: bool) {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    pub fn null(self) {
        self.out.extend_from_slice(b"null");
    }

    /// A string, or `null` when absent.
    pub fn opt_str(self, s: Option<&str>) {
        match s {
            Some(s) => encode::string(self.out, s),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    /// A `{"ts":…,"data":…}` record whose data is given already escaped (the body of its JSON
    /// string, as the store keeps it): copied verbatim.
    pub fn escaped_record(self, ts: i64, body: &str) {
        encode::escaped_record(self.out, ts, body);
    }

    /// An array of strings.
    pub fn strings<'s>(self, items: impl IntoIterator<Item = &'s str>) {
        let mut a = self.array();
        for s in items {
            a.item().str(s);
        }
    }

    /// An array, closed when the returned writer is dropped.
    pub fn array(self) -> Array<'o> {
        self.out.push(b'[');
        Array {
            out: self.out,
            limit: self.limit,
            first: true,
        }
    }

    /// An object, closed when the returned writer is dropped.
    pub fn object(self) -> Object<'o> {
        self.out.push(b'{');
        Object {
            out: self.out,
            limit: self.limit,
            first: true,
        }
    }
}

/// An open JSON array; `]` is written on drop.
pub struct Array<'o> {
    out: &'o mut Vec<u8>,
    limit: Limit,
    first: bool,
}

impl Array<'_> {
    /// The place of the next element.
    pub fn item(&mut self) -> Value<'_> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        Value {
            out: self.out,
            limit: self.limit,
        }
    }

    /// An item that is a record with escaped data (see [`Value::escaped_record`]), written
    /// with its separator in one step.
    pub fn escaped_record_item(&mut self, ts: i64, body: &str) {
        encode::escaped_record_item(self.out, std::mem::take(&mut self.first), ts, body);
    }

    /// An item that is a record already rendered with its separator (`,{"ts":…}`, see
    /// [`encode::rendered_record_item`]).
    #[inline(always)]
    pub fn rendered_record_item(&mut self, text: &str) {
        encode::rendered_record_item(self.out, std::mem::take(&mut self.first), text);
    }

    /// Whether the whole response is still within the limit.
    pub fn check(&self) -> Result<(), TooLarge> {
        self.limit.check(self.out)
    }

    /// Bytes of the response written so far.
    pub fn written(&self) -> usize {
        self.out.len()
    }
}

impl Drop for Array<'_> {
    fn drop(&mut self) {
        self.out.push(b']');
    }
}

/// An open JSON object; `}` is written on drop.
pub struct Object<'o> {
    out: &'o mut Vec<u8>,
    limit: Limit,
    first: bool,
}

impl Object<'_> {
    /// The value of member `name`.
    pub fn member(&mut self, name: &str) -> Value<'_> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        encode::string(self.out, name);
        self.out.push(b':');
        Value {
            out: self.out,
            limit: self.limit,
        }
    }

    /// A member whose name is given escaped (the body of its JSON string, as a remembered
    /// selection keeps it) and whose value is a record with escaped data (see
    /// [`Value::escaped_record`]): both copied verbatim.
    pub fn escaped_record_member(&mut self, name: &[u8], ts: i64, body: &str) {
        let first = std::mem::take(&mut self.first);
        encode::escaped_named_record(self.out, first, name, ts, body);
    }

    /// [`Object::escaped_record_member`] for a member whose head is given whole: `"name":`
    /// with the name escaped, then the record's opening `{"ts":` (as a remembered selection
    /// keeps it), copied verbatim.
    pub fn escaped_record_after_head(&mut self, head: &[u8], ts: i64, body: &str) {
        let first = std::mem::take(&mut self.first);
        encode::escaped_record_after_head(self.out, first, head, ts, body);
    }

    /// [`Object::escaped_record_after_head`] for a record rendered ahead of time (its end
    /// after `{"ts":`, see [`encode::record_tail`]): the head and the tail copied verbatim.
    pub fn rendered_after_head(&mut self, head: &[u8], tail: &[u8]) {
        let first = std::mem::take(&mut self.first);
        encode::rendered_after_head(self.out, first, head, tail);
    }

    /// Whether the whole response is still within the limit.
    pub fn check(&self) -> Result<(), TooLarge> {
        self.limit.check(self.out)
    }
}

impl Drop for Object<'_> {
    fn drop(&mut self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_escaping_and_closing() {
        let mut out = b"xx".to_vec();
        let mut r = Reply::begin(&mut out, "a\"1", 0);
        r.member("status").str("ok");
        {
            let mut keys = r.member("keys").array();
            for (k, d) in [("k\n1", true), ("k2", false)] {
                let mut o = keys.item().object();
                o.member("key").str(k);
                o.member("deletable").bool(d);
                o.member("name").opt_str(None);
            }
        }
        {
            let mut o = r.member("named").object();
            o.member("q1").int(1);
            o.escaped_record_member(b"q\\\"3", -7, "d\\\"");
            o.escaped_record_after_head(b"\"q4\":{\"ts\":", 8, "e");
        }
        r.member("empty").object();
        r.member("n").int(-42);
        {
            let mut recs = r.member("recs").array();
            recs.item().escaped_record(5, "d\\\"");
            recs.item().escaped_record(6, "e\\\"");
        }
        r.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"xx{"id":"a\"1","status":"ok","keys":[{"key":"k\n1","deletable":true,"name":null},{"key":"k2","deletable":false,"name":null}],"named":{"q1":1,"q\"3":{"ts":-7,"data":"d\""},"q4":{"ts":8,"data":"e"}},"empty":{},"n":-42,"recs":[{"ts":5,"data":"d\""},{"ts":6,"data":"e\""}]}"#
        );
    }

    #[test]
    fn the_limit_counts_from_the_start_of_the_response() {
        let mut out = vec![0u8; 100];
        let mut r = Reply::begin(&mut out, "1", 30);
        let mut values = r.member("values").object();
        values.member("a").str("b");
        assert_eq!(values.check(), Ok(()));
        values.member("c").str("d");
        assert_eq!(values.check(), Err(TooLarge));
        drop(values);
        assert_eq!(r.finish(), Err(TooLarge));
        let mut out = Vec::new();
        let mut r = Reply::begin(&mut out, "1", 20);
        r.member("v").strings(["a"]);
        assert_eq!(r.finish(), Ok(()));
    }
}
