//! The matching rules of tests/vectors/README.md ("Matching `expect`"):
//!
//! * plain JSON values compare by parsed equality with strict types (`1`, `1.0` and `true` all
//!   differ), exact member sets for objects, and arrays in order (our server sorts every list);
//! * `{"$any": TYPE, "$min": N, "$max": N}` matches any value of TYPE (`integer`, `number`,
//!   `string`, `boolean`, `array`, `object`, `null`, `any`), optionally bounded;
//! * `{"$contains": [p1, p2, …]}` matches an array in which each pattern matches a *different*
//!   element (other elements allowed).
//!
//! `$close` is a frame-level expectation handled by the runner, not here.
#![allow(dead_code)]

use serde_json::{Number, Value};

/// Matches `actual` against the expectation `expected`. On mismatch, returns the JSON path of the
/// first difference and what differs, e.g. `$.records["dev-1"].ts: expected 300, got 301`.
pub fn match_json(expected: &Value, actual: &Value) -> Result<(), String> {
    let mut path = String::from("$");
    m(expected, actual, &mut path)
}

/// Whether `actual` matches `expected` (see `match_json`).
pub fn matches(expected: &Value, actual: &Value) -> bool {
    match_json(expected, actual).is_ok()
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64()
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.as_bytes()[0].is_ascii_digit();
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::String(key.to_string()).to_string());
        path.push(']');
    }
}

/// Is `v` a placeholder object (`$any` / `$contains`)? Panics on an unknown `$` member, which
/// would be a bug in the vectors file or in this matcher.
fn placeholder(v: &Value) -> Option<&serde_json::Map<String, Value>> {
    let obj = v.as_object()?;
    if !obj.keys().any(|k| k.starts_with('$')) {
        return None;
    }
    for k in obj.keys() {
        assert!(
            matches!(k.as_str(), "$any" | "$min" | "$max" | "$contains"),
            "unsupported placeholder member {k:?} in expectation {v}"
        );
    }
    Some(obj)
}

fn num_cmp(a: &Number, b: &Number) -> std::cmp::Ordering {
    match (as_i128(a), as_i128(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(f64::NAN);
            let y = b.as_f64().unwrap_or(f64::NAN);
            x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
        }
    }
}

fn m(expected: &Value, actual: &Value, path: &mut String) -> Result<(), String> {
    if let Some(ph) = placeholder(expected) {
        if let Some(patterns) = ph.get("$contains") {
            assert_eq!(ph.len(), 1, "$contains must stand alone: {expected}");
            let patterns = patterns.as_array().expect("$contains takes an array");
            let Some(items) = actual.as_array() else {
                return Err(format!(
                    "{path}: expected an array (for $contains), got {}",
                    show(actual)
                ));
            };
            let mut used = vec![false; items.len()];
            if !assign(patterns, 0, items, &mut used) {
                // Name the first pattern that matches no element at all, if any.
                for (i, p) in patterns.iter().enumerate() {
                    if !items.iter().any(|it| matches(p, it)) {
                        return Err(format!(
                            "{path}: no element matches $contains pattern #{i} {} (actual {})",
                            show(p),
                            show(actual)
                        ));
                    }
                }
                return Err(format!(
                    "{path}: the $contains patterns cannot each match a different element (actual {})",
                    show(actual)
                ));
            }
            return Ok(());
        }
        let ty = ph
            .get("$any")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("$min/$max without $any: {expected}"));
        let ok = match ty {
            "any" => true,
            "integer" => matches!(actual, Value::Number(n) if is_integer(n)),
            "number" => actual.is_number(),
            "string" => actual.is_string(),
            "boolean" => actual.is_boolean(),
            "array" => actual.is_array(),
            "object" => actual.is_object(),
            "null" => actual.is_null(),
            other => panic!("unknown $any type {other:?}"),
        };
        if !ok {
            return Err(format!(
                "{path}: expected any {ty}, got {} {}",
                kind(actual),
                show(actual)
            ));
        }
        for (bound, want) in [
            ("$min", std::cmp::Ordering::Less),
            ("$max", std::cmp::Ordering::Greater),
        ] {
            if let Some(b) = ph.get(bound) {
                let b = b
                    .as_number()
                    .unwrap_or_else(|| panic!("{bound} must be a number: {expected}"));
                let Some(a) = actual.as_number() else {
                    return Err(format!(
                        "{path}: {bound} needs a number, got {}",
                        show(actual)
                    ));
                };
                if num_cmp(a, b) == want {
                    return Err(format!("{path}: {} violates {bound} {b}", show(actual)));
                }
            }
        }
        return Ok(());
    }

    match (expected, actual) {
        (Value::Null, Value::Null) => Ok(()),
        (Value::Bool(a), Value::Bool(b)) if a == b => Ok(()),
        (Value::String(a), Value::String(b)) if a == b => Ok(()),
        (Value::Number(a), Value::Number(b)) => {
            let equal = match (is_integer(a), is_integer(b)) {
                (true, true) => as_i128(a) == as_i128(b),
                (false, false) => a.as_f64() == b.as_f64(),
                _ => {
                    return Err(format!(
                        "{path}: expected {} {}, got {} {}",
                        kind(expected),
                        show(expected),
                        kind(actual),
                        show(actual)
                    ))
                }
            };
            if equal {
                Ok(())
            } else {
                Err(format!(
                    "{path}: expected {}, got {}",
                    show(expected),
                    show(actual)
                ))
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            let n = e.len().min(a.len());
            for i in 0..n {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let r = m(&e[i], &a[i], path);
                path.truncate(len);
                r.map_err(|msg| {
                    if e.len() != a.len() {
                        format!(
                            "{msg} (array {path} has {} elements, expected {})",
                            a.len(),
                            e.len()
                        )
                    } else {
                        msg
                    }
                })?;
            }
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected an array of {} elements, got {}: {}",
                    e.len(),
                    a.len(),
                    show(actual)
                ));
            }
            Ok(())
        }
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let len = path.len();
                push_key(path, k);
                let r = match a.get(k) {
                    Some(av) => m(ev, av, path),
                    None => Err(format!("{path}: missing member (expected {})", show(ev))),
                };
                path.truncate(len);
                r?;
            }
            for (k, av) in a {
                if !e.contains_key(k) {
                    let len = path.len();
                    push_key(path, k);
                    let msg = format!("{path}: unexpected member {}", show(av));
                    path.truncate(len);
                    return Err(msg);
                }
            }
            Ok(())
        }
        _ if kind(expected) == kind(actual) => Err(format!(
            "{path}: expected {}, got {}",
            show(expected),
            show(actual)
        )),
        _ => Err(format!(
            "{path}: expected {} {}, got {} {}",
            kind(expected),
            show(expected),
            kind(actual),
            show(actual)
        )),
    }
}

/// Backtracking assignment of patterns to distinct elements.
fn assign(patterns: &[Value], i: usize, items: &[Value], used: &mut [bool]) -> bool {
    if i == patterns.len() {
        return true;
    }
    for j in 0..items.len() {
        if !used[j] && matches(&patterns[i], &items[j]) {
            used[j] = true;
            if assign(patterns, i + 1, items, used) {
                return true;
            }
            used[j] = false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn equal_values_match_regardless_of_key_order() {
        let e = parse(r#"{"id":"q1","records":{"a":{"ts":1,"data":"x"},"b":{"ts":2,"data":"y"}}}"#);
        let a = parse(r#"{"records":{"b":{"data":"y","ts":2},"a":{"data":"x","ts":1}},"id":"q1"}"#);
        assert_eq!(match_json(&e, &a), Ok(()));
    }

    #[test]
    fn types_are_strict() {
        assert!(match_json(&parse("1"), &parse("1.0")).is_err());
        assert!(match_json(&parse("1.0"), &parse("1")).is_err());
        assert!(match_json(&parse("1"), &parse("true")).is_err());
        assert!(match_json(&parse("true"), &parse("1")).is_err());
        assert!(match_json(&parse("\"1\""), &parse("1")).is_err());
        assert!(match_json(&parse("null"), &parse("\"\"")).is_err());
        assert!(match_json(&parse("0"), &parse("false")).is_err());
        assert_eq!(match_json(&parse("1.5"), &parse("1.5")), Ok(()));
        assert_eq!(match_json(&parse("-3"), &parse("-3")), Ok(()));
        assert_eq!(
            match_json(&parse("9223372036854775807"), &parse("9223372036854775807")),
            Ok(())
        );
        assert!(match_json(&parse("9223372036854775807"), &parse("9223372036854775806")).is_err());
    }

    #[test]
    fn member_sets_must_be_equal() {
        let e = parse(r#"{"id":"x"}"#);
        let err = match_json(&e, &parse(r#"{"id":"x","error":"boom"}"#)).unwrap_err();
        assert!(err.starts_with("$.error: unexpected member"), "{err}");
        let err = match_json(&parse(r#"{"id":"x","records":{}}"#), &e).unwrap_err();
        assert!(err.starts_with("$.records: missing member"), "{err}");
    }

    #[test]
    fn arrays_compare_in_order() {
        assert_eq!(
            match_json(&parse(r#"["a","b"]"#), &parse(r#"["a","b"]"#)),
            Ok(())
        );
        let err = match_json(&parse(r#"["a","b"]"#), &parse(r#"["b","a"]"#)).unwrap_err();
        assert!(err.starts_with("$[0]:"), "{err}");
        let err = match_json(&parse(r#"["a","b"]"#), &parse(r#"["a","b","c"]"#)).unwrap_err();
        assert!(
            err.starts_with("$: expected an array of 2 elements, got 3"),
            "{err}"
        );
        assert!(match_json(&parse("[]"), &parse("{}")).is_err());
    }

    #[test]
    fn path_names_the_first_difference() {
        let e = parse(r#"{"records":{"dev-1":{"ts":300,"data":"x"}},"list":[{"a":1}]}"#);
        let a = parse(r#"{"records":{"dev-1":{"ts":301,"data":"x"}},"list":[{"a":1}]}"#);
        let err = match_json(&e, &a).unwrap_err();
        assert_eq!(err, r#"$.records["dev-1"].ts: expected 300, got 301"#);
        let a = parse(r#"{"records":{"dev-1":{"ts":300,"data":"x"}},"list":[{"a":2}]}"#);
        assert_eq!(
            match_json(&e, &a).unwrap_err(),
            "$.list[0].a: expected 1, got 2"
        );
    }

    #[test]
    fn any_placeholder_checks_type_and_bounds() {
        let p = json!({"$any": "integer", "$min": 0});
        assert_eq!(match_json(&p, &json!(0)), Ok(()));
        assert_eq!(match_json(&p, &json!(12345)), Ok(()));
        assert!(match_json(&p, &json!(-1)).is_err());
        assert!(match_json(&p, &parse("1.0")).is_err());
        assert!(match_json(&p, &json!("5")).is_err());
        let p = json!({"$any": "number", "$min": 1, "$max": 2});
        assert_eq!(match_json(&p, &json!(1.5)), Ok(()));
        assert_eq!(match_json(&p, &json!(2)), Ok(()));
        assert!(match_json(&p, &json!(2.5)).is_err());
        for (ty, good, bad) in [
            ("string", json!("s"), json!(1)),
            ("boolean", json!(false), json!(0)),
            ("array", json!([]), json!({})),
            ("object", json!({}), json!([])),
            ("null", json!(null), json!(false)),
        ] {
            let p = json!({ "$any": ty });
            assert_eq!(match_json(&p, &good), Ok(()), "{ty}");
            assert!(match_json(&p, &bad).is_err(), "{ty}");
        }
        assert_eq!(match_json(&json!({"$any": "any"}), &json!(null)), Ok(()));
        // Inside structures.
        let e = json!({"connections": [{"since": {"$any": "integer", "$min": 0}, "self": true}]});
        assert_eq!(
            match_json(&e, &json!({"connections": [{"since": 7, "self": true}]})),
            Ok(())
        );
        let err =
            match_json(&e, &json!({"connections": [{"since": -7, "self": true}]})).unwrap_err();
        assert!(err.starts_with("$.connections[0].since:"), "{err}");
    }

    #[test]
    fn contains_needs_distinct_elements() {
        let p = json!({"$contains": [{"$any": "integer"}, 2]});
        assert_eq!(match_json(&p, &json!([2, 5, "x"])), Ok(()));
        // Both patterns could only use the element 2.
        assert!(match_json(&p, &json!([2, "x"])).is_err());
        // Backtracking: the first pattern must not greedily take the only 2.
        assert_eq!(match_json(&p, &json!([2, 3])), Ok(()));
        assert!(match_json(&p, &json!({})).is_err());
        assert_eq!(match_json(&json!({"$contains": []}), &json!([])), Ok(()));
    }
}
