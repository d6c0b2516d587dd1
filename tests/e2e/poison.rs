//! The poison policy of the one consumer runtime: a message that fails whenever it is applied
//! is isolated from the good ones around it, recorded, and skipped or stops its consumer
//! visibly; readiness tells which.

use crate::helpers::{raw_commit, TestApp};
use mc_eventlog::{Commit, EventLog};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

const PROJECTIONS: [&str; 7] = [
    "archive",
    "agents",
    "missions",
    "comments",
    "spacecraft",
    "alarms",
    "agent-status-manager",
];

/// A well-formed commit of an aggregate no read model but the archive keeps, with `payload`.
fn probe_commit(payload: Value) -> Commit {
    raw_commit("probe", "probe.noted", payload)
}

async fn failures(app: &TestApp) -> Vec<(String, i64, bool)> {
    sqlx::query_as("SELECT projection, position, skipped FROM projection_failures ORDER BY 1, 2")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

async fn ready(app: &TestApp) -> (u16, Value) {
    let r = app
        .http
        .get(format!("{}/health/ready", app.base))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn archived(app: &TestApp) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM events WHERE aggregate_type = 'probe' ORDER BY 1")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

/// Good probe commits around one whose payload PostgreSQL refuses (U+0000 in jsonb), appended
/// back to back so the projector meets them in one batch. Returns (good positions, poison).
async fn append_around_poison(app: &TestApp) -> (Vec<u64>, u64) {
    let log = EventLog::new(app.nats.client().await);
    let mut good = Vec::new();
    for i in 0..10 {
        good.push(
            log.append(&probe_commit(json!({"i": i})), 0)
                .await
                .unwrap()
                .position,
        );
    }
    let poison = log
        .append(&probe_commit(json!({"note": "nul \u{0} inside"})), 0)
        .await
        .unwrap()
        .position;
    for i in 10..20 {
        good.push(
            log.append(&probe_commit(json!({"i": i})), 0)
                .await
                .unwrap()
                .position,
        );
    }
    (good, poison)
}

#[tokio::test]
async fn garbage_in_the_event_stream_is_recorded_by_every_projection_and_skipped() {
    let app = TestApp::spawn().await;
    let (s, before) = app.create_agent(json!({"name": "before-garbage"})).await;
    assert_eq!(s, 201);
    let js = async_nats::jetstream::new(app.nats.client().await);
    let garbage = js
        .publish(
            format!("mc.events.agent.{}", Uuid::now_v7()),
            b"\xc1garbage\x00\xff".as_slice().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let (s, after) = app.create_agent(json!({"name": "after-garbage"})).await;
    assert_eq!(s, 201);
    let head = after["position"].as_u64().unwrap();
    for name in PROJECTIONS {
        app.wait_projection(name, head).await;
    }
    // Both agents are in the read model and the archive; the garbage is in neither.
    for (agent, name) in [(&before, "before-garbage"), (&after, "after-garbage")] {
        let (_, a) = app
            .get_json(&format!("/agents/{}", agent["id"].as_str().unwrap()))
            .await;
        assert_eq!(a["name"], name);
    }
    let archived: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE position = $1")
        .bind(garbage as i64)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(archived, 0);
    // One copy in the dead-letter stream, however many projections skipped it; counted once.
    let letters = crate::telemetry::dead_letters(&js).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].0.starts_with("undecodable commit"),
        "{letters:?}"
    );
    assert_eq!(letters[0].1, garbage.to_string());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mc_dead_letters_total{origin=\"events\",reason=\"skipped\"} 1"),
        "{metrics}"
    );
    let recorded = failures(&app).await;
    for name in PROJECTIONS {
        assert!(
            recorded.contains(&(name.to_owned(), garbage as i64, true)),
            "{name} did not record {garbage} as skipped: {recorded:?}"
        );
    }
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    let (_, projections) = app.get_json("/projections").await;
    for p in projections["projections"].as_array().unwrap() {
        assert_eq!(p["state"], "running", "{p}");
    }
    // Garbage in an aggregate's own history: a command on it is refused for what it is (not a
    // 503 inviting retries), naming the position, and appends nothing.
    let id = before["id"].as_str().unwrap();
    let spoiled = js
        .publish(format!("mc.events.agent.{id}"), b"\x00".as_slice().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let r = app
        .http
        .patch(app.url(&format!("/agents/{id}")))
        .json(&json!({"description": "after the garbage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let problem: Value = r.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("undecodable commit at position {spoiled}")),
        "{problem}"
    );
    let stream = js.get_stream("MC_EVENTS").await.unwrap();
    assert_eq!(stream.cached_info().state.last_sequence, spoiled);
}

#[tokio::test]
async fn a_commit_postgres_refuses_stops_only_the_archive_after_the_good_commits_before_it() {
    let app = TestApp::spawn().await;
    let (good, poison) = append_around_poison(&app).await;
    // The archive stops at the poison, visibly; everything before it is archived.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ready(&app).await;
        if status == 503 && body["failed"] == json!(["archive"]) {
            assert_eq!(body["checks"]["consumers"], false, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "readiness never failed: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let before: Vec<i64> = good
        .iter()
        .filter(|p| **p < poison)
        .map(|p| *p as i64)
        .collect();
    assert_eq!(archived(&app).await, before);
    assert_eq!(
        failures(&app).await,
        [("archive".to_owned(), poison as i64, false)]
    );
    let (_, projections) = app.get_json("/projections").await;
    let archive = projections["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "archive")
        .unwrap()
        .clone();
    assert_eq!(archive["state"], "failed", "{archive}");
    assert!(
        archive["error"].as_str().unwrap().contains("22P05"),
        "the sqlstate names the cause: {archive}"
    );
    // The other projections are not held up by it.
    let head = *good.last().unwrap();
    for name in PROJECTIONS.iter().filter(|n| **n != "archive") {
        app.wait_projection(name, head).await;
    }
}

#[tokio::test]
async fn with_skip_poison_the_archive_records_the_refused_commit_and_archives_the_rest() {
    let app = TestApp::spawn_with(|c| c.skip_poison = vec!["archive".into()]).await;
    let (good, poison) = append_around_poison(&app).await;
    app.wait_projection("archive", *good.last().unwrap()).await;
    let good: Vec<i64> = good.iter().map(|p| *p as i64).collect();
    assert_eq!(archived(&app).await, good);
    assert_eq!(
        failures(&app).await,
        [("archive".to_owned(), poison as i64, true)]
    );
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "{body}");
    // The hash chain holds over what was archived.
    let (_, verify) = app.get_json("/audit/verify").await;
    assert_eq!(verify["holds"], true, "{verify}");
}

#[tokio::test]
async fn a_consumer_that_stops_advancing_with_work_waiting_makes_readiness_fail() {
    let app = TestApp::spawn_with(|c| c.ready_stall = Duration::from_secs(1)).await;
    // Wedge the agents projector: hold its checkpoint row lock in another transaction.
    let mut blocker = app.db.pool.begin().await.unwrap();
    sqlx::query("SELECT position FROM projection_checkpoints WHERE name = 'agents' FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let (s, _) = app.create_agent(json!({"name": "waits"})).await;
    assert_eq!(s, 201);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ready(&app).await;
        if status == 503 {
            assert_eq!(body["stalled"], json!(["agents"]), "{body}");
            let metrics = app.metrics().await;
            assert!(
                metrics.contains("mc_projection_stalled{projection=\"agents\"} 1"),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "readiness never failed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    blocker.rollback().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = ready(&app).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readiness never recovered: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
