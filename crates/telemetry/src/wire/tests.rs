//! The wire format: both encodings, one snapshot or many, and every validation rule naming the
//! field at fault.

use super::*;
use mc_domain::telemetry::SampleValue;
use serde_json::json;

const NOW: i64 = 1_750_000_000_000;

fn cx(subject: Option<&str>) -> Context<'_> {
    Context {
        subject_spacecraft: subject,
        received_ms: NOW,
        max_future_ms: 300_000,
    }
}

/// Decode JSON and validate every snapshot on subject `SC-001`; the outcome of each.
fn judge(body: serde_json::Value) -> Vec<Result<(String, i64, usize), Invalid>> {
    let bytes = serde_json::to_vec(&body).unwrap();
    let snapshots = decode(Format::Json, &bytes).unwrap();
    let context = cx(Some("SC-001"));
    let mut names = Vec::new();
    snapshots
        .items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            validate(s, &snapshots.prefix(i), &context, &mut names)
                .map(|(sc, snap)| (sc.to_owned(), snap.timestamp_ms, snap.samples.len()))
        })
        .collect()
}

fn error(body: serde_json::Value) -> Invalid {
    judge(body).remove(0).unwrap_err()
}

#[test]
fn json_and_msgpack_decode_to_the_same_snapshot_borrowing_names() {
    let body = json!({"spacecraftId": "SC-001", "timestamp": "2025-06-15T15:06:40.5Z",
        "parameters": {"temp": 42.5, "mode": "CRUISE", "heater": true, "count": 7}});
    let json_bytes = serde_json::to_vec(&body).unwrap();
    let msgpack = rmp_serde::to_vec_named(&body).unwrap();
    for (format, bytes) in [(Format::Json, &json_bytes), (Format::MsgPack, &msgpack)] {
        let snapshots = decode(format, bytes).unwrap();
        assert!(!snapshots.array);
        let mut names = Vec::new();
        let (sc, snap) = validate(&snapshots.items[0], "", &cx(None), &mut names).unwrap();
        assert_eq!(sc, "SC-001");
        assert_eq!(snap.timestamp_ms, NOW + 500);
        // serde_json's map sorts its keys; the decoder keeps the order it is given.
        assert_eq!(
            snap.samples,
            [
                ("count", SampleValue::Number(7.0)),
                ("heater", SampleValue::Bool(true)),
                ("mode", SampleValue::Text("CRUISE")),
                ("temp", SampleValue::Number(42.5)),
            ]
        );
    }
    assert_eq!(
        Format::from_content_type(Some("application/msgpack")),
        Format::MsgPack
    );
    assert_eq!(
        Format::from_content_type(Some("application/json")),
        Format::Json
    );
    assert_eq!(Format::from_content_type(None), Format::Json);
}

#[test]
fn arrays_are_judged_snapshot_by_snapshot() {
    let got = judge(json!([
        {"timestamp": NOW, "parameters": {"a": 1}},
        {"timestamp": NOW, "parameters": {"a": [1]}},
        {"spacecraftId": "SC-001", "timestamp": NOW - 1, "parameters": {"a": 2, "b": 3}},
    ]));
    assert_eq!(got[0], Ok(("SC-001".into(), NOW, 1)));
    assert_eq!(got[1].as_ref().unwrap_err().field, "[1].parameters.a");
    assert_eq!(got[2], Ok(("SC-001".into(), NOW - 1, 2)));
}

#[test]
fn each_fault_names_its_field() {
    let cases = [
        (json!({"parameters": {"a": 1}}), "timestamp", "is required"),
        (
            json!({"timestamp": "yesterday", "parameters": {}}),
            "timestamp",
            "RFC 3339",
        ),
        (
            json!({"timestamp": 1.5, "parameters": {}}),
            "timestamp",
            "not",
        ),
        (
            json!({"timestamp": 5, "parameters": {}}),
            "timestamp",
            "before 2000",
        ),
        (
            json!({"timestamp": NOW + 301_000, "parameters": {}}),
            "timestamp",
            "301 s in the future",
        ),
        (
            json!({"spacecraftId": "SC-002", "timestamp": NOW, "parameters": {}}),
            "spacecraftId",
            "does not match",
        ),
        (
            json!({"spacecraftId": 7, "timestamp": NOW, "parameters": {}}),
            "spacecraftId",
            "must be a string",
        ),
        (
            json!({"timestamp": NOW, "parameters": {"t": null}}),
            "parameters.t",
            "number, string or boolean",
        ),
        (
            json!({"timestamp": NOW, "parameters": {"t": {"x": 1}}}),
            "parameters.t",
            "number, string or boolean",
        ),
        (
            json!({"timestamp": NOW, "parameters": {"bad name": 1}}),
            "parameters.bad name",
            "",
        ),
        (
            json!({"timestamp": NOW, "parameters": {"t": 1, "t ": 2}}),
            "parameters.t ",
            "",
        ),
    ];
    for (body, field, message) in cases {
        let e = error(body.clone());
        assert_eq!(e.field, field, "{body}: {e}");
        assert!(e.message.contains(message), "{body}: {e}");
    }
}

#[test]
fn non_finite_numbers_are_refused() {
    // JSON cannot carry NaN; MessagePack can.
    #[derive(serde::Serialize)]
    struct Raw {
        timestamp: i64,
        parameters: std::collections::BTreeMap<&'static str, f64>,
    }
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let raw = Raw {
            timestamp: NOW,
            parameters: [("t", v)].into(),
        };
        let body = rmp_serde::to_vec_named(&raw).unwrap();
        let snapshots = decode(Format::MsgPack, &body).unwrap();
        let e = validate(
            &snapshots.items[0],
            "",
            &cx(Some("SC-001")),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("parameters.t", "must be a finite number")
        );
    }
}

#[test]
fn payloads_that_are_not_telemetry_are_refused_whole() {
    assert!(decode(Format::Json, b"\xff\x00garbage")
        .unwrap_err()
        .starts_with("undecodable json"));
    assert!(decode(Format::Json, b"42").is_err());
    assert!(decode(Format::Json, b"[]")
        .unwrap_err()
        .contains("no snapshot"));
    assert!(decode(Format::Json, br#"{"timestamp": 1} trailing"#).is_err());
    assert!(decode(Format::MsgPack, b"\xc1")
        .unwrap_err()
        .starts_with("undecodable msgpack"));
    let many = serde_json::to_vec(&vec![json!({}); SNAPSHOTS_MAX + 1]).unwrap();
    assert!(decode(Format::Json, &many)
        .unwrap_err()
        .contains("more than"));
}

/// Run `f` on a thread with a small stack (a quarter of a tokio worker's): a decoder that
/// recursed per level of input would overflow it and abort the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// 1,000 levels of nested arrays or single-entry maps, as JSON and as MessagePack (1 KB to
/// 4 KB): the nesting bomb of issue 11.
fn bombs(levels: usize) -> Vec<(Format, &'static str, Vec<u8>)> {
    let json_arrays = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let json_maps = format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels));
    let mut mp_arrays = vec![0x91u8; levels]; // fixarray of one element
    mp_arrays.push(0xc0); // nil
    let mut mp_maps = Vec::new();
    for _ in 0..levels {
        mp_maps.extend_from_slice(&[0x81, 0xa1, b'a']); // fixmap {"a": …}
    }
    mp_maps.push(0x01);
    vec![
        (Format::Json, "json arrays", json_arrays.into_bytes()),
        (Format::Json, "json maps", json_maps.into_bytes()),
        (Format::MsgPack, "msgpack arrays", mp_arrays),
        (Format::MsgPack, "msgpack maps", mp_maps),
    ]
}

#[test]
fn a_nesting_bomb_is_refused_without_exhausting_the_stack() {
    on_small_stack(|| {
        for (format, what, bytes) in bombs(1_000) {
            let e = decode(format, &bytes).unwrap_err();
            assert!(e.contains("levels deep"), "{what}: {e}");
        }
    });
}

#[test]
fn a_nesting_bomb_inside_a_parameter_or_an_unknown_field_is_refused() {
    // Built as bytes: a 1,000-level serde_json::Value would itself recurse to build and drop.
    let arrays = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let json_bodies = [
        format!(
            r#"{{"timestamp": {NOW}, "parameters": {{"a": {}}}}}"#,
            arrays(1_000)
        ),
        format!(
            r#"{{"timestamp": {NOW}, "parameters": {{"a": 1}}, "x": {}}}"#,
            arrays(1_000)
        ),
    ];
    let mp_str = |out: &mut Vec<u8>, s: &str| {
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    };
    let mut mp_bomb = vec![0x91u8; 1_000];
    mp_bomb.push(0x01);
    let mut in_parameter = vec![0x82];
    mp_str(&mut in_parameter, "timestamp");
    in_parameter.push(0xcf);
    in_parameter.extend_from_slice(&(NOW as u64).to_be_bytes());
    let mut in_unknown = in_parameter.clone();
    in_unknown[0] = 0x83;
    mp_str(&mut in_parameter, "parameters");
    in_parameter.extend_from_slice(&[0x81, 0xa1, b'a']);
    in_parameter.extend_from_slice(&mp_bomb);
    mp_str(&mut in_unknown, "parameters");
    in_unknown.extend_from_slice(&[0x81, 0xa1, b'a', 0x01]);
    mp_str(&mut in_unknown, "x");
    in_unknown.extend_from_slice(&mp_bomb);
    on_small_stack(move || {
        for body in json_bodies {
            let e = decode(Format::Json, body.as_bytes()).unwrap_err();
            assert!(e.contains("levels deep"), "{e}");
        }
        for body in [in_parameter, in_unknown] {
            let e = decode(Format::MsgPack, &body).unwrap_err();
            assert!(e.contains("levels deep"), "{e}");
        }
    });
}

#[test]
fn nesting_up_to_the_limit_decodes_and_is_refused_by_validation_by_name() {
    // Snapshot (1) → parameters (2) → 14 levels of arrays: 16 in all.
    let mut v = json!(1);
    for _ in 0..MAX_DEPTH - 2 {
        v = json!([v]);
    }
    let body = json!({"timestamp": NOW, "parameters": {"a": v}});
    let too_deep = json!({"timestamp": NOW, "parameters": {"a": [v]}});
    for (format, ok, bad) in [
        (
            Format::Json,
            serde_json::to_vec(&body).unwrap(),
            serde_json::to_vec(&too_deep).unwrap(),
        ),
        (
            Format::MsgPack,
            rmp_serde::to_vec_named(&body).unwrap(),
            rmp_serde::to_vec_named(&too_deep).unwrap(),
        ),
    ] {
        let snapshots = decode(format, &ok).unwrap();
        let e = validate(
            &snapshots.items[0],
            "",
            &cx(Some("SC-001")),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.field, "parameters.a", "{format:?}");
        assert!(decode(format, &bad).unwrap_err().contains("levels deep"));
    }
}

#[test]
fn strings_with_nul_or_control_characters_are_invalid_samples() {
    let e = error(json!({"timestamp": NOW, "parameters": {"mode": "SAFE\u{0}"}}));
    assert_eq!(
        (e.field.as_str(), e.message.as_str()),
        ("parameters.mode", "must not contain NUL characters")
    );
    let e = error(json!({"timestamp": NOW, "parameters": {"mode": "a\u{1b}[31m"}}));
    assert_eq!(e.field, "parameters.mode");
    let e = error(json!({"timestamp": NOW, "parameters": {"mode": "x".repeat(STRING_MAX + 1)}}));
    assert!(e.message.contains("at most 256"), "{e}");
    let ok = judge(json!({"timestamp": NOW, "parameters": {"mode": "é".repeat(STRING_MAX)}}));
    assert!(ok[0].is_ok());
}

#[test]
fn a_parameter_name_with_nul_is_invalid_and_shown_escaped() {
    let e = error(json!({"timestamp": NOW, "parameters": {"te\u{0}mp": 1}}));
    assert_eq!(e.field, "parameters.te\\0mp");
    let long = "x".repeat(10_000);
    let e = error(json!({"timestamp": NOW, "parameters": {long: 1}}));
    assert!(e.field.len() < 100, "{}", e.field);
}
