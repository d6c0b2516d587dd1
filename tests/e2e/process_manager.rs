//! The agent status process manager: BUSY when an assigned mission starts, IDLE when the
//! last active one ends; causation ids; resuming after a restart.

use crate::helpers::{config, TestApp};
use mc_api::Application;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

impl TestApp {
    /// Poll the agent until its status is `want` (10 s at most).
    pub(crate) async fn wait_agent_status(&self, agent: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, a) = self.get_json(&format!("/agents/{agent}")).await;
            if a["status"] == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "agent {agent} is {} not {want}",
                a["status"]
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) async fn set_mission_status(&self, mission: &str, status: &str) -> u64 {
        let (s, r) = self
            .patch(&format!("/missions/{mission}"), json!({"status": status}))
            .await;
        assert_eq!(s, 200, "{r}");
        r["position"].as_u64().unwrap()
    }
}

#[tokio::test]
async fn agent_is_busy_while_an_assigned_mission_runs() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "worker"})).await;
    let m1 = app
        .create("/missions", json!({"title": "one", "agentId": agent}))
        .await;
    let m2 = app
        .create("/missions", json!({"title": "two", "agentId": agent}))
        .await;

    app.set_mission_status(&m1, "IN_PROGRESS").await;
    app.wait_agent_status(&agent, "BUSY").await;
    app.set_mission_status(&m2, "IN_PROGRESS").await;
    let done = app.set_mission_status(&m1, "COMPLETED").await;
    // Still one active mission: stays BUSY (give the manager time to act wrongly).
    app.wait_projection("agent-status-manager", done).await;
    let (_, a) = app
        .get_json(&format!("/agents/{agent}?minPosition={done}"))
        .await;
    assert_eq!(a["status"], "BUSY");
    let last = app.set_mission_status(&m2, "FAILED").await;
    app.wait_agent_status(&agent, "IDLE").await;

    // Each change is its own agent event caused by the mission event.
    app.wait_projection("archive", last + 1).await;
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT payload->>'to', metadata FROM events WHERE aggregate_id = $1 AND event_type = 'agent.status_changed' ORDER BY position",
    )
    .bind(&agent)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["BUSY", "IDLE"]
    );
    for (_, meta) in &rows {
        let cause: uuid::Uuid = meta["causationId"].as_str().unwrap().parse().unwrap();
        let (event_type, mission): (String, String) =
            sqlx::query_as("SELECT event_type, aggregate_id FROM events WHERE event_id = $1")
                .bind(cause)
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        assert_eq!(event_type, "mission.status_changed");
        assert!(mission == m1 || mission == m2);
        assert_eq!(meta["actor"], "system:agent-status-manager");
    }
}

#[tokio::test]
async fn unassigning_or_deleting_the_running_mission_frees_the_agent() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "w"})).await;
    let m = app
        .create("/missions", json!({"title": "t", "agentId": agent}))
        .await;
    app.set_mission_status(&m, "IN_PROGRESS").await;
    app.wait_agent_status(&agent, "BUSY").await;
    let (s, _) = app
        .patch(&format!("/missions/{m}"), json!({"agentId": null}))
        .await;
    assert_eq!(s, 200);
    app.wait_agent_status(&agent, "IDLE").await;
    let (s, _) = app
        .patch(&format!("/missions/{m}"), json!({"agentId": agent}))
        .await;
    assert_eq!(s, 200);
    app.wait_agent_status(&agent, "BUSY").await;
    let r = app
        .http
        .delete(app.url(&format!("/missions/{m}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.wait_agent_status(&agent, "IDLE").await;
}

#[tokio::test]
async fn process_manager_resumes_after_a_restart() {
    let mut app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "night-shift"})).await;
    let m = app
        .create("/missions", json!({"title": "overnight", "agentId": agent}))
        .await;
    app.stop().await;

    // While the process manager is down, another API instance (no projectors) starts the mission.
    let mut cfg = config(
        app.nats.url(),
        app.db.url().to_owned(),
        "127.0.0.1:0".parse().unwrap(),
    );
    cfg.run_projectors = false;
    let api_only = Application::build(cfg).await.unwrap();
    let base = format!("http://127.0.0.1:{}", api_only.port());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(api_only.run(shutdown.clone()));
    crate::helpers::wait_ready(&app.http, &base).await;
    let r = app
        .http
        .patch(format!("{base}/api/v1/missions/{m}"))
        .json(&json!({"status": "IN_PROGRESS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    shutdown.cancel();
    server.await.unwrap().unwrap();

    // The full server comes back, resumes from its checkpoint and reacts to what it missed.
    app.start().await;
    app.wait_agent_status(&agent, "BUSY").await;
    app.set_mission_status(&m, "COMPLETED").await;
    app.wait_agent_status(&agent, "IDLE").await;
}

#[tokio::test]
async fn replaying_history_from_scratch_emits_no_commands() {
    let mut app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "veteran"})).await;
    let m = app
        .create("/missions", json!({"title": "old", "agentId": agent}))
        .await;
    app.set_mission_status(&m, "IN_PROGRESS").await;
    app.wait_agent_status(&agent, "BUSY").await;
    let last = app.set_mission_status(&m, "COMPLETED").await;
    app.wait_agent_status(&agent, "IDLE").await;
    app.stop().await;
    let head_before = mc_eventlog::EventLog::new(app.nats.client().await)
        .head()
        .await
        .unwrap();

    // Rebuild the process manager from position 0.
    sqlx::query("DELETE FROM pm_agent_status_missions")
        .execute(&app.db.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = 'agent-status-manager'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.start().await;
    app.wait_projection("agent-status-manager", head_before)
        .await;
    assert!(head_before > last);
    let head_after = mc_eventlog::EventLog::new(app.nats.client().await)
        .head()
        .await
        .unwrap();
    assert_eq!(head_after, head_before, "the replay appended nothing");
    let (_, a) = app.get_json(&format!("/agents/{agent}")).await;
    assert_eq!(a["status"], "IDLE");
    // Its state was rebuilt: live events after the replay are handled again.
    let m2 = app
        .create("/missions", json!({"title": "new", "agentId": agent}))
        .await;
    app.set_mission_status(&m2, "IN_PROGRESS").await;
    app.wait_agent_status(&agent, "BUSY").await;
}

#[tokio::test]
async fn rebuilding_the_process_manager_emits_nothing() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "rebuilt"})).await;
    let m1 = app
        .create("/missions", json!({"title": "a", "agentId": agent}))
        .await;
    let m2 = app
        .create("/missions", json!({"title": "b", "agentId": agent}))
        .await;
    app.set_mission_status(&m1, "IN_PROGRESS").await;
    app.wait_agent_status(&agent, "BUSY").await;
    let last = app.set_mission_status(&m2, "IN_PROGRESS").await;
    app.wait_projection("agent-status-manager", last).await;
    let log = mc_eventlog::EventLog::new(app.nats.client().await);
    let head = log.head().await.unwrap();

    let (s, body) = app
        .post("/projections/agent-status-manager/rebuild", json!({}))
        .await;
    assert_eq!(s, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while mc_projection::rebuild::rebuild_status(&app.db.pool, "agent-status-manager")
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "rebuild did not finish");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        log.head().await.unwrap(),
        head,
        "the rebuild appended nothing"
    );
    let (active,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pm_agent_status_missions WHERE status = 'IN_PROGRESS'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(active, 2, "state rebuilt from history");
    // And the live manager still works with the rebuilt state: one of two ends, still BUSY;
    // the other ends, IDLE.
    let done = app.set_mission_status(&m1, "COMPLETED").await;
    app.wait_projection("agent-status-manager", done).await;
    let (_, a) = app
        .get_json(&format!("/agents/{agent}?minPosition={done}"))
        .await;
    assert_eq!(a["status"], "BUSY");
    app.set_mission_status(&m2, "COMPLETED").await;
    app.wait_agent_status(&agent, "IDLE").await;
}
