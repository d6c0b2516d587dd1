//! Telemetry ingest end to end: JSON and MessagePack over NATS and HTTP, the read models
//! (snapshots, samples, latest, rollups), and bad input going to the dead-letter stream while
//! ingest goes on.

use crate::helpers::TestApp;
use async_nats::jetstream;
use async_nats::HeaderMap;
use chrono::Utc;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Publish to MC_TELEMETRY and return the stream sequence.
pub async fn publish(
    js: &jetstream::Context,
    subject: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> u64 {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type {
        headers.insert("Content-Type", ct);
    }
    js.publish_with_headers(subject.to_owned(), headers, body.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

pub async fn publish_json(js: &jetstream::Context, sc: &str, body: &Value) -> u64 {
    publish(
        js,
        &format!("mc.telemetry.{sc}"),
        None,
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

pub async fn js(app: &TestApp) -> jetstream::Context {
    jetstream::new(app.nats.client().await)
}

/// Wait until a telemetry consumer's checkpoint reaches `position` (20 s at most).
pub async fn wait_consumer(app: &TestApp, name: &str, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while mc_projection::load_checkpoint(&app.db.pool, name)
        .await
        .unwrap()
        < position
    {
        assert!(Instant::now() < deadline, "{name} never reached {position}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The last sequence of a stream.
pub async fn stream_head(js: &jetstream::Context, stream: &str) -> u64 {
    js.get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence
}

/// Every message of MC_DLQ as (reason, origin position).
pub async fn dead_letters(js: &jetstream::Context) -> Vec<(String, String)> {
    let mut stream = js.get_stream("MC_DLQ").await.unwrap();
    let n = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=n {
        let m = stream.get_raw_message(seq).await.unwrap();
        let h = &m.headers;
        let get = |k: &str| h.get(k).map(|v| v.as_str().to_owned()).unwrap_or_default();
        out.push((get("Mc-Dlq-Reason"), get("Mc-Dlq-Position")));
    }
    out
}

async fn register(app: &TestApp, id: &str) {
    let (s, r) = app.post("/spacecraft", json!({"id": id, "name": id})).await;
    assert_eq!(s, 201, "{r}");
}

#[tokio::test]
async fn json_and_msgpack_over_nats_and_http_reach_every_read_model() {
    let app = TestApp::spawn().await;
    register(&app, "SC-001").await;
    let js = js(&app).await;
    let t0 = (Utc::now().timestamp_millis() / 60_000) * 60_000 - 120_000; // a minute boundary
                                                                          // One JSON snapshot (RFC 3339 time, no spacecraftId: the subject names it).
    let t0_text = chrono::DateTime::from_timestamp_millis(t0)
        .unwrap()
        .to_rfc3339();
    publish_json(&js, "SC-001", &json!({"timestamp": t0_text, "parameters": {"temp": 20, "mode": "CRUISE", "heater": true}})).await;
    // A JSON array.
    let arr: Vec<Value> = (1..=3)
        .map(|i| json!({"spacecraftId": "SC-001", "timestamp": t0 + i * 400, "parameters": {"temp": 20 + i, "heater": false}}))
        .collect();
    publish_json(&js, "SC-001", &Value::Array(arr)).await;
    // MessagePack, with a float.
    let packed = rmp_serde::to_vec_named(
        &json!([{"timestamp": t0 + 1_500, "parameters": {"temp": 30.5, "mode": "SAFE"}}]),
    )
    .unwrap();
    publish(
        &js,
        "mc.telemetry.SC-001",
        Some("application/msgpack"),
        packed,
    )
    .await;
    // HTTP: 202 with the position, readable with minPosition.
    let r = app
        .http
        .post(app.url("/telemetry"))
        .json(
            &json!({"spacecraftId": "SC-001", "timestamp": t0 + 2_000, "parameters": {"temp": 10}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["samples"].as_u64()),
        (Some(1), Some(1)),
        "{body}"
    );
    let pos = body["position"].as_u64().unwrap();
    assert_eq!(pos, 4);

    let (s, list) = app
        .get_json(&format!("/telemetry?spacecraftId=SC-001&minPosition={pos}"))
        .await;
    assert_eq!(s, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 6, "{list}");
    // Newest first.
    assert_eq!(items[0]["parameters"], json!({"temp": 10}));
    assert_eq!(
        items[1]["parameters"],
        json!({"temp": 30.5, "mode": "SAFE"})
    );
    assert_eq!(items[5]["parameters"]["mode"], "CRUISE");

    // One parameter's samples, paged.
    let (_, page1) = app
        .get_json("/telemetry?spacecraftId=SC-001&parameter=temp&limit=4")
        .await;
    let values: Vec<f64> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [10.0, 30.5, 23.0, 22.0]);
    let cursor = page1["nextCursor"].as_str().unwrap();
    let (_, page2) = app
        .get_json(&format!(
            "/telemetry?spacecraftId=SC-001&parameter=temp&limit=4&cursor={cursor}"
        ))
        .await;
    let values: Vec<f64> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [21.0, 20.0]);
    assert!(page2["nextCursor"].is_null());

    // Latest per parameter.
    let (_, latest) = app.get_json("/telemetry/latest?spacecraftId=SC-001").await;
    assert_eq!(latest["parameters"]["temp"]["value"], 10);
    assert_eq!(latest["parameters"]["mode"]["value"], "SAFE");
    assert_eq!(latest["parameters"]["heater"]["value"], false);

    // Rollups: 1 s buckets [t0, t0+1s) and [t0+1s, t0+2s) and [t0+2s, ..), and one 1 min bucket.
    let (_, r1s) = app
        .get_json("/telemetry/rollups?spacecraftId=SC-001&parameter=temp&interval=1s")
        .await;
    let b: Vec<(u64, f64, f64, f64, f64)> = r1s["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["count"].as_u64().unwrap(),
                i["min"].as_f64().unwrap(),
                i["max"].as_f64().unwrap(),
                i["first"].as_f64().unwrap(),
                i["last"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        b,
        [
            (3, 20.0, 22.0, 20.0, 22.0),
            (2, 23.0, 30.5, 23.0, 30.5),
            (1, 10.0, 10.0, 10.0, 10.0)
        ],
        "{r1s}"
    );
    let (_, r1m) = app
        .get_json("/telemetry/rollups?spacecraftId=SC-001&parameter=temp&interval=1m")
        .await;
    let m = &r1m["items"][0];
    assert_eq!(
        (m["count"].as_u64(), m["avg"].as_f64()),
        (
            Some(6),
            Some((20.0 + 21.0 + 22.0 + 23.0 + 30.5 + 10.0) / 6.0)
        ),
        "{r1m}"
    );
    // Booleans roll up as 0/1.
    let (_, heater) = app
        .get_json("/telemetry/rollups?spacecraftId=SC-001&parameter=heater&interval=1h")
        .await;
    assert_eq!(
        (
            heater["items"][0]["count"].as_u64(),
            heater["items"][0]["sum"].as_f64()
        ),
        (Some(4), Some(1.0))
    );

    // Bad queries name the field.
    let (s, p) = app.get_json("/telemetry?parameter=temp").await;
    assert_eq!(
        (s, p["errors"][0]["field"].as_str()),
        (422, Some("spacecraftId")),
        "{p}"
    );
    let (s, p) = app
        .get_json("/telemetry/rollups?spacecraftId=SC-001&parameter=temp&interval=5m")
        .await;
    assert_eq!(
        (s, p["errors"][0]["field"].as_str()),
        (422, Some("interval")),
        "{p}"
    );
}

#[tokio::test]
async fn bad_telemetry_goes_to_the_dead_letter_stream_and_ingest_goes_on() {
    let app = TestApp::spawn_with(|c| {
        c.telemetry.unknown_spacecraft = mc_telemetry::UnknownSpacecraft::Reject;
    })
    .await;
    register(&app, "SC-001").await;
    let js = js(&app).await;
    let now = Utc::now().timestamp_millis();
    let sc = "mc.telemetry.SC-001";
    publish(&js, sc, None, b"\x00\xffnot telemetry".to_vec()).await; // 1 garbage
    publish_json(
        &js,
        "SC-001",
        &json!({"timestamp": now, "parameters": {"temp": [1, 2]}}),
    )
    .await; // 2 wrong type
    let nan = rmp_serde::to_vec_named(&json!({"timestamp": now, "parameters": {"temp": 1.0}}))
        .unwrap()
        .into_iter()
        .collect::<Vec<u8>>();
    // Replace the float64 1.0 (cb 3ff0000000000000) with NaN (cb 7ff8000000000000).
    let nan = replace_bytes(
        &nan,
        &[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0],
        &[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
    );
    publish(&js, sc, Some("application/msgpack"), nan).await; // 3 NaN
    publish_json(
        &js,
        "SC-001",
        &json!({"timestamp": now + 86_400_000, "parameters": {"temp": 1}}),
    )
    .await; // 4 future
    publish_json(
        &js,
        "SC-001",
        &json!({"spacecraftId": "SC-002", "timestamp": now, "parameters": {"temp": 1}}),
    )
    .await; // 5 mismatch
    publish_json(
        &js,
        "SC-404",
        &json!({"timestamp": now, "parameters": {"temp": 1}}),
    )
    .await; // 6 unknown
            // 7: an array with one bad snapshot keeps the good one.
    publish_json(&js, "SC-001", &json!([{"timestamp": now, "parameters": {"temp": 5}}, {"timestamp": "yesterday", "parameters": {"temp": 6}}])).await;
    let last = publish_json(
        &js,
        "SC-001",
        &json!({"timestamp": now + 1, "parameters": {"temp": 7}}),
    )
    .await; // 8 good
    wait_consumer(&app, mc_telemetry::STORE, last).await;

    let (_, list) = app
        .get_json("/telemetry?spacecraftId=SC-001&parameter=temp")
        .await;
    let values: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, [7, 5], "{list}");
    let letters = dead_letters(&js).await;
    let reasons: Vec<&str> = letters.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(letters.len(), 7, "{reasons:?}");
    let positions: Vec<&str> = letters.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(positions, ["1", "2", "3", "4", "5", "6", "7"]);
    assert!(reasons[0].starts_with("undecodable json"), "{}", reasons[0]);
    assert!(
        reasons[1].contains("parameters.temp: must be a number, string or boolean"),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].contains("parameters.temp: must be a finite number"),
        "{}",
        reasons[2]
    );
    assert!(
        reasons[3].contains("s in the future (at most 300 s allowed)"),
        "{}",
        reasons[3]
    );
    assert!(
        reasons[4].contains("SC-002 does not match the subject's spacecraft SC-001"),
        "{}",
        reasons[4]
    );
    assert!(
        reasons[5].contains("spacecraft SC-404 is not registered"),
        "{}",
        reasons[5]
    );
    assert!(reasons[6].starts_with("[1].timestamp"), "{}", reasons[6]);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mc_dead_letters_total{origin=\"telemetry\",reason=\"invalid\"} 5"),
        "{metrics}"
    );

    // HTTP refuses the same faults synchronously and publishes nothing.
    let head = stream_head(&js, "MC_TELEMETRY").await;
    let r = app
        .http
        .post(app.url("/telemetry"))
        .json(&json!([{"spacecraftId": "SC-001", "timestamp": now, "parameters": {"temp": "x"}}, {"spacecraftId": "SC-001", "timestamp": now, "parameters": {"temp": {"a": 1}}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "[1].parameters.temp", "{p}");
    let r = app
        .http
        .post(app.url("/telemetry"))
        .json(&json!({"spacecraftId": "SC-404", "timestamp": now, "parameters": {"temp": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = app
        .http
        .post(app.url("/telemetry"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let after = stream_head(&js, "MC_TELEMETRY").await;
    assert_eq!(after, head);
}

#[tokio::test]
async fn unknown_spacecraft_are_registered_on_first_telemetry_by_default() {
    let app = TestApp::spawn().await;
    let js = js(&app).await;
    let seq = publish_json(
        &js,
        "SC-NEW",
        &json!({"timestamp": Utc::now().timestamp_millis(), "parameters": {"v": 1}}),
    )
    .await;
    wait_consumer(&app, mc_telemetry::STORE, seq).await;
    let (_, list) = app.get_json("/telemetry?spacecraftId=SC-NEW").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, sc) = app.get_json("/spacecraft/SC-NEW").await;
        if s == 200 {
            assert_eq!(sc["metadata"]["autoRegistered"], true);
            break;
        }
        assert!(Instant::now() < deadline, "SC-NEW never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut dlq = js.get_stream("MC_DLQ").await.unwrap();
    assert_eq!(dlq.info().await.unwrap().state.messages, 0);
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = hay
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = hay.to_vec();
    out[at..at + from.len()].copy_from_slice(to);
    out
}

#[tokio::test]
async fn an_http_retry_with_the_same_idempotency_key_is_stored_once() {
    let app = TestApp::spawn().await;
    let now = Utc::now().timestamp_millis();
    let body = json!([
        {"spacecraftId": "SC-001", "timestamp": now, "parameters": {"temp": 1}},
        {"spacecraftId": "SC-002", "timestamp": now, "parameters": {"temp": 2}},
    ]);
    let key = uuid::Uuid::now_v7().to_string();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let r = app
            .http
            .post(app.url("/telemetry"))
            .header("Idempotency-Key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(
        answers[0]["positions"], answers[1]["positions"],
        "{answers:?}"
    );
    let js = js(&app).await;
    let head = stream_head(&js, "MC_TELEMETRY").await;
    assert_eq!(head, 2, "one message per spacecraft, not per attempt");
    wait_consumer(&app, mc_telemetry::STORE, head).await;
    let frames: i64 = sqlx::query_scalar("SELECT count(*) FROM telemetry_frames")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(frames, 2);
}
