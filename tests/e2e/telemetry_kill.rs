//! kill -9 of the telemetry processor mid-stream: after a restart every sample is stored once,
//! rollups count each sample once, and no alarm transition is repeated.

use crate::helpers::{spawn_binary, wait_ready, KillOnDrop};
use crate::telemetry::stream_head;
use async_nats::jetstream;
use chrono::Utc;
use mc_domain::spacecraft::ParameterLimits;
use mc_domain::telemetry::{ParamState, SampleValue};
use mc_test_support::{free_port, NatsServer, TestDb};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

const FRAMES: usize = 12_000;
const PARAMS: usize = 20;
/// Every 7th frame pushes p0 out of limits.
const ANOMALY_EVERY: usize = 7;

fn frame(t0: i64, i: usize) -> Value {
    let mut params = Map::new();
    for p in 0..PARAMS {
        let v = if p == 0 && i.is_multiple_of(ANOMALY_EVERY) {
            95.0
        } else {
            20.0 + (i % 10) as f64 + p as f64 / 10.0
        };
        params.insert(format!("p{p}"), json!(v));
    }
    json!({"timestamp": t0 + i as i64 * 20, "parameters": params})
}

async fn checkpoint(db: &TestDb, name: &str) -> u64 {
    mc_projection::load_checkpoint(&db.pool, name)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_telemetry_processor_loses_and_doubles_nothing() {
    let nats = NatsServer::start().await;
    let db = TestDb::new().await;
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let http = crate::helpers::authorized(
        &crate::helpers::issue_token(&nats.url(), "test-admin", "admin", &[]).await,
    );
    let mut child = KillOnDrop(spawn_binary(&nats.url(), db.url(), &addr));
    wait_ready(&http, &base).await;
    let r = http
        .post(format!("{base}/api/v1/spacecraft"))
        .json(&json!({"id": "SC-K", "name": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r: Value = http
        .put(format!("{base}/api/v1/spacecraft/SC-K/config"))
        .json(&json!({"effectiveAt": 0, "parameters": {"p0": {"warnHigh": 40}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let limits_at = r["position"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while checkpoint(&db, "spacecraft").await < limits_at {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Stop the server, queue the whole stream, then start it and kill it mid-way.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let js = jetstream::new(nats.client().await);
    let t0 = Utc::now().timestamp_millis() - 3_600_000;
    let mut acks = Vec::new();
    for i in 0..FRAMES {
        let body = serde_json::to_vec(&frame(t0, i)).unwrap();
        acks.push(js.publish("mc.telemetry.SC-K", body.into()).await.unwrap());
        if acks.len() == 500 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    let last = stream_head(&js, "MC_TELEMETRY").await;
    assert_eq!(last, FRAMES as u64);

    // Kill twice: first once the store consumer has committed a batch (it is mid-stream), then,
    // after a restart, once the anomaly processor (slower: it sends alarm commands) has
    // committed one more. Each kill -9 leaves work done and work to redo.
    for (round, name) in [(1, mc_telemetry::STORE), (2, mc_telemetry::ANOMALY)] {
        let before = checkpoint(&db, name).await;
        let mut child = KillOnDrop(spawn_binary(&nats.url(), db.url(), &addr));
        let deadline = Instant::now() + Duration::from_secs(30);
        while checkpoint(&db, name).await == before {
            assert!(Instant::now() < deadline, "{name} never committed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        let at_kill = (
            checkpoint(&db, mc_telemetry::STORE).await,
            checkpoint(&db, mc_telemetry::ANOMALY).await,
        );
        eprintln!("kill -9 #{round}: checkpoints (store, alarms) {at_kill:?} of {last}");
        let watched = if round == 1 { at_kill.0 } else { at_kill.1 };
        assert!(
            watched < last,
            "kill #{round} came after {name} finished: {at_kill:?}"
        );
    }

    let _restarted = KillOnDrop(spawn_binary(&nats.url(), db.url(), &addr));
    wait_ready(&http, &base).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while checkpoint(&db, mc_telemetry::STORE).await < last
        || checkpoint(&db, mc_telemetry::ANOMALY).await < last
    {
        assert!(Instant::now() < deadline, "consumers never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (frames,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM telemetry_frames WHERE spacecraft_id = 'SC-K'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(frames, FRAMES as i64);
    for interval in [1, 60, 3600] {
        let (count, sum): (i64, f64) = sqlx::query_as(
            "SELECT sum(count)::bigint, sum(sum) FROM telemetry_rollups WHERE spacecraft_id = 'SC-K' AND parameter = 'p1' AND interval_seconds = $1",
        )
        .bind(interval)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        let expected: f64 = (0..FRAMES).map(|i| 20.0 + (i % 10) as f64 + 0.1).sum();
        assert_eq!(count, FRAMES as i64, "interval {interval}");
        assert!(
            (sum - expected).abs() < 1e-6 * expected,
            "interval {interval}: {sum} vs {expected}"
        );
    }

    // The transitions the pure evaluator gives for the same samples, once each.
    let limits = ParameterLimits {
        warn_high: Some(40.0),
        persistence: 1,
        ..Default::default()
    };
    let mut state = ParamState::default();
    let expected = (0..FRAMES)
        .filter(|i| {
            let v = if i.is_multiple_of(ANOMALY_EVERY) {
                95.0
            } else {
                20.0 + (i % 10) as f64
            };
            state.step(Some(&limits), SampleValue::Number(v)).is_some()
        })
        .count();
    let js_head = stream_head(&js, "MC_EVENTS").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpoint(&db, "archive").await < js_head {
        assert!(Instant::now() < deadline, "archive never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (events, ordinals): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT payload->>'ordinal') FROM events \
         WHERE aggregate_type = 'alarm' AND event_type IN ('alarm.raised', 'alarm.returned_to_normal')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(events as usize, expected);
    assert_eq!(ordinals, events, "an ordinal was transitioned twice");
}
