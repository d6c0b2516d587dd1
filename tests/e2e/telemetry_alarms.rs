//! Telemetry drives alarms: persistence, hysteresis, escalation, allowed values, operator
//! acknowledge and clear, staleness, a limits change with an effective time mid-stream, and
//! replay determinism.

use crate::helpers::TestApp;
use crate::telemetry::{js, publish_json, stream_head, wait_consumer};
use chrono::Utc;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// PUT limits and wait until the anomaly processor can see them.
pub(crate) async fn configure(app: &TestApp, sc: &str, body: Value) {
    let r = app
        .http
        .put(app.url(&format!("/spacecraft/{sc}/config")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    app.wait_projection("spacecraft", r["position"].as_u64().unwrap())
        .await;
}

/// Wait until the archive holds the whole event log.
pub(crate) async fn settle(app: &TestApp) {
    let js = js(app).await;
    let head = stream_head(&js, "MC_EVENTS").await;
    app.wait_projection("archive", head).await;
    app.wait_projection("alarms", head).await;
}

/// Alarm events of one parameter as (type, severity, value, sampleTime).
async fn transitions(app: &TestApp, parameter: &str) -> Vec<(String, Value, Value, Value)> {
    settle(app).await;
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'alarm' AND payload->>'parameter' = $1",
    )
    .bind(parameter)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let ids: Vec<String> = ids.into_iter().map(|(i,)| i).collect();
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload FROM events WHERE aggregate_type = 'alarm' AND aggregate_id = ANY($1) \
         ORDER BY position, event_index",
    )
    .bind(&ids)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(t, p)| {
            (
                t,
                p["severity"].clone(),
                p["value"].clone(),
                p["sampleTime"].clone(),
            )
        })
        .collect()
}

pub(crate) async fn alarm(app: &TestApp, sc: &str, parameter: &str, kind: &str) -> Value {
    settle(app).await;
    let (s, list) = app
        .get_json(&format!("/alarms?spacecraftId={sc}&kind={kind}"))
        .await;
    assert_eq!(s, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["parameter"] == parameter)
        .cloned()
        .unwrap_or(Value::Null)
}

pub(crate) async fn act(app: &TestApp, id: &str, action: &str) -> (u16, Value) {
    app.post(
        &format!("/alarms/{id}/{action}"),
        json!({"operator": "flight-director", "comment": "seen"}),
    )
    .await
}

/// Publish `temps` one message each, `step_ms` apart from `t0`; returns the last sequence.
pub(crate) async fn feed(app: &TestApp, sc: &str, t0: i64, from: usize, samples: &[Value]) -> u64 {
    let js = js(app).await;
    let mut last = 0;
    for (i, params) in samples.iter().enumerate() {
        let body = json!({"timestamp": t0 + ((from + i) as i64) * 1000, "parameters": params});
        last = publish_json(&js, sc, &body).await;
    }
    wait_consumer(app, mc_telemetry::ANOMALY, last).await;
    last
}

fn temps(values: &[f64]) -> Vec<Value> {
    values.iter().map(|v| json!({"temp": v})).collect()
}

async fn setup(app: &TestApp, t0: i64) {
    let (s, _) = app
        .post("/spacecraft", json!({"id": "SC-001", "name": "one"}))
        .await;
    assert_eq!(s, 201);
    configure(
        app,
        "SC-001",
        json!({"effectiveAt": t0 - 3_600_000, "parameters": {
            "temp": {"warnHigh": 40, "critHigh": 60, "persistence": 2, "hysteresis": 2},
            "mode": {"allowedValues": ["NOMINAL"]}}}),
    )
    .await;
}

const FIRST: [f64; 8] = [20.0, 45.0, 20.0, 45.0, 46.0, 39.0, 38.5, 37.0];
const SECOND: [f64; 4] = [65.0, 45.0, 70.0, 20.0];

#[tokio::test]
async fn limits_raise_escalate_and_clear_alarms_with_persistence_and_hysteresis() {
    let app = TestApp::spawn().await;
    let t0 = Utc::now().timestamp_millis() - 600_000;
    setup(&app, t0).await;
    // Persistence 2: the lone 45 does not raise, the pair does; 39 and 38.5 sit in the
    // hysteresis band (40 - 2) and hold the alarm; 37 returns it to normal.
    feed(&app, "SC-001", t0, 0, &temps(&FIRST)).await;
    let a = alarm(&app, "SC-001", "temp", "LIMIT").await;
    assert_eq!(
        (a["state"].as_str(), a["severity"].as_str()),
        (Some("RETURNED"), Some("WARNING")),
        "{a}"
    );
    let id = a["id"].as_str().unwrap().to_owned();
    // Acknowledging a returned alarm clears it.
    let (s, r) = act(&app, &id, "acknowledge").await;
    assert_eq!(s, 200, "{r}");
    // 65 alone does not raise (persistence); 45 makes the pair; 70 escalates; 20 returns.
    feed(&app, "SC-001", t0, FIRST.len(), &temps(&SECOND[..3])).await;
    let a = alarm(&app, "SC-001", "temp", "LIMIT").await;
    assert_eq!(
        (a["state"].as_str(), a["severity"].as_str()),
        (Some("RAISED"), Some("CRITICAL")),
        "{a}"
    );
    // Clearing an alarm that is still out of limits is refused.
    let (s, p) = act(&app, &id, "clear").await;
    assert_eq!(s, 409, "{p}");
    assert_eq!(act(&app, &id, "acknowledge").await.0, 200);
    feed(&app, "SC-001", t0, FIRST.len() + 3, &temps(&SECOND[3..])).await;
    let a = alarm(&app, "SC-001", "temp", "LIMIT").await;
    assert_eq!(a["state"], "CLEARED", "{a}");

    let at = |i: i64| json!(t0 + i * 1000);
    let got = transitions(&app, "temp").await;
    let kinds: Vec<&str> = got.iter().map(|(t, ..)| t.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "alarm.raised",
            "alarm.returned_to_normal",
            "alarm.acknowledged",
            "alarm.cleared",
            "alarm.raised",
            "alarm.escalated",
            "alarm.acknowledged",
            "alarm.returned_to_normal",
            "alarm.cleared"
        ]
    );
    assert_eq!(
        (&got[0].1, &got[0].2, &got[0].3),
        (&json!("WARNING"), &json!(46.0), &at(4))
    );
    assert_eq!((&got[1].2, &got[1].3), (&json!(37.0), &at(7)));
    assert_eq!((&got[4].1, &got[4].3), (&json!("WARNING"), &at(9)));
    assert_eq!((&got[5].1, &got[5].3), (&json!("CRITICAL"), &at(10)));

    // Allowed values: a string outside them is a WARNING.
    feed(
        &app,
        "SC-001",
        t0,
        20,
        &[json!({"mode": "SAFE"}), json!({"mode": "NOMINAL"})],
    )
    .await;
    let modes: Vec<String> = transitions(&app, "mode")
        .await
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(modes, ["alarm.raised", "alarm.returned_to_normal"]);
}

#[tokio::test]
async fn a_limits_change_takes_effect_at_its_time_mid_stream() {
    let app = TestApp::spawn().await;
    let t0 = Utc::now().timestamp_millis() - 600_000;
    let (s, _) = app
        .post("/spacecraft", json!({"id": "SC-001", "name": "one"}))
        .await;
    assert_eq!(s, 201);
    configure(
        &app,
        "SC-001",
        json!({"effectiveAt": t0, "parameters": {"temp": {"warnHigh": 40}}}),
    )
    .await;
    configure(
        &app,
        "SC-001",
        json!({"effectiveAt": t0 + 5_000, "parameters": {"temp": {"warnHigh": 50}}}),
    )
    .await;
    // 45 at every second: out of limits until t0+5s, in limits from then on.
    feed(&app, "SC-001", t0, 0, &temps(&[45.0; 10])).await;
    let got = transitions(&app, "temp").await;
    let kinds: Vec<(&str, &Value)> = got.iter().map(|(t, _, _, at)| (t.as_str(), at)).collect();
    assert_eq!(
        kinds,
        [
            ("alarm.raised", &json!(t0)),
            ("alarm.returned_to_normal", &json!(t0 + 5_000))
        ]
    );
    // The store may trail the anomaly processor by a batch: wait (bounded) for all 10.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let analysis = loop {
        let (_, analysis) = app
            .get_json("/telemetry/analyze?spacecraftId=SC-001&limit=10")
            .await;
        if analysis["snapshots"] == 10 || std::time::Instant::now() > deadline {
            break analysis;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(analysis["snapshots"], 10, "{analysis}");
    let violations = analysis["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 5, "{analysis}");
    assert!(violations
        .iter()
        .all(|v| v["limit"] == "warnHigh" && v["threshold"] == 40.0 && v["severity"] == "WARNING"));
}

#[tokio::test]
async fn a_parameter_without_samples_for_stale_after_raises_a_stale_alarm() {
    let app = TestApp::spawn().await;
    let (s, _) = app
        .post("/spacecraft", json!({"id": "SC-001", "name": "one"}))
        .await;
    assert_eq!(s, 201);
    configure(
        &app,
        "SC-001",
        json!({"effectiveAt": 0, "parameters": {"volts": {"staleAfter": 1}}}),
    )
    .await;
    let js = js(&app).await;
    let seq = publish_json(
        &js,
        "SC-001",
        &json!({"timestamp": Utc::now().timestamp_millis(), "parameters": {"volts": 28}}),
    )
    .await;
    wait_consumer(&app, mc_telemetry::STORE, seq).await;
    let until = |want: &'static str| {
        let app = &app;
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let a = alarm(app, "SC-001", "volts", "STALE").await;
                if a["state"] == want {
                    return a;
                }
                assert!(Instant::now() < deadline, "stale alarm never {want}: {a}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let a = until("RAISED").await;
    assert_eq!(a["severity"], "WARNING");
    publish_json(
        &js,
        "SC-001",
        &json!({"timestamp": Utc::now().timestamp_millis(), "parameters": {"volts": 28}}),
    )
    .await;
    until("RETURNED").await;
}

#[tokio::test]
async fn replaying_the_same_telemetry_under_the_same_limits_gives_identical_alarms() {
    let t0 = Utc::now().timestamp_millis() - 600_000;
    let samples: Vec<Value> = temps(&FIRST).into_iter().chain(temps(&SECOND)).collect();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let app = TestApp::spawn().await;
        setup(&app, t0).await;
        feed(&app, "SC-001", t0, 0, &samples).await;
        runs.push((transitions(&app, "temp").await, app));
    }
    assert_eq!(runs[0].0, runs[1].0);
    assert_eq!(runs[0].0.len(), 5, "{:?}", runs[0].0);

    // Replay inside one system: forget the processor's checkpoint and state; it judges every
    // sample again and the alarms do not change (each transition carries its sample ordinal).
    let (before, mut app) = runs.pop().unwrap();
    let state = |app: &TestApp| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_as::<_, (String, String, Option<String>, i32)>(
                "SELECT spacecraft_id, parameter, level, run FROM telemetry_evaluator ORDER BY 1, 2",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let evaluator = state(&app).await;
    app.stop().await;
    sqlx::query("DELETE FROM telemetry_evaluator")
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE name = $1")
        .bind(mc_telemetry::ANOMALY)
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.start().await;
    let head = stream_head(&js(&app).await, "MC_TELEMETRY").await;
    wait_consumer(&app, mc_telemetry::ANOMALY, head).await;
    assert_eq!(transitions(&app, "temp").await, before);
    assert_eq!(state(&app).await, evaluator);
}
