//! Projection platform: the registry and lag in `GET /projections`, Prometheus `/metrics`,
//! poison events recorded and stopping only their projection (or skipped when configured).

use crate::helpers::{raw_commit, TestApp};
use mc_eventlog::EventLog;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Append an `agent.registered` whose payload does not match its schema; returns its position.
pub(crate) async fn append_poison(app: &TestApp) -> u64 {
    let log = EventLog::new(app.nats.client().await);
    let commit = raw_commit(
        "agent",
        "agent.registered",
        json!({"nom": "not the schema"}),
    );
    log.append(&commit, 0).await.unwrap().position
}

async fn projection(app: &TestApp, name: &str) -> Value {
    let (_, body) = app.get_json("/projections").await;
    body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
        .clone()
}

pub(crate) async fn wait_state(app: &TestApp, name: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = projection(app, name).await;
        if p["state"] == state {
            return p;
        }
        assert!(Instant::now() < deadline, "{name} never {state}: {p}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn projections_report_positions_lag_and_metrics() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "metered"})).await;
    let (_, r) = app
        .patch(&format!("/agents/{agent}"), json!({"status": "BUSY"}))
        .await;
    let head = r["position"].as_u64().unwrap();
    for name in [
        "archive",
        "agents",
        "missions",
        "comments",
        "spacecraft",
        "agent-status-manager",
    ] {
        app.wait_projection(name, head).await;
    }
    let (_, body) = app.get_json("/projections").await;
    assert_eq!(body["streamHead"], head);
    let names: Vec<&str> = body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "archive",
            "agents",
            "missions",
            "comments",
            "spacecraft",
            "alarms",
            "tasks",
            "usage",
            "agent-status-manager",
            "fleet"
        ]
    );
    let agents = projection(&app, "agents").await;
    assert_eq!(
        (
            agents["position"].as_u64(),
            agents["lagEvents"].as_u64(),
            agents["state"].as_str()
        ),
        (Some(head), Some(0), Some("running"))
    );
    assert_eq!(agents["tables"], json!(["agents"]));
    assert_eq!(agents["version"], 1);

    let r = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for needle in [
        "mc_commands_total{aggregate=\"agent\",outcome=\"ok\"} 2",
        &format!("mc_projection_position{{projection=\"agents\"}} {head}"),
        "mc_projection_lag_events{projection=\"agents\"} 0",
        "mc_projection_failed{projection=\"agents\"} 0",
        "# TYPE mc_append_seconds histogram",
        "mc_projection_events_applied_total{projection=\"archive\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn a_poison_event_stops_only_its_projection_and_is_recorded() {
    let app = TestApp::spawn().await;
    let poison = append_poison(&app).await;
    let failed = wait_state(&app, "agents", "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains(&format!("at position {poison}")),
        "{failed}"
    );
    assert_eq!(failed["position"].as_u64(), Some(poison - 1));

    // The others go on.
    let m = app
        .create("/missions", json!({"title": "still works"}))
        .await;
    let (_, mission) = app
        .get_json(&format!("/missions/{m}?minPosition={}", poison + 1))
        .await;
    assert_eq!(mission["title"], "still works");
    app.wait_projection("archive", poison + 1).await;

    let (_, body) = app.get_json("/projections").await;
    // The fleet metrics read agent events too: they stop at the same event.
    let f = body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["projection"] == "agents")
        .unwrap();
    let fleet = body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["projection"] == "fleet")
        .unwrap();
    assert_eq!(fleet["position"].as_u64(), Some(poison), "{body}");
    assert_eq!(
        (
            f["projection"].as_str(),
            f["position"].as_u64(),
            f["skipped"].as_bool()
        ),
        (Some("agents"), Some(poison), Some(false))
    );
    let text = app.metrics().await;
    assert!(
        text.contains("mc_projection_failed{projection=\"agents\"} 1"),
        "{text}"
    );
    // Reads of the stopped read model say they are stale instead of waiting forever.
    let r = app
        .http
        .get(app.url(&format!("/agents?minPosition={}", poison + 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["mc-stale"], "true");
}

#[tokio::test]
async fn a_projection_configured_to_skip_records_the_event_and_goes_on() {
    let app = TestApp::spawn_with(|c| {
        c.skip_poison = vec!["agents".into()];
        c.read_wait = Duration::from_secs(5);
    })
    .await;
    let poison = append_poison(&app).await;
    let (s, created) = app.create_agent(json!({"name": "after-poison"})).await;
    assert_eq!(s, 201);
    let pos = created["position"].as_u64().unwrap();
    let (_, agent) = app
        .get_json(&format!(
            "/agents/{}?minPosition={pos}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(agent["name"], "after-poison");
    let (_, body) = app.get_json("/projections").await;
    let f = body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["projection"] == "agents")
        .unwrap();
    assert_eq!(
        (f["position"].as_u64(), f["skipped"].as_bool()),
        (Some(poison), Some(true))
    );
    assert_eq!(projection(&app, "agents").await["state"], "running");
}

#[tokio::test]
async fn readiness_fails_above_the_lag_threshold() {
    let app = TestApp::spawn_with(|c| c.ready_max_lag = Some(0)).await;
    let r = app
        .http
        .get(format!("{}/health/ready", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    append_poison(&app).await;
    wait_state(&app, "agents", "failed").await;
    let r = app
        .http
        .get(format!("{}/health/ready", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["checks"]["lag"].as_bool(), body["lagging"].clone()),
        (Some(false), json!(["agents", "fleet"]))
    );
}
