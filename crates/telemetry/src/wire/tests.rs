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
