//! Retention of raw telemetry: with `MC_TELEMETRY_RETENTION_DAYS=2` the server drops the day
//! partitions of raw frames and 1 s rollups older than two days before today; 1 min and 1 h
//! rollups and the latest values stay.

use crate::helpers::TestApp;
use crate::telemetry::{js, publish_json, wait_consumer};
use chrono::{Duration as Days, Utc};
use serde_json::json;
use std::time::{Duration, Instant};

async fn partitions(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent IN ('telemetry_frames'::regclass, 'telemetry_rollups_1s'::regclass) ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn old_days_of_raw_telemetry_are_dropped_and_rollups_above_a_second_stay() {
    let app = TestApp::spawn_with(|c| c.telemetry.retention_days = Some(2)).await;
    let js = js(&app).await;
    let now = Utc::now();
    let mut last = 0;
    for age in [5, 3, 1, 0] {
        let t = (now - Days::days(age)).timestamp_millis();
        last = publish_json(
            &js,
            "SC-001",
            &json!({"timestamp": t, "parameters": {"temp": age}}),
        )
        .await;
    }
    wait_consumer(&app, mc_telemetry::STORE, last).await;
    assert_eq!(
        partitions(&app).await.len(),
        8,
        "{:?}",
        partitions(&app).await
    );

    // The server sweeps a few seconds after it starts, then hourly.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&app, "SELECT count(*) FROM telemetry_frames").await > 2 {
        assert!(
            Instant::now() < deadline,
            "retention never ran: {:?}",
            partitions(&app).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let day = |age: i64| (now - Days::days(age)).format("%Y%m%d").to_string();
    let left = partitions(&app).await;
    assert_eq!(
        left,
        [
            format!("telemetry_frames_{}", day(1)),
            format!("telemetry_frames_{}", day(0)),
            format!("telemetry_rollups_1s_{}", day(1)),
            format!("telemetry_rollups_1s_{}", day(0)),
        ]
    );
    let (_, list) = app
        .get_json("/telemetry?spacecraftId=SC-001&parameter=temp")
        .await;
    let values: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, [0, 1], "{list}");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM telemetry_rollups WHERE interval_seconds = 1"
        )
        .await,
        2
    );
    for interval in [60, 3600] {
        let sql = format!(
            "SELECT sum(count)::bigint FROM telemetry_rollups WHERE interval_seconds = {interval}"
        );
        assert_eq!(
            count(&app, &sql).await,
            4,
            "{interval} s rollups keep every sample"
        );
    }

    // A sweep with nothing old left drops nothing; a late sample for a dropped day is stored
    // again and goes at the next sweep.
    let retention = mc_telemetry::retention::Retention::new(app.db.pool.clone(), 2);
    assert!(retention.sweep(Utc::now()).await.unwrap().is_empty());
    let t = (now - Days::days(4)).timestamp_millis();
    let late = publish_json(
        &js,
        "SC-001",
        &json!({"timestamp": t, "parameters": {"temp": 4}}),
    )
    .await;
    wait_consumer(&app, mc_telemetry::STORE, late).await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM telemetry_frames").await,
        3
    );
    let dropped = retention.sweep(Utc::now()).await.unwrap();
    assert_eq!(
        dropped,
        [
            format!("telemetry_frames_{}", day(4)),
            format!("telemetry_rollups_1s_{}", day(4))
        ]
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM telemetry_frames").await,
        2
    );

    // A late sample for a day the store had already written to (and so knew a partition of)
    // before retention dropped it: the store recreates the partition instead of failing.
    let t = (now - Days::days(5)).timestamp_millis();
    let late = publish_json(
        &js,
        "SC-001",
        &json!({"timestamp": t, "parameters": {"temp": 5}}),
    )
    .await;
    wait_consumer(&app, mc_telemetry::STORE, late).await;
    assert_eq!(
        count(&app, "SELECT count(*) FROM telemetry_frames").await,
        3
    );
}
