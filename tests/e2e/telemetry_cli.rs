//! The `mission-control telemetry` commands against a running server: `publish` sends what it
//! reports (counted in the store), injected anomalies raise alarms, `list` and `analyze` read
//! them back, and bad input exits non-zero with the server's reason.

use crate::helpers::TestApp;
use crate::telemetry::stream_head;
use crate::telemetry::wait_consumer;
use crate::telemetry_alarms::{alarm, configure};
use serde_json::{json, Value};
use std::process::Output;

/// Run `mission-control telemetry <args>` against `app`.
async fn cli(app: &TestApp, args: &[&str]) -> Output {
    let args: Vec<&str> = std::iter::once("telemetry")
        .chain(args.iter().copied())
        .collect();
    app.cli(&args, &[]).await
}

#[tokio::test]
async fn publish_list_and_analyze_from_the_command_line() {
    let app = TestApp::spawn().await;
    for sc in ["SC-001", "SC-002"] {
        let (s, _) = app.post("/spacecraft", json!({"id": sc, "name": sc})).await;
        assert_eq!(s, 201);
        configure(
            &app,
            sc,
            json!({"effectiveAt": 0, "parameters": {"p000": {"warnHigh": 50, "critHigh": 100}}}),
        )
        .await;
    }
    let out = cli(
        &app,
        &[
            "publish",
            "--spacecraft",
            "2",
            "--parameters",
            "12",
            "--rate",
            "200",
            "--count",
            "50",
            "--format",
            "msgpack",
            "--batch",
            "5",
            "--anomaly-every",
            "10",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            &summary["frames"],
            &summary["samples"],
            &summary["acked"],
            &summary["failed"]
        ),
        (&json!(100), &json!(1200), &json!(20), &json!(0)),
        "{summary}"
    );
    let js = crate::telemetry::js(&app).await;
    let head = stream_head(&js, "MC_TELEMETRY").await;
    assert_eq!(head, 20);
    wait_consumer(&app, mc_telemetry::STORE, head).await;
    wait_consumer(&app, mc_telemetry::ANOMALY, head).await;
    let frames: i64 = sqlx::query_scalar("SELECT count(*) FROM telemetry_frames")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(frames, 100);
    let a = alarm(&app, "SC-001", "p000", "LIMIT").await;
    assert_eq!(a["severity"], "CRITICAL", "{a}");

    let out = cli(
        &app,
        &[
            "list",
            "--spacecraft-id",
            "SC-001",
            "--limit",
            "3",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3, "{list}");

    let out = cli(
        &app,
        &[
            "analyze",
            "--spacecraft-id",
            "SC-001",
            "--limit",
            "50",
            "--json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let analysis: Value = serde_json::from_slice(&out.stdout).unwrap();
    let anomalies = summary["anomalies"].as_u64().unwrap() / 2;
    assert_eq!(
        analysis["violations"].as_array().unwrap().len() as u64,
        anomalies,
        "{analysis}"
    );

    let out = cli(&app, &["list", "--spacecraft-id", "SC.001"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spacecraftId"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
