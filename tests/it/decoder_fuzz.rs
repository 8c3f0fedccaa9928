//! The decoder fuzzer of `make fuzz` (fuzz/), run briefly inside the test suite: the same
//! generator and checks (the `fluxiondb-fuzz` library, a dev-dependency), a fixed seed, ~20k
//! inputs. Structured inputs are
//! compared with the protocol's prescribed outcome; mutated ones must not panic, must produce a
//! documented error or a request that satisfies every field rule, and must not allocate more
//! than a small multiple of their size.

use fluxiondb_fuzz::counting::{alloc_bound, measured};
use fluxiondb_fuzz::gen::{self, Case, Expect, Rng};

/// Runs `f` on a thread with the debug server's connection stack (2 MiB).
fn on_server_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

#[test]
fn structured_frames_decode_as_the_protocol_prescribes() {
    on_server_stack(|| {
        let mut rng = Rng::new(7);
        let (mut ok, mut payload_err, mut envelope_err) = (0, 0, 0);
        for i in 0..12_000 {
            let case = gen::structured(&mut rng);
            match &case.expect {
                Expect::Ok(..) => ok += 1,
                Expect::Payload(_) => payload_err += 1,
                _ => envelope_err += 1,
            }
            if let Err(e) = gen::check_case(&case) {
                panic!("structured case {i}: {e}");
            }
        }
        // The generator must cover every outcome, or the comparison proves little.
        assert!(
            ok > 2500 && payload_err > 2500 && envelope_err > 300,
            "outcomes: ok {ok}, payload errors {payload_err}, envelope errors {envelope_err}"
        );
    });
}

#[test]
fn oracle_mismatch_is_reported() {
    // The comparison can fail: a case with a wrong expectation is caught.
    let case = Case {
        frame:
            r#"{"id":"1","type":"qdoc","data":"{\"col\":\"c\",\"doc\":\"d\",\"from\":5,\"to\":4}"}"#
                .into(),
        expect: Expect::Payload("invalid payload: to must be a positive integer".into()),
    };
    let e = gen::check_case(&case).unwrap_err();
    assert!(e.contains("from must not be greater than to"), "{e}");
    let case = Case {
        frame: r#"{"type":"cols","data":"{}"}"#.into(),
        expect: Expect::UnknownType,
    };
    assert!(gen::check_case(&case).is_err());
}

#[test]
fn mutated_frames_never_panic_and_allocate_in_proportion() {
    on_server_stack(|| {
        let mut rng = Rng::new(11);
        let corpus = gen::builtin_corpus();
        let mut largest = 0;
        for i in 0..8000 {
            let base = if rng.chance(1, 3) {
                gen::structured(&mut rng).frame.into_bytes()
            } else {
                rng.pick(&corpus).clone()
            };
            let input = gen::mutate(&mut rng, &base, 128 * 1024);
            largest = largest.max(input.len());
            let (result, peak) = measured(|| gen::check_bytes(&input));
            let shown = gen::shorten(&String::from_utf8_lossy(&input));
            if let Err(e) = result {
                panic!("mutated input {i}: {e}\n  input {shown}");
            }
            assert!(
                peak <= alloc_bound(input.len()),
                "mutated input {i}: {peak} bytes allocated for {} input bytes\n  input {shown}",
                input.len()
            );
        }
        assert!(largest > 32 * 1024, "no large input was generated");
    });
}

#[test]
fn invariant_checks_can_fail() {
    // A known-bad allocation pattern is measured as such (the counter works in this binary).
    let (_, peak) = measured(|| std::hint::black_box(vec![0u8; 1 << 20]));
    assert!(peak >= 1 << 20);
    // Every documented error passes; an undocumented text would not.
    assert!(gen::check_bytes(b"{\"id\":\"1\",\"type\":\"ins\",\"data\":\"[1]\"}").is_ok());
    assert!(gen::documented_payload_error(
        "invalid payload: ts must be a positive integer"
    ));
    assert!(!gen::documented_payload_error("invalid payload: made up"));
    assert!(!gen::documented_payload_error(
        "ts must be a positive integer"
    ));
}

#[test]
fn a_record_data_kept_escaped_keeps_the_rules() {
    // Found by `make fuzz`: a batch the envelope reader declines (repeated members) whose data
    // is then kept escaped, as the body of its JSON string, by the reader of the payload's
    // text. That value passes the rule check when it is exactly what a JSON encoder writes.
    for data in [r"\u0000nul\u001f", r#"a\tb\u0001\\\""#, "\u{7f}é"] {
        let payload = format!(
            r#"[{{"col":"2","col":"d","ts":104,"ts":1077805715952429904,"data":"{data}","doc":"e"}}]"#
        );
        let frame = format!(
            r#"{{"id":"q-1","type":"ins","data":{}}}"#,
            serde_json::to_string(&payload).unwrap()
        );
        assert_eq!(gen::check_bytes(frame.as_bytes()), Ok(()), "{frame}");
    }
}

/// Errors a valid request may still get from its operation (docs/protocol.md#message-reference,
/// #where-and-filter).
const OPERATION_ERRORS: &[&str] = &[
    "invalid scope",
    "api key cannot be empty",
    "api key not found",
    "api key cannot be removed",
    "unknown action",
    "invalid payload: key must be at most 4096 bytes",
    "document too large: at most 4 GiB of data per document",
    "response too large",
    "unknown subscription",
    "too many subscriptions: at most 256 per connection",
];

#[test]
fn structured_frames_through_the_dispatcher_get_the_prescribed_reply() {
    // The same oracle, one level up: the frames go through the server's dispatcher (in process,
    // no socket) and each reply must be the prescribed error, or a success or operation error
    // for a request that decodes.
    let server = crate::seams::start(&[]);
    let mut session = server.local_session(crate::common::MASTER, None).unwrap();
    on_server_stack(move || {
        let mut rng = Rng::new(17);
        let mut served = 0;
        for i in 0..4000 {
            let case = gen::structured(&mut rng);
            let reply = session
                .request(&case.frame)
                .unwrap_or_else(|c| panic!("case {i}: connection closed {c:?}: {}", case.frame));
            let got: serde_json::Value = serde_json::from_str(&reply)
                .unwrap_or_else(|e| panic!("case {i}: reply is not JSON ({e}): {reply}"));
            let frame: serde_json::Value = serde_json::from_str(&case.frame).unwrap();
            let id = frame["id"].clone();
            let error = |id: Option<serde_json::Value>, text: &str| match id {
                Some(id) => serde_json::json!({"id": id, "error": text}),
                None => serde_json::json!({"error": text}),
            };
            let shown = || format!("case {i}: {}\n  reply {reply}", gen::shorten(&case.frame));
            match &case.expect {
                Expect::Envelope(eid, text) => assert_eq!(
                    got,
                    error(eid.as_ref().map(|s| serde_json::json!(s)), text),
                    "{}",
                    shown()
                ),
                Expect::UnknownType => {
                    let text = if frame["type"] == "auth" {
                        "auth messages are not supported; use the api-key query parameter"
                    } else {
                        "Unknown message type"
                    };
                    assert_eq!(got, error(Some(id), text), "{}", shown());
                }
                Expect::Payload(text) => assert_eq!(got, error(Some(id), text), "{}", shown()),
                Expect::Ok(..) => {
                    assert_eq!(got["id"], id, "{}", shown());
                    if let Some(e) = got.get("error") {
                        assert!(
                            OPERATION_ERRORS.contains(&e.as_str().unwrap_or("")),
                            "{}",
                            shown()
                        );
                    } else {
                        served += 1;
                    }
                }
            }
        }
        assert!(served > 800, "only {served} requests were served");
    });
}
