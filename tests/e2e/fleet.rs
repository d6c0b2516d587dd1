//! Fleet metrics end to end: an agent's metrics and history, the system's status and series,
//! latest events, metric limits raising alarms, liveness (late heartbeat but busy vs silent),
//! and a rebuild giving the same rows.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A mission for `agent` taken through IN_PROGRESS to `end`; the last position.
async fn mission(app: &TestApp, agent: &str, end: &str) -> u64 {
    let m = app
        .create(
            "/missions",
            json!({"title": format!("to {end}"), "agentId": agent}),
        )
        .await;
    app.set_mission_status(&m, "IN_PROGRESS").await;
    // Busy for a measurable while before it ends.
    app.wait_agent_status(agent, "BUSY").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.set_mission_status(&m, end).await
}

#[tokio::test]
async fn agent_and_system_metrics_follow_the_log() {
    let app = TestApp::spawn().await;
    let agent = app.create("/agents", json!({"name": "worker"})).await;
    let idle = app.create("/agents", json!({"name": "idler"})).await;
    mission(&app, &agent, "COMPLETED").await;
    mission(&app, &agent, "FAILED").await;
    let (s, c) = app
        .post("/comments", json!({"content": "done", "agentId": agent}))
        .await;
    assert_eq!(s, 201, "{c}");
    let at = c["position"].as_u64().unwrap();
    // The status manager's last word (IDLE) is in.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let (s, m) = app
            .get_json(&format!("/agents/{agent}/metrics?minPosition={at}"))
            .await;
        assert_eq!(s, 200, "{m}");
        if m["status"] == "IDLE" || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let at = at.max(
        app.get_json("/projections").await.1["streamHead"]
            .as_u64()
            .unwrap(),
    );
    assert_eq!(
        m["missions"],
        json!({"completed": 1, "failed": 1, "inProgress": 0}),
        "{m}"
    );
    assert_eq!(m["successRate"], 0.5, "{m}");
    assert_eq!(m["errorRate"], 0.5, "{m}");
    assert_eq!(m["commentsSent"], 1, "{m}");
    assert!(m["avgDurationSeconds"].as_f64().unwrap() >= 0.0, "{m}");
    // Busy while a mission ran (the status manager), idle otherwise: both were counted.
    assert!(m["workSeconds"].as_f64().unwrap() > 0.0, "{m}");
    assert!(m["idleSeconds"].as_f64().unwrap() > 0.0, "{m}");
    assert_eq!(m["status"], "IDLE", "{m}");

    let (s, h) = app
        .get_json(&format!("/agents/{agent}/history?hours=1&minPosition={at}"))
        .await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["resolution"], "minute");
    let points = h["points"].as_array().unwrap();
    let sum = |k: &str| points.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        (sum("completed"), sum("failed"), sum("comments")),
        (1, 1, 1),
        "{h}"
    );
    let (_, h) = app
        .get_json(&format!("/agents/{agent}/history?hours=48"))
        .await;
    assert_eq!(h["resolution"], "hour");
    assert_eq!(h["points"][0]["completed"], 1, "{h}");

    let (s, st) = app
        .get_json(&format!("/system/status?minPosition={at}"))
        .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(
        (st["agentsTotal"].as_i64(), st["agentsIdle"].as_i64()),
        (Some(2), Some(2)),
        "{st}"
    );
    assert_eq!(st["missionsCompleted"], 1);
    assert_eq!(st["missionsFailed"], 1);
    assert_eq!(st["successRate"], 0.5);
    // 100 × (0.4 × 0.5 + 0.3 × 1 + 0.3 × 1) = 80
    assert_eq!(st["healthScore"], 80, "{st}");
    assert!(st["commandLatency"]["count"].as_u64().unwrap() >= 8, "{st}");
    assert!(st["eventsPerMinute"].as_f64().unwrap() > 0.0, "{st}");
    assert_eq!(st["consumers"]["failed"], json!([]));

    let (s, series) = app.get_json("/system/metrics?hours=1").await;
    assert_eq!(s, 200, "{series}");
    let last = series["points"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["agentsTotal"], 2, "{series}");
    assert_eq!(last["healthScore"], 80, "{series}");

    let (s, ev) = app
        .get_json(&format!("/system/events?limit=3&minPosition={at}"))
        .await;
    assert_eq!(s, 200, "{ev}");
    let positions: Vec<u64> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions.len(), 3, "{ev}");
    assert!(positions[0] >= at, "newest first: {ev}");
    assert!(positions.windows(2).all(|w| w[0] >= w[1]), "{ev}");

    // Bad input names its field; unknown agents are 404.
    for (path, field) in [
        (format!("/agents/{agent}/history?hours=0"), "hours"),
        (format!("/agents/{agent}/history?hours=721"), "hours"),
        ("/system/metrics?hours=abc".to_owned(), "hours"),
        ("/system/events?limit=501".to_owned(), "limit"),
        ("/agents/not-a-uuid/metrics".to_owned(), "id"),
    ] {
        let (s, p) = app.get_json(&path).await;
        assert_eq!(s, 422, "{path}: {p}");
        assert!(p.to_string().contains(field), "{path}: {p}");
    }
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        app.get_json(&format!("/agents/{unknown}/metrics")).await.0,
        404
    );
    assert_eq!(
        app.get_json(&format!("/agents/{unknown}/history")).await.0,
        404
    );
    let (s, _) = app
        .post(&format!("/agents/{unknown}/heartbeat"), json!({}))
        .await;
    assert_eq!(s, 404);
    let _ = idle;
}

#[tokio::test]
async fn a_success_rate_below_its_limit_raises_an_alarm_and_a_rebuild_gives_the_same_rows() {
    let app = TestApp::spawn().await;
    // Bad limits are refused naming the field, and change nothing.
    let (s, p) = app
        .put(
            "/system/metrics/limits",
            json!({"agent": {"cpu": {"warnLow": 1}}}),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    assert!(p.to_string().contains("agent.cpu"), "{p}");
    let (s, p) = app
        .put(
            "/system/metrics/limits",
            json!({"system": {"healthScore": {"warnLow": 90, "critLow": 95}}}),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    assert!(p.to_string().contains("system.healthScore.warnLow"), "{p}");
    let limits = json!({
        "agent": {"successRate": {"warnLow": 0.6, "critLow": 0.3}},
        "system": {"healthScore": {"warnLow": 85}}
    });
    let (s, r) = app.put("/system/metrics/limits", limits).await;
    assert_eq!(s, 200, "{r}");
    let at = r["position"].as_u64().unwrap();
    let (_, got) = app
        .get_json(&format!("/system/metrics/limits?minPosition={at}"))
        .await;
    assert_eq!(got["agent"]["successRate"]["warnLow"], 0.6, "{got}");
    assert_eq!(got["system"]["healthScore"]["warnLow"], 85.0, "{got}");

    let agent = app.create("/agents", json!({"name": "flaky"})).await;
    mission(&app, &agent, "COMPLETED").await;
    mission(&app, &agent, "FAILED").await; // 0.5 → WARNING
    let at = mission(&app, &agent, "FAILED").await; // 0.33, health 73 → system WARNING
    let source = format!("agent-{agent}");
    let alarm = wait_alarm(&app, &source, "RAISED", at).await;
    assert_eq!(alarm["parameter"], "successRate", "{alarm}");
    assert_eq!(alarm["severity"], "WARNING", "{alarm}");
    let system = wait_alarm(&app, "fleet", "RAISED", at).await;
    assert_eq!(system["parameter"], "healthScore", "{system}");
    // Successes bring it back: 4 of 6 = 0.67.
    mission(&app, &agent, "COMPLETED").await;
    mission(&app, &agent, "COMPLETED").await;
    let at = mission(&app, &agent, "COMPLETED").await;
    wait_alarm(&app, &source, "RETURNED", at).await;
    // Health 87 ≥ 85: the system alarm returns too.
    wait_alarm(&app, "fleet", "RETURNED", at).await;

    // A full replay into a rebuilt read model gives the same rows.
    let head = app.get_json("/projections").await.1["streamHead"]
        .as_u64()
        .unwrap();
    app.wait_projection("fleet", head).await;
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let before = checksums(&pool).await;
    let (s, b) = app.post("/projections/fleet/rebuild", json!({})).await;
    assert_eq!(s, 202, "{b}");
    crate::rebuild::wait_rebuild_done(&app, "fleet").await;
    assert_eq!(checksums(&pool).await, before);
    // ... and sent no alarm again.
    let (_, alarms) = app
        .get_json(&format!(
            "/events?aggregate=alarm&fromPosition={}",
            head + 1
        ))
        .await;
    assert_eq!(alarms["items"], json!([]), "{alarms}");
}

async fn checksums(pool: &sqlx::PgPool) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for table in mc_fleet::projection::TABLES {
        out.push(
            mc_projections::audit::table_checksum(pool, table, u64::MAX)
                .await
                .unwrap(),
        );
    }
    out
}

/// The alarm of `source` once it is in `state` (read at `at` or later; 10 s at most).
async fn wait_alarm(app: &TestApp, source: &str, state: &str, at: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = app
            .get_json(&format!("/alarms?spacecraftId={source}&minPosition={at}"))
            .await;
        if let Some(a) = list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|a| a["state"] == state))
        {
            return a.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {state} alarm of {source}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn silent_agents_go_offline_while_busy_or_beating_ones_stay_and_only_transitions_are_events()
{
    let app = TestApp::spawn_with(|c| {
        c.liveness = mc_fleet::LivenessConfig {
            offline_after: Duration::from_secs(2),
            sweep_every: Duration::from_secs(1),
        };
    })
    .await;
    let silent = app.create("/agents", json!({"name": "silent"})).await;
    let beating = app.create("/agents", json!({"name": "beating"})).await;
    let busy = app.create("/agents", json!({"name": "busy"})).await;
    let m = app
        .create("/missions", json!({"title": "long", "agentId": busy}))
        .await;
    app.set_mission_status(&m, "IN_PROGRESS").await;
    app.wait_agent_status(&busy, "BUSY").await;
    let version = |a: Value| a["version"].as_u64().unwrap();
    let beating_version = version(app.get_json(&format!("/agents/{beating}")).await.1);

    // For 4 s: `beating` beats over HTTP and NATS, `busy` works without a heartbeat.
    let nats = app.nats.client().await;
    let until = Instant::now() + Duration::from_secs(4);
    let mut progress = 0;
    while Instant::now() < until {
        let (s, b) = app
            .post(&format!("/agents/{beating}/heartbeat"), json!({}))
            .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("IDLE")), "{b}");
        let reply = nats
            .request_with_headers(
                "mc.cmd.agent.heartbeat",
                app.nats_headers(),
                json!({"id": beating}).to_string().into(),
            )
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(reply["ok"], true, "{reply}");
        progress += 10;
        let (s, r) = app
            .patch(&format!("/missions/{m}"), json!({"progress": progress}))
            .await;
        assert_eq!(s, 200, "{r}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    app.wait_agent_status(&silent, "OFFLINE").await;
    let (_, b) = app.get_json(&format!("/agents/{beating}")).await;
    assert_eq!(b["status"], "IDLE", "{b}");
    assert_eq!(version(b), beating_version, "heartbeats appended events");
    let (_, w) = app.get_json(&format!("/agents/{busy}")).await;
    assert_eq!(
        w["status"], "BUSY",
        "a busy agent with a late heartbeat is alive: {w}"
    );

    // Its heartbeat brings the silent one back: one event, with its reason.
    let (s, back) = app
        .post(&format!("/agents/{silent}/heartbeat"), json!({}))
        .await;
    assert_eq!(s, 200, "{back}");
    assert_eq!(back["status"], "IDLE", "{back}");
    let at = back["position"]
        .as_u64()
        .expect("a transition has a position");
    let (_, events) = app
        .get_json(&format!(
            "/events?aggregate=agent&id={silent}&type=agent.status_changed&minPosition={at}"
        ))
        .await;
    let reasons: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons.len(), 2, "{events}");
    assert!(
        reasons[0].starts_with("no heartbeat or activity for"),
        "{events}"
    );
    assert_eq!(reasons[1], "heartbeat");
    let (_, m) = app.get_json(&format!("/agents/{beating}/metrics")).await;
    assert!(m["lastHeartbeatAt"].is_string(), "{m}");

    // The system's metrics reach the relay's `system` topic and /metrics every 5 s.
    let r = app
        .http
        .get(app.url("/stream?topics=system"))
        .send()
        .await
        .unwrap();
    let (_, frame) = crate::live::sse_events(r, 1).await.remove(0);
    assert_eq!(frame["type"], "metrics", "{frame}");
    assert_eq!(frame["topic"], "system", "{frame}");
    assert_eq!(frame["data"]["agentsTotal"], 3, "{frame}");
    assert!(app.metrics().await.contains("mc_fleet_health_score"));

    // A NATS heartbeat without a token, or for nobody, is refused.
    let reply = nats
        .request(
            "mc.cmd.agent.heartbeat",
            json!({"id": beating}).to_string().into(),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["error"]["status"], 401, "{reply}");
    let reply = nats
        .request_with_headers(
            "mc.cmd.agent.heartbeat",
            app.nats_headers(),
            json!({"id": uuid::Uuid::now_v7()}).to_string().into(),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["error"]["status"], 404, "{reply}");
}

#[tokio::test]
async fn nobody_is_marked_offline_while_the_fleet_read_model_is_stopped() {
    let app = TestApp::spawn_with(|c| {
        c.liveness = mc_fleet::LivenessConfig {
            offline_after: Duration::from_secs(1),
            sweep_every: Duration::from_secs(1),
        };
    })
    .await;
    let agent = app.create("/agents", json!({"name": "quiet"})).await;
    // Garbage on an agent subject stops the fleet projection (and the agents read model).
    crate::projections::append_poison(&app).await;
    crate::projections::wait_state(&app, "fleet", "failed").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, events) = app
        .get_json(&format!("/events?aggregate=agent&id={agent}"))
        .await;
    assert_eq!(
        events["items"].as_array().unwrap().len(),
        1,
        "only its registration: {events}"
    );
}
