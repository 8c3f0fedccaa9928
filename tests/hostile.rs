//! Hostile input and resource exhaustion (issue 7): garbage, oversize frames, slow patterns,
//! floods of tiny requests, memory amplification, and the regression tests of what the decoder
//! fuzzer and these tests found. Every test starts its own server.

mod common;

use common::{proc_status_kib, Server};
use serde_json::{json, Value};

fn kib(s: &Server, field: &str) -> u64 {
    proc_status_kib(s.pid().expect("server running"), field)
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
}

/// Found by the decoder fuzzer: an array payload of empty objects (`[{},{},…]`, 3 bytes per
/// element) was read whole into per-element field slots (~128 bytes each) before the first
/// element was validated, so one 16 MiB `ins` made the server allocate about 1 GiB.
#[test]
fn array_of_empty_objects_is_not_amplified_in_memory() {
    let s = Server::start(&[]);
    let mut a = s.master();
    assert_eq!(a.ok("cols", json!({})), json!({"collections": []}));
    let before = kib(&s, "VmHWM");
    let n = 2_500_000; // 7.5 MB of payload
    let mut payload = String::with_capacity(3 * n + 2);
    payload.push('[');
    for i in 0..n {
        if i > 0 {
            payload.push(',');
        }
        payload.push_str("{}");
    }
    payload.push(']');
    for ty in ["ins", "dmrec"] {
        assert_eq!(
            a.call(ty, Value::String(payload.clone())),
            json!({"error": "invalid payload: [0].col must be a non-empty string"}),
            "{ty}"
        );
    }
    // Non-objects are refused just as cheaply, and the first bad element is still reported.
    let ones = format!(
        "[{{\"col\":\"c\",\"doc\":\"d\",\"ts\":1,\"data\":\"\"}}{}]",
        ",1".repeat(n)
    );
    assert_eq!(
        a.call("ins", Value::String(ones)),
        json!({"error": "invalid payload: [1] must be a JSON object"})
    );
    let grown_mib = kib(&s, "VmHWM").saturating_sub(before) / 1024;
    // The frame itself is held (7.5 MB, plus tungstenite's buffer); ~300 MB were used before.
    assert!(
        grown_mib < 64,
        "peak RSS grew by {grown_mib} MiB for a 7.5 MB request"
    );
    assert_eq!(a.ok("cols", json!({})), json!({"collections": []}));
}
