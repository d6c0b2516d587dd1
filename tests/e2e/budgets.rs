//! Budgets over HTTP against real NATS and PostgreSQL: a step that takes a task's spend past
//! its budget blocks the run (it waits for an operator) and raises a BUDGET alarm; raising the
//! budget lets it go on and returns the alarm to normal; an agent's budget does the same, and
//! an operator's approval lets a run go on past its budget without another stop.

use crate::helpers::TestApp;
use serde_json::{json, Value};

/// A step of 10,000 input and 3,000 output tokens: $0.055 at $2.50 / $10 per million. Waits
/// until the usage read model counts it (budgets are checked against it).
async fn step(app: &TestApp, run: &str) -> (u16, Value) {
    let (status, body) = app
        .post(
            &format!("/task-runs/{run}/llm-calls"),
            json!({"provider": "openai", "model": "gpt-4o", "inputTokens": 10_000, "outputTokens": 3_000}),
        )
        .await;
    if let Some(p) = body["position"].as_u64() {
        app.wait_projection("usage", p).await;
    }
    (status, body)
}

/// The BUDGET alarm of `source` once the alarms read model has caught up with the log (the
/// alarm command follows the commit at `position`).
async fn budget_alarm(app: &TestApp, source: &str, position: u64) -> Value {
    app.wait_projection("alarms", position).await;
    crate::telemetry_alarms::settle(app).await;
    let (_, alarms) = app.get_json("/alarms?kind=BUDGET").await;
    alarms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["spacecraftId"] == source)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_a_budget_blocks_the_run_until_the_budget_is_raised_or_an_operator_approves() {
    let app = TestApp::spawn().await;
    let (status, _) = app
        .post(
            "/pricing",
            json!({"provider": "openai", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z",
                "inputPerMillion": 2.5, "outputPerMillion": 10}),
        )
        .await;
    assert_eq!(status, 201);
    let agent = app.create("/agents", json!({"name": "spender"})).await;
    let task = app
        .create("/tasks", json!({"title": "bounded", "budgetUsd": 0.1}))
        .await;
    let run = app
        .create("/task-runs", json!({"taskId": task, "agentId": agent}))
        .await;

    let (status, first) = step(&app, &run).await;
    assert_eq!(
        (status, first["state"].as_str()),
        (201, Some("running")),
        "{first}"
    );
    // $0.110 > $0.100: recorded, and the run waits for an operator.
    let (status, second) = step(&app, &run).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(
        (second["state"].as_str(), second["budgetExceeded"].as_bool()),
        (Some("awaiting_approval"), Some(true)),
        "{second}"
    );
    let (status, refused) = step(&app, &run).await;
    assert_eq!(status, 409, "{refused}");
    let crossed_at = second["position"].as_u64().unwrap();
    let alarm = budget_alarm(&app, &format!("task-{task}"), crossed_at).await;
    assert_eq!(
        (alarm["kind"].as_str(), alarm["active"].as_bool()),
        (Some("BUDGET"), Some(true)),
        "{alarm}"
    );
    assert!(
        (alarm["lastValue"].as_f64().unwrap() - 0.11).abs() < 1e-9,
        "{alarm}"
    );
    let (_, r) = app
        .get_json(&format!("/task-runs/{run}?minPosition={crossed_at}"))
        .await;
    assert!(
        r["blockedReason"].as_str().unwrap().contains("task budget"),
        "{r}"
    );

    // Raising the task's budget lets it go on and returns the alarm to normal.
    let (status, raised) = app
        .put(&format!("/tasks/{task}/budget"), json!({"budgetUsd": 1.0}))
        .await;
    assert_eq!(status, 200, "{raised}");
    assert_eq!(raised["resumedRuns"], json!([run]), "{raised}");
    let alarm = budget_alarm(
        &app,
        &format!("task-{task}"),
        raised["position"].as_u64().unwrap(),
    )
    .await;
    assert_eq!(alarm["active"], false, "{alarm}");
    let (status, third) = step(&app, &run).await;
    assert_eq!(
        (status, third["state"].as_str()),
        (201, Some("running")),
        "{third}"
    );

    // An agent's budget below its spend: the next step blocks on it; an operator's approval
    // lets the run go on, and it is not stopped again.
    let (status, body) = app
        .put(
            &format!("/agents/{agent}/budget"),
            json!({"budgetUsd": 0.2}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, fourth) = step(&app, &run).await;
    assert_eq!(fourth["state"], "awaiting_approval", "{fourth}");
    let alarm = budget_alarm(
        &app,
        &format!("agent-{agent}"),
        fourth["position"].as_u64().unwrap(),
    )
    .await;
    assert_eq!(alarm["active"], true, "{alarm}");
    let (status, approved) = app
        .post(
            &format!("/task-runs/{run}/budget/approve"),
            json!({"reason": "month-end report"}),
        )
        .await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("running")),
        "{approved}"
    );
    let (status, again) = app
        .post(&format!("/task-runs/{run}/budget/approve"), json!({}))
        .await;
    assert_eq!(status, 409, "nothing to approve: {again}");
    let (_, fifth) = step(&app, &run).await;
    assert_eq!(fifth["state"], "running", "{fifth}");
    assert!(
        (fifth["spentUsd"].as_f64().unwrap() - 0.275).abs() < 1e-9,
        "{fifth}"
    );
    let (_, events) = app
        .get_json(&format!(
            "/task-runs/{run}/events?type=task_run.budget_approved&minPosition={}",
            fifth["position"]
        ))
        .await;
    let by: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["by"].as_str().unwrap())
        .collect();
    assert_eq!(by.len(), 2, "{events}");
    assert!(by.iter().all(|b| b.starts_with("token:")), "{by:?}");

    // Bad budgets name their field.
    let (status, problem) = app
        .put(&format!("/tasks/{task}/budget"), json!({"budgetUsd": -1}))
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("budgetUsd")),
        "{problem}"
    );
    let (status, _) = app
        .put(
            &format!("/tasks/{}/budget", uuid::Uuid::now_v7()),
            json!({"budgetUsd": 1}),
        )
        .await;
    assert_eq!(status, 404);
}
