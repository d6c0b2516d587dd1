//! Telemetry replay: new limits replayed over stored telemetry list the alarm transitions they
//! would raise, and nothing live changes (no event appended, the alarms read model untouched).

use crate::helpers::TestApp;
use crate::telemetry::stream_head;
use crate::telemetry_alarms::{configure, settle};
use async_nats::jetstream;
use serde_json::{json, Value};

#[tokio::test]
async fn new_limits_replayed_over_old_telemetry_list_their_alarms_and_change_nothing() {
    let app = TestApp::spawn().await;
    let started = chrono::Utc::now();
    let (s, _) = app
        .post("/spacecraft", json!({"id": "SC-001", "name": "one"}))
        .await;
    assert_eq!(s, 201);
    configure(
        &app,
        "SC-001",
        json!({"effectiveAt": 0, "parameters": {"p000": {"warnHigh": 50, "critHigh": 100}}}),
    )
    .await;
    let t0 = started.timestamp_millis() - 10_000;
    for (i, v) in [10.0, 60.0, 70.0, 20.0, 45.0, 55.0].into_iter().enumerate() {
        let (s, body) = app
            .post(
                "/telemetry",
                json!({"spacecraftId": "SC-001", "timestamp": t0 + i as i64 * 1000, "parameters": {"p000": v}}),
            )
            .await;
        assert_eq!(s, 202, "{body}");
    }
    let js = jetstream::new(app.nats.client().await);
    let telemetry_head = stream_head(&js, "MC_TELEMETRY").await;
    crate::telemetry::wait_consumer(&app, "telemetry-alarms", telemetry_head).await;
    settle(&app).await;
    let events_before = stream_head(&js, "MC_EVENTS").await;
    let (_, alarms_before) = app.get_json("/alarms?spacecraftId=SC-001").await;
    assert_eq!(
        alarms_before["items"].as_array().unwrap().len(),
        1,
        "{alarms_before}"
    );

    let dir = tempfile::tempdir().unwrap();
    let limits = dir.path().join("limits.json");
    std::fs::write(
        &limits,
        json!({"parameters": {"p000": {"warnHigh": 40, "critHigh": 65}}}).to_string(),
    )
    .unwrap();
    let from = started.timestamp_millis().to_string();
    let limits_arg = limits.to_str().unwrap();
    let replay = [
        "telemetry",
        "replay",
        "--spacecraft",
        "SC-001",
        "--json",
        "--from",
        &from,
    ];
    let with_file: Vec<&str> = replay
        .iter()
        .copied()
        .chain(["--limits", limits_arg])
        .collect();
    let out = app.cli(&with_file, &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let transitions: Vec<(String, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let t: Value = serde_json::from_str(l).unwrap();
            assert_eq!(
                (t["spacecraft"].as_str(), t["parameter"].as_str()),
                (Some("SC-001"), Some("p000"))
            );
            (
                t["transition"].as_str().unwrap().to_owned(),
                t["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            ("raise WARNING".to_owned(), 60.0),
            ("escalate CRITICAL".to_owned(), 70.0),
            ("return to normal".to_owned(), 20.0),
            ("raise WARNING".to_owned(), 45.0),
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("replayed 6 frames"));

    // Nothing live moved.
    settle(&app).await;
    assert_eq!(stream_head(&js, "MC_EVENTS").await, events_before);
    let (_, alarms_after) = app.get_json("/alarms?spacecraftId=SC-001").await;
    assert_eq!(alarms_after, alarms_before);

    // With the limits in force (from the database), the replay agrees with what happened live.
    let out = app.cli(&replay, &[("MC_DATABASE_URL", app.db.url())]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let values: Vec<(String, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let t: Value = serde_json::from_str(l).unwrap();
            (
                t["transition"].as_str().unwrap().to_owned(),
                t["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            ("raise WARNING".to_owned(), 60.0),
            ("return to normal".to_owned(), 20.0),
            ("raise WARNING".to_owned(), 55.0),
        ]
    );
}
